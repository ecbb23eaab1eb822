// Reading the MFA code that a template with an mfa_serial needs: one line from standard input
// with --mfa-stdin, else a prompt on the controlling terminal. The code is never an argument,
// so it never shows in a process listing.

#include "commands.hpp"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

namespace jitbox::cli {

namespace {

// How long jitbox waits for an MFA code. A device shows a new code every 30 s or so, so a prompt
// left longer than this is abandoned.
constexpr int k_mfa_wait_seconds = 120;
constexpr std::size_t k_max_mfa_line = 64;

// Reads one line from `fd`, polling so that Ctrl-C, deferred by InterruptGuard, ends the wait.
Result<std::string> read_mfa_line(int fd, const char* source,
                                  const std::function<bool()>& interrupted) {
    std::string line;
    for (int waited_ms = 0; waited_ms < k_mfa_wait_seconds * 1000;) {
        if (interrupted()) {
            return make_failure(ExitCode::interrupted, "interrupted while waiting for the MFA code");
        }
        pollfd ready{fd, POLLIN, 0};
        const int polled = ::poll(&ready, 1, 250);
        if (polled == 0 || (polled < 0 && errno == EINTR)) {
            waited_ms += 250;
            continue;
        }
        char c = 0;
        const ssize_t got = ::read(fd, &c, 1);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0 || c == '\n') {
            if (got < 0) {
                return make_failure(ExitCode::usage, "cannot read the MFA code from {}: {}", source,
                                    std::strerror(errno));
            }
            return line;
        }
        if (c != '\r' && c != ' ' && line.size() < k_max_mfa_line) {
            line += c;
        }
    }
    return make_failure(ExitCode::usage, "no MFA code arrived on {} within {} s", source,
                        k_mfa_wait_seconds);
}

// Asks on the controlling terminal, never on stdout, so `up`'s output stays the name alone.
Result<std::string> prompt_mfa_code(const std::function<bool()>& interrupted) {
    const int tty = ::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (tty < 0) {
        return make_failure(ExitCode::usage,
                            "this template needs an MFA code, and there is no "
                            "terminal to ask on; pass --mfa-stdin and pipe the code in");
    }
    constexpr std::string_view k_prompt = "jitbox: MFA code: ";
    const bool prompted =
        ::write(tty, k_prompt.data(), k_prompt.size()) == static_cast<ssize_t>(k_prompt.size());
    auto code = prompted ? read_mfa_line(tty, "the terminal", interrupted)
                         : Result<std::string>(make_failure(
                               ExitCode::usage, "cannot write the MFA prompt to the terminal"));
    ::close(tty);
    return code;
}

} // namespace

MfaCodeFn make_mfa_source(bool from_stdin, std::function<bool()> interrupted) {
    if (from_stdin) {
        return [interrupted] { return read_mfa_line(STDIN_FILENO, "standard input", interrupted); };
    }
    return [interrupted] { return prompt_mfa_code(interrupted); };
}

} // namespace jitbox::cli
