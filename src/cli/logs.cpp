// `jitbox logs NAME`: the output of a docker sandbox's container, as the engine keeps it.

#include "container.hpp"
#include "terminal.hpp"

#include "jitbox/providers/docker_stream.hpp"

#include <charconv>

#include <unistd.h>

namespace jitbox::cli {

namespace {

struct LogsOptions {
    std::string name;
    bool follow = false;
    std::string tail = "all";
    std::string since;
    bool timestamps = false;
};

std::optional<long> parse_tail(const std::string& text) {
    long lines = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), lines);
    if (error != std::errc() || end != text.data() + text.size() || lines < 0) {
        return std::nullopt;
    }
    return lines;
}

CLI::Validator tail_validator() {
    return CLI::Validator(
        [](std::string& value) -> std::string {
            if (value == "all" || parse_tail(value)) {
                return {};
            }
            return fmt::format("\"{}\" is not a number of lines; use 0 or more, or all", value);
        },
        "N");
}

// Passes the log on as it arrives: the container's stdout to stdout and its stderr to stderr,
// or everything to stdout for a container with a TTY, whose log is one raw stream.
class LogWriter {
public:
    explicit LogWriter(bool raw) : m_raw(raw) {}

    void write(std::string_view chunk) {
        if (m_raw) {
            put(STDOUT_FILENO, chunk);
            return;
        }
        throw_if_failed(m_demuxer.feed(chunk, [this](StreamKind kind, std::string_view payload) {
            put(kind == StreamKind::stderr_stream ? STDERR_FILENO : STDOUT_FILENO, payload);
        }));
    }

    bool reader_gone() const { return m_reader_gone; }

private:
    void put(int fd, std::string_view bytes) {
        if (!m_reader_gone) {
            m_reader_gone = !write_all(fd, bytes);
        }
    }

    bool m_raw;
    bool m_reader_gone = false;
    StreamDemuxer m_demuxer;
};

void run_logs(Context& context, const LogsOptions& options) {
    LogsRequest request;
    request.follow = options.follow;
    request.tail = options.tail == "all" ? std::nullopt : parse_tail(options.tail);
    request.timestamps = options.timestamps;
    if (!options.since.empty()) {
        request.since = parse_since(options.since, SystemClock().now(), "--since");
    }

    DockerSandbox sandbox = open_docker_sandbox(find_live_sandbox(context, options.name), "logs");
    const ContainerState state = value_or_throw(sandbox.container->inspect());
    LogWriter writer(state.tty);
    // Ctrl-C, SIGTERM or SIGHUP end the stream at the next chunk or within about a second.
    SignalPipe signals({SIGINT, SIGTERM, SIGHUP});
    int stop_signal = 0;
    request.cancelled = [&signals, &stop_signal, &writer] {
        for (const int signal : signals.take()) {
            stop_signal = stop_signal != 0 ? stop_signal : signal;
        }
        return stop_signal != 0 || writer.reader_gone();
    };
    std::fflush(stdout);
    throw_if_failed(sandbox.container->stream_logs(
        request, [&writer](std::string_view chunk) { writer.write(chunk); }));
    if (stop_signal != 0) {
        context.set_exit_status(128 + stop_signal);
    }
}

} // namespace

void register_logs(CLI::App& app, Context& context) {
    auto options = std::make_shared<LogsOptions>();
    CLI::App* logs = app.add_subcommand(
        "logs", "Print the output of a docker sandbox's container: stdout to stdout, stderr to "
                "stderr");
    logs->add_option("name", options->name, "Sandbox")->required()->type_name("NAME");
    logs->add_flag("-f,--follow", options->follow,
                   "Keep printing new output until the container stops or Ctrl-C");
    logs->add_option("--tail", options->tail, "Print only the last N lines, or all (the default)")
        ->type_name("N")
        ->check(tail_validator());
    logs->add_option("--since", options->since,
                     "Only output of the last DURATION, such as 10m, or since an RFC 3339 time")
        ->type_name("DURATION|TIME");
    logs->add_flag("-t,--timestamps", options->timestamps,
                   "Put the engine's RFC 3339 time before each line");
    logs->footer("Exit codes: 0 when the log or the container ended; 130 when Ctrl-C (SIGINT) "
                 "ended --follow, 143 for SIGTERM, 129 for SIGHUP; 4 when the sandbox is not "
                 "live; 3 when the engine fails.");
    logs->callback([&context, options] { run_logs(context, *options); });
}

} // namespace jitbox::cli
