// An exec session. It creates and starts an exec instance, moves bytes between the local streams
// and the engine's stream in one poll(2) loop, and reads the command's exit code at the end.

#include "container.hpp"
#include "terminal.hpp"

#include "jitbox/providers/docker_stream.hpp"
#include "jitbox/util/log.hpp"

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <optional>
#include <thread>

#include <poll.h>
#include <unistd.h>

namespace jitbox::cli {

namespace {

constexpr std::size_t k_buffer_size = 64 * 1024;

// After the stream ends, the engine may take a moment to mark the exec instance as exited.
constexpr int k_exit_polls = 20;
constexpr auto k_exit_poll_interval = std::chrono::milliseconds(100);

// A TTY can be resized only once its process runs, which is shortly after the stream starts.
constexpr int k_resize_attempts = 10;
constexpr auto k_resize_retry_interval = std::chrono::milliseconds(50);

constexpr std::array<int, 4> k_session_signals = {SIGINT, SIGTERM, SIGHUP, SIGWINCH};

// The engine reports a command that it could not start (not found, not executable, an unknown
// user or working folder) as the only output of the stream. The instance then has exit code 126
// or 127 and no pid. Docker 20.10.24 sends the report on stdout, with exit code 126. Podman 4.3
// sends it on stderr, with 127 when the program or the working folder is missing and 126 when
// it is not executable.
bool failed_to_start(const ExecState& state) {
    return !state.running && state.pid == 0 &&
           (state.exit_code == 126 || state.exit_code == 127);
}

// Writes the command's output to stdout and stderr. The first output may be the engine's report
// that the command did not start. The engine marks the instance as failed before it sends that
// report, so one inspect at that moment decides. The sink holds a report back, so that it becomes
// jitbox's own error message instead of the command's output.
class OutputSink {
public:
    using StateFn = std::function<ExecState()>;

    explicit OutputSink(StateFn inspect) : m_inspect(std::move(inspect)) {}

    void write_stdout(std::string_view bytes) { write_output(STDOUT_FILENO, bytes); }
    void write_stderr(std::string_view bytes) { write_output(STDERR_FILENO, bytes); }

    // Writes the held-back report, if any, and passes all further output through.
    void release() {
        m_phase = Phase::passing;
        write(m_report_fd, m_report);
        m_report.clear();
    }

    /// The engine's report, or empty when the command started.
    const std::string& start_report() const { return m_report; }
    bool reader_gone() const { return m_reader_gone; }

private:
    enum class Phase { first_output, holding_report, passing };

    void write_output(int fd, std::string_view bytes) {
        if (m_phase == Phase::first_output) {
            m_phase = failed_to_start(m_inspect()) ? Phase::holding_report : Phase::passing;
            m_report_fd = fd;
        }
        // The report comes on one stream only, so output on the other means that the command
        // has started.
        if (m_phase == Phase::holding_report && fd != m_report_fd) {
            release();
        }
        if (m_phase == Phase::holding_report) {
            m_report.append(bytes);
            return;
        }
        write(fd, bytes);
    }

    void write(int fd, std::string_view bytes) {
        if (!m_reader_gone && !bytes.empty()) {
            m_reader_gone = !write_all(fd, bytes);
        }
    }

    StateFn m_inspect;
    Phase m_phase = Phase::first_output;
    std::string m_report;
    int m_report_fd = STDOUT_FILENO;
    bool m_reader_gone = false;
};

// Returns the size of the terminal that the container's TTY follows: stdout, else stdin.
std::optional<WindowSize> local_window_size() {
    if (auto size = window_size(STDOUT_FILENO)) {
        return size;
    }
    return window_size(STDIN_FILENO);
}

void resize(DockerContainer& container, const std::string& exec_id, int attempts) {
    const std::optional<WindowSize> size = local_window_size();
    if (!size) {
        return;
    }
    for (int attempt = 1; attempt <= attempts; ++attempt) {
        Result<void> resized = container.resize_exec(exec_id, size->rows, size->columns);
        if (resized) {
            log_debug(1, "TTY of exec {} resized to {}x{}", exec_id, size->columns, size->rows);
            return;
        }
        if (attempt == attempts) {
            log_debug(1, "{}", resized.error().message);
            return;
        }
        std::this_thread::sleep_for(k_resize_retry_interval);
    }
}

ExecState wait_for_exit(DockerContainer& container, const std::string& exec_id) {
    ExecState state = value_or_throw(container.inspect_exec(exec_id));
    for (int poll = 1; poll < k_exit_polls && state.running; ++poll) {
        std::this_thread::sleep_for(k_exit_poll_interval);
        state = value_or_throw(container.inspect_exec(exec_id));
    }
    return state;
}

// Moves bytes between the local streams and the engine's stream until the stream ends or a
// signal ends the session.
class Pump {
public:
    Pump(DockerContainer& container, const std::string& exec_id, RawStream& stream,
         const ExecRequest& request, OutputSink& output, SignalPipe& signals)
        : m_container(container), m_exec_id(exec_id), m_stream(stream), m_tty(request.tty),
          m_stdin_attached(request.attach_stdin), m_stdin_open(request.attach_stdin),
          m_output(output), m_signals(signals) {}

    // Returns the signal that ended the session, or 0 when the stream ended.
    int run() {
        while (true) {
            if (!drain_stream() || m_output.reader_gone()) {
                return 0;
            }
            std::array<pollfd, 3> fds = {{
                {m_stream.socket(), static_cast<short>(POLLIN | (m_input.empty() ? 0 : POLLOUT)),
                 0},
                {m_signals.fd(), POLLIN, 0},
                {reads_stdin() ? STDIN_FILENO : -1, POLLIN, 0},
            }};
            if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) {
                throw Error(ExitCode::exec_failed,
                            fmt::format("waiting for the session's streams failed: {}",
                                        std::strerror(errno)));
            }
            if (const int signal = handle_signals(); signal != 0) {
                return signal;
            }
            if (fds[2].revents != 0) {
                read_stdin();
            }
            send_input();
        }
    }

private:
    bool reads_stdin() const { return m_stdin_open && m_input.size() < k_buffer_size; }

    // Receives every byte that the stream has available now. Returns false at its end.
    bool drain_stream() {
        while (true) {
            Result<std::optional<std::size_t>> count = m_stream.receive(std::span<char>(m_buffer));
            if (!count) {
                return !ended_with_reset(count.error());
            }
            if (!*count) {
                return true;
            }
            if (**count == 0) {
                return false;
            }
            deliver(std::string_view(m_buffer.data(), **count));
        }
    }

    // Podman 4.3 closes the stream of a command that ended with stdin bytes still unread, so
    // the connection is reset (ECONNRESET) instead of ending. Docker 20.10 ends it cleanly. A
    // receive failure after the command has exited therefore counts as the stream's end. Any
    // other receive failure throws.
    bool ended_with_reset(const Failure& failure) {
        const ExecState state = wait_for_exit(m_container, m_exec_id);
        if (state.running || !state.exit_code) {
            throw Error(failure);
        }
        log_debug(1, "{}, after the command exited; taking it as the end of the stream",
                  failure.message);
        return true;
    }

    void deliver(std::string_view bytes) {
        if (m_tty) {
            m_output.write_stdout(bytes);
            return;
        }
        throw_if_failed(m_demuxer.feed(bytes, [this](StreamKind kind, std::string_view payload) {
            if (kind == StreamKind::stderr_stream) {
                m_output.write_stderr(payload);
            } else {
                m_output.write_stdout(payload);
            }
        }));
    }

    void read_stdin() {
        char buffer[k_buffer_size];
        const ssize_t count = ::read(STDIN_FILENO, buffer, sizeof buffer);
        if (count > 0) {
            m_input.append(buffer, static_cast<std::size_t>(count));
            return;
        }
        if (count < 0 && (errno == EINTR || errno == EAGAIN)) {
            return;
        }
        if (count < 0) {
            log_debug(1, "reading stdin failed ({}); closing the command's input",
                      std::strerror(errno));
        }
        m_stdin_open = false;
    }

    // Sends the bytes read from stdin. Once all of them are sent and stdin has ended, closes the
    // stream's input.
    void send_input() {
        while (!m_input.empty()) {
            Result<std::optional<std::size_t>> sent = m_stream.send(m_input);
            if (!sent) {
                stop_input(sent.error());
                return;
            }
            if (!*sent) {
                break;
            }
            m_input.erase(0, **sent);
        }
        if (m_stdin_attached && !m_stdin_open && m_input.empty() && !m_input_closed) {
            m_input_closed = true;
            if (Result<void> closed = m_stream.close_write(); !closed) {
                stop_input(closed.error());
            }
        }
    }

    // A command that ends before reading all its input, such as `head -1`, can leave the engine
    // unable to accept the rest. The session does not fail then, because the command's exit
    // code decides the outcome.
    // NOTE: Podman 4.3 may then lose the command's last output and send its own "Error: write
    // unixpacket ...: connection reset by peer" on stderr instead, which jitbox passes on.
    void stop_input(const Failure& failure) {
        log_debug(1, "{}; the rest of stdin is dropped", failure.message);
        m_input.clear();
        m_stdin_open = false;
        m_input_closed = true;
    }

    int handle_signals() {
        for (const int signal : m_signals.take()) {
            if (signal != SIGWINCH) {
                return signal;
            }
            if (m_tty) {
                resize(m_container, m_exec_id, 1);
            }
        }
        return 0;
    }

    DockerContainer& m_container;
    const std::string& m_exec_id;
    RawStream& m_stream;
    bool m_tty;
    bool m_stdin_attached;
    bool m_stdin_open;          // stdin has not reached its end
    bool m_input_closed = false; // the end of stdin was passed to the engine
    OutputSink& m_output;
    SignalPipe& m_signals;
    StreamDemuxer m_demuxer;
    std::string m_input; // read from stdin, not yet sent
    std::array<char, k_buffer_size> m_buffer{};
};

// Turns the engine's report that the command did not start into jitbox's error. The reason is
// the report's first line. Podman 4.3 puts "Error: " before it and adds a second line about its
// own attach socket, such as "Error: read unixpacket ...: connection reset by peer".
[[noreturn]] void throw_start_failure(const std::string& report, const std::string& command,
                                      const std::string& sandbox) {
    std::string reason = report.substr(0, report.find('\n'));
    while (!reason.empty() && reason.back() == '\r') {
        reason.pop_back();
    }
    constexpr std::string_view k_podman_prefix = "Error: ";
    if (reason.starts_with(k_podman_prefix)) {
        reason.erase(0, k_podman_prefix.size());
    }
    // Such as `exec: "psql": executable file not found in $PATH`, or `stat /opt/x: no such
    // file or directory` for a path. A missing working folder fails in chdir instead, so it is
    // not a missing command.
    const bool not_found = reason.find("executable file not found") != std::string::npos ||
                           (reason.find("no such file or directory") != std::string::npos &&
                            reason.find("chdir") == std::string::npos);
    if (not_found) {
        throw Error(ExitCode::command_not_found,
                    fmt::format("{}: command not found in sandbox \"{}\" ({})", command, sandbox,
                                reason));
    }
    throw Error(ExitCode::cannot_execute,
                fmt::format("cannot run {} in sandbox \"{}\": {}", command, sandbox, reason));
}

// Returns the command's exit status once the stream has ended normally.
int finish(Context& context, DockerSandbox& sandbox, const std::string& exec_id,
           const ExecRequest& request, OutputSink& output) {
    const ExecState state = wait_for_exit(*sandbox.container, exec_id);
    if (!output.start_report().empty() && failed_to_start(state)) {
        throw_start_failure(output.start_report(), request.command.front(), sandbox.record.name);
    }
    output.release();
    if (state.running) {
        // NOTE: an engine that closes the stream while the command runs lands here too. Docker
        // 20.10.24 does that only on the detach keys, and then it ends the command as well.
        context.notice("detached from {}, which still runs in sandbox {}",
                       request.command.front(), sandbox.record.name);
        return 0;
    }
    if (!state.exit_code) {
        throw Error(ExitCode::exec_failed,
                    fmt::format("the engine reported no exit code for {} in sandbox \"{}\"",
                                request.command.front(), sandbox.record.name));
    }
    return *state.exit_code;
}

std::unique_ptr<RawStream> start(Context& context, DockerSandbox& sandbox,
                                 const ExecRequest& request, const SessionAudit& audit,
                                 std::string& exec_id) {
    Lifecycle& lifecycle = context.lifecycle();
    Result<std::string> created = sandbox.container->create_exec(request);
    Result<std::unique_ptr<RawStream>> stream =
        created ? sandbox.container->start_exec(*created, request.tty) : created.error();
    if (!stream) {
        lifecycle.audit_use(audit.action, sandbox.record, audit.detail, &stream.error());
        if (stream.error().code == ExitCode::cannot_execute) {
            throw_start_failure(stream.error().message, request.command.front(),
                                sandbox.record.name);
        }
        throw Error(stream.error());
    }
    lifecycle.audit_use(audit.action, sandbox.record, audit.detail);
    exec_id = *created;
    log_debug(1, "exec {} started in sandbox {}", exec_id, sandbox.record.name);
    return std::move(stream).value();
}

} // namespace

int run_session(Context& context, DockerSandbox& sandbox, const ExecRequest& request,
                const SessionAudit& audit) {
    std::fflush(stdout);
    std::fflush(stderr);
    std::string exec_id;
    const std::unique_ptr<RawStream> stream = start(context, sandbox, request, audit, exec_id);
    OutputSink output([&sandbox, &exec_id] {
        return value_or_throw(sandbox.container->inspect_exec(exec_id));
    });
    int signal = 0;
    {
        SignalPipe signals(std::vector<int>(k_session_signals.begin(), k_session_signals.end()));
        std::optional<RawTerminal> raw;
        if (request.tty && request.attach_stdin && is_terminal(STDIN_FILENO)) {
            raw.emplace(STDIN_FILENO);
        }
        if (request.tty) {
            resize(*sandbox.container, exec_id, k_resize_attempts);
        }
        signal = Pump(*sandbox.container, exec_id, *stream, request, output, signals).run();
    }
    if (output.reader_gone()) {
        return 128 + SIGPIPE;
    }
    if (signal != 0) {
        output.release();
        context.notice("{} ended the session; {} may still run in sandbox {}",
                       sigabbrev_np(signal) ? fmt::format("SIG{}", sigabbrev_np(signal))
                                            : fmt::format("signal {}", signal),
                       request.command.front(), sandbox.record.name);
        return 128 + signal;
    }
    return finish(context, sandbox, exec_id, request, output);
}

} // namespace jitbox::cli
