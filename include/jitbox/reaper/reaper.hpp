#pragma once

#include "jitbox/state/store.hpp"
#include "jitbox/util/result.hpp"
#include "jitbox/util/time.hpp"

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace jitbox {

/// The pid and start time that identify a background child, so that a reused pid is never
/// signalled.
struct ChildProcess {
    int pid = 0;
    unsigned long long start_time = 0; // /proc/PID/stat field 22, clock ticks since boot
};

/// Starts, stops and checks the background child that tears a sandbox down at its deadline.
/// An interface so lifecycle tests can run without processes.
class ChildSupervisor {
public:
    virtual ~ChildSupervisor() = default;
    /// Starts a child for `name` and returns once it holds the sandbox's child lock.
    virtual Result<ChildProcess> start(const std::string& name) = 0;
    /// True when a child holds the sandbox's child lock.
    virtual bool is_alive(const std::string& name) = 0;
    /// Asks the child to exit and waits briefly until it has.
    virtual void stop(const SandboxRecord& record) = 0;
    /// Tells the child that the deadline in the record changed.
    virtual void notify(const SandboxRecord& record) = 0;
};

/// The real supervisor: the child is this same binary run as `jitbox __reap`, in its own
/// session, with standard streams on /dev/null and no other inherited descriptors. While it
/// waits for the deadline, the same process runs jitbox-waiter.
class ProcessSupervisor final : public ChildSupervisor {
public:
    /// `audit_log` is passed to the child when it is not the state folder's own audit.log, as
    /// in a shared state folder, where the log stays in the shared folder itself.
    explicit ProcessSupervisor(const StateStore& store, std::filesystem::path audit_log = {})
        : m_store(store), m_audit_log(std::move(audit_log)) {}

    Result<ChildProcess> start(const std::string& name) override;
    bool is_alive(const std::string& name) override;
    void stop(const SandboxRecord& record) override;
    void notify(const SandboxRecord& record) override;

private:
    const StateStore& m_store;
    std::filesystem::path m_audit_log;
};

/// The callbacks through which the background child reaches the rest of jitbox.
struct ReaperHooks {
    /// The sandbox's current deadline; nullopt when the record is gone.
    std::function<std::optional<TimePoint>()> read_deadline;
    /// Tears the sandbox down if its deadline has passed.
    std::function<Result<void>()> expire;
    /// Records that the child stops retrying a teardown that keeps failing.
    std::function<void(const std::string& message)> give_up;
};

/// The descriptors that `jitbox __reap` was started with.
struct ReaperStart {
    /// Started by a supervisor: take the child lock, then write `ready PID` on this descriptor.
    int ready_fd = -1;
    /// Started again by jitbox-waiter: this inherited descriptor already holds the child lock.
    int lock_fd = -1;
    /// The `--audit-log` to hand on when jitbox-waiter starts `__reap` again; empty: the state
    /// folder's.
    std::string audit_log;
};

/// The body of `jitbox __reap`: takes or adopts the child lock, reports readiness, waits for the
/// wall-clock deadline (following extensions announced by SIGUSR1), tears down with retries,
/// and returns the process exit status. It waits by replacing itself with jitbox-waiter, which
/// runs `__reap --lock-fd` again when the deadline comes or the record changes. When no waiter
/// is installed next to the binary, it sleeps in this process instead.
int run_reaper(const StateStore& store, const std::string& name, const ReaperStart& start,
               const ReaperHooks& hooks);

/// The path of jitbox-waiter for the jitbox binary at `program`: the same folder, then the
/// install layout's libexec folder. nullopt when neither exists.
std::optional<std::filesystem::path> find_waiter(const std::filesystem::path& program);

/// Reads field 22 of /proc/PID/stat; nullopt when the process does not exist.
std::optional<unsigned long long> process_start_time(int pid);

} // namespace jitbox
