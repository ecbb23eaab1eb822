#pragma once

// The local side of `exec -t` and `shell`: the terminal's raw mode and size, and signals
// turned into readable bytes for a poll(2) loop.

#include <csignal>
#include <optional>
#include <vector>

#include <termios.h>

namespace jitbox::cli {

/// A terminal's size in character cells.
struct WindowSize {
    int rows = 0;
    int columns = 0;
};

/// The size of the terminal on `fd`, or nullopt when `fd` is no terminal or reports 0x0.
std::optional<WindowSize> window_size(int fd);

/// Puts the terminal on `fd` into raw mode (no echo, no line editing, no signals from keys,
/// no output processing), so every key goes to the container as it is typed. The destructor
/// restores the previous settings. SignalPipe's handler restores them too, at once, when
/// SIGINT, SIGTERM or SIGHUP arrives, so a blocked call cannot keep the terminal raw.
/// At most one may exist at a time.
class RawTerminal {
public:
    explicit RawTerminal(int fd);
    ~RawTerminal();
    RawTerminal(const RawTerminal&) = delete;
    RawTerminal& operator=(const RawTerminal&) = delete;

private:
    int m_fd;
    termios m_saved{};
};

/// Catches `signals` while it lives and makes each arrival readable as one byte, the signal
/// number, on fd(), the self-pipe idiom. SIGPIPE is ignored meanwhile, so a closed output
/// shows as EPIPE. The destructor restores the previous handlers. At most one may exist at a
/// time.
class SignalPipe {
public:
    explicit SignalPipe(std::vector<int> signals);
    ~SignalPipe();
    SignalPipe(const SignalPipe&) = delete;
    SignalPipe& operator=(const SignalPipe&) = delete;

    /// The read end, for poll(2).
    int fd() const { return m_read_fd; }
    /// The signals that arrived since the last call, in order, without waiting.
    std::vector<int> take();

private:
    int m_read_fd = -1;
    std::vector<int> m_signals;
    std::vector<struct sigaction> m_previous;
    struct sigaction m_previous_pipe {};
};

} // namespace jitbox::cli
