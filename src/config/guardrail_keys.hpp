#pragma once

// The reader of `[guardrails]`, and the template value readers it shares with config.cpp.
// Private to src/config.

#include "jitbox/config/config.hpp"
#include "toml_reader.hpp"

namespace jitbox::config_detail {

void read_guardrails(const Field& field, Config& config); // `[guardrails]`

double read_cpus(const Field& field);            // greater than 0, at most 1024
std::int64_t read_memory(const Field& field);    // bytes, at least the engine's 6 MiB
std::string read_capability(const Field& field); // such as "NET_ADMIN", without "CAP_"

} // namespace jitbox::config_detail
