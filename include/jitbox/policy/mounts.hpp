#pragma once

// Sensitive bind mounts: host paths that give a sandbox control of the host or other users'
// data when mounted. A template mounts one only when the mount sets `allow_sensitive = true`
// and a policy layer sets `[policy] allow_sensitive_mounts = true`.

#include "jitbox/config/config.hpp"
#include "jitbox/util/result.hpp"

#include <filesystem>
#include <map>
#include <optional>
#include <string>

namespace jitbox {

/// Returns why mounting `source` into a sandbox is dangerous, such as "the Docker engine's
/// socket", or an empty string when it is not. `source` is absolute. Both the path as written
/// and its real path (symbolic links resolved as far as the path exists) are checked, so a
/// link or `..` cannot hide a sensitive target. These paths are sensitive:
/// - the Docker socket (/var/run/docker.sock, /run/docker.sock) and any other socket file,
/// - `/`, and /etc, /proc, /sys, /dev, /boot and /root with everything inside them,
/// - `home` itself, and /home with everything inside it that is not inside `home`,
/// - a folder that contains one of the above.
/// Paths inside `home` are allowed. An empty `home`, or "/", counts as no home folder.
std::string sensitive_mount_reason(const std::filesystem::path& source,
                                   const std::filesystem::path& home);

/// `path` lexically normal and without a trailing separator ("/a/b/" becomes "/a/b").
std::filesystem::path normal_mount_path(const std::filesystem::path& path);

/// True when `path` is `folder` or inside it, compared by whole components.
bool path_is_within(const std::filesystem::path& path, const std::filesystem::path& folder);

/// The home folder of the real uid from the passwd database (never from HOME), or an empty
/// path when the uid has no entry.
std::filesystem::path current_user_home();

/// The `[policy] allow_sensitive_mounts` values of the two layers.
struct SensitiveMountPolicy {
    std::optional<bool> system; // unset when there is no system file or it leaves the key out
    std::string system_origin;  // FILE:LINE:COLUMN of the system value, for messages
    std::optional<bool> project;
};

/// Checks every mount of `templates` with sensitive_mount_reason. A sensitive mount needs
/// `allow_sensitive = true` and a layer that sets `allow_sensitive_mounts = true`, where the
/// system file's value wins when it sets one. Fails with ExitCode::denied when the system file
/// sets the switch to false, and with ExitCode::usage otherwise, naming the mount's
/// FILE:LINE:COLUMN, the path, the reason and the fix. On success, clears `allow_sensitive`
/// on every mount when no policy allows sensitive mounts, so a later check at `up` (after a
/// link changed) rejects them.
Result<void> check_sensitive_mounts(std::map<std::string, Template>& templates,
                                    const SensitiveMountPolicy& policy,
                                    const std::filesystem::path& home);

} // namespace jitbox
