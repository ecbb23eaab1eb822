#include "commands.hpp"
#include "jitbox/util/log.hpp"

#include <algorithm>
#include <tuple>

namespace jitbox::cli {

namespace {

struct StatusOptions {
    std::string name;
    bool check = false;
    bool prompt = false;
    bool all_users = false;
};

// Runs `status NAME --check`, whose exit status alone reports whether the sandbox runs, for
// scripts and Makefiles. It skips reconciliation, so it changes nothing and queries the provider
// once. Exit statuses 4 and 10 report a result, not an error, so they print no message. With
// `-v`, the debug log names the state.
void run_check(Context& context, const std::string& name) {
    auto status = context.lifecycle().status_of(name);
    if (!status && status.error().code == ExitCode::not_found) {
        log_debug(1, "{}", status.error().message);
        throw Error(ExitCode::not_found, "");
    }
    const std::string state = value_or_throw(std::move(status)).state;
    if (state == "running") {
        return;
    }
    log_debug(1, "sandbox {} is {}", name, state);
    throw Error(ExitCode::not_running, "");
}

// Everything known is printed first. Then an engine that did not respond makes the command
// fail, so a script can tell "no sandboxes" from "could not ask".
void fail_on_unknown(const std::vector<SandboxStatus>& statuses) {
    for (const auto& status : statuses) {
        if (status.state == "unknown") {
            std::fflush(stdout);
            throw Error(ExitCode::provider, status.problem);
        }
    }
}

// The sandboxes of every owner in the state folder, by owner and then name. With a per-user
// state folder those are the caller's own.
std::vector<SandboxStatus> every_users_statuses(Context& context) {
    Lifecycle& own = context.lifecycle();
    throw_if_failed(own.check_status_all());
    std::vector<SandboxStatus> statuses = value_or_throw(own.status());
    const std::string self = value_or_throw(current_identity()).user;
    for (const std::string& owner :
         value_or_throw(state_owners(context.state_root(), context.state_layout()))) {
        if (owner == self) {
            continue;
        }
        auto theirs = value_or_throw(context.lifecycle_of(owner).status());
        statuses.insert(statuses.end(), theirs.begin(), theirs.end());
    }
    std::stable_sort(statuses.begin(), statuses.end(), [](const auto& left, const auto& right) {
        return std::tie(left.record.owner, left.record.name) <
               std::tie(right.record.owner, right.record.name);
    });
    return statuses;
}

void run_status(Context& context, const StatusOptions& options) {
    if (options.check && options.prompt) {
        throw Error(ExitCode::usage, "--check and --prompt cannot be combined; give one");
    }
    if (options.all_users && (options.check || options.prompt)) {
        throw Error(ExitCode::usage, "--all-users lists sandboxes and cannot be combined with "
                                     "--check or --prompt; give one");
    }
    if (options.check) {
        if (options.name.empty()) {
            throw Error(ExitCode::usage, "--check needs the name of a sandbox, such as "
                                         "`jitbox status db --check`");
        }
        run_check(context, options.name);
        return;
    }
    if (options.prompt) {
        if (!options.name.empty()) {
            throw Error(ExitCode::usage, "--prompt covers all of your sandboxes; leave out the "
                                         "name");
        }
        print_prompt_segment(context);
        return;
    }
    std::vector<SandboxStatus> statuses;
    if (options.all_users) {
        context.lifecycle().reconcile();
        statuses = every_users_statuses(context);
    } else {
        // The list request goes out before the records are read, so that the engine replies
        // meanwhile. The configuration loads first, because a bad file must fail at once, not
        // after the engine's reply.
        context.config();
        auto lookahead = start_status_lookahead(context.store(), context.providers());
        Lifecycle& lifecycle = context.lifecycle();
        statuses = value_or_throw(lifecycle.reconcile_and_status(std::move(lookahead)));
    }
    if (!options.name.empty()) {
        std::erase_if(statuses, [&](const auto& status) {
            return status.record.name != options.name;
        });
        if (statuses.empty()) {
            throw Error(ExitCode::not_found, fmt::format("no sandbox named \"{}\"; `jitbox status` "
                                                         "lists yours", options.name));
        }
    }

    if (context.options().json) {
        nlohmann::json array = nlohmann::json::array();
        for (const auto& status : statuses) {
            array.push_back(status_to_json(status));
        }
        fmt::print("{}\n", array.dump(2));
        fail_on_unknown(statuses);
        return;
    }
    if (context.options().quiet) {
        for (const auto& status : statuses) {
            fmt::print("{}\n", status.record.name);
        }
        fail_on_unknown(statuses);
        return;
    }
    TimePoint now = SystemClock().now();
    // The DETAIL column (such as an EC2 instance's id and addresses) appears only when a
    // provider fills it, so docker-only listings keep their columns.
    const bool with_detail = std::any_of(statuses.begin(), statuses.end(),
                                         [](const auto& status) { return !status.detail.empty(); });
    std::vector<std::vector<std::string>> rows = {
        {"NAME", "TEMPLATE", "PROVIDER", "STATE", "EXPIRES IN", "OWNER"}};
    if (with_detail) {
        rows.front().push_back("DETAIL");
    }
    for (const auto& status : statuses) {
        const auto& record = status.record;
        rows.push_back({record.name, record.template_name, record.provider, status.state,
                        format_time_left(record.expires_at, now), record.owner});
        if (with_detail) {
            rows.back().push_back(status.detail);
        }
    }
    print_table(rows);
    fail_on_unknown(statuses);
}

} // namespace

void register_status(CLI::App& app, Context& context) {
    auto options = std::make_shared<StatusOptions>();
    CLI::App* status = app.add_subcommand("status", "List your sandboxes, or show one");
    status->add_option("name", options->name, "Show only this sandbox")->type_name("NAME");
    status->add_flag("--check", options->check,
                     "Print nothing; exit 0 when NAME runs, 4 when it does not exist, 10 when it "
                     "is expired, being created or removed, or not running");
    status->add_flag("--all-users", options->all_users,
                     "List every user's sandboxes in the state folder; needs a role whose "
                     "actions include status-all");
    status->add_flag("--prompt", options->prompt,
                     "Print a short segment for a shell prompt, such as `db 12m,+2`, from the "
                     "state records alone");
    status->callback([&context, options] { run_status(context, *options); });
}

} // namespace jitbox::cli
