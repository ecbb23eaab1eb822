#pragma once

// Enforced mode: jitbox installed set-user-id to the `jitbox` account and set-group-id to the
// group that owns the engine socket, so that users reach the engine only through it. This
// header contains the mode, the fixed paths of that installation and the privilege switches. It
// depends on util alone, so the state store and the engine client can use it.

#include "jitbox/util/result.hpp"

#include <filesystem>
#include <string>
#include <sys/types.h>
#include <vector>

namespace jitbox::enforced {

enum class RunMode { user, enforced };

inline constexpr const char* k_config_path = "/etc/jitbox/jitbox.toml";
inline constexpr const char* k_state_dir = "/var/lib/jitbox";
inline constexpr const char* k_audit_dir = "/var/log/jitbox";
inline constexpr const char* k_audit_log_path = "/var/log/jitbox/audit.log";
inline constexpr const char* k_engine_host = "unix:///var/run/docker.sock";
/// The base AWS credentials that may assume roles, in the shared-credentials INI format,
/// owned by the `jitbox` account with mode 0600. Used in place of ~/.aws in enforced mode.
inline constexpr const char* k_aws_credentials_path = "/etc/jitbox/aws-credentials";
/// The AWS config file of enforced mode (region, endpoints), beside k_aws_credentials_path.
inline constexpr const char* k_aws_config_path = "/etc/jitbox/aws-config";
/// The PATH of every process in enforced mode, and of the children it starts.
inline constexpr const char* k_fixed_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin";

/// The real and the elevated (set-id) ids of this process, as getresuid and getresgid returned
/// them at start.
struct ProcessIds {
    uid_t real_uid = 0;
    uid_t elevated_uid = 0;
    gid_t real_gid = 0;
    gid_t elevated_gid = 0;
};

/// The mode that start_process() detected; RunMode::user before it runs.
RunMode run_mode();
bool is_enforced();
/// "enforced" or "user", as `--version` and `doctor` print it.
const char* run_mode_name();
/// The ids saved by start_process().
const ProcessIds& process_ids();

/// The changes that start_process() made, for the one line on stderr that names what is
/// ignored.
struct StartReport {
    RunMode mode = RunMode::user;
    /// Variables removed from the environment that would move a configuration, a socket, an
    /// endpoint, a credential, the state or the audit log, by name and without values.
    std::vector<std::string> ignored_variables;
};

/// Detects the mode from getresuid and getresgid: enforced when the effective uid or gid
/// differs from the real one. In enforced mode it then saves the elevated ids, switches the
/// effective ids to the real ones (the saved ids keep the elevated ones for ElevatedScope), and
/// reduces the environment to the safe list of safe_environment(). Call it first in main,
/// before any library reads the environment. A failed id switch ends the process with exit 1.
StartReport start_process();

/// Raises the effective uid and gid to the elevated ones for the lifetime of the scope, and
/// lowers them to the real ones at its end. Scopes nest. In user mode, and after drop_for_good()
/// or become_service_account(), it does nothing. For the engine socket connection, the cloud
/// credential file and the state folder and audit log only: never around a path the user named,
/// a shell or another program.
class ElevatedScope {
public:
    ElevatedScope();
    ~ElevatedScope();
    ElevatedScope(const ElevatedScope&) = delete;
    ElevatedScope& operator=(const ElevatedScope&) = delete;

private:
    bool m_raised = false;
};

/// Drops the elevated ids for good. The real, effective and saved gid and uid all become the
/// real ones (gid first), and the supplementary groups become the real user's when the elevated
/// uid is root. A check then confirms that raising again fails. Call it before running another program,
/// writing credentials to stdout or opening the keyring. Does nothing in user mode. Fails with
/// ExitCode::internal when a step fails or raising still works.
Result<void> drop_for_good();

/// Sets the real, effective and saved ids all to the elevated ones (gid first), so that the
/// user who started this process can no longer signal it. For the background child in enforced
/// mode. Does nothing in user mode.
Result<void> become_service_account();

/// The environment of enforced mode, as NAME=VALUE entries: PATH set to k_fixed_path; HOME,
/// USER and LOGNAME from the passwd entry of `real_uid`; and from `current` only TERM, LANG,
/// LC_*, TZ, NO_COLOR, COLUMNS and LINES. A value that could point a library at a file of the
/// user's choice is dropped: any '/' except in TZ, and in TZ a leading ':' or '/' or a "..".
/// So TZ=Europe/Berlin stays. `ignored` receives the names of removed variables that would
/// redirect jitbox.
std::vector<std::string> safe_environment(const std::vector<std::string>& current, uid_t real_uid,
                                          std::vector<std::string>& ignored);

/// The runtime folder /run/user/UID of `real_uid`, or an empty path unless it is a folder (not a
/// symbolic link) that belongs to that uid. Enforced mode resets XDG_RUNTIME_DIR, so the file
/// keyring backend uses this folder in its place.
std::filesystem::path user_runtime_dir(uid_t real_uid);

/// The state folder's audit log: k_audit_log_path in enforced mode, else STATE_DIR/audit.log.
std::filesystem::path audit_log_path(const std::filesystem::path& state_dir);

} // namespace jitbox::enforced
