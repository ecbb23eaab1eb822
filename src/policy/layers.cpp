// Loading the system and project configuration files as layers: the system file's safety
// checks, the project file's signature, the rule that project templates only narrow system
// templates, and the digest of what was loaded.

#include "jitbox/policy/layers.hpp"
#include "jitbox/util/file_descriptor.hpp"

#include "jitbox/policy/mounts.hpp"
#include "jitbox/policy/signing.hpp"
#include "jitbox/util/log.hpp"

#include "../config/config_tree.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

namespace jitbox {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view k_default_source = "<default>";

// ---- reading files ----

// The exact bytes of one configuration file and the identity of the file they came from.
struct SourceFile {
    fs::path path;
    std::string text;
    dev_t device = 0;
    ino_t inode = 0;
};

// O_NONBLOCK keeps open() from waiting for a writer when the path is a FIFO. The fstat that
// follows rejects anything but a regular file, where the flag changes nothing.
int open_for_reading(const fs::path& path) {
    return ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
}

Result<std::string> read_all(int fd, const fs::path& path) {
    std::string text;
    std::array<char, 64 * 1024> buffer{};
    while (true) {
        const ssize_t count = ::read(fd, buffer.data(), buffer.size());
        if (count < 0 && errno == EINTR) {
            continue;
        }
        if (count < 0) {
            return make_failure(ExitCode::usage, "failed to read config file \"{}\": {}",
                                path.string(), std::strerror(errno));
        }
        if (count == 0) {
            return text;
        }
        text.append(buffer.data(), static_cast<std::size_t>(count));
    }
}

std::string_view file_type_name(mode_t mode) {
    if (S_ISDIR(mode)) {
        return "a folder";
    }
    if (S_ISFIFO(mode)) {
        return "a FIFO";
    }
    if (S_ISSOCK(mode)) {
        return "a socket";
    }
    if (S_ISCHR(mode) || S_ISBLK(mode)) {
        return "a device";
    }
    return "not a regular file";
}

Result<SourceFile> read_open_file(const FileDescriptor& fd, const struct stat& info,
                                  const fs::path& path) {
    auto text = read_all(fd.get(), path);
    if (!text) {
        return text.error();
    }
    return SourceFile{path, std::move(text).value(), info.st_dev, info.st_ino};
}

// The argument to chown that gives a file to `uid`.
std::string owner_spec(uid_t uid) {
    return uid == 0 ? "root:root" : std::to_string(uid);
}

// Reads the system file, or returns nullopt when it does not exist. The owner and mode are
// checked on the open descriptor, so the file checked is the file read.
Result<std::optional<SourceFile>> read_system_file(const fs::path& path, uid_t required_owner) {
    const FileDescriptor fd(open_for_reading(path));
    if (!fd.valid() && (errno == ENOENT || errno == ENOTDIR)) {
        return std::optional<SourceFile>();
    }
    struct stat info {};
    if (!fd.valid() || ::fstat(fd.get(), &info) != 0) {
        return make_failure(ExitCode::usage, "failed to open the system policy {}: {}",
                            path.string(), std::strerror(errno));
    }
    if (!S_ISREG(info.st_mode)) {
        return make_failure(ExitCode::usage,
                            "the system policy {} is {}, replace it with a regular file or "
                            "remove it",
                            path.string(), file_type_name(info.st_mode));
    }
    if (info.st_uid != required_owner || (info.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        // Anyone who can write the system file can widen every template and role, so it is
        // rejected rather than read with a warning.
        return make_failure(ExitCode::usage,
                            "the system policy {} is owned by uid {} with mode {:04o}, but it "
                            "must be owned by uid {} and not writable by group or others (run "
                            "`chown {} {} && chmod go-w {}`)",
                            path.string(), info.st_uid, info.st_mode & 07777, required_owner,
                            owner_spec(required_owner), path.string(), path.string());
    }
    auto file = read_open_file(fd, info, path);
    if (!file) {
        return file.error();
    }
    return std::optional<SourceFile>(std::move(file).value());
}

// Rejects a project file in a folder where others may replace it: one that group or others
// may write and that lacks the sticky bit, such as a shared folder made with mode 0777. Every
// folder above the file counts, because a user who may rename one of them can replace the
// whole subtree. Both the path as named and the path with symbolic links resolved are checked.
Result<void> check_project_folders(const fs::path& path) {
    std::error_code error;
    std::vector<fs::path> files{fs::absolute(path, error).lexically_normal()};
    if (fs::path resolved = fs::weakly_canonical(path, error); !error) {
        files.push_back(resolved);
    }
    for (const fs::path& file : files) {
        for (fs::path folder = file.parent_path(); !folder.empty(); folder = folder.parent_path()) {
            struct stat info {};
            const bool shared = ::stat(folder.c_str(), &info) == 0 &&
                                (info.st_mode & (S_IWGRP | S_IWOTH)) != 0 &&
                                (info.st_mode & S_ISVTX) == 0;
            if (shared) {
                return make_failure(ExitCode::usage,
                                    "config file \"{}\" is in folder \"{}\" of mode {:04o}, "
                                    "which group or others may write and which lacks the sticky "
                                    "bit, so other users could replace the file (run `chmod go-w "
                                    "{}`, or move the file to a folder only you can write)",
                                    path.string(), folder.string(), info.st_mode & 07777,
                                    folder.string());
            }
            if (folder == folder.parent_path()) {
                break;
            }
        }
    }
    return {};
}

Result<SourceFile> read_project_file(const fs::path& path) {
    if (auto folders = check_project_folders(path); !folders) {
        return folders.error();
    }
    const FileDescriptor fd(open_for_reading(path));
    struct stat info {};
    if (!fd.valid() || ::fstat(fd.get(), &info) != 0) {
        return make_failure(ExitCode::usage, "failed to open config file \"{}\": {}",
                            path.string(), std::strerror(errno));
    }
    if (!S_ISREG(info.st_mode)) {
        return make_failure(ExitCode::usage, "config file \"{}\" is {}, name a regular file",
                            path.string(), file_type_name(info.st_mode));
    }
    if ((info.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        // As for the system file: whoever can write the project file chooses its images,
        // mounts and roles, so a file that others may change is rejected, not read.
        return make_failure(ExitCode::usage,
                            "config file \"{}\" has mode {:04o} and is writable by group or "
                            "others, so other users could change its templates and policy (run "
                            "`chmod go-w {}`)",
                            path.string(), info.st_mode & 07777, path.string());
    }
    return read_open_file(fd, info, path);
}

// ---- parsed layers ----

// One configuration file, parsed once into a Config and the TOML tree it was read from. The
// tree gives the positions of keys in messages.
struct ParsedFile {
    SourceFile source;
    Config config;
    toml::table root;
};

Result<ParsedFile> parse_file(SourceFile source) {
    auto parsed = config_detail::parse_config_tree(source.text, source.path);
    if (!parsed) {
        return parsed.error();
    }
    return ParsedFile{std::move(source), std::move(parsed->config), std::move(parsed->tree)};
}

const Policy& policy_of(const Config& config) {
    return config.policy;
}

// ---- positions and key paths ----

// A template and the TOML table it was read from.
struct TemplateSite {
    const Template& spec;
    const toml::table* table; // null when the tree has no such table
};

TemplateSite site_of(const ParsedFile& file, const Template& spec) {
    const toml::node_view node = file.root["templates"][spec.name];
    return TemplateSite{spec, node.as_table()};
}

const toml::node* find_node(const TemplateSite& site, std::string_view key,
                            std::optional<std::size_t> index = std::nullopt) {
    const toml::node* node = site.table == nullptr ? nullptr : site.table->get(key);
    if (node != nullptr && index) {
        const toml::array* array = node->as_array();
        node = array == nullptr ? nullptr : array->get(*index);
    }
    return node;
}

// Where a key's value begins, or the template's table when the key is not set.
toml::source_position begin_of(const TemplateSite& site, std::string_view key,
                               std::optional<std::size_t> index = std::nullopt) {
    const toml::node* node = find_node(site, key, index);
    if (node != nullptr) {
        return node->source().begin;
    }
    return site.table == nullptr ? toml::source_position{} : site.table->source().begin;
}

bool sets(const TemplateSite& site, std::string_view key) {
    return find_node(site, key) != nullptr;
}

// "FILE:LINE:COLUMN" of a key's value, or of the template's table when the key is not set.
std::string position_of(const TemplateSite& site, std::string_view key,
                        std::optional<std::size_t> index = std::nullopt) {
    const toml::node* node = find_node(site, key, index);
    if (node == nullptr || node->source().begin.line == 0 || node->source().path == nullptr) {
        return site.spec.origin;
    }
    const toml::source_position begin = node->source().begin;
    return fmt::format("{}:{}:{}", *node->source().path, begin.line, begin.column);
}

std::string template_key_path(const std::string& name, std::string_view key) {
    // Template names may contain '.', which TOML quotes in a dotted key.
    const std::string written =
        name.find('.') == std::string::npos ? name : fmt::format("\"{}\"", name);
    return key.empty() ? fmt::format("templates.{}", written)
                       : fmt::format("templates.{}.{}", written, key);
}

// ---- value spellings for messages ----

std::string format_port(const PortSpec& port) {
    return fmt::format("{}:{}:{}/{}", port.host_ip, port.host_port, port.container_port,
                       port.protocol);
}

std::string join(const std::vector<std::string>& names) {
    std::string joined;
    for (const std::string& name : names) {
        joined += joined.empty() ? "" : ", ";
        joined += name;
    }
    return joined.empty() ? "none" : joined;
}

// Network modes from the most to the least isolated.
int isolation_rank(NetworkMode mode) {
    switch (mode) {
    case NetworkMode::none:
        return 0;
    case NetworkMode::isolated:
        return 1;
    case NetworkMode::bridge:
        return 2;
    case NetworkMode::host:
        return 3;
    }
    return 3;
}

// ---- narrowing ----

// One way a project template widens a system template, with where it is in the project file.
struct Problem {
    toml::source_position at;
    std::string message;
};

// Collects every way a project template widens its system template, one message each.
class NarrowingCheck {
public:
    NarrowingCheck(TemplateSite project, TemplateSite system, std::vector<Problem>& problems)
        : m_project(project), m_system(system), m_problems(problems) {}

    void run() {
        check_fixed_values();
        check_durations();
        check_network();
        check_read_only();
        check_limits();
        check_capabilities();
        check_host_access();
        check_mounts();
        check_ports();
        check_aws();
    }

private:
    // Adds "PROJECT_POSITION: KEY: TEXT (SYSTEM_POSITION)".
    void report(std::string_view key, std::optional<std::size_t> index, const std::string& text) {
        const std::string key_text = index ? fmt::format("{}[{}]", key, *index) : std::string(key);
        m_problems.push_back(
            Problem{begin_of(m_project, key, index),
                    fmt::format("{}: {}: {} ({})", position_of(m_project, key, index),
                                template_key_path(m_project.spec.name, key_text), text,
                                position_of(m_system, key))});
    }

    // " (the default)" when the project template leaves `key` unset.
    std::string default_note(std::string_view key) const {
        return sets(m_project, key) ? "" : " (the default)";
    }

    void check_same(std::string_view key, const std::string& project, const std::string& system,
                    std::string_view noun) {
        if (project != system) {
            report(key, std::nullopt,
                   fmt::format("\"{}\" is not the {} \"{}\" that the system policy requires",
                               project, noun, system));
        }
    }

    void check_fixed_values() {
        check_same("image", m_project.spec.image, m_system.spec.image, "image");
        check_same("provider", m_project.spec.provider, m_system.spec.provider, "provider");
        const std::string& user = m_project.spec.user;
        if (!m_system.spec.user.empty() && user != m_system.spec.user) {
            const std::string written = user.empty() ? "the image's default user"
                                                     : fmt::format("\"{}\"", user);
            report("user", std::nullopt,
                   fmt::format("{} is not the user \"{}\" that the system policy requires",
                               written, m_system.spec.user));
        }
    }

    void check_duration(std::string_view key, Seconds project, Seconds system) {
        if (project > system) {
            report(key, std::nullopt,
                   fmt::format("{}{} is longer than the {} the system policy allows",
                               format_duration(project), default_note(key),
                               format_duration(system)));
        }
    }

    void check_durations() {
        check_duration("ttl", m_project.spec.ttl, m_system.spec.ttl);
        check_duration("max_ttl", m_project.spec.max_ttl, m_system.spec.max_ttl);
    }

    void check_network() {
        const NetworkMode project = m_project.spec.network;
        const NetworkMode system = m_system.spec.network;
        if (isolation_rank(project) > isolation_rank(system)) {
            report("network", std::nullopt,
                   fmt::format("\"{}\"{} is less isolated than the \"{}\" the system policy "
                               "allows (none < isolated < bridge < host)",
                               network_mode_name(project), default_note("network"),
                               network_mode_name(system)));
        }
    }

    void check_read_only() {
        if (m_system.spec.read_only && !m_project.spec.read_only) {
            report("read_only", std::nullopt,
                   fmt::format("false{} turns off the read-only root filesystem that the system "
                               "policy requires",
                               default_note("read_only")));
        }
    }

    template <typename T, typename Format>
    void check_limit(std::string_view key, const std::optional<T>& project,
                     const std::optional<T>& system, Format format) {
        if (!system) {
            return;
        }
        if (!project) {
            report(key, std::nullopt,
                   fmt::format("no limit is set, but the system policy sets {} to {}, set it to "
                               "that or less",
                               key, format(*system)));
        } else if (*project > *system) {
            report(key, std::nullopt,
                   fmt::format("{} is more than the {} the system policy allows",
                               format(*project), format(*system)));
        }
    }

    void check_limits() {
        const auto as_number = [](auto value) { return fmt::format("{}", value); };
        check_limit("memory", m_project.spec.memory_bytes, m_system.spec.memory_bytes, format_size);
        check_limit("cpus", m_project.spec.cpus, m_system.spec.cpus, as_number);
        check_limit("pids_limit", m_project.spec.pids_limit, m_system.spec.pids_limit, as_number);
    }

    void check_capabilities() {
        const std::vector<std::string>& allowed = m_system.spec.cap_add;
        for (std::size_t i = 0; i < m_project.spec.cap_add.size(); ++i) {
            const std::string& capability = m_project.spec.cap_add[i];
            if (std::find(allowed.begin(), allowed.end(), capability) == allowed.end()) {
                report("cap_add", i,
                       fmt::format("{} is not among the capabilities the system policy adds "
                                   "({})",
                                   capability, join(allowed)));
            }
        }
    }

    // Each key here reaches past the container into the host, so the project may keep what the
    // system template requests, or request less.
    void check_host_access() {
        const Template& project = m_project.spec;
        const Template& system = m_system.spec;
        if (project.privileged && !system.privileged) {
            report("privileged", std::nullopt,
                   "true asks for a privileged container, which the system policy does not");
        }
        if (project.pid == "host" && system.pid != "host") {
            report("pid", std::nullopt,
                   "\"host\" shares the host's PID namespace, which the system policy does not");
        }
        if (project.ipc == "host" && system.ipc != "host") {
            report("ipc", std::nullopt,
                   "\"host\" shares the host's IPC namespace, which the system policy does not");
        }
        for (const std::string& dropped : system.cap_drop) {
            if (std::find(project.cap_drop.begin(), project.cap_drop.end(), dropped) ==
                project.cap_drop.end()) {
                report("cap_drop", std::nullopt,
                       fmt::format("{} is not dropped{}, but the system policy drops it", dropped,
                                   default_note("cap_drop")));
            }
        }
        for (std::size_t i = 0; i < project.devices.size(); ++i) {
            const DeviceMapping& device = project.devices[i];
            const auto match =
                std::find_if(system.devices.begin(), system.devices.end(), [&](const auto& d) {
                    return d.host_path == device.host_path &&
                           d.container_path == device.container_path &&
                           std::all_of(
                               device.permissions.begin(), device.permissions.end(),
                               [&](char c) { return d.permissions.find(c) != std::string::npos; });
                });
            if (match == system.devices.end()) {
                report("devices", i,
                       fmt::format("device {}:{}:{} is not among the system policy's devices",
                                   device.host_path, device.container_path, device.permissions));
            }
        }
    }

    void check_mounts() {
        const std::vector<Mount>& allowed = m_system.spec.mounts;
        for (std::size_t i = 0; i < m_project.spec.mounts.size(); ++i) {
            const Mount& mount = m_project.spec.mounts[i];
            const auto match = std::find_if(allowed.begin(), allowed.end(), [&](const Mount& m) {
                return m.source == mount.source && m.target == mount.target;
            });
            if (match == allowed.end()) {
                report("mounts", i,
                       fmt::format("the mount of {} at {} is not among the system policy's "
                                   "mounts",
                                   mount.source.string(), mount.target));
            } else if (mount.writable && !match->writable) {
                report("mounts", i,
                       fmt::format("the mount at {} is writable, but the system policy mounts "
                                   "it read-only",
                                   mount.target));
            } else if (mount.allow_sensitive && !match->allow_sensitive) {
                report("mounts", i,
                       fmt::format("the mount at {} sets allow_sensitive = true, but the system "
                                   "policy's mount does not",
                                   mount.target));
            }
        }
    }

    void check_ports() {
        const std::vector<PortSpec>& allowed = m_system.spec.ports;
        for (std::size_t i = 0; i < m_project.spec.ports.size(); ++i) {
            const PortSpec& port = m_project.spec.ports[i];
            const auto match = std::find_if(allowed.begin(), allowed.end(), [&](const PortSpec& p) {
                return p.host_ip == port.host_ip && p.container_port == port.container_port &&
                       p.protocol == port.protocol &&
                       (p.host_port.empty() || p.host_port == port.host_port);
            });
            if (match == allowed.end()) {
                report("ports", i,
                       fmt::format("port {} is not among the ports the system policy publishes",
                                   format_port(port)));
            }
        }
    }

    // The AWS keys choose the account, role, network and endpoint behind a sandbox. A project
    // template keeps each as the system sets it, but may drop security groups or ask for a
    // smaller root volume.
    void check_aws() {
        const AwsSettings& project = m_project.spec.aws;
        const AwsSettings& system = m_system.spec.aws;
        check_same("region", project.region, system.region, "region");
        check_same("endpoint_url", project.endpoint_url, system.endpoint_url, "endpoint");
        check_same("role_arn", project.role_arn, system.role_arn, "role");
        check_same("session_policy", project.session_policy, system.session_policy,
                   "session policy");
        check_same("mfa_serial", project.mfa_serial, system.mfa_serial, "MFA device");
        check_same("image_id", project.image_id, system.image_id, "image");
        check_same("instance_type", project.instance_type, system.instance_type,
                   "instance type");
        check_same("subnet_id", project.subnet_id, system.subnet_id, "subnet");
        check_same("key_name", project.key_name, system.key_name, "key pair");
        const std::vector<std::string>& groups = system.security_group_ids;
        for (std::size_t i = 0; i < project.security_group_ids.size(); ++i) {
            const std::string& group = project.security_group_ids[i];
            if (std::find(groups.begin(), groups.end(), group) == groups.end()) {
                report("security_group_ids", i,
                       fmt::format("{} is not among the security groups the system policy "
                                   "allows ({})",
                                   group, join(groups)));
            }
        }
        const auto as_gib = [](int gib) { return fmt::format("{} GiB", gib); };
        check_limit("root_volume_gib", project.root_volume_gib, system.root_volume_gib, as_gib);
    }

    TemplateSite m_project;
    TemplateSite m_system;
    std::vector<Problem>& m_problems;
};

std::vector<std::string> template_names(const Config& config) {
    std::vector<std::string> names;
    for (const auto& [name, unused] : config.templates) {
        names.push_back(name);
    }
    return names;
}

// Checks every project template against the system template of the same name. A template whose
// name the system file lacks is an error unless `project_adds_templates` is set. Returns the
// merged templates, or one failure listing every problem.
Result<std::map<std::string, Template>>
narrow_templates(const ParsedFile& system, const ParsedFile& project, bool project_adds_templates) {
    std::vector<Problem> problems;
    for (const auto& [name, spec] : project.config.templates) {
        const TemplateSite project_site = site_of(project, spec);
        const auto bound = system.config.templates.find(name);
        if (bound == system.config.templates.end() && project_adds_templates) {
            continue;
        }
        if (bound == system.config.templates.end()) {
            problems.push_back(Problem{
                begin_of(project_site, ""),
                fmt::format("{}: {}: template \"{}\" is not defined by the system policy {} "
                            "(defined there: {}), use one of those names or ask an "
                            "administrator to add it",
                            spec.origin, template_key_path(name, ""), name,
                            system.source.path.string(), join(template_names(system.config)))});
            continue;
        }
        NarrowingCheck(project_site, site_of(system, bound->second), problems).run();
    }
    if (!problems.empty()) {
        // In file order, as a reader fixes them.
        std::stable_sort(problems.begin(), problems.end(),
                         [](const Problem& left, const Problem& right) {
                             return left.at < right.at;
                         });
        std::string message;
        for (const Problem& problem : problems) {
            message += message.empty() ? "" : "; ";
            message += problem.message;
        }
        return Failure{ExitCode::usage, message};
    }

    std::map<std::string, Template> merged = system.config.templates;
    for (const auto& [name, spec] : project.config.templates) {
        merged[name] = spec;
    }
    return merged;
}

// ---- steps of load_layered_config ----

// Reads the project file, or returns nullopt when there is none or it is the system file
// itself (such as `--config /etc/jitbox/jitbox.toml`).
Result<std::optional<SourceFile>> find_project_file(const ConfigRequest& request,
                                                    const std::optional<ParsedFile>& system) {
    const auto path = find_config(request);
    if (!path) {
        return path.error();
    }
    if (path->empty()) {
        return std::optional<SourceFile>();
    }
    auto file = read_project_file(*path);
    if (!file) {
        return file.error();
    }
    if (system && system->source.device == file->device && system->source.inode == file->inode) {
        log_debug(1, "project file {} is the system policy, loading it once", path->string());
        return std::optional<SourceFile>();
    }
    return std::optional<SourceFile>(std::move(file).value());
}

// Checks the project file's signature when a trusted key exists or the system file sets
// require_signed.
Result<void> check_signature(const SourceFile& project, const std::optional<ParsedFile>& system,
                             const TrustedKeySet& trusted) {
    const bool required = system && policy_of(system->config).require_signed;
    if (trusted.keys.empty() && !required) {
        log_debug(1, "no trusted keys in {}, the project file need not be signed",
                  trusted.dir.string());
        return {};
    }
    const auto verified = verify_content(project.text, project.path, trusted);
    if (!verified) {
        return verified.error();
    }
    log_debug(1, "{} is signed by trusted key {} ({})", project.path.string(),
              verified->key.fingerprint, verified->key.path.string());
    return {};
}

// Fills the templates and default_template of `loaded.merged` from the layers. Returns false
// when neither file defines templates, so the embedded default's apply.
Result<bool> merge_templates(const std::optional<ParsedFile>& system,
                             const std::optional<ParsedFile>& project, bool project_adds_templates,
                             LoadedConfig& loaded) {
    const bool system_bounds = system && !system->config.templates.empty();
    Config& merged = loaded.merged;
    if (system_bounds && project) {
        auto templates = narrow_templates(*system, *project, project_adds_templates);
        if (!templates) {
            return templates.error();
        }
        merged.templates = std::move(templates).value();
    } else if (system_bounds) {
        merged.templates = system->config.templates;
    } else if (project && !project->config.templates.empty()) {
        merged.templates = project->config.templates;
    } else {
        const Config fallback = default_config();
        merged.templates = fallback.templates;
        merged.default_template = fallback.default_template;
    }

    if (project && !project->config.default_template.empty()) {
        merged.default_template = project->config.default_template;
    } else if (system && !system->config.default_template.empty()) {
        merged.default_template = system->config.default_template;
    }
    return system_bounds || (project && !project->config.templates.empty());
}

Result<std::optional<ParsedFile>> load_system_file(const LayeredConfigRequest& request) {
    auto file = read_system_file(request.system_path, request.required_owner);
    if (!file) {
        return file.error();
    }
    log_debug(1, "system policy: {}", *file ? request.system_path.string() : "none");
    if (!*file) {
        return std::optional<ParsedFile>();
    }
    auto parsed = parse_file(std::move(**file));
    if (!parsed) {
        return parsed.error();
    }
    return std::optional<ParsedFile>(std::move(parsed).value());
}

// Finds, verifies and parses the project file. Its signature is checked before parsing, so an
// unsigned file is never interpreted.
Result<std::optional<ParsedFile>> load_project_file(const LayeredConfigRequest& request,
                                                    const std::optional<ParsedFile>& system,
                                                    const TrustedKeySet& trusted,
                                                    std::vector<std::string>& warnings) {
    const auto file = find_project_file(request.project, system);
    if (!file) {
        return file.error();
    }
    if (!*file) {
        return std::optional<ParsedFile>();
    }
    if (const auto signature = check_signature(**file, system, trusted); !signature) {
        return signature.error();
    }
    auto parsed = parse_file(**file);
    if (!parsed) {
        return parsed.error();
    }
    if (parsed->config.guardrails.present()) {
        // A project file that could loosen the guardrails would make them pointless, and one
        // that tightens them would hide a mistake, so the table is an error there.
        return make_failure(ExitCode::usage,
                            "{}: guardrails: [guardrails] is read only from the system policy "
                            "{}; move the table there or remove it from this file",
                            parsed->config.guardrails.origin, request.system_path.string());
    }
    if (parsed->config.policy.require_signed) {
        warnings.push_back(fmt::format(
            "{}: require_signed has no effect in a project file, because only the system "
            "policy ({}) can require signed project files",
            parsed->source.path.string(), request.system_path.string()));
    }
    return std::optional<ParsedFile>(std::move(parsed).value());
}

Result<void> check_mounts_of(const LayeredConfigRequest& request,
                             const std::optional<ParsedFile>& system,
                             const std::optional<ParsedFile>& project, LoadedConfig& loaded) {
    SensitiveMountPolicy policy;
    if (system) {
        policy.system = policy_of(system->config).allow_sensitive_mounts;
        policy.system_origin = policy_of(system->config).allow_sensitive_mounts_origin;
    }
    if (project) {
        policy.project = policy_of(project->config).allow_sensitive_mounts;
    }
    const fs::path home = request.home ? *request.home : current_user_home();
    return check_sensitive_mounts(loaded.merged.templates, policy, home);
}

// Fills the policy layers and the digest, both in the order system, then project.
void add_layers(const std::optional<ParsedFile>& system, const std::optional<ParsedFile>& project,
                bool default_templates, LoadedConfig& loaded) {
    std::vector<PolicyDigest::Source> sources;
    if (system) {
        loaded.layers.push_back(
            PolicyLayer{system->source.path.string(), policy_of(system->config)});
        sources.push_back({"system", system->source.text});
    }
    if (project) {
        loaded.layers.push_back(
            PolicyLayer{project->source.path.string(), policy_of(project->config)});
        sources.push_back({"project", project->source.text});
    }
    if (default_templates) {
        sources.push_back({"default", std::string(default_config_text())});
    }
    if (loaded.layers.empty()) {
        loaded.layers.push_back(
            PolicyLayer{std::string(k_default_source), policy_of(default_config())});
    }
    loaded.digest = PolicyDigest(std::move(sources));
}

} // namespace

Result<LoadedConfig> load_layered_config(const LayeredConfigRequest& request) {
    const auto system = load_system_file(request);
    if (!system) {
        return system.error();
    }
    const auto trusted = load_trusted_keys(request.trusted_keys_dir, request.required_owner);
    if (!trusted) {
        return trusted.error();
    }
    LoadedConfig loaded;
    loaded.warnings = trusted->warnings;

    const auto project = load_project_file(request, *system, *trusted, loaded.warnings);
    if (!project) {
        return project.error();
    }
    const auto own_templates =
        merge_templates(*system, *project, request.project_adds_templates, loaded);
    if (!own_templates) {
        return own_templates.error();
    }

    const auto mounts = check_mounts_of(request, *system, *project, loaded);
    if (!mounts) {
        return mounts.error();
    }

    add_layers(*system, *project, !*own_templates, loaded);
    // The keyring is a choice of the user's machine, not a bound, so the project file's wins.
    if (*project && !(*project)->config.keyring_backend.empty()) {
        loaded.merged.keyring_backend = (*project)->config.keyring_backend;
    } else if (*system) {
        loaded.merged.keyring_backend = (*system)->config.keyring_backend;
    }
    if (*system) {
        loaded.merged.guardrails = (*system)->config.guardrails;
    }
    if (*project) {
        loaded.merged.path = (*project)->source.path;
    } else if (*system) {
        loaded.merged.path = (*system)->source.path;
    }
    return loaded;
}

} // namespace jitbox
