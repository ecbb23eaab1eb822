#include "commands.hpp"

namespace jitbox::cli {

namespace {

struct ReapOptions {
    std::string state_dir;
    int ready_fd = -1;
    std::string name;
};

// The background child. It rebuilds its services from the state folder alone: the
// configuration may have changed or gone since `up`, and teardown needs only the record.
int run_reap(const ReapOptions& options) {
    StateStore store = value_or_throw(StateStore::open(options.state_dir));
    AuditLog audit(store.dir() / "audit.log");
    EnvironmentProviderFactory providers;
    SystemClock clock;
    ProcessSupervisor children(store);
    Config no_templates;
    Lifecycle lifecycle({no_templates, store, audit, providers, clock, children,
                         value_or_throw(current_identity()), [](std::string_view) {}});

    // The last record read, so a report written after the record is gone still names the
    // sandbox's id and template.
    SandboxRecord last_seen;
    last_seen.name = options.name;
    ReaperHooks hooks;
    hooks.read_deadline = [&]() -> std::optional<TimePoint> {
        auto found = store.find(options.name);
        if (!found || !found->has_value()) {
            return std::nullopt;
        }
        last_seen = **found;
        return last_seen.expires_at;
    };
    // Only the first failed attempt of a run of retries is audited; the outcome is reported
    // once through `report`, so an engine that is down for hours adds two records, not hundreds.
    bool failing = false;
    hooks.expire = [&] {
        auto expired = lifecycle.expire(options.name, failing ? FailureAudit::skip
                                                              : FailureAudit::record);
        failing = !expired.ok();
        return expired;
    };
    hooks.report = [&](const std::string& message, bool gave_up) {
        AuditEvent event{clock.now(), value_or_throw(current_identity()).user, "expire",
                         options.name, last_seen.id, last_seen.template_name,
                         gave_up ? "error" : "ok", gave_up ? message : "", message};
        (void)audit.append(event);
    };
    return run_reaper(store, options.name, options.ready_fd, hooks);
}

} // namespace

void register_reap(CLI::App& app, Context&) {
    auto options = std::make_shared<ReapOptions>();
    // Hidden: started by `up` and by commands that find a sandbox without its child.
    CLI::App* reap = app.add_subcommand("__reap", "");
    reap->group("");
    reap->add_option("--state-dir", options->state_dir)->required();
    reap->add_option("--ready-fd", options->ready_fd);
    reap->add_option("name", options->name)->required();
    reap->callback([options] { std::exit(run_reap(*options)); });
}

} // namespace jitbox::cli
