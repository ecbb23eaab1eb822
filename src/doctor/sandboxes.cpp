#include "jitbox/doctor/doctor.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <fcntl.h>
#include <fstream>
#include <sys/file.h>
#include <unistd.h>

namespace jitbox {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view k_gc_fix =
    "run `jitbox gc`, which starts a new background child for a live sandbox and removes an "
    "expired one";

// Returns true when another process holds the flock on `path`. A missing file counts as a free
// lock. Unlike FileLock::try_acquire, this function does not create the file.
bool is_lock_held(const fs::path& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return false;
    }
    const bool locked_elsewhere = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    ::close(fd); // also releases the lock when this call took it
    return locked_elsewhere;
}

// Reads the "PID START_TIME" that a background child writes into its lock file. Returns it only
// when that pid still runs with that start time, so that a reused pid is not taken for the child.
std::optional<ChildProcess> read_lock_holder(const fs::path& path) {
    std::ifstream file(path);
    ChildProcess child;
    if (!(file >> child.pid >> child.start_time) || child.pid <= 1) {
        return std::nullopt;
    }
    if (process_start_time(child.pid) != child.start_time) {
        return std::nullopt;
    }
    return child;
}

Finding sandbox_base(const SandboxRecord& record) {
    Finding finding;
    finding.check = "sandbox";
    finding.details = {{"name", record.name},
                       {"id", record.id},
                       {"template", record.template_name},
                       {"provider", record.provider},
                       {"state", to_string(record.state)},
                       {"expires_at", format_rfc3339(record.expires_at)},
                       {"child_pid", nullptr},
                       {"on_engine", nullptr}};
    return finding;
}

Finding flagged(Finding finding, Severity severity, std::string message, std::string fix) {
    finding.severity = severity;
    finding.message = std::move(message);
    finding.fix = std::move(fix);
    return finding;
}

} // namespace

ChildObservation observe_child(const fs::path& dir, const std::string& name) {
    ChildObservation observed;
    const fs::path locks = dir / "locks";
    observed.child_lock_held = is_lock_held(locks / (name + ".child"));
    if (observed.child_lock_held) {
        observed.holder = read_lock_holder(locks / (name + ".child"));
    }
    observed.sandbox_lock_held = is_lock_held(locks / (name + ".lock"));
    return observed;
}

Finding sandbox_finding(const SandboxObservation& observed, TimePoint now) {
    const SandboxRecord& record = observed.record;
    Finding finding = sandbox_base(record);
    const ChildObservation& child = observed.child;
    if (child.holder) {
        finding.details["child_pid"] = child.holder->pid;
    }
    if (observed.on_engine) {
        finding.details["on_engine"] = *observed.on_engine;
    }
    const std::string name = fmt::format("\"{}\"", record.name);

    if (record.state == SandboxState::creating) {
        if (child.sandbox_lock_held) {
            return flagged(finding, Severity::ok, name + " is being created", "");
        }
        return flagged(finding, Severity::warning,
                       name + " was left half-made by an `up` that was killed",
                       "run `jitbox gc`, which rolls it back");
    }
    if (!child.child_lock_held) {
        const bool expired = record.expires_at <= now;
        std::string consequence;
        if (record.state == SandboxState::removing) {
            consequence = "its removal failed and no background child retries it";
        } else if (expired) {
            consequence = fmt::format("it expired at {} but still exists",
                                      format_rfc3339(record.expires_at));
        } else {
            consequence = fmt::format("nothing removes it at its deadline {}",
                                      format_rfc3339(record.expires_at));
        }
        return flagged(finding, Severity::error,
                       fmt::format("{} has no background child: {}", name, consequence),
                       std::string(k_gc_fix));
    }
    if (observed.on_engine == false && record.state == SandboxState::running) {
        return flagged(finding, Severity::warning,
                       fmt::format("{} is recorded as running, but the {} engine has none of "
                                   "its resources",
                                   name, record.provider),
                       "run `jitbox gc`, which forgets the record of a sandbox that is gone");
    }
    std::string child_text =
        child.holder ? fmt::format("pid {}", child.holder->pid) : std::string("pid unknown");
    if (record.state == SandboxState::removing) {
        return flagged(
            finding, Severity::warning,
            fmt::format("{} is being removed; its background child ({}) retries", name, child_text),
            "wait, or check the engine if it stays; `jitbox status` shows it");
    }
    return flagged(finding, Severity::ok,
                   fmt::format("{} runs until {}; background child {}", name,
                               format_rfc3339(record.expires_at), child_text),
                   "");
}

} // namespace jitbox
