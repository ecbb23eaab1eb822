// The typed readers of toml_reader.hpp.

#include "toml_reader.hpp"

#include "jitbox/config/config.hpp"

namespace jitbox::config_detail {

// ---- positions, key paths and messages ----

std::string format_position(const SourceInfo& source, const toml::source_region& region) {
    if (region.begin.line == 0) {
        return source.name;
    }
    return fmt::format("{}:{}:{}", source.name, region.begin.line, region.begin.column);
}

[[noreturn]] void fail_at(const SourceInfo& source, const toml::source_region& region,
                          std::string_view key_path, std::string_view message) {
    throw InvalidConfig{
        fmt::format("{}: {}: {}", format_position(source, region), key_path, message)};
}

[[noreturn]] void fail(const Field& field, std::string_view message) {
    fail_at(field.source, field.node.source(), field.key_path, message);
}

namespace {

bool is_bare_key(std::string_view key) {
    return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
    });
}

} // namespace

std::string append_key(std::string_view path, std::string_view key) {
    const std::string written = is_bare_key(key) ? std::string(key) : fmt::format("\"{}\"", key);
    return path.empty() ? written : fmt::format("{}.{}", path, written);
}

namespace {

std::string_view type_name(toml::node_type type) {
    switch (type) {
    case toml::node_type::table:
        return "table";
    case toml::node_type::array:
        return "array";
    case toml::node_type::string:
        return "string";
    case toml::node_type::integer:
        return "integer";
    case toml::node_type::floating_point:
        return "float";
    case toml::node_type::boolean:
        return "boolean";
    case toml::node_type::date:
        return "date";
    case toml::node_type::time:
        return "time";
    case toml::node_type::date_time:
        return "date-time";
    case toml::node_type::none:
        break;
    }
    return "nothing";
}

} // namespace

[[noreturn]] void fail_type(const Field& field, std::string_view expected) {
    fail(field, fmt::format("expected {}, found {}", expected, type_name(field.node.type())));
}

std::string suggest_name(std::string_view name, const std::vector<std::string>& known) {
    const std::string closest = closest_name(name, known);
    if (!closest.empty()) {
        return fmt::format("did you mean \"{}\"?", closest);
    }
    return fmt::format("known: {}", known.empty() ? "none" : join_names(known));
}

// ---- typed readers ----

const toml::table& read_table(const Field& field) {
    const auto* table = field.node.as_table();
    if (table == nullptr) {
        fail_type(field, "a table");
    }
    return *table;
}

const toml::array& read_array(const Field& field, std::string_view expected) {
    const auto* array = field.node.as_array();
    if (array == nullptr) {
        fail_type(field, expected);
    }
    return *array;
}

const std::string& read_string(const Field& field, std::string_view expected) {
    const auto* value = field.node.as_string();
    if (value == nullptr) {
        fail_type(field, expected);
    }
    return value->get();
}

std::string read_non_empty_string(const Field& field, std::string_view example) {
    const std::string& value = read_string(field);
    if (value.empty()) {
        fail(field, fmt::format("must not be empty, use a value such as {}", example));
    }
    return value;
}

bool read_bool(const Field& field) {
    const auto* value = field.node.as_boolean();
    if (value == nullptr) {
        fail_type(field, "a boolean (true or false)");
    }
    return value->get();
}

std::int64_t read_integer(const Field& field) {
    const auto* value = field.node.as_integer();
    if (value == nullptr) {
        fail_type(field, "an integer");
    }
    return value->get();
}

double read_number(const Field& field) {
    if (const auto* integer = field.node.as_integer()) {
        return static_cast<double>(integer->get());
    }
    if (const auto* floating = field.node.as_floating_point()) {
        return floating->get();
    }
    fail_type(field, "a number");
}

Seconds read_duration(const Field& field, ZeroDuration zero) {
    const std::string& text = read_string(field, "a duration string such as \"30m\"");
    const auto duration = parse_duration(text);
    if (!duration) {
        fail(field, duration.error().message);
    }
    if (zero == ZeroDuration::rejected && *duration == Seconds::zero()) {
        fail(field, fmt::format("invalid duration \"{}\": use a duration greater than zero, "
                                "such as 30m",
                                text));
    }
    return *duration;
}

std::vector<std::string> read_strings(const Field& field) {
    return read_each(field, "an array of strings",
                     [](const Field& element) { return read_string(element); });
}

std::vector<Entry> entries_in_file_order(const toml::table& table) {
    std::vector<Entry> entries;
    for (const auto& [key, node] : table) {
        entries.emplace_back(&key, &node);
    }
    std::stable_sort(entries.begin(), entries.end(), [](const Entry& left, const Entry& right) {
        return left.first->source().begin < right.first->source().begin;
    });
    return entries;
}

std::map<std::string, std::string> read_string_table(const Field& field, KeyCheck check_key) {
    std::map<std::string, std::string> values;
    for (const auto& [key, node] : entries_in_file_order(read_table(field))) {
        const Field value{*node, append_key(field.key_path, key->str()), field.source};
        const std::string problem = check_key(key->str());
        if (!problem.empty()) {
            fail_at(field.source, key->source(), value.key_path, problem);
        }
        values.emplace(key->str(), read_string(value));
    }
    return values;
}

std::string env_key_problem(std::string_view key) {
    if (key.empty() || key.find('=') != std::string_view::npos) {
        return fmt::format("invalid environment variable name \"{}\": use a non-empty name "
                           "without '='",
                           key);
    }
    return {};
}

} // namespace jitbox::config_detail
