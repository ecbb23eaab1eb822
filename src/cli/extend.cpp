#include "commands.hpp"

namespace jitbox::cli {

namespace {

struct ExtendOptions {
    std::string name;
    std::string by;
    std::string reason;
};

void run_extend(Context& context, const ExtendOptions& options) {
    Seconds by = parse_duration_or_throw(options.by, "--by");
    Lifecycle& lifecycle = context.lifecycle();
    lifecycle.reconcile();
    SandboxRecord record = value_or_throw(
        lifecycle.extend(context.resolve_sandbox_name(options.name), by, options.reason));
    if (context.options().json) {
        fmt::print("{}\n", status_to_json({record, "running", true, "", ""}).dump(2));
        return;
    }
    context.notice("{} now expires at {} ({} from now)", record.name,
                   format_rfc3339(record.expires_at),
                   format_time_left(record.expires_at, SystemClock().now()));
}

} // namespace

void register_extend(CLI::App& app, Context& context) {
    auto options = std::make_shared<ExtendOptions>();
    CLI::App* extend = app.add_subcommand("extend", "Add time to a sandbox, up to its max_ttl");
    extend->add_option("name", options->name, "Sandbox to extend")->required()->type_name("NAME");
    extend->add_option("--by", options->by, "Time to add, such as 30m")
        ->required()
        ->type_name("DURATION");
    extend->add_option("--reason", options->reason, "Why; recorded in the audit log")
        ->type_name("TEXT");
    extend->callback([&context, options] { run_extend(context, *options); });
}

} // namespace jitbox::cli
