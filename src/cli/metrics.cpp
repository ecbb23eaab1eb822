// `jitbox metrics`: the audit counters and the live sandboxes in the Prometheus text format.

#include "commands.hpp"

#include "jitbox/audit/metrics.hpp"

namespace jitbox::cli {

namespace {

void run_metrics(Context& context) {
    if (context.options().json) {
        throw Error(ExitCode::usage, "metrics prints only the Prometheus text format; use "
                                     "`jitbox audit stats --json` for the counters as JSON");
    }
    AuditStats stats = compute_audit_stats(read_audit_records(audit_log_path(context)),
                                           std::nullopt, SystemClock().now());
    std::map<UsageKey, int> live;
    for (const auto& record : value_or_throw(context.store().list())) {
        if (record.state == SandboxState::running) {
            ++live[{record.owner, record.template_name}];
        }
    }
    fmt::print("{}", format_metrics(stats, live));
}

} // namespace

void register_metrics(CLI::App& app, Context& context) {
    CLI::App* metrics = app.add_subcommand(
        "metrics", "Print the audit counters and live sandboxes in the Prometheus text format, "
                   "for node_exporter's textfile collector");
    metrics->callback([&context] { run_metrics(context); });
}

} // namespace jitbox::cli
