#include "commands.hpp"

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

namespace jitbox::cli {

namespace {

volatile std::sig_atomic_t g_interrupted = 0;

void record_interrupt(int) { g_interrupted = 1; }

// Defers SIGINT, SIGTERM and SIGHUP while `up` creates resources, so an interrupted `up`
// removes what it made instead of dying between two API calls.
class InterruptGuard {
public:
    InterruptGuard() {
        struct sigaction action {};
        action.sa_handler = &record_interrupt;
        action.sa_flags = SA_RESTART; // let a request in flight finish, then roll back
        sigemptyset(&action.sa_mask);
        for (std::size_t i = 0; i < k_signals.size(); ++i) {
            ::sigaction(k_signals[i], &action, &m_previous[i]);
        }
    }
    ~InterruptGuard() {
        for (std::size_t i = 0; i < k_signals.size(); ++i) {
            ::sigaction(k_signals[i], &m_previous[i], nullptr);
        }
    }
    InterruptGuard(const InterruptGuard&) = delete;
    InterruptGuard& operator=(const InterruptGuard&) = delete;

private:
    static constexpr std::array<int, 3> k_signals = {SIGINT, SIGTERM, SIGHUP};
    std::array<struct sigaction, 3> m_previous{};
};

// Ignores SIGPIPE while it lives, so a failed write of the name is an error jitbox can handle
// instead of a silent death that leaves a sandbox whose name no one received.
class BrokenPipeGuard {
public:
    BrokenPipeGuard() { m_previous = std::signal(SIGPIPE, SIG_IGN); }
    ~BrokenPipeGuard() { std::signal(SIGPIPE, m_previous); }
    BrokenPipeGuard(const BrokenPipeGuard&) = delete;
    BrokenPipeGuard& operator=(const BrokenPipeGuard&) = delete;

private:
    void (*m_previous)(int) = SIG_DFL;
};

struct UpOptions {
    std::string template_name;
    std::string ttl;
    std::optional<std::string> name;
    std::string reason;
    bool break_glass = false;
    bool mfa_stdin = false;
    bool wait = false;
    std::string wait_timeout;
};

// How long `up --wait` waits when --wait-timeout is not given: room for a database that loads
// fixtures before its health check passes.
constexpr Seconds k_default_wait_timeout{5 * 60};

void print_result(Context& context, const SandboxRecord& record) {
    if (context.options().json) {
        fmt::print("{}\n", status_to_json({record, "running", true, "", ""}).dump(2));
        return;
    }
    fmt::print("{}\n", record.name);
    std::string ports;
    for (const auto& port : record.resources.ports) {
        ports += fmt::format(", {} on {}:{}", port.container_port, port.host_ip, port.host_port);
    }
    context.notice("sandbox {} (id {}, template {}) is up until {} ({} from now){}", record.name,
                   record.id, record.template_name, format_rfc3339(record.expires_at),
                   format_duration(std::chrono::duration_cast<Seconds>(record.expires_at -
                                                                       record.created_at)),
                   ports);
}

void run_up(Context& context, const UpOptions& options) {
    InterruptGuard interrupts; // first, so even an early Ctrl-C ends with the documented 130
    UpRequest request;
    request.template_name = options.template_name;
    if (!options.ttl.empty()) {
        request.ttl = parse_duration_or_throw(options.ttl, "--ttl");
    }
    if (options.name) {
        request.name = *options.name;
    }
    request.reason = options.reason;
    request.break_glass = options.break_glass;
    if (!options.wait_timeout.empty()) {
        request.wait_timeout = parse_duration_or_throw(options.wait_timeout, "--wait-timeout");
        if (*request.wait_timeout <= Seconds(0)) {
            throw Error(ExitCode::usage, "--wait-timeout must be longer than 0s, such as 2m");
        }
    } else if (options.wait) {
        request.wait_timeout = k_default_wait_timeout;
    }
    request.mfa_code = make_mfa_source(options.mfa_stdin, [] { return g_interrupted != 0; });
    Lifecycle& lifecycle = context.lifecycle([] { return g_interrupted != 0; });
    lifecycle.reconcile();
    SandboxRecord record = value_or_throw(lifecycle.up(request));
    context.end_progress();
    if (record.break_glass) {
        // Loud on purpose, even with --quiet: an emergency grant must never pass unnoticed.
        fmt::print(stderr, "jitbox: BREAK-GLASS grant of \"{}\" for {} (reason: {}); it is "
                   "recorded in the audit log\n", record.name,
                   format_duration(std::chrono::duration_cast<Seconds>(record.expires_at -
                                                                       record.created_at)),
                   record.reason);
    }

    BrokenPipeGuard pipe_guard;
    bool written = true;
    try {
        print_result(context, record);
        written = std::fflush(stdout) == 0 && std::ferror(stdout) == 0;
    } catch (const std::system_error&) {
        written = false;
    }
    if (!written) {
        (void)lifecycle.down(record.name);
        throw Error(ExitCode::internal, fmt::format("cannot write the name of sandbox \"{}\" to "
                                                    "standard output, so it was removed again",
                                                    record.name));
    }
}

} // namespace

void register_up(CLI::App& app, Context& context) {
    auto options = std::make_shared<UpOptions>();
    CLI::App* up = app.add_subcommand("up", "Create a sandbox from a template; prints its name");
    up->add_option("template", options->template_name,
                   "Template to use (default: the configuration's default_template)");
    up->add_option("--ttl", options->ttl, "Lifetime, such as 45m or 1h30m (default: the "
                   "template's ttl; at most its max_ttl)")
        ->type_name("DURATION");
    up->add_option("--name", options->name,
                   "Sandbox name: lower-case letters, digits and hyphens (default: generated)")
        ->type_name("NAME");
    up->add_option("--reason", options->reason,
                   "Why you need the sandbox; recorded in the audit log, required by some roles")
        ->type_name("TEXT");
    up->add_flag("--break-glass", options->break_glass,
                 "Emergency access through a role that allows it: needs --reason, shorter ttl, "
                 "audited as break-glass");
    up->add_flag("--wait", options->wait,
                 "Return only once the sandbox runs and, if it has a health check, is healthy; "
                 "remove it again and exit 11 when it exits, becomes unhealthy or times out");
    up->add_option("--wait-timeout", options->wait_timeout,
                   "Longest wait for --wait, such as 90s; implies --wait (default: 5m)")
        ->type_name("DURATION");
    up->add_flag("--mfa-stdin", options->mfa_stdin,
                 "Read the MFA code for a template with mfa_serial from one line of standard "
                 "input (default: ask on the terminal)");
    up->callback([&context, options] { run_up(context, *options); });
}

} // namespace jitbox::cli
