#pragma once

// Readers of the policy keys of jitbox.toml, private to src/config: `[policy]`, `[[roles]]`
// and `[[deny]]`.

#include "toml_reader.hpp"

#include "jitbox/config/config.hpp"

namespace jitbox::config_detail {

void read_policy_settings(const Field& field, Config& config); // `[policy]`
void read_roles(const Field& field, Config& config);           // `[[roles]]`
void read_denies(const Field& field, Config& config);          // `[[deny]]`

// Checks that each template name or glob of a role or deny rule matches a template of the same
// file. A file that defines no templates bounds the templates of other files, so it is exempt.
void check_policy_templates(const Field& root, const Config& config);

} // namespace jitbox::config_detail
