// jitbox-waiter: the small program that a sandbox's background child becomes while it waits for
// the deadline, so the wait costs under 1 MiB of memory instead of the full binary's share of
// every shared library it links.
//
//   jitbox-waiter DEADLINE PROGRAM [ARG...]
//
// DEADLINE is in seconds since the Unix epoch. The waiter sleeps until the wall clock reaches it
// or until SIGUSR1 arrives (the record's deadline changed), then replaces itself with PROGRAM,
// normally `jitbox __reap ... --lock-fd N NAME`, which re-reads the record and tears down or
// comes back here. SIGTERM ends the waiter with status 0. The process keeps its pid across both
// execs, and the child lock stays held through the inherited descriptor that PROGRAM names, so
// `down`, `extend` and `reconcile` see one child for the whole life of the sandbox.
//
// It uses only system calls and the C library, so a static link stays small. Its streams are on
// /dev/null, so failures are reported through the exit status alone.

#include "jitbox/reaper/timer_wait.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

namespace {

using jitbox::TimerWake;
using jitbox::wait_for_timer_or_signal;

// Exit statuses. Nothing reads them, because init is the parent of the waiter.
constexpr int k_exit_stopped = 0;
constexpr int k_exit_usage = 2;
constexpr int k_exit_setup = 1;

// While PROGRAM cannot be run (the binary is being replaced, say), the waiter retries with a
// delay that doubles from 1 s up to this bound, still obeying SIGTERM.
constexpr long k_exec_retry_max_seconds = 60;

// Parses a decimal count of seconds; false on anything else.
bool parse_seconds(const char* text, long long& value) {
    if (*text == '\0') {
        return false;
    }
    char* end = nullptr;
    errno = 0;
    value = std::strtoll(text, &end, 10);
    return errno == 0 && *end == '\0' && value >= 0;
}

// Arms the timer for an absolute wall-clock time, or for `seconds` from now when `absolute` is
// false. The absolute timer counts time spent suspended and is cancelled when the clock is set.
void arm(int timer_fd, long long seconds, bool absolute) {
    itimerspec spec{};
    spec.it_value.tv_sec = static_cast<time_t>(seconds);
    if (seconds == 0) {
        spec.it_value.tv_nsec = 1; // a zero it_value would disarm the timer
    }
    int flags = absolute ? TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET : 0;
    ::timerfd_settime(timer_fd, flags, &spec, nullptr);
}

} // namespace

int main(int argc, char** argv) {
    long long deadline = 0;
    if (argc < 3 || !parse_seconds(argv[1], deadline)) {
        return k_exit_usage;
    }

    // The full binary blocks these before it execs the waiter, so a signal sent in between stays
    // pending and shows on the signalfd at once.
    const auto [timer_fd, signal_fd] = jitbox::open_wait_descriptors();
    if (signal_fd < 0 || timer_fd < 0) {
        return k_exit_setup;
    }

    arm(timer_fd, deadline, /*absolute=*/true);
    while (true) {
        const TimerWake wake = wait_for_timer_or_signal(timer_fd, signal_fd);
        if (wake == TimerWake::stop) {
            return k_exit_stopped;
        }
        if (wake == TimerWake::clock_set) {
            // The absolute deadline stays; a clock set past it makes the timer fire at once.
            arm(timer_fd, deadline, /*absolute=*/true);
            continue;
        }
        // The deadline has come or the record changed (or poll failed), and only the full
        // binary reads records and decides.
        break;
    }

    long delay = 1;
    while (true) {
        ::execv(argv[2], argv + 2);
        arm(timer_fd, delay, /*absolute=*/false);
        while (true) {
            const TimerWake wake = wait_for_timer_or_signal(timer_fd, signal_fd);
            if (wake == TimerWake::stop) {
                return k_exit_stopped;
            }
            if (wake == TimerWake::timer || wake == TimerWake::failed) {
                break;
            }
        }
        delay = delay * 2 > k_exec_retry_max_seconds ? k_exec_retry_max_seconds : delay * 2;
    }
}
