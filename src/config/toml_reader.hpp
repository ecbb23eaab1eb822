#pragma once

// Typed readers for toml++ nodes that report problems as `FILE:LINE:COLUMN: KEY: message`.
// config.cpp reads the template keys with them and policy_keys.cpp the policy keys. The
// readers throw InvalidConfig, which parse_config catches, so this header is private to
// src/config.

#include "jitbox/util/time.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace jitbox::config_detail {

// Thrown by the readers below and caught in parse_config, so the first problem found ends
// parsing with one message. It never leaves parse_config.
struct InvalidConfig {
    std::string message;
};

struct SourceInfo {
    std::string name;               // FILE in messages: the path as given, or "<default>"
    std::filesystem::path base_dir; // relative mount sources are resolved against this folder
};

// A value in the file with its dotted key path, such as `templates.db.ttl`.
struct Field {
    const toml::node& node;
    std::string key_path;
    const SourceInfo& source;
};

using Entry = std::pair<const toml::key*, const toml::node*>;
using KeyCheck = std::string (*)(std::string_view key); // returns the problem, or empty
enum class ZeroDuration { allowed, rejected };

// ---- positions, key paths and messages ----

std::string format_position(const SourceInfo& source, const toml::source_region& region);

[[noreturn]] void fail_at(const SourceInfo& source, const toml::source_region& region,
                          std::string_view key_path, std::string_view message);

[[noreturn]] void fail(const Field& field, std::string_view message);

// Appends `key` to a dotted key path, quoting it as TOML does when it is not a bare key.
std::string append_key(std::string_view path, std::string_view key);

[[noreturn]] void fail_type(const Field& field, std::string_view expected);

template <typename Names> std::string join_names(const Names& names) {
    std::string joined;
    for (const auto& name : names) {
        joined += joined.empty() ? "" : ", ";
        joined += name;
    }
    return joined;
}

// Returns `did you mean "x"?` for a likely typo of one of `known`, else `known: a, b`.
std::string suggest_name(std::string_view name, const std::vector<std::string>& known);

// ---- typed readers ----

const toml::table& read_table(const Field& field);
const toml::array& read_array(const Field& field, std::string_view expected);
const std::string& read_string(const Field& field, std::string_view expected = "a string");
std::string read_non_empty_string(const Field& field, std::string_view example);
bool read_bool(const Field& field);
std::int64_t read_integer(const Field& field);
double read_number(const Field& field);
Seconds read_duration(const Field& field, ZeroDuration zero);

// Reads each element of an array with `read_element`, which gets the element's own key path.
template <typename Reader>
auto read_each(const Field& field, std::string_view expected, Reader read_element) {
    std::vector<decltype(read_element(field))> values;
    const toml::array& array = read_array(field, expected);
    for (std::size_t i = 0; i < array.size(); ++i) {
        const Field element{array[i], fmt::format("{}[{}]", field.key_path, i), field.source};
        values.push_back(read_element(element));
    }
    return values;
}

std::vector<std::string> read_strings(const Field& field);

// toml::table orders keys by name. Reading them in file order makes the first error reported
// the first one in the file.
std::vector<Entry> entries_in_file_order(const toml::table& table);

// Reads a table whose values are all strings, checking each key with `check_key`.
std::map<std::string, std::string> read_string_table(const Field& field, KeyCheck check_key);

// Returns the problem with `key` as an environment variable name, or an empty string.
std::string env_key_problem(std::string_view key);

// ---- key tables ----

template <typename Target> struct KeyRule {
    std::string_view key;
    void (*read)(const Field& field, Target& target);
};

// Reads every key of the table in `field` with the rule of the same name. A key without a rule
// is an error that suggests the closest known key.
template <typename Target, std::size_t N>
void read_keys(const Field& field, const std::array<KeyRule<Target>, N>& rules, Target& target) {
    for (const auto& [key, node] : entries_in_file_order(read_table(field))) {
        const Field value{*node, append_key(field.key_path, key->str()), field.source};
        // Named outside the lambda because clang 14, which builds the fuzz targets, cannot
        // capture a structured binding.
        const std::string_view name = key->str();
        const auto rule = std::find_if(rules.begin(), rules.end(), [&name](const auto& candidate) {
            return candidate.key == name;
        });
        if (rule == rules.end()) {
            std::vector<std::string> known;
            for (const auto& candidate : rules) {
                known.emplace_back(candidate.key);
            }
            const std::string suggestion = suggest_name(key->str(), known);
            fail_at(field.source, key->source(), value.key_path,
                    fmt::format("unknown key \"{}\" ({})", key->str(), suggestion));
        }
        rule->read(value, target);
    }
}

} // namespace jitbox::config_detail
