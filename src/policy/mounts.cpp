// Sensitive bind mounts: which host paths count as sensitive, and the check that a template
// mounts one only where both the mount and a policy layer allow it.

#include "jitbox/policy/mounts.hpp"

#include <fmt/format.h>

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <string_view>
#include <system_error>
#include <vector>

namespace jitbox {
namespace {

namespace fs = std::filesystem;

struct SensitiveFolder {
    std::string_view path;
    std::string_view content; // what the sandbox would see, for messages
};

constexpr std::array<std::string_view, 2> k_docker_sockets{"/var/run/docker.sock",
                                                           "/run/docker.sock"};

constexpr std::array<SensitiveFolder, 6> k_sensitive_folders{{
    {"/etc", "the host's system configuration"},
    {"/proc", "the host's process and kernel information"},
    {"/sys", "the kernel's device and driver settings"},
    {"/dev", "the host's devices"},
    {"/boot", "the host's kernel and boot loader"},
    {"/root", "the root user's home folder"},
}};

constexpr std::string_view k_homes = "/home";

bool is_socket_file(const fs::path& path) {
    struct stat info {};
    return ::stat(path.c_str(), &info) == 0 && S_ISSOCK(info.st_mode);
}

// The paths that a folder must not contain, with what they are.
std::vector<std::pair<fs::path, std::string>> contained_targets(const fs::path& home) {
    std::vector<std::pair<fs::path, std::string>> targets;
    for (const std::string_view socket : k_docker_sockets) {
        targets.emplace_back(socket, "the Docker engine's socket");
    }
    for (const SensitiveFolder& folder : k_sensitive_folders) {
        targets.emplace_back(folder.path, folder.content);
    }
    targets.emplace_back(k_homes, "the users' home folders");
    if (!home.empty()) {
        targets.emplace_back(home, "your home folder");
    }
    return targets;
}

// Returns why `path` (absolute and normal) is sensitive, as a phrase that follows the path,
// such as "is inside /etc, ...", or an empty string.
std::string reason_for(const fs::path& path, const fs::path& home) {
    if (std::find(k_docker_sockets.begin(), k_docker_sockets.end(), path.string()) !=
            k_docker_sockets.end() ||
        is_socket_file(path)) {
        return "is a socket, such as the Docker engine's, through which the sandbox could "
               "control the host";
    }
    if (path == path.root_path()) {
        return "is the host's root file system";
    }

    // A user may mount folders inside their own home, even when it is /root.
    const bool inside_home = !home.empty() && path != home && path_is_within(path, home);
    if (!home.empty() && path == home) {
        return "is your home folder, with your SSH keys and credentials";
    }
    if (inside_home) {
        return {};
    }
    for (const SensitiveFolder& folder : k_sensitive_folders) {
        if (path_is_within(path, folder.path)) {
            const std::string_view where = path == folder.path ? "is" : "is inside";
            return fmt::format("{} {}, {}", where, folder.path, folder.content);
        }
    }
    if (path == k_homes) {
        return "is the folder of every user's home";
    }
    if (path_is_within(path, k_homes)) {
        return "is inside another user's home folder";
    }
    for (const auto& [target, content] : contained_targets(home)) {
        if (path_is_within(target, path)) {
            return fmt::format("is a folder that contains {}, {}", target.string(), content);
        }
    }
    return {};
}

// The value of `allow_sensitive_mounts` that applies: the system file's when it sets one.
bool policy_allows(const SensitiveMountPolicy& policy) {
    if (policy.system) {
        return *policy.system;
    }
    return policy.project.value_or(false);
}

Result<void> check_mount(const Template& spec, std::size_t index, const Mount& mount,
                         const SensitiveMountPolicy& policy, const fs::path& home) {
    const std::string reason = sensitive_mount_reason(mount.source, home);
    if (reason.empty()) {
        return {};
    }
    const std::string written = spec.name.find('.') == std::string::npos
                                    ? spec.name
                                    : fmt::format("\"{}\"", spec.name);
    const std::string at =
        fmt::format("{}: templates.{}.mounts[{}].source: mount source \"{}\" {}",
                    mount.origin.empty() ? spec.origin : mount.origin, written, index,
                    mount.source.string(), reason);
    if (!mount.allow_sensitive) {
        return make_failure(ExitCode::usage,
                            "{}; remove the mount, or set allow_sensitive = true on it and "
                            "allow_sensitive_mounts = true in [policy]",
                            at);
    }
    if (policy.system && !*policy.system) {
        return make_failure(ExitCode::denied,
                            "{}, and the system policy forbids sensitive mounts with "
                            "allow_sensitive_mounts = false ({}); remove the mount or ask an "
                            "administrator",
                            at, policy.system_origin);
    }
    if (!policy_allows(policy)) {
        return make_failure(ExitCode::usage,
                            "{}, and it sets allow_sensitive = true, but no policy sets "
                            "allow_sensitive_mounts = true; set it in [policy] or remove the "
                            "mount",
                            at);
    }
    return {};
}

} // namespace

fs::path normal_mount_path(const fs::path& path) {
    fs::path normal = path.lexically_normal();
    if (!normal.has_filename() && normal != normal.root_path()) {
        normal = normal.parent_path();
    }
    return normal;
}

bool path_is_within(const fs::path& path, const fs::path& folder) {
    const auto [unused, rest] =
        std::mismatch(path.begin(), path.end(), folder.begin(), folder.end());
    return rest == folder.end();
}

std::string sensitive_mount_reason(const fs::path& source, const fs::path& home) {
    const fs::path own_home =
        home.empty() || normal_mount_path(home) == "/" ? fs::path() : normal_mount_path(home);
    const fs::path written = normal_mount_path(source);
    if (std::string reason = reason_for(written, own_home); !reason.empty()) {
        return reason;
    }

    std::error_code error;
    const fs::path resolved = normal_mount_path(fs::weakly_canonical(written, error));
    if (error || resolved == written) {
        return {};
    }
    std::string reason = reason_for(resolved, own_home);
    if (reason.empty()) {
        return {};
    }
    // "is X" after the path becomes "resolves to REAL, which is X".
    return fmt::format("resolves to {}, which {}", resolved.string(), reason);
}

fs::path current_user_home() {
    const passwd* entry = ::getpwuid(::getuid());
    if (entry == nullptr || entry->pw_dir == nullptr) {
        return {};
    }
    return entry->pw_dir;
}

Result<void> check_sensitive_mounts(std::map<std::string, Template>& templates,
                                    const SensitiveMountPolicy& policy, const fs::path& home) {
    for (auto& [name, spec] : templates) {
        for (std::size_t i = 0; i < spec.mounts.size(); ++i) {
            if (Result<void> checked = check_mount(spec, i, spec.mounts[i], policy, home);
                !checked) {
                return checked;
            }
        }
    }
    if (!policy_allows(policy)) {
        for (auto& [name, spec] : templates) {
            for (Mount& mount : spec.mounts) {
                mount.allow_sensitive = false;
            }
        }
    }
    return {};
}

} // namespace jitbox
