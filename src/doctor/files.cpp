// The file checks of `jitbox doctor`: the state folder, the audit log and the installed man
// pages and completions. Nothing here changes a file, except the temp file that proves a folder
// writable, which is removed at once.

#include "jitbox/audit/audit.hpp"
#include "jitbox/doctor/doctor.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace jitbox {

namespace fs = std::filesystem;

namespace {

// A record or head write takes milliseconds, so a temp file older than this belongs to a writer
// that was killed between creating and renaming it. StateStore::list uses the same age.
constexpr auto k_stale_temp_age = std::chrono::hours(1);

// The suffix mkostemp puts after NAME: a dot and six characters.
constexpr std::size_t k_temp_suffix_size = 7;

struct FileStatus {
    std::optional<struct stat> info; // unset when the path does not exist
    int error = 0;                   // errno of lstat when it failed for another reason
};

FileStatus status_of(const fs::path& path) {
    struct stat info {};
    if (::lstat(path.c_str(), &info) == 0) {
        return {info, 0};
    }
    return {std::nullopt, errno == ENOENT ? 0 : errno};
}

std::string mode_text(mode_t mode) {
    return fmt::format("{:04o}", mode & 07777);
}

// Checks the owner and permissions of an existing file or folder. `private_mode` is 0700 or
// 0600. Returns nothing when both are right.
std::optional<Finding> check_owner_and_mode(const std::string& check, const fs::path& path,
                                            const struct stat& info, uid_t uid,
                                            mode_t private_mode) {
    if (info.st_uid != uid) {
        return make_finding(check, Severity::error,
                            fmt::format("{} is owned by uid {}, not by you (uid {})", path.string(),
                                        info.st_uid, uid),
                            fmt::format("chown {} {}", uid, path.string()));
    }
    if ((info.st_mode & 077) != 0) {
        return make_finding(check, Severity::warning,
                            fmt::format("{} has mode {}, so other users may read it", path.string(),
                                        mode_text(info.st_mode)),
                            fmt::format("chmod {:04o} {}", private_mode, path.string()));
    }
    return std::nullopt;
}

// Creates and removes a temp file in `dir`. Returns 0, or the errno when that fails.
int probe_writable_folder(const fs::path& dir) {
    std::string name = (dir / ".doctor.XXXXXX").string();
    int fd = ::mkostemp(name.data(), O_CLOEXEC);
    if (fd < 0) {
        return errno;
    }
    ::close(fd);
    ::unlink(name.c_str());
    return 0;
}

// Opens an existing file for appending and writes nothing. Returns 0, or the errno of open.
int probe_writable_file(const fs::path& path) {
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return errno;
    }
    ::close(fd);
    return 0;
}

// Checks that one folder of the state is a real folder, owned by `uid`, mode 0700 and
// writable.
std::vector<Finding> check_private_folder(const fs::path& dir, uid_t uid) {
    FileStatus status = status_of(dir);
    if (status.error != 0) {
        return {make_finding(
            "state", Severity::error,
            fmt::format("cannot inspect {}: {}", dir.string(), std::strerror(status.error)),
            "check the permissions of its parent folders")};
    }
    if (!status.info) {
        return {}; // the next jitbox command creates it
    }
    if (!S_ISDIR(status.info->st_mode)) {
        return {make_finding("state", Severity::error,
                             fmt::format("{} is not a folder", dir.string()),
                             fmt::format("move {} away; jitbox creates the folder", dir.string()))};
    }
    std::vector<Finding> findings;
    if (auto problem = check_owner_and_mode("state", dir, *status.info, uid, 0700)) {
        findings.push_back(std::move(*problem));
    }
    if (int error = probe_writable_folder(dir); error != 0) {
        findings.push_back(make_finding(
            "state", Severity::error,
            fmt::format("cannot write in {}: {}", dir.string(), std::strerror(error)),
            "check the folder's owner, mode, free space and that its file system is not "
            "mounted read-only"));
    }
    return findings;
}

bool is_temp_name(const fs::path& path, std::string_view base_extension) {
    return path.extension().string().size() == k_temp_suffix_size &&
           path.stem().extension() == base_extension;
}

// Lists the temp files of record writes (sandboxes/NAME.json.XXXXXX) and head writes
// (audit.head.XXXXXX) that are older than k_stale_temp_age.
std::vector<fs::path> stale_temp_files(const fs::path& dir, fs::file_time_type now) {
    std::vector<fs::path> stale;
    auto collect = [&](const fs::path& folder, std::string_view base_extension) {
        std::error_code error;
        for (const auto& entry : fs::directory_iterator(folder, error)) {
            if (!is_temp_name(entry.path(), base_extension)) {
                continue;
            }
            std::error_code time_error;
            auto written = fs::last_write_time(entry.path(), time_error);
            if (!time_error && now - written > k_stale_temp_age) {
                stale.push_back(entry.path());
            }
        }
    };
    collect(dir / "sandboxes", ".json");
    collect(dir, ".head");
    return stale;
}

std::vector<Finding> check_records(const fs::path& dir, uid_t uid) {
    std::vector<Finding> findings;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(dir / "sandboxes", error)) {
        if (entry.path().extension() != ".json") {
            continue;
        }
        FileStatus status = status_of(entry.path());
        if (!status.info) {
            continue; // removed since the listing
        }
        if (auto problem = check_owner_and_mode("state", entry.path(), *status.info, uid, 0600)) {
            findings.push_back(std::move(*problem));
        }
    }
    return findings;
}

} // namespace

std::vector<Finding> check_state_folder(const fs::path& dir, uid_t uid, fs::file_time_type now) {
    FileStatus status = status_of(dir);
    if (status.info && !S_ISDIR(status.info->st_mode)) {
        return {make_finding("state", Severity::error,
                             fmt::format("the state folder {} is not a folder", dir.string()),
                             fmt::format("move {} away; jitbox creates the folder", dir.string()))};
    }
    if (!status.info && status.error == 0) {
        return {make_finding("state", Severity::ok,
                             fmt::format("the state folder {} does not exist yet; the first "
                                         "jitbox command that needs it creates it",
                                         dir.string()))};
    }

    std::vector<Finding> findings;
    for (const auto& folder : {dir, dir / "sandboxes", dir / "locks"}) {
        for (auto& finding : check_private_folder(folder, uid)) {
            findings.push_back(std::move(finding));
        }
    }
    for (auto& finding : check_records(dir, uid)) {
        findings.push_back(std::move(finding));
    }
    auto stale = stale_temp_files(dir, now);
    if (!stale.empty()) {
        std::vector<std::string> names;
        for (const auto& path : stale) {
            names.push_back(path.string());
        }
        findings.push_back(
            make_finding("state", Severity::warning,
                         fmt::format("{} temp file(s) of writes that were killed: {}", stale.size(),
                                     fmt::join(names, ", ")),
                         fmt::format("remove them: rm {}", fmt::join(names, " "))));
    }
    if (findings.empty()) {
        findings.push_back(make_finding(
            "state", Severity::ok,
            fmt::format("{} and its sandboxes and locks folders are yours, private and writable",
                        dir.string())));
    }
    return findings;
}

std::vector<Finding> check_audit_log(const fs::path& path, uid_t uid) {
    std::vector<Finding> findings;
    const fs::path head = audit_head_path(path);
    bool exists = false;
    for (const auto& file : {path, head}) {
        FileStatus status = status_of(file);
        if (!status.info) {
            continue;
        }
        exists = true;
        if (!S_ISREG(status.info->st_mode)) {
            findings.push_back(make_finding(
                "audit", Severity::error, fmt::format("{} is not a regular file", file.string()),
                fmt::format("move {} away; jitbox starts a new log", file.string())));
            continue;
        }
        if (auto problem = check_owner_and_mode("audit", file, *status.info, uid, 0600)) {
            findings.push_back(std::move(*problem));
        }
        if (int error = probe_writable_file(file); error != 0) {
            findings.push_back(make_finding(
                "audit", Severity::error,
                fmt::format("cannot write {}: {}", file.string(), std::strerror(error)),
                "check the file's owner and mode and that its file system is not read-only"));
        }
    }
    if (!exists) {
        return {make_finding(
            "audit", Severity::ok,
            fmt::format("no audit log at {} yet; the first sandbox starts it", path.string()))};
    }

    auto report = verify_audit_log(path);
    if (!report) {
        findings.push_back(make_finding("audit", Severity::error, report.error().message,
                                        "check the file's owner and mode"));
    } else if (!report->intact()) {
        findings.push_back(make_finding(
            "audit", Severity::warning,
            fmt::format("the hash chain of {} is broken at line {}: {}", path.string(),
                        report->problem->line, report->problem->reason),
            "find out who changed the log; `jitbox audit verify` shows the same line"));
    } else if (findings.empty()) {
        Finding intact = make_finding(
            "audit", Severity::ok,
            fmt::format("{}: {} records, hash chain intact", path.string(), report->records));
        intact.details = {{"path", path.string()}, {"records", report->records}};
        findings.push_back(std::move(intact));
    }
    return findings;
}

std::vector<fs::path> install_share_dirs(const fs::path& executable) {
    std::vector<fs::path> dirs;
    std::set<fs::path> seen;
    auto add = [&](const fs::path& dir) {
        if (seen.insert(dir.lexically_normal()).second) {
            dirs.push_back(dir.lexically_normal());
        }
    };
    if (executable.has_parent_path() && executable.parent_path().has_parent_path()) {
        add(executable.parent_path().parent_path() / "share");
    }
    add("/usr/local/share");
    add("/usr/share");
    return dirs;
}

std::vector<Finding> check_install(const std::vector<fs::path>& share_dirs) {
    struct Installed {
        const char* label;
        std::vector<std::string> paths; // relative to a share folder, the first preferred
        const char* fix;
    };
    const Installed items[] = {
        {"man page jitbox(1)",
         {"man/man1/jitbox.1", "man/man1/jitbox.1.gz"},
         "install man/jitbox.1, such as with `cmake --install build`"},
        {"man page jitbox.toml(5)",
         {"man/man5/jitbox.toml.5", "man/man5/jitbox.toml.5.gz"},
         "install man/jitbox.toml.5, such as with `cmake --install build`"},
        {"bash completion",
         {"bash-completion/completions/jitbox"},
         "install completions/jitbox.bash as bash-completion/completions/jitbox"},
        {"zsh completion",
         {"zsh/site-functions/_jitbox", "zsh/vendor-completions/_jitbox"},
         "install completions/_jitbox into zsh/site-functions"},
        {"fish completion",
         {"fish/vendor_completions.d/jitbox.fish"},
         "install completions/jitbox.fish into fish/vendor_completions.d"},
    };
    std::vector<std::string> searched;
    for (const auto& dir : share_dirs) {
        searched.push_back(dir.string());
    }

    std::vector<Finding> findings;
    for (const auto& item : items) {
        std::optional<fs::path> found;
        for (const auto& dir : share_dirs) {
            for (const auto& relative : item.paths) {
                std::error_code error;
                if (!found && fs::is_regular_file(dir / relative, error)) {
                    found = dir / relative;
                }
            }
        }
        Finding finding = found ? make_finding("install", Severity::ok,
                                               fmt::format("{}: {}", item.label, found->string()))
                                : make_finding("install", Severity::warning,
                                               fmt::format("{} not found in {}", item.label,
                                                           fmt::join(searched, ", ")),
                                               item.fix);
        finding.details = {{"item", item.label},
                           {"path", found ? nlohmann::json(found->string()) : nullptr}};
        findings.push_back(std::move(finding));
    }
    return findings;
}

} // namespace jitbox
