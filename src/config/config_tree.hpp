#pragma once

// parse_config with the TOML document it read, for code in jitbox_core that reports the
// positions of keys (src/policy/layers.cpp). The public headers do not expose toml++, so this
// header is private to the library.

#include "jitbox/config/config.hpp"

#include <toml++/toml.h>

#include <filesystem>
#include <string_view>

namespace jitbox::config_detail {

/// A validated configuration and the TOML document it was read from.
struct ConfigTree {
    Config config;
    toml::table tree;
};

/// Parses and validates `text` as parse_config does, and keeps the document, so callers need
/// not parse the same text a second time. Failures are those of parse_config.
Result<ConfigTree> parse_config_tree(std::string_view text, const std::filesystem::path& path);

} // namespace jitbox::config_detail
