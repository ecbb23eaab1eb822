// Finding, reading and validating jitbox.toml. Each level of the file (top level, template,
// mount) has one table of known keys, so a new key is one line in that table plus its reader.

#include "jitbox/config/config.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <utility>

namespace jitbox {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view k_default_source_name = "<default>";

constexpr std::string_view k_default_config_text =
    R"(# The configuration jitbox uses when no jitbox.toml is found.
default_template = "scratch"

# A throwaway box for trying commands: no network, a read-only root filesystem, the
# unprivileged user nobody (65534) and small limits.
[templates.scratch]
provider = "docker"
image = "busybox:1.36"
command = ["sleep", "infinity"]
user = "65534:65534"
network = "none"
read_only = true
cap_add = []
cpus = 1
memory = "256MiB"
pids_limit = 64
ttl = "30m"
max_ttl = "4h"
)";

// dockerd rejects a memory limit below 6 MiB (linuxMinMemory in moby's daemon/daemon_unix.go,
// where older releases used 4 MiB).
constexpr std::int64_t k_min_memory_bytes = 6 * 1024 * 1024;
constexpr double k_max_cpus = 1024;
constexpr std::size_t k_max_template_name_length = 63;
constexpr std::string_view k_reserved_label_prefix = "io.jitbox.";
constexpr std::array<std::string_view, 1> k_providers{"docker"};
constexpr std::array<NetworkMode, 3> k_network_modes{NetworkMode::none, NetworkMode::isolated,
                                                     NetworkMode::bridge};

// Thrown by the readers below and caught in parse_config, so the first problem found ends
// parsing with one message. It never leaves this file.
struct InvalidConfig {
    std::string message;
};

struct SourceInfo {
    std::string name;  // FILE in messages: the path as given, or "<default>"
    fs::path base_dir; // relative mount sources are resolved against this folder
};

// A value in the file with its dotted key path, such as `templates.db.ttl`.
struct Field {
    const toml::node& node;
    std::string key_path;
    const SourceInfo& source;
};

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

bool is_bare_key(std::string_view key) {
    return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
    });
}

// Appends `key` to a dotted key path, quoting it as TOML does when it is not a bare key.
std::string append_key(std::string_view path, std::string_view key) {
    const std::string written = is_bare_key(key) ? std::string(key) : fmt::format("\"{}\"", key);
    return path.empty() ? written : fmt::format("{}.{}", path, written);
}

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

[[noreturn]] void fail_type(const Field& field, std::string_view expected) {
    fail(field, fmt::format("expected {}, found {}", expected, type_name(field.node.type())));
}

template <typename Names>
std::string join_names(const Names& names) {
    std::string joined;
    for (const auto& name : names) {
        joined += joined.empty() ? "" : ", ";
        joined += name;
    }
    return joined;
}

// Returns `did you mean "x"?` for a likely typo of one of `known`, else `known: a, b`.
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

const std::string& read_string(const Field& field, std::string_view expected = "a string") {
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

enum class ZeroDuration { allowed, rejected };

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

std::vector<std::string> read_strings(const Field& field) {
    return read_each(field, "an array of strings",
                     [](const Field& element) { return read_string(element); });
}

using Entry = std::pair<const toml::key*, const toml::node*>;

// toml::table orders keys by name. Reading them in file order makes the first error reported
// the first one in the file.
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

using KeyCheck = std::string (*)(std::string_view key); // returns the problem, or empty

// Reads a table whose values are all strings, checking each key with `check_key`.
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

// ---- key tables ----

template <typename Target>
struct KeyRule {
    std::string_view key;
    void (*read)(const Field& field, Target& target);
};

// Reads every key of the table in `field` with the rule of the same name. A key without a rule
// is an error that suggests the closest known key.
template <typename Target, std::size_t N>
void read_keys(const Field& field, const std::array<KeyRule<Target>, N>& rules, Target& target) {
    for (const auto& [key, node] : entries_in_file_order(read_table(field))) {
        const Field value{*node, append_key(field.key_path, key->str()), field.source};
        const auto rule = std::find_if(rules.begin(), rules.end(), [&](const auto& candidate) {
            return candidate.key == key->str();
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

// ---- template values ----

std::string read_provider(const Field& field) {
    const std::string& name = read_string(field);
    if (std::find(k_providers.begin(), k_providers.end(), name) == k_providers.end()) {
        fail(field, fmt::format("unsupported provider \"{}\" (supported: {})", name,
                                join_names(k_providers)));
    }
    return name;
}

std::string read_image(const Field& field) {
    const std::string image = read_non_empty_string(field, "\"postgres:16\"");
    const auto space = std::find_if(image.begin(), image.end(), [](char c) {
        return std::isspace(static_cast<unsigned char>(c)) != 0;
    });
    if (space != image.end()) {
        fail(field, fmt::format("invalid image \"{}\": an image reference has no spaces, such as "
                                "\"postgres:16\"",
                                image));
    }
    return image;
}

std::string read_workdir(const Field& field) {
    const std::string& path = read_string(field);
    if (path.empty() || path.front() != '/') {
        fail(field, fmt::format("invalid workdir \"{}\": use an absolute path, such as \"/srv\"",
                                path));
    }
    return path;
}

std::string env_key_problem(std::string_view key) {
    if (key.empty() || key.find('=') != std::string_view::npos) {
        return fmt::format("invalid environment variable name \"{}\": use a non-empty name "
                           "without '='",
                           key);
    }
    return {};
}

std::string label_key_problem(std::string_view key) {
    if (key.empty()) {
        return "a label key must not be empty";
    }
    if (key.substr(0, k_reserved_label_prefix.size()) == k_reserved_label_prefix) {
        return fmt::format("label \"{}\" is reserved: keys starting with \"{}\" are set by "
                           "jitbox itself, choose another key",
                           key, k_reserved_label_prefix);
    }
    return {};
}

double read_cpus(const Field& field) {
    const double cpus = read_number(field);
    // Written as a negation, so NaN fails too.
    if (!(cpus > 0 && cpus <= k_max_cpus)) {
        fail(field, fmt::format("invalid cpus {}: use a number greater than 0 and at most {}, "
                                "such as 1.5",
                                cpus, k_max_cpus));
    }
    return cpus;
}

std::int64_t read_memory(const Field& field) {
    std::int64_t bytes = 0;
    if (const auto* integer = field.node.as_integer()) {
        bytes = integer->get();
    } else if (const auto* text = field.node.as_string()) {
        const auto size = parse_size(text->get());
        if (!size) {
            fail(field, size.error().message);
        }
        bytes = *size;
    } else {
        fail_type(field, "a size such as \"512MiB\" or an integer number of bytes");
    }
    if (bytes < k_min_memory_bytes) {
        fail(field, fmt::format("memory of {} bytes is below the minimum of 6MiB ({} bytes) that "
                                "the Docker engine accepts",
                                bytes, k_min_memory_bytes));
    }
    return bytes;
}

std::int64_t read_pids_limit(const Field& field) {
    const std::int64_t limit = read_integer(field);
    if (limit < 1) {
        fail(field, fmt::format("invalid pids_limit {}: use an integer of at least 1, such as 256",
                                limit));
    }
    return limit;
}

NetworkMode read_network(const Field& field) {
    const std::string& name = read_string(field);
    for (const NetworkMode mode : k_network_modes) {
        if (network_mode_name(mode) == name) {
            return mode;
        }
    }
    fail(field, fmt::format("unknown network \"{}\": use \"none\", \"isolated\" or \"bridge\"",
                            name));
}

PortSpec read_port(const Field& field) {
    const auto port = parse_port(read_string(field));
    if (!port) {
        fail(field, port.error().message);
    }
    return *port;
}

std::string read_user(const Field& field) {
    return read_non_empty_string(field, "\"999:999\"");
}

std::vector<PortSpec> read_ports(const Field& field) {
    return read_each(field, "an array of strings", read_port);
}

std::map<std::string, std::string> read_labels(const Field& field) {
    return read_string_table(field, label_key_problem);
}

std::string read_capability(const Field& field) {
    std::string_view name = read_string(field);
    if (name.substr(0, 4) == "CAP_") {
        name.remove_prefix(4);
    }
    const bool valid = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    });
    if (!valid) {
        fail(field, fmt::format("invalid capability \"{}\": use an upper-case Linux capability "
                                "name, such as NET_ADMIN",
                                read_string(field)));
    }
    return std::string(name);
}

// Removes a trailing separator that lexically_normal keeps ("/a/b/" stays "/a/b/").
fs::path without_trailing_separator(fs::path path) {
    if (!path.has_filename() && path != path.root_path()) {
        return path.parent_path();
    }
    return path;
}

// ---- mounts ----

void read_mount_source(const Field& field, Mount& mount) {
    const std::string source = read_non_empty_string(field, "\"./fixtures\"");
    if (source.front() == '~') {
        fail(field, fmt::format("invalid mount source \"{}\": '~' is not expanded, use an "
                                "absolute path or one relative to the config file's folder",
                                source));
    }
    mount.source = without_trailing_separator((field.source.base_dir / source).lexically_normal());
}

void read_mount_target(const Field& field, Mount& mount) {
    const std::string& target = read_string(field);
    const fs::path normal = without_trailing_separator(fs::path(target).lexically_normal());
    if (target.empty() || target.front() != '/' || normal == normal.root_path()) {
        fail(field, fmt::format("invalid mount target \"{}\": use an absolute path below /, such "
                                "as \"/fixtures\"",
                                target));
    }
    mount.target = normal.generic_string();
}

void read_mount_writable(const Field& field, Mount& mount) {
    mount.writable = read_bool(field);
}

constexpr std::array<KeyRule<Mount>, 3> k_mount_keys{{
    {"source", read_mount_source},
    {"target", read_mount_target},
    {"writable", read_mount_writable},
}};

Mount read_mount(const Field& field) {
    Mount mount;
    read_keys(field, k_mount_keys, mount);
    const toml::table& table = read_table(field);
    for (const std::string_view key : {"source", "target"}) {
        if (!table.contains(key)) {
            fail(field, fmt::format("missing required key \"{}\", use a table such as "
                                    "{{ source = \"./fixtures\", target = \"/fixtures\" }}",
                                    key));
        }
    }
    return mount;
}

std::vector<Mount> read_mounts(const Field& field) {
    return read_each(field, "an array of tables", read_mount);
}

std::vector<std::string> read_capabilities(const Field& field) {
    return read_each(field, "an array of strings", read_capability);
}

// ---- templates ----

const auto k_template_keys = std::to_array<KeyRule<Template>>({
    {"provider", [](const Field& f, Template& t) { t.provider = read_provider(f); }},
    {"image", [](const Field& f, Template& t) { t.image = read_image(f); }},
    {"command", [](const Field& f, Template& t) { t.command = read_strings(f); }},
    {"env", [](const Field& f, Template& t) { t.env = read_string_table(f, env_key_problem); }},
    {"workdir", [](const Field& f, Template& t) { t.workdir = read_workdir(f); }},
    {"user", [](const Field& f, Template& t) { t.user = read_user(f); }},
    {"cpus", [](const Field& f, Template& t) { t.cpus = read_cpus(f); }},
    {"memory", [](const Field& f, Template& t) { t.memory_bytes = read_memory(f); }},
    {"pids_limit", [](const Field& f, Template& t) { t.pids_limit = read_pids_limit(f); }},
    {"network", [](const Field& f, Template& t) { t.network = read_network(f); }},
    {"ports", [](const Field& f, Template& t) { t.ports = read_ports(f); }},
    {"read_only", [](const Field& f, Template& t) { t.read_only = read_bool(f); }},
    {"cap_add", [](const Field& f, Template& t) { t.cap_add = read_capabilities(f); }},
    {"mounts", [](const Field& f, Template& t) { t.mounts = read_mounts(f); }},
    {"labels", [](const Field& f, Template& t) { t.labels = read_labels(f); }},
    {"stop_timeout",
     [](const Field& f, Template& t) { t.stop_timeout = read_duration(f, ZeroDuration::allowed); }},
    {"ttl", [](const Field& f, Template& t) { t.ttl = read_duration(f, ZeroDuration::rejected); }},
    {"max_ttl",
     [](const Field& f, Template& t) { t.max_ttl = read_duration(f, ZeroDuration::rejected); }},
});

bool is_valid_template_name(std::string_view name) {
    const auto is_lower_or_digit = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    };
    if (name.empty() || name.size() > k_max_template_name_length ||
        !is_lower_or_digit(name.front())) {
        return false;
    }
    return std::all_of(name.begin(), name.end(), [&](char c) {
        return is_lower_or_digit(c) || c == '_' || c == '.' || c == '-';
    });
}

// Checks the rules that involve more than one key, once every key of the template is read.
void check_template(const Field& field, const toml::table& table, const Template& result) {
    if (!table.contains("image")) {
        fail(field, "missing required key \"image\", name the container image, such as "
                    "image = \"postgres:16\"");
    }
    if (!result.ports.empty() && result.network == NetworkMode::none) {
        const Field ports{*table.get("ports"), append_key(field.key_path, "ports"), field.source};
        fail(ports, "publishing ports needs a network, set network = \"isolated\" or \"bridge\"");
    }
    if (result.ttl > result.max_ttl) {
        const bool has_ttl = table.contains("ttl");
        const bool has_max_ttl = table.contains("max_ttl");
        const char* key = has_ttl ? "ttl" : "max_ttl";
        const Field at{*table.get(key), append_key(field.key_path, key), field.source};
        fail(at, fmt::format("ttl {}{} is longer than max_ttl {}{}, lower ttl or raise max_ttl",
                             format_duration(result.ttl), has_ttl ? "" : " (the default)",
                             format_duration(result.max_ttl), has_max_ttl ? "" : " (the default)"));
    }
}

Template read_template(const toml::key& name, const Field& field) {
    if (!is_valid_template_name(name.str())) {
        fail_at(field.source, name.source(), field.key_path,
                fmt::format("invalid template name \"{}\": use 1 to 63 lower-case letters, "
                            "digits, '_', '.' or '-', starting with a letter or digit",
                            name.str()));
    }
    Template result;
    result.name = std::string(name.str());
    result.origin = format_position(field.source, field.node.source());
    read_keys(field, k_template_keys, result);
    check_template(field, read_table(field), result);
    return result;
}

// ---- top level ----

void read_templates(const Field& field, Config& config) {
    for (const auto& [name, node] : entries_in_file_order(read_table(field))) {
        const Field table{*node, append_key(field.key_path, name->str()), field.source};
        Template result = read_template(*name, table);
        config.templates.emplace(result.name, std::move(result));
    }
}

void read_default_template(const Field& field, Config& config) {
    config.default_template = read_non_empty_string(field, "\"scratch\"");
}

constexpr std::array<KeyRule<Config>, 2> k_top_level_keys{{
    {"default_template", read_default_template},
    {"templates", read_templates},
}};

void check_default_template(const Field& root, const Config& config) {
    if (config.default_template.empty() || config.templates.count(config.default_template) != 0) {
        return;
    }
    std::vector<std::string> names;
    for (const auto& [name, unused] : config.templates) {
        names.push_back(name);
    }
    const Field field{*read_table(root).get("default_template"), "default_template", root.source};
    fail(field, fmt::format("template \"{}\" is not defined ({})", config.default_template,
                            suggest_name(config.default_template, names)));
}

Config read_config(const toml::table& root, const SourceInfo& source) {
    Config config;
    const Field field{root, "", source};
    read_keys(field, k_top_level_keys, config);
    check_default_template(field, config);
    return config;
}

SourceInfo make_source_info(const fs::path& path) {
    SourceInfo source;
    source.name = path.empty() ? std::string(k_default_source_name) : path.string();
    std::error_code error;
    const fs::path absolute = fs::absolute(path.empty() ? fs::path(".") : path, error);
    source.base_dir = (error ? path : absolute).parent_path();
    return source;
}

std::string_view without_byte_order_mark(std::string_view text) {
    constexpr std::string_view k_utf8_bom = "\xEF\xBB\xBF";
    if (text.substr(0, k_utf8_bom.size()) == k_utf8_bom) {
        text.remove_prefix(k_utf8_bom.size());
    }
    return text;
}

// ---- finding and reading the file ----

Result<fs::path> check_named_file(const fs::path& path, std::string_view named_by) {
    std::error_code error;
    const fs::file_status status = fs::status(path, error);
    if (status.type() == fs::file_type::not_found) {
        return make_failure(ExitCode::usage, "config file \"{}\" not found (check {})",
                            path.string(), named_by);
    }
    if (error) {
        return make_failure(ExitCode::usage, "failed to access config file \"{}\": {} (check {})",
                            path.string(), error.message(), named_by);
    }
    if (fs::is_directory(status)) {
        return make_failure(ExitCode::usage,
                            "config file \"{}\" is a folder, not a file (check {})", path.string(),
                            named_by);
    }
    return path;
}

// A jitbox.toml found by searching upwards may sit in a shared folder such as /tmp, so one
// owned by another user (root excepted) is rejected unless named explicitly.
Result<fs::path> check_found_file_owner(const fs::path& path) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) {
        return make_failure(ExitCode::usage, "failed to access config file \"{}\": {}",
                            path.string(), std::strerror(errno));
    }
    if (info.st_uid != ::geteuid() && info.st_uid != 0) {
        return make_failure(ExitCode::usage,
                            "config file \"{}\" is owned by another user (uid {}), pass it with "
                            "--config to use it anyway",
                            path.string(), info.st_uid);
    }
    return path;
}

Result<fs::path> search_upwards(const fs::path& working_dir) {
    std::error_code error;
    fs::path folder = fs::absolute(working_dir.empty() ? fs::path(".") : working_dir, error);
    if (error) {
        return make_failure(ExitCode::usage, "failed to resolve folder \"{}\": {}",
                            working_dir.string(), error.message());
    }
    folder = without_trailing_separator(folder.lexically_normal());
    while (true) {
        const fs::path candidate = folder / k_config_file_name;
        if (fs::is_regular_file(candidate, error)) {
            return check_found_file_owner(candidate);
        }
        if (folder == folder.parent_path()) {
            return fs::path();
        }
        folder = folder.parent_path();
    }
}

Result<std::string> read_file(const fs::path& path) {
    const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                                &std::fclose);
    if (!file) {
        return make_failure(ExitCode::usage, "failed to read config file \"{}\": {}",
                            path.string(), std::strerror(errno));
    }
    std::string text;
    std::array<char, 64 * 1024> buffer{};
    std::size_t count = 0;
    while ((count = std::fread(buffer.data(), 1, buffer.size(), file.get())) > 0) {
        text.append(buffer.data(), count);
    }
    if (std::ferror(file.get()) != 0) {
        return make_failure(ExitCode::usage, "failed to read config file \"{}\": {}",
                            path.string(), std::strerror(errno));
    }
    return text;
}

} // namespace

Result<fs::path> find_config(const ConfigRequest& request) {
    if (request.explicit_path) {
        return check_named_file(*request.explicit_path, "--config");
    }
    if (request.env_path && !request.env_path->empty()) {
        return check_named_file(*request.env_path, "JITBOX_CONFIG");
    }
    return search_upwards(request.working_dir);
}

Result<Config> load_config(const ConfigRequest& request) {
    const auto path = find_config(request);
    if (!path) {
        return path.error();
    }
    if (path->empty()) {
        return default_config();
    }
    const auto text = read_file(*path);
    if (!text) {
        return text.error();
    }
    return parse_config(*text, *path);
}

Result<Config> parse_config(std::string_view text, const fs::path& path) {
    const SourceInfo source = make_source_info(path);
    try {
        const toml::table root = toml::parse(without_byte_order_mark(text), source.name);
        Config config = read_config(root, source);
        config.path = path;
        return config;
    } catch (const toml::parse_error& error) {
        std::string description(error.description());
        std::replace(description.begin(), description.end(), '\n', ' ');
        return make_failure(ExitCode::usage, "{}: invalid TOML: {}",
                            format_position(source, error.source()), description);
    } catch (const InvalidConfig& error) {
        return Failure{ExitCode::usage, error.message};
    }
}

Config default_config() {
    auto config = parse_config(k_default_config_text, fs::path());
    if (!config) {
        throw Error(ExitCode::internal, "the embedded default configuration is invalid: " +
                                            config.error().message);
    }
    return std::move(config).value();
}

std::string_view default_config_text() {
    return k_default_config_text;
}

} // namespace jitbox
