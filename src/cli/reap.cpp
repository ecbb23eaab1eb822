#include "commands.hpp"

#include <algorithm>

namespace jitbox::cli {

namespace {

struct ReapOptions {
    std::string state_dir;
    std::string audit_log; // empty: audit.log in the state folder
    int ready_fd = -1;
    int lock_fd = -1;
    std::string name;
};

// True for enforced mode's state folder and the owners' folders inside it, compared by whole
// components after removing `.` and `..`.
bool is_enforced_state_dir(const std::string& dir) {
    const std::filesystem::path root(enforced::k_state_dir);
    const std::filesystem::path path = std::filesystem::path(dir).lexically_normal();
    const auto [unused, rest] = std::mismatch(path.begin(), path.end(), root.begin(), root.end());
    return rest == root.end();
}

// The background child. It rebuilds its services from the state folder alone: the
// configuration may have changed or gone since `up`, and teardown needs only the record.
int run_reap(const ReapOptions& options) {
    // In enforced mode the child runs as the jitbox account for good, so the user who started
    // it cannot signal it.
    if (enforced::is_enforced() && !is_enforced_state_dir(options.state_dir)) {
        throw Error(ExitCode::usage, fmt::format("enforced mode keeps its state in {}, not in {}",
                                                 enforced::k_state_dir, options.state_dir));
    }
    throw_if_failed(enforced::become_service_account());
    StateStore store = value_or_throw(StateStore::open(options.state_dir));
    AuditLog audit(enforced::is_enforced()     ? std::filesystem::path(enforced::k_audit_log_path)
                   : options.audit_log.empty() ? store.dir() / "audit.log"
                                               : std::filesystem::path(options.audit_log));
    EnvironmentProviderFactory providers;
    SystemClock clock;
    ProcessSupervisor children(store, options.audit_log);
    Config no_templates;
    // The child opens only the backends that records name, so it needs no configuration.
    SecretStores keyrings([] { return std::string(); });
    LifecycleServices services{no_templates,
                               store,
                               audit,
                               providers,
                               clock,
                               children,
                               value_or_throw(current_identity()),
                               [](const ProgressEvent&) {},
                               PolicyInputs{}};
    services.open_secrets = [&keyrings](std::string_view backend) {
        return keyrings.open(backend);
    };
    Lifecycle lifecycle(std::move(services));

    // The last record read, so a record written after the sandbox is gone still names its id
    // and template.
    SandboxRecord last_seen;
    last_seen.name = options.name;
    ReaperHooks hooks;
    hooks.read_deadline = [&]() -> std::optional<TimePoint> {
        auto found = store.find(options.name);
        if (!found || !found->has_value()) {
            return std::nullopt;
        }
        last_seen = **found;
        // A removal that failed is due again at once, whatever the deadline.
        if (last_seen.state == SandboxState::removing) {
            return TimePoint{};
        }
        return last_seen.expires_at;
    };
    // Only the first failed attempt of a run of retries is audited, and the success that ends
    // the run records how long it waited, so an engine that is down for hours adds two records.
    std::optional<TimePoint> failing_since;
    hooks.expire = [&] {
        std::string detail;
        if (failing_since) {
            detail = fmt::format("removed after waiting {} for the engine",
                                 format_duration(clock.now() - *failing_since));
        }
        auto expired = lifecycle.expire(
            options.name, failing_since ? FailureAudit::skip : FailureAudit::record, detail);
        if (!expired && !failing_since) {
            failing_since = clock.now();
        } else if (expired) {
            failing_since.reset();
        }
        return expired;
    };
    hooks.give_up = [&](const std::string& message) {
        AuditEvent event;
        event.time = clock.now();
        event.user = value_or_throw(current_identity()).user;
        event.action = last_seen.removal_action.empty() ? "expire" : last_seen.removal_action;
        event.sandbox = options.name;
        event.sandbox_id = last_seen.id;
        event.template_name = last_seen.template_name;
        event.result = "error";
        event.error = message;
        event.detail = "the background child stopped retrying";
        (void)audit.append(event);
    };
    return run_reaper(store, options.name, ReaperStart{options.ready_fd, options.lock_fd, options.audit_log}, hooks);
}

} // namespace

void register_reap(CLI::App& app, Context&) {
    auto options = std::make_shared<ReapOptions>();
    // Hidden: started by `up` and by commands that find a sandbox without its child.
    CLI::App* reap = app.add_subcommand("__reap", "");
    reap->group("");
    reap->add_option("--state-dir", options->state_dir)->required();
    reap->add_option("--audit-log", options->audit_log);
    reap->add_option("--ready-fd", options->ready_fd);
    // Set by jitbox-waiter when the deadline comes: the inherited descriptor holding the lock.
    reap->add_option("--lock-fd", options->lock_fd)->excludes("--ready-fd");
    reap->add_option("name", options->name)->required();
    reap->callback([options] { std::exit(run_reap(*options)); });
}

} // namespace jitbox::cli
