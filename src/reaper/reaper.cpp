#include "jitbox/reaper/reaper.hpp"

#include "jitbox/enforced/mode.hpp"
#include "jitbox/reaper/timer_wait.hpp"
#include "jitbox/util/install.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <fstream>
#include <poll.h>
#include <sstream>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

// glibc 2.36 declares these without C linkage.
extern "C" {
#include <sys/pidfd.h>
}

namespace jitbox {

namespace {

using namespace std::chrono_literals;

// The descriptor on which the child reports readiness; fixed so argv needs no arithmetic.
constexpr int k_ready_fd = 3;
// The descriptor that holds the child lock in a child started straight in jitbox-waiter.
constexpr int k_child_lock_fd = 3;
// The lowest descriptor a forked child moves descriptors to before it arranges 0 to 4.
constexpr int k_first_spare_fd = 10;
constexpr auto k_ready_timeout = 10s;
constexpr auto k_lock_wait = 2s;
// How long `down` waits for the child to exit after SIGTERM.
constexpr auto k_stop_wait = 3s;
constexpr auto k_retry_first = 1s;
constexpr auto k_retry_max = 60s;
// How long the child keeps retrying teardown while the engine is unreachable.
constexpr auto k_retry_bound = std::chrono::hours(24);

// The child that holds the sandbox's child lock, as it wrote itself into the lock file. The
// lock file is the source rather than the record, because a child started by an `up` that died
// before recording it must still be found and stopped.
std::optional<ChildProcess> lock_holder(const std::filesystem::path& lock_path) {
    std::ifstream file(lock_path);
    ChildProcess child;
    if (!(file >> child.pid >> child.start_time) || child.pid <= 1) {
        return std::nullopt;
    }
    if (process_start_time(child.pid) != child.start_time) {
        return std::nullopt; // that child has exited and its pid may belong to another process
    }
    return child;
}

// Writes "PID START_TIME" of `holder` into the lock file open on `lock_fd`.
void write_lock_holder(int lock_fd, const ChildProcess& holder) {
    std::string text = fmt::format("{} {}\n", holder.pid, holder.start_time);
    if (::ftruncate(lock_fd, 0) == 0) {
        (void)!::pwrite(lock_fd, text.data(), text.size(), 0);
    }
}

void close_inherited_fds() {
    if (::close_range(k_ready_fd + 1, ~0U, 0) == 0) {
        return;
    }
    long max_fd = ::sysconf(_SC_OPEN_MAX);
    for (int fd = k_ready_fd + 1; fd < max_fd; ++fd) {
        ::close(fd);
    }
}

// Points the standard streams at /dev/null; async-signal-safe.
void redirect_streams_to_null() {
    const int null_fd = ::open("/dev/null", O_RDWR);
    if (null_fd >= 0) {
        ::dup2(null_fd, STDIN_FILENO);
        ::dup2(null_fd, STDOUT_FILENO);
        ::dup2(null_fd, STDERR_FILENO);
    }
}

// Runs in the forked grandchild: only async-signal-safe calls until execv.
[[noreturn]] void exec_child(int ready_write_fd, const std::vector<char*>& argv) {
    redirect_streams_to_null();
    ::dup2(ready_write_fd, k_ready_fd); // dup2 clears close-on-exec on the copy
    close_inherited_fds();
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv("/proc/self/exe", argv.data());
    const char message[] = "cannot run /proc/self/exe\n";
    (void)!::write(k_ready_fd, message, sizeof message - 1);
    ::_exit(127);
}

// Reads what the child writes on `fd` until every copy of the write end is closed.
Result<std::string> read_child_report(int fd) {
    std::string report;
    auto deadline = std::chrono::steady_clock::now() + k_ready_timeout;
    char buffer[256];
    while (true) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd entry{fd, POLLIN, 0};
        int ready = ::poll(&entry, 1, static_cast<int>(std::max(left.count(), 0L)));
        if (ready < 0 && errno == EINTR) {
            continue;
        }
        if (ready <= 0) {
            return make_failure(ExitCode::internal,
                                "the background child did not report within {} s",
                                k_ready_timeout.count());
        }
        ssize_t got = ::read(fd, buffer, sizeof buffer);
        if (got <= 0) {
            break;
        }
        report.append(buffer, static_cast<std::size_t>(got));
    }
    while (!report.empty() && report.back() == '\n') {
        report.pop_back();
    }
    return report;
}

// Reads the child's report: "ready PID" once it holds its lock, anything else is an error.
Result<int> read_ready_report(int fd) {
    auto read = read_child_report(fd);
    if (!read) {
        return read.error();
    }
    std::string report = std::move(read).value();
    int pid = 0;
    if (std::sscanf(report.c_str(), "ready %d", &pid) == 1 && pid > 1) {
        return pid;
    }
    if (report.empty()) {
        report = "it exited without a word";
    }
    return make_failure(ExitCode::internal, "the background child could not start: {}", report);
}

// The command line of `jitbox __reap` for sandbox `name`, where `fd_option` passes descriptor
// `fd`: `--ready-fd` for a new child, `--lock-fd` for one that comes back from jitbox-waiter.
// An empty `audit_log` leaves the child the state folder's.
std::vector<std::string> reap_arguments(const std::string& program, const std::string& state_dir,
                                        const std::string& audit_log, const std::string& fd_option,
                                        int fd, const std::string& name) {
    std::vector<std::string> args = {program,   "__reap",  "--state-dir",
                                     state_dir, fd_option, std::to_string(fd)};
    if (!audit_log.empty()) {
        args.insert(args.end(), {"--audit-log", audit_log});
    }
    args.push_back(name);
    return args;
}

// The argv array for execv; it points into `args`, which must outlive it.
std::vector<char*> to_argv(std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (auto& arg : args) {
        argv.push_back(arg.data());
    }
    argv.push_back(nullptr);
    return argv;
}

Result<ChildProcess> spawn_child(const std::string& state_dir, const std::string& audit_log,
                                 const std::string& name) {
    auto args = reap_arguments("jitbox", state_dir, audit_log, "--ready-fd", k_ready_fd, name);
    auto argv = to_argv(args);

    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
        return make_failure(ExitCode::internal, "pipe: {}", std::strerror(errno));
    }
    pid_t first = ::fork();
    if (first < 0) {
        int error = errno;
        ::close(pipe_fds[0]);
        ::close(pipe_fds[1]);
        return make_failure(ExitCode::internal, "fork: {}", std::strerror(error));
    }
    if (first == 0) {
        // A new session, then a second fork: the child is no session leader, so it can never
        // acquire a controlling terminal, and `init` reaps it, never this process.
        ::setsid();
        pid_t second = ::fork();
        if (second != 0) {
            ::_exit(second < 0 ? 1 : 0);
        }
        exec_child(pipe_fds[1], argv);
    }
    ::close(pipe_fds[1]);
    int status = 0;
    while (::waitpid(first, &status, 0) < 0 && errno == EINTR) {
    }
    auto pid = read_ready_report(pipe_fds[0]);
    ::close(pipe_fds[0]);
    if (!pid) {
        return pid.error();
    }
    auto start_time = process_start_time(*pid);
    if (!start_time) {
        return make_failure(ExitCode::internal, "the background child (pid {}) exited at once",
                            *pid);
    }
    return ChildProcess{*pid, *start_time};
}

Result<std::optional<FileLock>> wait_for_lock(const std::filesystem::path& path,
                                              std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (true) {
        auto lock = FileLock::try_acquire(path);
        if (!lock || lock->has_value() || std::chrono::steady_clock::now() >= deadline) {
            return lock;
        }
        std::this_thread::sleep_for(20ms);
    }
}

// Runs in the forked grandchild of spawn_in_waiter: only async-signal-safe calls until execv.
// The locked descriptor becomes descriptor 3, which `waiter_argv` names, and `report_fd`
// becomes descriptor 4, closed by a successful exec. The child execs only once the parent has
// sent one byte on `go_fd`, after it wrote the child into the lock file. A parent that dies
// before then closes the pipe instead, and the child exits, so no child runs that the lock
// file does not name.
[[noreturn]] void exec_waiting_child(int report_fd, int lock_fd, int go_fd,
                                     char* const* waiter_argv, char* const* reap_argv) {
    // Out of the way first, so that neither the standard streams nor each other overwrite them.
    const int moved_report_fd = ::fcntl(report_fd, F_DUPFD_CLOEXEC, k_first_spare_fd);
    lock_fd = ::fcntl(lock_fd, F_DUPFD_CLOEXEC, k_first_spare_fd);
    go_fd = ::fcntl(go_fd, F_DUPFD_CLOEXEC, k_first_spare_fd);
    if (moved_report_fd < 0 || lock_fd < 0 || go_fd < 0) {
        const char message[] = "no descriptor left to hand on the child lock\n";
        (void)!::write(report_fd, message, sizeof message - 1);
        ::_exit(127);
    }
    report_fd = moved_report_fd;
    redirect_streams_to_null();
    ::dup2(lock_fd, k_child_lock_fd); // dup2 clears close-on-exec on the copy
    ::dup3(report_fd, k_child_lock_fd + 1, O_CLOEXEC);
    ::dup3(go_fd, k_child_lock_fd + 2, O_CLOEXEC);
    // Also closes every copy of the go pipe's write end, so a dead parent shows as end of file.
    ::close_range(k_child_lock_fd + 3, ~0U, 0);
    char go = 0;
    ssize_t got = 0;
    while ((got = ::read(k_child_lock_fd + 2, &go, 1)) < 0 && errno == EINTR) {
    }
    if (got != 1) {
        ::_exit(0);
    }

    // The same set-up as `__reap` before it execs the waiter. Signals from a terminal or a
    // closed pipe are ignored. SIGTERM and SIGUSR1 stay blocked, so one sent before the waiter
    // opens its signalfd stays pending instead of killing the process.
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    for (int signal_number : {SIGHUP, SIGINT, SIGPIPE}) {
        ::sigaction(signal_number, &ignore, nullptr);
    }
    sigset_t handled;
    sigemptyset(&handled);
    sigaddset(&handled, SIGTERM);
    sigaddset(&handled, SIGUSR1);
    ::sigprocmask(SIG_SETMASK, &handled, nullptr);
    (void)!::chdir("/"); // so the child keeps no mount point busy

    ::execv(waiter_argv[0], waiter_argv);
    // The full binary waits just as well, only with more memory.
    ::execv("/proc/self/exe", reap_argv);
    const char message[] = "cannot run jitbox-waiter or /proc/self/exe\n";
    (void)!::write(k_child_lock_fd + 1, message, sizeof message - 1);
    ::_exit(127);
}

// Starts the child of sandbox `name` straight in jitbox-waiter, which waits until `deadline`,
// so `up` does not wait for the full binary to start a second time. This process takes the
// child lock and writes the child into the lock file, because those are what `__reap` does
// before it execs the waiter. The grandchild inherits the locked descriptor.
Result<ChildProcess> spawn_in_waiter(const StateStore& store, const std::string& audit_log,
                                     const std::string& name, const std::filesystem::path& program,
                                     const std::filesystem::path& waiter, TimePoint deadline) {
    auto lock = wait_for_lock(store.child_lock_path(name), k_lock_wait);
    if (!lock) {
        return lock.error();
    }
    if (!lock->has_value()) {
        return make_failure(ExitCode::internal, "the background child could not start: another "
                            "background child already watches this sandbox");
    }
    std::vector<std::string> args = {waiter.string(),
                                     std::to_string(deadline.time_since_epoch().count())};
    auto reap = reap_arguments(program.string(), store.dir().string(), audit_log, "--lock-fd",
                               k_child_lock_fd, name);
    args.insert(args.end(), reap.begin(), reap.end());
    auto argv = to_argv(args);

    // Three pipes. The middle process sends the grandchild's pid, this process sends the
    // grandchild one byte once the lock file names it, and the grandchild writes only when
    // both execs fail.
    std::array<int, 2> pid_pipe{-1, -1};
    std::array<int, 2> go_pipe{-1, -1};
    std::array<int, 2> report_pipe{-1, -1};
    const auto close_pipes = [&] {
        for (int fd : {pid_pipe[0], pid_pipe[1], go_pipe[0], go_pipe[1], report_pipe[0],
                       report_pipe[1]}) {
            if (fd >= 0) {
                ::close(fd);
            }
        }
    };
    if (::pipe2(pid_pipe.data(), O_CLOEXEC) != 0 || ::pipe2(go_pipe.data(), O_CLOEXEC) != 0 ||
        ::pipe2(report_pipe.data(), O_CLOEXEC) != 0) {
        const int error = errno;
        close_pipes();
        return make_failure(ExitCode::internal, "pipe: {}", std::strerror(error));
    }
    const pid_t first = ::fork();
    if (first == 0) {
        ::setsid(); // as in spawn_child
        const pid_t second = ::fork();
        if (second != 0) {
            (void)!::write(pid_pipe[1], &second, sizeof second);
            ::_exit(second < 0 ? 1 : 0);
        }
        exec_waiting_child(report_pipe[1], (**lock).fd(), go_pipe[0], argv.data(),
                           argv.data() + 2);
    }
    const int fork_error = errno;
    ::close(std::exchange(pid_pipe[1], -1));
    ::close(std::exchange(go_pipe[0], -1));
    ::close(std::exchange(report_pipe[1], -1));
    pid_t pid = -1;
    if (first > 0) {
        int status = 0;
        while (::waitpid(first, &status, 0) < 0 && errno == EINTR) {
        }
        if (::read(pid_pipe[0], &pid, sizeof pid) != static_cast<ssize_t>(sizeof pid)) {
            pid = -1;
        }
    }
    if (first < 0 || pid <= 1) {
        close_pipes(); // a grandchild, if any, reads end of file and exits
        return make_failure(ExitCode::internal, "fork: {}",
                            std::strerror(first < 0 ? fork_error : EAGAIN));
    }
    const auto start_time = process_start_time(pid);
    if (!start_time) {
        close_pipes();
        return make_failure(ExitCode::internal, "the background child (pid {}) exited at once",
                            pid);
    }
    const ChildProcess child{pid, *start_time};
    write_lock_holder((**lock).fd(), child);
    // A grandchild that has already exited would make this write raise SIGPIPE.
    struct sigaction ignore {};
    struct sigaction previous {};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ignore, &previous);
    const char go = 'g';
    (void)!::write(go_pipe[1], &go, 1);
    ::sigaction(SIGPIPE, &previous, nullptr);
    const Result<std::string> report = read_child_report(report_pipe[0]);
    close_pipes();
    if (!report) {
        return report.error();
    }
    if (!report->empty()) {
        return make_failure(ExitCode::internal, "the background child could not start: {}",
                            *report);
    }
    // Closing this copy leaves the lock held: it belongs to the open file, which the child
    // keeps open.
    return child;
}

// Replaces this process with jitbox-waiter until `deadline`, handing on the child lock through
// `lock_fd`. Returns only when no waiter is installed or it cannot be run.
void exec_waiter(int lock_fd, TimePoint deadline, const StateStore& store,
                 const std::string& audit_log, const std::string& name) {
    // NOTE: in enforced mode the child waits in the full binary. The binary that the waiter would
    // run again is set-id to the account the child already runs as, so it would start in user
    // mode.
    if (enforced::is_enforced()) {
        return;
    }
    auto program = own_executable();
    auto waiter = find_waiter(program);
    if (program.empty() || !waiter) {
        return;
    }
    std::vector<std::string> args = {waiter->string(),
                                     std::to_string(deadline.time_since_epoch().count())};
    auto reap = reap_arguments(program.string(), store.dir().string(), audit_log, "--lock-fd",
                               lock_fd, name);
    args.insert(args.end(), reap.begin(), reap.end());
    auto argv = to_argv(args);

    // Every other descriptor (the engine's socket, the audit log, timerfd and signalfd) closes,
    // so the waiter holds the lock and nothing else.
    ::close_range(k_ready_fd, ~0U, CLOSE_RANGE_CLOEXEC);
    ::fcntl(lock_fd, F_SETFD, 0);
    ::execv(argv[0], argv.data());
    ::fcntl(lock_fd, F_SETFD, FD_CLOEXEC);
}

} // namespace

std::optional<std::filesystem::path> find_waiter(const std::filesystem::path& program) {
    return find_installed_file(program, "jitbox-waiter", JITBOX_WAITER_FROM_BINDIR);
}

std::optional<unsigned long long> process_start_time(int pid) {
    std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    if (!file || !std::getline(file, text)) {
        return std::nullopt;
    }
    // The command name in field 2 may contain spaces and parentheses; fields resume after the
    // last ')'.
    auto close = text.rfind(')');
    if (close == std::string::npos) {
        return std::nullopt;
    }
    std::istringstream fields(text.substr(close + 1));
    std::string field;
    for (int index = 3; index <= 22 && fields >> field; ++index) {
        if (index == 22) {
            return std::stoull(field);
        }
    }
    return std::nullopt;
}

Result<ChildProcess> ProcessSupervisor::start(const std::string& name) {
    // The direct start needs a deadline ahead, because the full binary retries a failed
    // removal at once. In enforced mode the child waits in the full binary (see exec_waiter).
    const auto program = enforced::is_enforced() ? std::filesystem::path() : own_executable();
    const auto waiter = program.empty() ? std::nullopt : find_waiter(program);
    if (waiter) {
        const auto found = m_store.find(name);
        const auto now = std::chrono::time_point_cast<Seconds>(std::chrono::system_clock::now());
        if (found && found->has_value() && (**found).state != SandboxState::removing &&
            (**found).expires_at > now) {
            return spawn_in_waiter(m_store, m_audit_log.string(), name, program, *waiter,
                                   (**found).expires_at);
        }
    }
    return spawn_child(m_store.dir().string(), m_audit_log.string(), name);
}

bool ProcessSupervisor::is_alive(const std::string& name) {
    const enforced::ElevatedScope elevated;
    auto lock = FileLock::try_acquire(m_store.child_lock_path(name));
    // A lock file that cannot even be opened counts as alive, so no second child is started.
    return !lock || !lock->has_value();
}

void ProcessSupervisor::stop(const SandboxRecord& record) {
    // In enforced mode the child runs as the jitbox account, which only it may signal.
    const enforced::ElevatedScope elevated;
    auto lock_path = m_store.child_lock_path(record.name);
    auto child = lock_holder(lock_path);
    if (!child) {
        return;
    }
    // A pidfd names this very process even if its pid is reused, and poll(2) on it returns
    // the moment the process exits, which is when the kernel releases the child lock.
    const int pidfd = ::pidfd_open(child->pid, 0);
    if (pidfd < 0) {
        ::kill(child->pid, SIGTERM);
        (void)wait_for_lock(lock_path, k_stop_wait);
        return;
    }
    // The pid may have been reused between reading the lock file and opening the pidfd.
    if (process_start_time(child->pid) == child->start_time &&
        ::pidfd_send_signal(pidfd, SIGTERM, nullptr, 0) == 0) {
        const auto limit = std::chrono::steady_clock::now() + k_stop_wait;
        while (true) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                limit - std::chrono::steady_clock::now());
            pollfd entry{pidfd, POLLIN, 0};
            const int ready = ::poll(&entry, 1, static_cast<int>(std::max(left.count(), 0L)));
            if (ready >= 0 || errno != EINTR) {
                break;
            }
        }
    }
    ::close(pidfd);
}

void ProcessSupervisor::notify(const SandboxRecord& record) {
    const enforced::ElevatedScope elevated;
    if (auto child = lock_holder(m_store.child_lock_path(record.name))) {
        ::kill(child->pid, SIGUSR1);
    }
}

namespace {

enum class WakeReason { deadline, changed, stop };

// Sleeps until `deadline` on the wall clock, or until a signal or a clock change. The timer is
// absolute on CLOCK_REALTIME, so time spent suspended counts and a resumed laptop wakes at once.
WakeReason sleep_until(int timer_fd, int signal_fd, std::optional<TimePoint> deadline,
                       std::chrono::milliseconds relative) {
    itimerspec spec{};
    int flags = 0;
    if (deadline) {
        spec.it_value.tv_sec = deadline->time_since_epoch().count();
        flags = TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET;
    } else {
        spec.it_value.tv_sec = relative.count() / 1000;
        spec.it_value.tv_nsec = (relative.count() % 1000) * 1000000L;
    }
    if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) {
        return WakeReason::deadline; // a zero it_value would disarm the timer
    }
    ::timerfd_settime(timer_fd, flags, &spec, nullptr);
    switch (wait_for_timer_or_signal(timer_fd, signal_fd)) {
    case TimerWake::timer:
        return WakeReason::deadline;
    case TimerWake::stop:
        return WakeReason::stop;
    case TimerWake::clock_set:
    case TimerWake::signal:
    case TimerWake::failed:
        break;
    }
    // The caller reads the deadline again, which also covers a clock that was set.
    return WakeReason::changed;
}

} // namespace

int run_reaper(const StateStore& store, const std::string& name, const ReaperStart& start,
               const ReaperHooks& hooks) {
    int ready_fd = start.ready_fd;
    ::signal(SIGHUP, SIG_IGN);
    ::signal(SIGINT, SIG_IGN);
    ::signal(SIGPIPE, SIG_IGN);
    const auto [timer_fd, signal_fd] = open_wait_descriptors();

    auto report_ready = [&](const std::string& text) {
        if (ready_fd >= 0) {
            (void)!::write(ready_fd, text.data(), text.size());
            ::close(ready_fd);
            ready_fd = -1;
        }
    };
    if (signal_fd < 0 || timer_fd < 0) {
        report_ready(fmt::format("signalfd or timerfd: {}\n", std::strerror(errno)));
        return 1;
    }
    std::optional<FileLock> child_lock;
    if (start.lock_fd >= 0) {
        // Back from jitbox-waiter: same pid and start time, so the lock file is still right.
        auto adopted = FileLock::adopt(start.lock_fd, store.child_lock_path(name));
        if (!adopted) {
            return 1;
        }
        child_lock = std::move(*adopted);
    } else {
        auto lock = wait_for_lock(store.child_lock_path(name), k_lock_wait);
        if (!lock || !lock->has_value()) {
            report_ready(lock ? "another background child already watches this sandbox\n"
                              : lock.error().message + "\n");
            return 1;
        }
        child_lock = std::move(**lock);
        write_lock_holder(child_lock->fd(),
                          ChildProcess{::getpid(), process_start_time(::getpid()).value_or(0)});
    }
    report_ready(fmt::format("ready {}\n", ::getpid()));
    // The kernel names a process after the file it ran, /proc/self/exe here; `pgrep jitbox`
    // and `ps` should find the child under the tool's own name.
    ::prctl(PR_SET_NAME, "jitbox");
    (void)!::chdir("/"); // so the child keeps no mount point busy

    auto backoff = std::chrono::duration_cast<std::chrono::milliseconds>(k_retry_first);
    bool waiting = false; // teardown failed at least once since the last success
    std::chrono::steady_clock::time_point first_failure;
    while (true) {
        auto deadline = hooks.read_deadline();
        if (!deadline) {
            return 0; // the sandbox was removed, by this child or by someone else
        }
        if (*deadline > std::chrono::time_point_cast<Seconds>(std::chrono::system_clock::now())) {
            waiting = false;
            exec_waiter(child_lock->fd(), *deadline, store, start.audit_log, name);
            if (sleep_until(timer_fd, signal_fd, deadline, {}) == WakeReason::stop) {
                return 0;
            }
            continue;
        }
        auto expired = hooks.expire();
        if (expired) {
            // Back to the top: the record is gone (exit), or an extension moved the deadline.
            waiting = false;
            backoff = std::chrono::duration_cast<std::chrono::milliseconds>(k_retry_first);
            continue;
        }
        auto now = std::chrono::steady_clock::now();
        if (!waiting) {
            waiting = true;
            first_failure = now;
        } else if (now - first_failure > k_retry_bound) {
            hooks.give_up(
                fmt::format("gave up after {}: {}",
                            format_duration(std::chrono::duration_cast<Seconds>(k_retry_bound)),
                            expired.error().message));
            return 1;
        }
        if (sleep_until(timer_fd, signal_fd, std::nullopt, backoff) == WakeReason::stop) {
            return 0;
        }
        backoff = std::min(backoff * 2,
                           std::chrono::duration_cast<std::chrono::milliseconds>(k_retry_max));
    }
}

} // namespace jitbox
