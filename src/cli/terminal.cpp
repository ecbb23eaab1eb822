#include "terminal.hpp"

#include "jitbox/util/result.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

namespace jitbox::cli {

namespace {

// Shared with the signal handler, which touches nothing else.
volatile std::sig_atomic_t g_raw_terminal_fd = -1; // the terminal in raw mode, or -1
termios g_raw_terminal_saved{};
volatile std::sig_atomic_t g_signal_write_fd = -1;

void forward_signal(int signal) {
    const int saved_errno = errno;
    // tcsetattr is async-signal-safe, so the terminal is usable again even when the main loop
    // is blocked in a request at the moment the user or a service manager stops jitbox.
    if (signal != SIGWINCH && g_raw_terminal_fd >= 0) {
        ::tcsetattr(g_raw_terminal_fd, TCSADRAIN, &g_raw_terminal_saved);
    }
    const auto byte = static_cast<unsigned char>(signal);
    // A full pipe drops the byte, and the loop still reads the earlier ones.
    [[maybe_unused]] const ssize_t written = ::write(g_signal_write_fd, &byte, 1);
    errno = saved_errno;
}

} // namespace

std::optional<WindowSize> window_size(int fd) {
    winsize size{};
    if (::ioctl(fd, TIOCGWINSZ, &size) != 0 || size.ws_row == 0 || size.ws_col == 0) {
        return std::nullopt;
    }
    return WindowSize{size.ws_row, size.ws_col};
}

RawTerminal::RawTerminal(int fd) : m_fd(fd) {
    if (::tcgetattr(fd, &m_saved) != 0) {
        throw Error(ExitCode::exec_failed,
                    fmt::format("cannot read the settings of the terminal: {}",
                                std::strerror(errno)));
    }
    termios raw = m_saved;
    ::cfmakeraw(&raw);
    g_raw_terminal_saved = m_saved;
    g_raw_terminal_fd = fd;
    if (::tcsetattr(fd, TCSADRAIN, &raw) != 0) {
        const int error = errno;
        g_raw_terminal_fd = -1;
        throw Error(ExitCode::exec_failed,
                    fmt::format("cannot put the terminal into raw mode: {}", std::strerror(error)));
    }
}

RawTerminal::~RawTerminal() {
    g_raw_terminal_fd = -1;
    ::tcsetattr(m_fd, TCSADRAIN, &m_saved);
}

SignalPipe::SignalPipe(std::vector<int> signals) : m_signals(std::move(signals)) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        throw Error(ExitCode::exec_failed,
                    fmt::format("cannot create a pipe for signals: {}", std::strerror(errno)));
    }
    m_read_fd = fds[0];
    g_signal_write_fd = fds[1];

    struct sigaction action {};
    action.sa_handler = &forward_signal;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    m_previous.resize(m_signals.size());
    for (std::size_t i = 0; i < m_signals.size(); ++i) {
        ::sigaction(m_signals[i], &action, &m_previous[i]);
    }
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    ::sigaction(SIGPIPE, &ignore, &m_previous_pipe);
}

SignalPipe::~SignalPipe() {
    for (std::size_t i = 0; i < m_signals.size(); ++i) {
        ::sigaction(m_signals[i], &m_previous[i], nullptr);
    }
    ::sigaction(SIGPIPE, &m_previous_pipe, nullptr);
    ::close(g_signal_write_fd);
    g_signal_write_fd = -1;
    ::close(m_read_fd);
}

std::vector<int> SignalPipe::take() {
    std::vector<int> arrived;
    unsigned char bytes[64];
    ssize_t count = 0;
    while ((count = ::read(m_read_fd, bytes, sizeof bytes)) > 0) {
        arrived.insert(arrived.end(), bytes, bytes + count);
    }
    return arrived;
}

} // namespace jitbox::cli
