#pragma once

#include "jitbox/policy/layers.hpp"

#include <filesystem>

namespace jitbox::enforced {

/// Loads the configuration of enforced mode. The system file k_config_path must exist, be owned
/// by root and not be writable by group or others (else ExitCode::usage with the fix). The
/// project jitbox.toml nearest `working_dir` is added as load_layered_config adds it, but only
/// when a key in k_trusted_keys_dir signed it. An unsigned or badly signed project file is
/// skipped with one warning in LoadedConfig::warnings. `--config` and JITBOX_CONFIG play no
/// part. When the system file defines no roles, a deny rule added to its layer denies `up`,
/// `extend` and `exec` to everyone.
Result<LoadedConfig> load_enforced_config(const std::filesystem::path& working_dir);

} // namespace jitbox::enforced
