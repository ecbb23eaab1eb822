#pragma once
// The one blocking wait of a background child, shared by the full binary and jitbox-waiter.
// It uses only system calls, so jitbox-waiter stays a small static program.

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

namespace jitbox {

/// The event that ended wait_for_timer_or_signal.
enum class TimerWake {
    timer,     ///< the timerfd expired
    clock_set, ///< the wall clock was set, which cancels a TFD_TIMER_CANCEL_ON_SET timer
    signal,    ///< a signal other than SIGTERM arrived on the signalfd, such as SIGUSR1
    stop,      ///< SIGTERM arrived
    failed,    ///< poll failed with an error other than EINTR
};

/// The descriptors that wait_for_timer_or_signal polls; -1 where creating one failed.
struct WaitDescriptors {
    int timer_fd = -1;
    int signal_fd = -1;
};

/// Blocks SIGTERM and SIGUSR1, so that they arrive only through the signalfd, and creates that
/// signalfd and a CLOCK_REALTIME timerfd, both close-on-exec.
inline WaitDescriptors open_wait_descriptors() {
    sigset_t handled;
    sigemptyset(&handled);
    sigaddset(&handled, SIGTERM);
    sigaddset(&handled, SIGUSR1);
    ::sigprocmask(SIG_BLOCK, &handled, nullptr);
    return WaitDescriptors{::timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC),
                           ::signalfd(-1, &handled, SFD_CLOEXEC)};
}

/// Blocks until `timer_fd` (a timerfd) expires or `signal_fd` (a signalfd) has a signal. The poll
/// has no timeout, so nothing else wakes the process. A signal is consumed; a timer that also
/// fired stays readable for the next call.
inline TimerWake wait_for_timer_or_signal(int timer_fd, int signal_fd) {
    pollfd entries[2] = {{timer_fd, POLLIN, 0}, {signal_fd, POLLIN, 0}};
    while (::poll(entries, 2, -1) < 0) {
        if (errno != EINTR) {
            return TimerWake::failed;
        }
    }
    if ((entries[1].revents & POLLIN) != 0) {
        signalfd_siginfo info{};
        if (::read(signal_fd, &info, sizeof info) == sizeof info && info.ssi_signo == SIGTERM) {
            return TimerWake::stop;
        }
        return TimerWake::signal;
    }
    std::uint64_t expirations = 0;
    if (::read(timer_fd, &expirations, sizeof expirations) < 0 && errno == ECANCELED) {
        return TimerWake::clock_set;
    }
    return TimerWake::timer;
}

} // namespace jitbox
