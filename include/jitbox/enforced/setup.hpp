#pragma once

// `jitbox setup enforced`: the installation of enforced mode, and its undo.

#include "jitbox/util/result.hpp"

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace jitbox::enforced {

inline constexpr const char* k_account = "jitbox";
inline constexpr const char* k_manifest_path = "/etc/jitbox/setup-enforced.manifest";

struct SetupRequest {
    std::string group;                                   // owns the engine socket, such as docker
    std::filesystem::path prefix = "/usr/local";         // the binary goes to PREFIX/bin
    std::filesystem::path executable = "/proc/self/exe"; // the binary to install
};

/// One line of the manifest k_manifest_path: what setup created or changed. `kind` is account
/// (a user name), file (an installed file), config (the starter policy), data (the state or
/// audit log folder), dir (a parent folder it created) or owner. An owner entry's value is
/// "UID:GID:MODE PATH": the owner and octal mode of an existing folder before setup changed it.
struct ManifestEntry {
    std::string kind;
    std::string value;

    bool operator==(const ManifestEntry&) const = default;
};

/// Parses the manifest's text: one "KIND VALUE" per line, where VALUE is the rest of the line.
/// Blank lines, lines starting with '#' and lines without a space are skipped.
std::vector<ManifestEntry> parse_manifest(std::string_view text);

/// The manifest's text for `entries`, with a comment line first.
std::string format_manifest(const std::vector<ManifestEntry>& entries);

/// Receives one line per change, such as "created /var/lib/jitbox (jitbox:jitbox 0700)".
using ChangeFn = std::function<void(const std::string&)>;

/// Creates what enforced mode needs and is missing, and fixes owners and modes that differ.
/// The parts are the system account k_account (useradd --system, no home, /usr/sbin/nologin), PREFIX/bin/jitbox
/// owned k_account:GROUP with mode 6755 (and jitbox-waiter beside the executable, when there is
/// one, root-owned 0755), k_state_dir and k_audit_dir owned by the account with mode 0700, and a
/// commented starter k_config_path (root:root 0644) when none exists. Everything created is
/// added to k_manifest_path. Reports each change through `report`, or "unchanged" when there
/// was none. Must run as root (else ExitCode::usage); GROUP must exist (else ExitCode::usage).
Result<void> setup_enforced(const SetupRequest& request, const ChangeFn& report);

/// Removes what k_manifest_path lists, newest first, and gives changed folders their old owner
/// and mode back. The state folder, the audit log folder and the account stay unless `purge`,
/// so that the audit trail survives, and they stay in the manifest for a later
/// `--undo --purge`. A
/// starter configuration that was edited since is kept and reported, and so is a parent folder
/// that is not empty. Must run as root. Without a manifest it reports "nothing to undo".
Result<void> undo_setup_enforced(bool purge, const ChangeFn& report);

/// The commented starter policy written to k_config_path: no roles, so nothing is allowed yet.
std::string starter_config();

} // namespace jitbox::enforced
