// `jitbox setup enforced` and its undo. Every step checks first and changes only what differs,
// so a second run reports "unchanged".

#include "jitbox/enforced/setup.hpp"

#include "jitbox/enforced/mode.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <grp.h>
#include <optional>
#include <pwd.h>
#include <spawn.h>
#include <sstream>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace jitbox::enforced {

namespace {

namespace fs = std::filesystem;

struct Owner {
    uid_t uid = 0;
    gid_t gid = 0;
};

Result<void> require_root(std::string_view command) {
    if (::geteuid() != 0 || ::getuid() != 0) {
        return make_failure(ExitCode::usage,
                            "{} changes system files and must run as root; run "
                            "`sudo jitbox {}`",
                            command, command);
    }
    return {};
}

std::optional<uid_t> account_uid() {
    const passwd* entry = ::getpwnam(k_account);
    return entry == nullptr ? std::nullopt : std::optional<uid_t>(entry->pw_uid);
}

// Runs a system tool with a fixed PATH and no shell. Returns its exit status.
Result<int> run_tool(std::vector<std::string> args) {
    std::vector<char*> argv;
    for (auto& arg : args) {
        argv.push_back(arg.data());
    }
    argv.push_back(nullptr);
    std::string path = std::string("PATH=") + k_fixed_path;
    std::array<char*, 2> envp{path.data(), nullptr};
    pid_t pid = 0;
    const int spawned = ::posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), envp.data());
    if (spawned != 0) {
        return make_failure(ExitCode::internal, "cannot run {}: {}; install the passwd package",
                            args[0], std::strerror(spawned));
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return make_failure(ExitCode::internal, "waiting for {} failed: {}", args[0],
                                std::strerror(errno));
        }
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::optional<std::string> read_file(const fs::path& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        return std::nullopt;
    }
    std::ostringstream text;
    text << file.rdbuf();
    return text.str();
}

std::vector<ManifestEntry> read_manifest() {
    return parse_manifest(read_file(k_manifest_path).value_or(""));
}

Result<void> write_manifest(const std::vector<ManifestEntry>& entries) {
    const std::string temp = std::string(k_manifest_path) + ".tmp";
    {
        std::ofstream file(temp, std::ios::trunc);
        file << format_manifest(entries);
        if (!file.flush()) {
            return make_failure(ExitCode::internal, "cannot write {}", temp);
        }
    }
    ::chmod(temp.c_str(), 0644);
    if (::rename(temp.c_str(), k_manifest_path) != 0) {
        return make_failure(ExitCode::internal, "cannot replace {}: {}", k_manifest_path,
                            std::strerror(errno));
    }
    return {};
}

void remember(std::vector<ManifestEntry>& entries, std::string kind, std::string value) {
    const bool known = std::any_of(entries.begin(), entries.end(), [&](const auto& entry) {
        return entry.kind == kind && entry.value == value;
    });
    if (!known) {
        entries.push_back({std::move(kind), std::move(value)});
    }
}

Result<void> ensure_account(std::vector<ManifestEntry>& entries, const ChangeFn& report) {
    if (account_uid()) {
        return {};
    }
    auto status = run_tool({"useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                            "--shell", "/usr/sbin/nologin", k_account});
    if (!status) {
        return status.error();
    }
    if (*status != 0 || !account_uid()) {
        return make_failure(ExitCode::internal, "useradd {} failed with exit status {}", k_account,
                            *status);
    }
    remember(entries, "account", k_account);
    report(fmt::format("created system account {} (uid {})", k_account, *account_uid()));
    return {};
}

std::string describe(const Owner& owner, mode_t mode) {
    return fmt::format("uid {} gid {} mode {:04o}", owner.uid, owner.gid, mode);
}

// Remembers the owner and mode that `path` had before setup first changed them.
void remember_owner(std::vector<ManifestEntry>& entries, const fs::path& path,
                    const struct stat& info) {
    const bool known = std::any_of(entries.begin(), entries.end(), [&](const auto& entry) {
        const auto space = entry.value.find(' ');
        return entry.value == path.string() ||
               (entry.kind == "owner" && space != std::string::npos &&
                entry.value.substr(space + 1) == path.string());
    });
    if (!known) {
        entries.push_back({"owner", fmt::format("{}:{}:{:04o} {}", info.st_uid, info.st_gid,
                                                info.st_mode & 07777, path.string())});
    }
}

// Gives a folder back the owner and mode of an "owner" entry, when it still exists.
Result<void> restore_owner(const std::string& value, const ChangeFn& report) {
    unsigned uid = 0;
    unsigned gid = 0;
    unsigned mode = 0;
    int consumed = 0;
    if (std::sscanf(value.c_str(), "%u:%u:%o %n", &uid, &gid, &mode, &consumed) != 3 ||
        consumed == 0) {
        return make_failure(ExitCode::usage, "{}: invalid owner entry \"{}\"; remove the line",
                            k_manifest_path, value);
    }
    const std::string path = value.substr(static_cast<std::size_t>(consumed));
    struct stat info {};
    if (::lstat(path.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
        return {};
    }
    if (::chown(path.c_str(), uid, gid) != 0 || ::chmod(path.c_str(), mode) != 0) {
        return make_failure(ExitCode::internal, "cannot restore the owner and mode of {}: {}", path,
                            std::strerror(errno));
    }
    report(fmt::format("restored {} to {}", path, describe(Owner{uid, gid}, mode)));
    return {};
}

// Creates `path` when missing (remembered as `kind`) and sets its owner and mode.
Result<void> ensure_dir(const fs::path& path, Owner owner, mode_t mode, const std::string& kind,
                        std::vector<ManifestEntry>& entries, const ChangeFn& report) {
    struct stat info {};
    if (::lstat(path.c_str(), &info) != 0) {
        if (::mkdir(path.c_str(), mode) != 0) {
            return make_failure(ExitCode::internal, "cannot create {}: {}", path.string(),
                                std::strerror(errno));
        }
        remember(entries, kind, path.string());
        report(fmt::format("created {} ({})", path.string(), describe(owner, mode)));
        info.st_uid = static_cast<uid_t>(-1);
    } else if (!S_ISDIR(info.st_mode)) {
        return make_failure(ExitCode::usage, "{} exists and is not a folder; move it away",
                            path.string());
    } else if (info.st_uid == owner.uid && info.st_gid == owner.gid &&
               (info.st_mode & 07777) == mode) {
        return {};
    } else {
        remember_owner(entries, path, info);
        report(fmt::format("changed {} to {}", path.string(), describe(owner, mode)));
    }
    if (::chown(path.c_str(), owner.uid, owner.gid) != 0 || ::chmod(path.c_str(), mode) != 0) {
        return make_failure(ExitCode::internal, "cannot set the owner and mode of {}: {}",
                            path.string(), std::strerror(errno));
    }
    return {};
}

// Writes `text` to `path` through a temp file, with the owner set before the mode, because
// chown(2) clears the set-id bits.
Result<void> write_file(const fs::path& path, const std::string& text, Owner owner, mode_t mode) {
    const fs::path temp = path.string() + ".jitbox-tmp";
    {
        std::ofstream file(temp, std::ios::binary | std::ios::trunc);
        file << text;
        if (!file.flush()) {
            return make_failure(ExitCode::internal, "cannot write {}", temp.string());
        }
    }
    if (::chown(temp.c_str(), owner.uid, owner.gid) != 0 || ::chmod(temp.c_str(), mode) != 0 ||
        ::rename(temp.c_str(), path.c_str()) != 0) {
        const int error = errno;
        ::unlink(temp.c_str());
        return make_failure(ExitCode::internal, "cannot install {}: {}", path.string(),
                            std::strerror(error));
    }
    return {};
}

// Installs a copy of `source` at `target` unless an identical file with that owner and mode is
// there already.
Result<void> install_copy(const fs::path& source, const fs::path& target, Owner owner, mode_t mode,
                          std::vector<ManifestEntry>& entries, const ChangeFn& report) {
    const auto text = read_file(source);
    if (!text) {
        return make_failure(ExitCode::internal, "cannot read {}", source.string());
    }
    struct stat info {};
    const bool exists = ::lstat(target.c_str(), &info) == 0;
    if (exists && S_ISREG(info.st_mode) && info.st_uid == owner.uid && info.st_gid == owner.gid &&
        (info.st_mode & 07777) == mode && read_file(target) == text) {
        return {};
    }
    if (auto written = write_file(target, *text, owner, mode); !written) {
        return written;
    }
    // NOTE: a file that was there before setup is overwritten without a copy, and undo leaves the
    // new one in place, because the manifest records only files that setup created.
    if (!exists) {
        remember(entries, "file", target.string());
    }
    report(fmt::format("{} {} ({})", exists ? "replaced" : "installed", target.string(),
                       describe(owner, mode)));
    return {};
}

Result<void> ensure_config(std::vector<ManifestEntry>& entries, const ChangeFn& report) {
    if (fs::exists(k_config_path)) {
        return {};
    }
    if (auto written = write_file(k_config_path, starter_config(), Owner{0, 0}, 0644); !written) {
        return written;
    }
    remember(entries, "config", k_config_path);
    report(fmt::format("created {} with a starter policy that allows nothing yet; add "
                       "[[roles]] to it",
                       k_config_path));
    return {};
}

Result<gid_t> group_id(const std::string& name) {
    const group* entry = ::getgrnam(name.c_str());
    if (entry == nullptr) {
        return make_failure(ExitCode::usage,
                            "group \"{}\" not found; name the group that owns the engine socket, "
                            "such as docker (`stat -c %G /var/run/docker.sock`)",
                            name);
    }
    return entry->gr_gid;
}

Result<void> install_binaries(const SetupRequest& request, Owner owner,
                              std::vector<ManifestEntry>& entries, const ChangeFn& report) {
    const fs::path bin = request.prefix / "bin";
    std::error_code error;
    if (!fs::exists(request.prefix, error)) {
        if (auto made = ensure_dir(request.prefix, Owner{0, 0}, 0755, "dir", entries, report);
            !made) {
            return made;
        }
    }
    if (!fs::exists(bin, error)) {
        if (auto made = ensure_dir(bin, Owner{0, 0}, 0755, "dir", entries, report); !made) {
            return made;
        }
    }
    const fs::path executable = fs::canonical(request.executable, error);
    if (error) {
        return make_failure(ExitCode::internal, "cannot find this executable: {}", error.message());
    }
    if (auto copied = install_copy(executable, bin / "jitbox", owner, 06755, entries, report);
        !copied) {
        return copied;
    }
    const fs::path waiter = executable.parent_path() / "jitbox-waiter";
    if (fs::exists(waiter, error)) {
        return install_copy(waiter, bin / "jitbox-waiter", Owner{0, 0}, 0755, entries, report);
    }
    return {};
}

// Removes one entry of the manifest, or returns false when it stays.
Result<bool> undo_entry(const ManifestEntry& entry, bool purge, const ChangeFn& report) {
    std::error_code error;
    if (entry.kind == "file") {
        if (fs::remove(entry.value, error)) {
            report(fmt::format("removed {}", entry.value));
        }
    } else if (entry.kind == "config") {
        if (read_file(entry.value).value_or(starter_config()) != starter_config()) {
            report(fmt::format("kept {}, because it was edited after setup", entry.value));
            return true;
        }
        if (fs::remove(entry.value, error)) {
            report(fmt::format("removed {}", entry.value));
        }
    } else if (entry.kind == "data") {
        if (!purge) {
            return false;
        }
        fs::remove_all(entry.value, error);
        report(fmt::format("removed {} and everything in it", entry.value));
    } else if (entry.kind == "owner") {
        if (auto restored = restore_owner(entry.value, report); !restored) {
            return restored.error();
        }
    } else if (entry.kind == "account") {
        if (!purge) {
            return false;
        }
        auto status = run_tool({"userdel", entry.value});
        if (!status || *status != 0) {
            return make_failure(ExitCode::internal,
                                "userdel {} failed; remove the account by "
                                "hand",
                                entry.value);
        }
        report(fmt::format("removed system account {}", entry.value));
    }
    if (error) {
        return make_failure(ExitCode::internal, "cannot remove {}: {}", entry.value,
                            error.message());
    }
    return true;
}

} // namespace

std::vector<ManifestEntry> parse_manifest(std::string_view text) {
    std::vector<ManifestEntry> entries;
    std::istringstream lines{std::string(text)};
    std::string line;
    while (std::getline(lines, line)) {
        const auto space = line.find(' ');
        if (line.empty() || line.front() == '#' || space == std::string::npos) {
            continue;
        }
        entries.push_back({line.substr(0, space), line.substr(space + 1)});
    }
    return entries;
}

std::string format_manifest(const std::vector<ManifestEntry>& entries) {
    std::string text = "# Created by `jitbox setup enforced`; `jitbox setup enforced --undo` "
                       "removes these.\n";
    for (const auto& entry : entries) {
        text += fmt::format("{} {}\n", entry.kind, entry.value);
    }
    return text;
}

Result<void> undo_setup_enforced(bool purge, const ChangeFn& report) {
    if (auto root = require_root("setup enforced --undo"); !root) {
        return root;
    }
    const std::vector<ManifestEntry> entries = read_manifest();
    if (entries.empty()) {
        report(fmt::format("nothing to undo: {} lists nothing", k_manifest_path));
        return {};
    }

    std::vector<ManifestEntry> kept;
    std::vector<ManifestEntry> folders;
    for (auto entry = entries.rbegin(); entry != entries.rend(); ++entry) {
        if (entry->kind == "dir") {
            folders.push_back(*entry);
            continue;
        }
        auto removed = undo_entry(*entry, purge, report);
        if (!removed) {
            return removed.error();
        }
        if (!*removed) {
            kept.insert(kept.begin(), *entry);
        }
    }

    if (!kept.empty()) {
        report(fmt::format("kept the state, the audit log and the {} account; `jitbox setup "
                           "enforced --undo --purge` removes them too",
                           k_account));
        kept.insert(kept.end(), folders.rbegin(), folders.rend());
        return write_manifest(kept);
    }

    std::error_code error;
    fs::remove(k_manifest_path, error);
    // Parent folders last, and only when empty: the administrator may have added files.
    for (const auto& folder : folders) {
        if (fs::remove(folder.value, error)) {
            report(fmt::format("removed {}", folder.value));
        } else {
            report(fmt::format("kept {}, because it is not empty", folder.value));
        }
    }
    return {};
}

std::string starter_config() {
    return R"(# The system policy of jitbox in enforced mode, written by `jitbox setup enforced`.
# Only root may change this file. Users reach the engine only through jitbox, and only for what
# the [[roles]] below allow: with no role, nothing is allowed. `man 5 jitbox.toml` describes
# every key. A project's jitbox.toml counts only when a key in /etc/jitbox/trusted-keys signed
# it (`jitbox policy sign`).
#
# Every guardrail left unset here takes its strict default: no image, no bind mount and no
# template without memory, cpu and pids limits. These allow one image and set the ceilings
# that become the limits of templates that set none.
# [guardrails]
# images = ["busybox:1.36"]
# max_memory = "512MiB"
# max_cpus = 1
# max_pids = 256
#
# [templates.scratch]
# image = "busybox:1.36"
# command = ["sleep", "infinity"]
# ttl = "30m"
# max_ttl = "2h"
# network = "none"
#
# [[roles]]
# name = "developers"
# members = ["group:developers"]
# templates = ["scratch"]
# max_ttl = "1h"
)";
}

namespace {

// The steps of setup_enforced, which adds what they create or change to `entries`.
Result<void> install_parts(const SetupRequest& request, gid_t gid,
                           std::vector<ManifestEntry>& entries, const ChangeFn& note) {
    if (auto account = ensure_account(entries, note); !account) {
        return account;
    }
    const uid_t uid = *account_uid();
    const Owner service{uid, gid};
    const std::vector<std::pair<fs::path, std::string>> folders = {
        {"/etc/jitbox", "dir"}, {k_state_dir, "data"}, {k_audit_dir, "data"}};
    for (const auto& [path, kind] : folders) {
        const bool system = kind == "dir";
        const auto made = ensure_dir(path, system ? Owner{0, 0} : service, system ? 0755 : 0700,
                                     kind, entries, note);
        if (!made) {
            return made;
        }
    }
    if (auto config = ensure_config(entries, note); !config) {
        return config;
    }
    return install_binaries(request, service, entries, note);
}

} // namespace

Result<void> setup_enforced(const SetupRequest& request, const ChangeFn& report) {
    if (auto root = require_root("setup enforced"); !root) {
        return root;
    }
    auto gid = group_id(request.group);
    if (!gid) {
        return gid.error();
    }
    std::vector<ManifestEntry> entries = read_manifest();
    const std::vector<ManifestEntry> before = entries;
    bool changed = false;
    const ChangeFn note = [&](const std::string& line) {
        changed = true;
        report(line);
    };

    const auto installed = install_parts(request, *gid, entries, note);
    // Also after a failed step, so that --undo finds what the steps before it created.
    if (entries != before) {
        if (auto written = write_manifest(entries); !written) {
            return written;
        }
    }
    if (!installed) {
        return installed;
    }
    if (!changed) {
        report("unchanged");
    }
    return {};
}

} // namespace jitbox::enforced
