// Detection of enforced mode, the switches between the real and the elevated ids, and the
// environment reset at start.

#include "jitbox/enforced/mode.hpp"

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <grp.h>
#include <pwd.h>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>

extern char** environ;

namespace jitbox::enforced {

namespace {

RunMode g_mode = RunMode::user;
ProcessIds g_ids;
// Set once the elevated ids are gone for good or have become the real ones.
bool g_fixed = false;
int g_raise_depth = 0;

// Variables kept from the caller's environment, when their value names no file (names_file).
constexpr std::array<std::string_view, 6> k_kept_variables = {"TERM",     "LANG",    "TZ",
                                                              "NO_COLOR", "COLUMNS", "LINES"};

// Prefixes of variables that would move a configuration, the engine, a credential, the state,
// the audit log or the keyring. Their names go into the line that lists what is ignored.
constexpr std::array<std::string_view, 9> k_redirecting_prefixes = {
    "JITBOX_", "DOCKER_", "AWS_", "XDG_", "DBUS_", "CONTAINER_", "SSL_", "CURL_", "KRB5"};
constexpr std::array<std::string_view, 8> k_redirecting_names = {
    "HOME",        "TMPDIR",    "http_proxy", "https_proxy",
    "HTTPS_PROXY", "ALL_PROXY", "all_proxy",  "TZDIR"};

// Ends the process: a failed switch of ids leaves it in a state that must not continue.
[[noreturn]] void fail_switch(const char* step) {
    std::fprintf(stderr,
                 "jitbox: error: %s failed: %s; the installation of jitbox is broken, run "
                 "`jitbox setup enforced` again as root\n",
                 step, std::strerror(errno));
    std::_Exit(static_cast<int>(ExitCode::internal));
}

void set_effective(uid_t uid, gid_t gid) {
    if (::setresgid(static_cast<gid_t>(-1), gid, static_cast<gid_t>(-1)) != 0) {
        fail_switch("setresgid");
    }
    if (::setresuid(static_cast<uid_t>(-1), uid, static_cast<uid_t>(-1)) != 0) {
        fail_switch("setresuid");
    }
}

bool is_redirecting(std::string_view name) {
    for (const auto prefix : k_redirecting_prefixes) {
        if (name.starts_with(prefix)) {
            return true;
        }
    }
    for (const auto known : k_redirecting_names) {
        if (name == known) {
            return true;
        }
    }
    return false;
}

// True when `value` could name a file. TZ takes IANA names with '/' (Europe/Berlin), while a
// leading ':' or '/' selects a file and ".." climbs out of the zoneinfo folder.
bool names_file(std::string_view name, std::string_view value) {
    if (name == "TZ") {
        return value.starts_with(':') || value.starts_with('/') ||
               value.find("..") != std::string_view::npos;
    }
    return value.find('/') != std::string_view::npos;
}

bool is_kept(std::string_view name, std::string_view value) {
    if (names_file(name, value)) {
        return false;
    }
    if (name.starts_with("LC_")) {
        return true;
    }
    for (const auto kept : k_kept_variables) {
        if (name == kept) {
            return true;
        }
    }
    return false;
}

struct PasswdFields {
    std::string name;
    std::string home;
};

PasswdFields passwd_fields(uid_t uid) {
    PasswdFields fields{"uid-" + std::to_string(uid), "/"};
    std::vector<char> buffer(16384);
    passwd storage{};
    passwd* found = nullptr;
    if (::getpwuid_r(uid, &storage, buffer.data(), buffer.size(), &found) == 0 &&
        found != nullptr) {
        fields.name = found->pw_name;
        fields.home = found->pw_dir;
    }
    return fields;
}

std::vector<std::string> current_environment() {
    std::vector<std::string> entries;
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        entries.emplace_back(*entry);
    }
    return entries;
}

void replace_environment(const std::vector<std::string>& entries) {
    ::clearenv();
    for (const auto& entry : entries) {
        const auto equals = entry.find('=');
        ::setenv(entry.substr(0, equals).c_str(), entry.substr(equals + 1).c_str(), 1);
    }
}

} // namespace

RunMode run_mode() {
    return g_mode;
}

bool is_enforced() {
    return g_mode == RunMode::enforced;
}

const char* run_mode_name() {
    return is_enforced() ? "enforced" : "user";
}

const ProcessIds& process_ids() {
    return g_ids;
}

std::vector<std::string> safe_environment(const std::vector<std::string>& current, uid_t real_uid,
                                          std::vector<std::string>& ignored) {
    const PasswdFields user = passwd_fields(real_uid);
    std::vector<std::string> safe{std::string("PATH=") + k_fixed_path, "HOME=" + user.home,
                                  "USER=" + user.name, "LOGNAME=" + user.name};
    for (const auto& entry : current) {
        const auto equals = entry.find('=');
        if (equals == std::string::npos) {
            continue;
        }
        const std::string_view name(entry.data(), equals);
        const std::string_view value(entry.data() + equals + 1, entry.size() - equals - 1);
        if (is_kept(name, value)) {
            safe.push_back(entry);
        } else if (is_redirecting(name) && !(name == "HOME" && value == user.home)) {
            ignored.emplace_back(name);
        }
    }
    return safe;
}

StartReport start_process() {
    uid_t real_uid = 0;
    uid_t effective_uid = 0;
    uid_t saved_uid = 0;
    gid_t real_gid = 0;
    gid_t effective_gid = 0;
    gid_t saved_gid = 0;
    if (::getresuid(&real_uid, &effective_uid, &saved_uid) != 0) {
        fail_switch("getresuid");
    }
    if (::getresgid(&real_gid, &effective_gid, &saved_gid) != 0) {
        fail_switch("getresgid");
    }
    StartReport report;
    if (effective_uid == real_uid && effective_gid == real_gid) {
        return report;
    }

    g_mode = RunMode::enforced;
    g_ids = ProcessIds{real_uid, effective_uid, real_gid, effective_gid};
    set_effective(real_uid, real_gid);
    report.mode = RunMode::enforced;
    replace_environment(
        safe_environment(current_environment(), real_uid, report.ignored_variables));
    return report;
}

ElevatedScope::ElevatedScope() {
    if (!is_enforced() || g_fixed) {
        return;
    }
    if (g_raise_depth++ == 0) {
        set_effective(g_ids.elevated_uid, g_ids.elevated_gid);
    }
    m_raised = true;
}

ElevatedScope::~ElevatedScope() {
    if (m_raised && --g_raise_depth == 0 && !g_fixed) {
        set_effective(g_ids.real_uid, g_ids.real_gid);
    }
}

Result<void> drop_for_good() {
    if (!is_enforced() || g_fixed) {
        return {};
    }
    if (g_ids.elevated_uid == 0) {
        // Only root may set supplementary groups, and only then can they differ from the
        // real user's, which exec(2) of a set-id program keeps.
        const PasswdFields user = passwd_fields(g_ids.real_uid);
        if (::initgroups(user.name.c_str(), g_ids.real_gid) != 0) {
            return make_failure(ExitCode::internal, "initgroups for {} failed: {}", user.name,
                                std::strerror(errno));
        }
    }
    if (::setresgid(g_ids.real_gid, g_ids.real_gid, g_ids.real_gid) != 0 ||
        ::setresuid(g_ids.real_uid, g_ids.real_uid, g_ids.real_uid) != 0) {
        return make_failure(ExitCode::internal, "dropping the set-id privileges failed: {}",
                            std::strerror(errno));
    }
    g_fixed = true;
    // Root may always switch back, so the check only means something for other users.
    if (g_ids.real_uid != 0) {
        const bool regained_uid =
            g_ids.elevated_uid != g_ids.real_uid &&
            ::setresuid(static_cast<uid_t>(-1), g_ids.elevated_uid, static_cast<uid_t>(-1)) == 0;
        const bool regained_gid =
            g_ids.elevated_gid != g_ids.real_gid &&
            ::setresgid(static_cast<gid_t>(-1), g_ids.elevated_gid, static_cast<gid_t>(-1)) == 0;
        if (regained_uid || regained_gid) {
            fail_switch("dropping the set-id privileges for good");
        }
    }
    return {};
}

Result<void> become_service_account() {
    if (!is_enforced() || g_fixed) {
        return {};
    }
    if (::setresgid(g_ids.elevated_gid, g_ids.elevated_gid, g_ids.elevated_gid) != 0 ||
        ::setresuid(g_ids.elevated_uid, g_ids.elevated_uid, g_ids.elevated_uid) != 0) {
        return make_failure(ExitCode::internal, "switching to the service account failed: {}",
                            std::strerror(errno));
    }
    g_fixed = true;
    return {};
}

std::filesystem::path user_runtime_dir(uid_t real_uid) {
    const std::filesystem::path dir = fmt::format("/run/user/{}", real_uid);
    struct stat info {};
    if (::lstat(dir.c_str(), &info) != 0 || !S_ISDIR(info.st_mode) || info.st_uid != real_uid) {
        return {};
    }
    return dir;
}

std::filesystem::path audit_log_path(const std::filesystem::path& state_dir) {
    if (is_enforced()) {
        return k_audit_log_path;
    }
    return state_dir / "audit.log";
}

} // namespace jitbox::enforced
