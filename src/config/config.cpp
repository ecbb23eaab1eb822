// Finding, reading and validating jitbox.toml. Each level of the file (top level, template,
// mount) has one table of known keys, so a new key is one line in that table plus its reader.
// The policy keys are read in policy_keys.cpp and `[guardrails]` in guardrail_keys.cpp.

#include "jitbox/config/config.hpp"

#include "config_tree.hpp"
#include "guardrail_keys.hpp"
#include "policy_keys.hpp"
#include "provider_keys.hpp"
#include "toml_reader.hpp"

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
#include <limits>
#include <memory>
#include <string_view>
#include <utility>

namespace jitbox {
namespace {

using namespace config_detail;
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
constexpr std::size_t k_max_image_length = 512;
constexpr std::string_view k_reserved_label_prefix = "io.jitbox.";
constexpr std::array<NetworkMode, 4> k_network_modes{NetworkMode::none, NetworkMode::isolated,
                                                     NetworkMode::bridge, NetworkMode::host};
// The values of `pid` and `ipc` that jitbox passes on. Docker also accepts "container:NAME",
// which would tie a sandbox to a container that jitbox does not manage.
constexpr std::array<std::string_view, 2> k_pid_modes{"private", "host"};
constexpr std::array<std::string_view, 3> k_ipc_modes{"private", "none", "host"};
constexpr std::array<std::string_view, 4> k_keyring_backends{"auto", "secret-service", "kernel",
                                                             "file"};

// ---- template values ----

std::string read_provider(const Field& field) {
    const std::string& name = read_string(field);
    if (std::find(k_providers.begin(), k_providers.end(), name) == k_providers.end()) {
        fail(field, fmt::format("unsupported provider \"{}\" (supported: {})", name,
                                join_names(k_providers)));
    }
    return name;
}

bool is_ascii_digit(char c) {
    return c >= '0' && c <= '9';
}

bool is_ascii_lower_alnum(char c) {
    return (c >= 'a' && c <= 'z') || is_ascii_digit(c);
}

bool is_ascii_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool is_ascii_alnum(char c) {
    return is_ascii_alpha(c) || is_ascii_digit(c);
}

bool is_hex_digit(char c) {
    return is_ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// path_component := [a-z0-9]+ (separator [a-z0-9]+)*, where separator := "." | "_" | "__" | "-"+
bool is_path_component(std::string_view text) {
    std::size_t i = 0;
    while (true) {
        const std::size_t run_start = i;
        while (i < text.size() && is_ascii_lower_alnum(text[i])) {
            ++i;
        }
        if (i == run_start) {
            return false;
        }
        if (i == text.size()) {
            return true;
        }
        const std::size_t separator_start = i;
        while (i < text.size() && !is_ascii_lower_alnum(text[i])) {
            ++i;
        }
        const std::string_view separator = text.substr(separator_start, i - separator_start);
        const bool all_dashes = separator.find_first_not_of('-') == std::string_view::npos;
        if (separator != "." && separator != "_" && separator != "__" && !all_dashes) {
            return false;
        }
    }
}

// domain_part := [A-Za-z0-9] ([A-Za-z0-9-]* [A-Za-z0-9])?
bool is_domain_part(std::string_view text) {
    if (text.empty() || !is_ascii_alnum(text.front()) || !is_ascii_alnum(text.back())) {
        return false;
    }
    return std::all_of(text.begin(), text.end(),
                       [](char c) { return is_ascii_alnum(c) || c == '-'; });
}

// domain := domain_part ("." domain_part)* [":" port], where port := [0-9]+
bool is_domain(std::string_view text) {
    const std::size_t colon = text.find(':');
    if (colon != std::string_view::npos) {
        const std::string_view port = text.substr(colon + 1);
        if (port.empty() || !std::all_of(port.begin(), port.end(), is_ascii_digit)) {
            return false;
        }
        text = text.substr(0, colon);
    }
    while (true) {
        const std::size_t dot = text.find('.');
        if (!is_domain_part(text.substr(0, dot))) {
            return false;
        }
        if (dot == std::string_view::npos) {
            return true;
        }
        text = text.substr(dot + 1);
    }
}

// tag := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
bool is_tag(std::string_view text) {
    if (text.empty() || text.size() > 128 || text.front() == '.' || text.front() == '-') {
        return false;
    }
    return std::all_of(text.begin(), text.end(), [](char c) {
        return is_ascii_alnum(c) || c == '_' || c == '.' || c == '-';
    });
}

// digest := algorithm ":" [0-9a-fA-F]{32,}, where
// algorithm := [A-Za-z][A-Za-z0-9]* ([-_+.] [A-Za-z][A-Za-z0-9]*)*
bool is_digest(std::string_view text) {
    const std::size_t colon = text.find(':');
    if (colon == std::string_view::npos) {
        return false;
    }
    const std::string_view hex = text.substr(colon + 1);
    if (hex.size() < 32 || !std::all_of(hex.begin(), hex.end(), is_hex_digit)) {
        return false;
    }
    const std::string_view algorithm = text.substr(0, colon);
    bool component_start = true;
    for (const char c : algorithm) {
        if (component_start) {
            if (!is_ascii_alpha(c)) {
                return false;
            }
            component_start = false;
        } else if (c == '-' || c == '_' || c == '+' || c == '.') {
            component_start = true;
        } else if (!is_ascii_alnum(c)) {
            return false;
        }
    }
    return !component_start;
}

// Returns whether `text` matches Docker's image reference grammar:
//   reference := [domain "/"] path_component ("/" path_component)* [":" tag] ["@" digest]
// The reference goes into Engine API paths and queries, so nothing outside the grammar is
// accepted.
bool is_image_reference(std::string_view text) {
    // '@' occurs only as the digest separator.
    const std::size_t digest_separator = text.find('@');
    if (digest_separator != std::string_view::npos) {
        if (!is_digest(text.substr(digest_separator + 1))) {
            return false;
        }
        text = text.substr(0, digest_separator);
    }

    // Before the digest, ':' starts either the tag or the domain's port. A port is always
    // followed by '/', so a ':' after the last '/' starts the tag.
    const std::size_t last_colon = text.rfind(':');
    const std::size_t last_slash = text.rfind('/');
    if (last_colon != std::string_view::npos &&
        (last_slash == std::string_view::npos || last_colon > last_slash)) {
        if (!is_tag(text.substr(last_colon + 1))) {
            return false;
        }
        text = text.substr(0, last_colon);
    }

    // The first component is a domain or a path component, and a domain needs a path after it.
    std::size_t slash = text.find('/');
    const std::string_view first = text.substr(0, slash);
    if (!is_path_component(first) && (slash == std::string_view::npos || !is_domain(first))) {
        return false;
    }
    while (slash != std::string_view::npos) {
        text = text.substr(slash + 1);
        slash = text.find('/');
        if (!is_path_component(text.substr(0, slash))) {
            return false;
        }
    }
    return true;
}

std::string read_image(const Field& field) {
    const std::string image = read_non_empty_string(field, "\"postgres:16\"");
    if (image.size() > k_max_image_length || !is_image_reference(image)) {
        fail(field, fmt::format("invalid image \"{}\": use a Docker image reference of lower-case "
                                "path components with an optional registry, tag and digest, such "
                                "as \"postgres:16\" or \"registry.example.com:5000/team/app:1.4\"",
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

// One program, so that "/bin/bash -l" is caught here instead of failing in the container as a
// file that does not exist.
std::string read_shell(const Field& field) {
    const std::string& path = read_string(field);
    const bool has_space_or_control =
        std::any_of(path.begin(), path.end(), [](char c) {
            return static_cast<unsigned char>(c) <= ' ' || c == '\x7f';
        });
    if (path.empty() || path.front() != '/' || has_space_or_control) {
        fail(field, fmt::format("invalid shell \"{}\": use the absolute path of one program, "
                                "without arguments, such as \"/bin/bash\"",
                                path));
    }
    return path;
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

} // namespace

double config_detail::read_cpus(const Field& field) {
    const double cpus = read_number(field);
    // Written as a negation, so NaN fails too.
    if (!(cpus > 0 && cpus <= k_max_cpus)) {
        fail(field, fmt::format("invalid cpus {}: use a number greater than 0 and at most {}, "
                                "such as 1.5",
                                cpus, k_max_cpus));
    }
    return cpus;
}

std::int64_t config_detail::read_memory(const Field& field) {
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

std::string config_detail::read_capability(const Field& field) {
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

namespace {

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
    fail(field, fmt::format("unknown network \"{}\": use \"none\", \"isolated\", \"bridge\" or "
                            "\"host\"",
                            name));
}

template <std::size_t N>
std::string read_namespace_mode(const Field& field, const std::array<std::string_view, N>& modes,
                                std::string_view key) {
    const std::string& name = read_string(field);
    if (std::find(modes.begin(), modes.end(), name) == modes.end()) {
        fail(field,
             fmt::format("unknown {} namespace \"{}\": use {}", key, name, join_names(modes)));
    }
    // "private" is what the engine does when the key is left out, except that Docker's
    // default IPC mode may be "shareable", so only ipc sends it.
    return key == "pid" && name == "private" ? std::string() : name;
}

DeviceMapping read_device(const Field& field) {
    auto device = parse_device(read_string(field));
    if (!device) {
        fail(field, device.error().message);
    }
    device->origin = format_position(field.source, field.node.source());
    return *device;
}

std::vector<DeviceMapping> read_devices(const Field& field) {
    return read_each(field, "an array of strings such as [\"/dev/fuse\"]", read_device);
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
    mount.origin = format_position(field.source, field.node.source());
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

void read_mount_allow_sensitive(const Field& field, Mount& mount) {
    mount.allow_sensitive = read_bool(field);
}

constexpr std::array<KeyRule<Mount>, 4> k_mount_keys{{
    {"source", read_mount_source},
    {"target", read_mount_target},
    {"writable", read_mount_writable},
    {"allow_sensitive", read_mount_allow_sensitive},
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

// Like cap_add, and "ALL" too, which drops every capability.
std::vector<std::string> read_dropped_capabilities(const Field& field) {
    return read_each(field, "an array of strings such as [\"ALL\"]", [](const Field& element) {
        return read_string(element) == "ALL" ? std::string("ALL") : read_capability(element);
    });
}

// ---- health checks ----

constexpr std::array<std::string_view, 3> k_health_test_kinds{"CMD", "CMD-SHELL", "NONE"};

// `test` is Docker's array form, or a string that is a shell command, as in a Compose file.
std::vector<std::string> read_health_test(const Field& field) {
    if (const auto* command = field.node.as_string()) {
        if (command->get().empty()) {
            fail(field, "the health check command is empty; give a shell command, such as "
                        "\"pg_isready -U postgres\"");
        }
        return {"CMD-SHELL", command->get()};
    }
    if (!field.node.is_array()) {
        fail_type(field, "an array of strings such as [\"CMD\", \"pg_isready\"], or a shell "
                         "command as a string");
    }
    std::vector<std::string> test = read_strings(field);
    const std::string kind = test.empty() ? "" : test.front();
    if (std::find(k_health_test_kinds.begin(), k_health_test_kinds.end(), kind) ==
        k_health_test_kinds.end()) {
        fail(field, fmt::format("invalid health check test: the first element is \"{}\", use "
                                "\"CMD\", \"CMD-SHELL\" or \"NONE\", such as [\"CMD\", "
                                "\"pg_isready\"]",
                                kind));
    }
    const bool valid = (kind == "NONE" && test.size() == 1) ||
                       (kind == "CMD" && test.size() >= 2 && !test[1].empty()) ||
                       (kind == "CMD-SHELL" && test.size() == 2 && !test[1].empty());
    if (!valid) {
        fail(field, fmt::format("invalid health check test with {} elements: \"NONE\" stands "
                                "alone, \"CMD\" needs a program and its arguments, and "
                                "\"CMD-SHELL\" needs exactly one command string",
                                test.size()));
    }
    return test;
}

int read_health_retries(const Field& field) {
    const std::int64_t retries = read_integer(field);
    if (retries < 0 || retries > std::numeric_limits<int>::max()) {
        fail(field, fmt::format("invalid retries {}: use a whole number of at least 0, such as "
                                "3",
                                retries));
    }
    return static_cast<int>(retries);
}

const auto k_health_check_keys = std::to_array<KeyRule<HealthCheck>>({
    {"test", [](const Field& f, HealthCheck& h) { h.test = read_health_test(f); }},
    {"interval",
     [](const Field& f, HealthCheck& h) { h.interval = read_duration(f, ZeroDuration::rejected); }},
    {"timeout",
     [](const Field& f, HealthCheck& h) { h.timeout = read_duration(f, ZeroDuration::rejected); }},
    {"start_period",
     [](const Field& f, HealthCheck& h) {
         h.start_period = read_duration(f, ZeroDuration::rejected);
     }},
    {"retries", [](const Field& f, HealthCheck& h) { h.retries = read_health_retries(f); }},
});

HealthCheck read_healthcheck(const Field& field) {
    HealthCheck check;
    read_keys(field, k_health_check_keys, check);
    if (!read_table(field).contains("test")) {
        fail(field, "missing required key \"test\", use a table such as "
                    "{ test = [\"CMD\", \"pg_isready\"], interval = \"2s\" }");
    }
    return check;
}

// ---- templates ----

const auto k_template_keys = std::to_array<KeyRule<Template>>({
    {"provider", [](const Field& f, Template& t) { t.provider = read_provider(f); }},
    {"image", [](const Field& f, Template& t) { t.image = read_image(f); }},
    {"command", [](const Field& f, Template& t) { t.command = read_strings(f); }},
    {"env", [](const Field& f, Template& t) { t.env = read_string_table(f, env_key_problem); }},
    {"workdir", [](const Field& f, Template& t) { t.workdir = read_workdir(f); }},
    {"user", [](const Field& f, Template& t) { t.user = read_user(f); }},
    {"shell", [](const Field& f, Template& t) { t.shell = read_shell(f); }},
    {"cpus", [](const Field& f, Template& t) { t.cpus = read_cpus(f); }},
    {"memory", [](const Field& f, Template& t) { t.memory_bytes = read_memory(f); }},
    {"pids_limit", [](const Field& f, Template& t) { t.pids_limit = read_pids_limit(f); }},
    {"network", [](const Field& f, Template& t) { t.network = read_network(f); }},
    {"ports", [](const Field& f, Template& t) { t.ports = read_ports(f); }},
    {"read_only", [](const Field& f, Template& t) { t.read_only = read_bool(f); }},
    {"cap_add", [](const Field& f, Template& t) { t.cap_add = read_capabilities(f); }},
    {"cap_drop", [](const Field& f, Template& t) { t.cap_drop = read_dropped_capabilities(f); }},
    {"privileged", [](const Field& f, Template& t) { t.privileged = read_bool(f); }},
    {"pid",
     [](const Field& f, Template& t) { t.pid = read_namespace_mode(f, k_pid_modes, "pid"); }},
    {"ipc",
     [](const Field& f, Template& t) { t.ipc = read_namespace_mode(f, k_ipc_modes, "ipc"); }},
    {"devices", [](const Field& f, Template& t) { t.devices = read_devices(f); }},
    {"mounts", [](const Field& f, Template& t) { t.mounts = read_mounts(f); }},
    {"labels", [](const Field& f, Template& t) { t.labels = read_labels(f); }},
    {"secrets", [](const Field& f, Template& t) { t.secrets = read_generated_secrets(f); }},
    {"stop_timeout",
     [](const Field& f, Template& t) { t.stop_timeout = read_duration(f, ZeroDuration::allowed); }},
    {"healthcheck", [](const Field& f, Template& t) { t.healthcheck = read_healthcheck(f); }},
    {"ttl", [](const Field& f, Template& t) { t.ttl = read_duration(f, ZeroDuration::rejected); }},
    {"max_ttl",
     [](const Field& f, Template& t) { t.max_ttl = read_duration(f, ZeroDuration::rejected); }},
    {"region", [](const Field& f, Template& t) { read_aws_region(f, t.aws); }},
    {"endpoint_url", [](const Field& f, Template& t) { read_aws_endpoint_url(f, t.aws); }},
    {"role_arn", [](const Field& f, Template& t) { read_aws_role_arn(f, t.aws); }},
    {"session_policy", [](const Field& f, Template& t) { read_aws_session_policy(f, t.aws); }},
    {"mfa_serial", [](const Field& f, Template& t) { read_aws_mfa_serial(f, t.aws); }},
    {"image_id", [](const Field& f, Template& t) { read_aws_image_id(f, t.aws); }},
    {"instance_type", [](const Field& f, Template& t) { read_aws_instance_type(f, t.aws); }},
    {"subnet_id", [](const Field& f, Template& t) { read_aws_subnet_id(f, t.aws); }},
    {"security_group_ids",
     [](const Field& f, Template& t) { read_aws_security_group_ids(f, t.aws); }},
    {"key_name", [](const Field& f, Template& t) { read_aws_key_name(f, t.aws); }},
    {"root_volume_gib", [](const Field& f, Template& t) { read_aws_root_volume_gib(f, t.aws); }},
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
    check_provider_keys(field, result);
    for (const GeneratedSecret& secret : result.secrets) {
        if (result.env.count(secret.name) != 0) {
            const Field secrets{*table.get("secrets"), append_key(field.key_path, "secrets"),
                                field.source};
            const Field at{*read_table(secrets).get(secret.name),
                           append_key(secrets.key_path, secret.name), field.source};
            fail(at, fmt::format("\"{}\" is also set in env, remove it from env or from "
                                 "secrets",
                                 secret.name));
        }
    }
    if (!result.ports.empty() && result.network == NetworkMode::none) {
        const Field ports{*table.get("ports"), append_key(field.key_path, "ports"), field.source};
        fail(ports, "publishing ports needs a network, set network = \"isolated\" or \"bridge\"");
    }
    if (!result.ports.empty() && result.network == NetworkMode::host) {
        // The engine ignores port bindings on the host's network, where every port the
        // container opens is already a host port.
        const Field ports{*table.get("ports"), append_key(field.key_path, "ports"), field.source};
        fail(ports, "network = \"host\" publishes every port already, remove ports or use "
                    "network = \"isolated\" or \"bridge\"");
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

void read_keyring_backend(const Field& field, Config& config) {
    const std::string& name = read_string(field);
    if (std::find(k_keyring_backends.begin(), k_keyring_backends.end(), name) ==
        k_keyring_backends.end()) {
        fail(field, fmt::format("unknown keyring backend \"{}\": use {}", name,
                                join_names(k_keyring_backends)));
    }
    config.keyring_backend = name;
}

constexpr std::array<KeyRule<Config>, 1> k_keyring_keys{{
    {"backend", read_keyring_backend},
}};

void read_keyring(const Field& field, Config& config) {
    read_keys(field, k_keyring_keys, config);
}

constexpr std::array<KeyRule<Config>, 7> k_top_level_keys{{
    {"default_template", read_default_template},
    {"guardrails", read_guardrails},
    {"keyring", read_keyring},
    {"templates", read_templates},
    {"policy", read_policy_settings},
    {"roles", read_roles},
    {"deny", read_denies},
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
    check_policy_templates(field, config);
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

// Messages quote values from the file, which TOML escapes may fill with line breaks and other
// control characters. Writing those as \xNN keeps each message on one line.
std::string escape_control_characters(std::string_view text) {
    std::string escaped;
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f) {
            escaped += fmt::format("\\x{:02x}", byte);
        } else {
            escaped += c;
        }
    }
    return escaped;
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
    auto parsed = parse_config_tree(text, path);
    if (!parsed) {
        return parsed.error();
    }
    return std::move(parsed->config);
}

Result<ConfigTree> config_detail::parse_config_tree(std::string_view text, const fs::path& path) {
    const SourceInfo source = make_source_info(path);
    try {
        ConfigTree parsed{{}, toml::parse(without_byte_order_mark(text), source.name)};
        parsed.config = read_config(parsed.tree, source);
        parsed.config.path = path;
        return parsed;
    } catch (const toml::parse_error& error) {
        std::string description(error.description());
        std::replace(description.begin(), description.end(), '\n', ' ');
        return make_failure(ExitCode::usage, "{}: invalid TOML: {}",
                            format_position(source, error.source()), description);
    } catch (const InvalidConfig& error) {
        return Failure{ExitCode::usage, escape_control_characters(error.message)};
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
