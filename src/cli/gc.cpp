#include "commands.hpp"

namespace jitbox::cli {

namespace {

struct GcOptions {
    bool dry_run = false;
    bool all_users = false;
};

void run_gc(Context& context, const GcOptions& options) {
    // Like every command that changes something, gc first rolls back what a killed `up` left
    // `creating`, because the label pass below skips such records. A dry run changes nothing.
    if (!options.dry_run) {
        context.lifecycle().reconcile();
    }
    auto actions =
        value_or_throw(context.lifecycle().gc(options.all_users ? GcScope::all_users : GcScope::own,
                                              options.dry_run ? GcMode::dry_run : GcMode::remove));

    if (context.options().json) {
        nlohmann::json array = nlohmann::json::array();
        for (const auto& action : actions) {
            array.push_back({{"sandbox_id", action.sandbox_id},
                             {"name", action.name},
                             {"owner", action.owner},
                             {"what", action.what},
                             {"result", action.result}});
        }
        fmt::print("{}\n", array.dump(2));
    } else if (!actions.empty()) {
        std::vector<std::vector<std::string>> rows = {
            {"SANDBOX", "NAME", "OWNER", "FOUND", "RESULT"}};
        for (const auto& action : actions) {
            rows.push_back(
                {action.sandbox_id, action.name, action.owner, action.what, action.result});
        }
        print_table(rows);
    } else {
        context.notice("nothing to collect");
    }

    for (const auto& action : actions) {
        if (action.result.rfind("failed", 0) == 0) {
            throw Error(ExitCode::provider,
                        fmt::format("gc failed to remove sandbox {}: {}; run `jitbox gc` again "
                                    "once the engine answers",
                                    action.sandbox_id, action.result));
        }
    }
}

// In enforced mode every user's sandboxes share the state folder, and only root and the jitbox
// account may ask for all of them at once.
void check_reap_scope(bool all_users) {
    if (!all_users || !enforced::is_enforced()) {
        return;
    }
    const auto& ids = enforced::process_ids();
    if (ids.real_uid != 0 && ids.real_uid != ids.elevated_uid) {
        throw Error(ExitCode::denied,
                    "reap --all-users needs root or the jitbox account; run it as root, as the "
                    "systemd timer in examples/systemd does");
    }
}

// Reaps every owner's folder of a shared state folder. A failure in one folder does not stop
// the others; the first one is raised once all have been tried.
std::vector<std::string> reap_every_owner(Context& context) {
    std::vector<std::string> removed;
    std::optional<Failure> first_failure;
    const auto owners = value_or_throw(state_owners(context.state_root(), context.state_layout()));
    for (const auto& owner : owners) {
        auto reaped = context.lifecycle_of(owner).reap_expired();
        if (!reaped) {
            first_failure = first_failure.value_or(reaped.error());
            continue;
        }
        removed.insert(removed.end(), reaped->begin(), reaped->end());
    }
    if (first_failure) {
        throw Error(*first_failure);
    }
    return removed;
}

void run_reap(Context& context, bool all_users) {
    check_reap_scope(all_users);
    const bool every_owner = all_users && context.state_layout() == StateLayout::shared;
    auto removed = every_owner ? reap_every_owner(context)
                               : value_or_throw(context.lifecycle().reap_expired());
    if (context.options().json) {
        fmt::print("{}\n", nlohmann::json(removed).dump(2));
        return;
    }
    for (const auto& name : removed) {
        if (context.options().quiet) {
            continue;
        }
        fmt::print("{}\n", name);
    }
}

} // namespace

void register_gc(CLI::App& app, Context& context) {
    auto options = std::make_shared<GcOptions>();
    CLI::App* gc = app.add_subcommand(
        "gc", "Remove expired or orphaned jitbox resources from the engine, and stale records");
    gc->add_flag("--dry-run", options->dry_run, "Show what would be removed, remove nothing");
    gc->add_flag("--all-users", options->all_users,
                 "Also remove other users' expired resources (their expiry label is past)");
    gc->callback([&context, options] { run_gc(context, *options); });

    CLI::App* reap = app.add_subcommand(
        "reap", "Remove every expired sandbox now, for a timer or cron line; prints their names");
    auto all_users = std::make_shared<bool>(false);
    reap->add_flag("--all-users", *all_users,
                   "Every user's expired sandboxes of an enforced-mode installation (root or "
                   "the jitbox account only); elsewhere the state folder is yours alone");
    reap->callback([&context, all_users] { run_reap(context, *all_users); });
}

} // namespace jitbox::cli
