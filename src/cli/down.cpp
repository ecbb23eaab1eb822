#include "commands.hpp"

namespace jitbox::cli {

namespace {

struct DownOptions {
    std::vector<std::string> names;
    bool all = false;
    bool ignore_missing = false;
    std::string user; // --user: remove this user's sandboxes instead of the caller's
};

void run_down(Context& context, const DownOptions& options) {
    if (options.all == !options.names.empty()) {
        throw Error(ExitCode::usage, "name the sandboxes to remove, or give --all");
    }
    if (!options.user.empty() && options.all) {
        throw Error(ExitCode::usage, "--user needs the names of that user's sandboxes; --all "
                                     "covers only your own");
    }
    context.lifecycle().reconcile();
    std::optional<std::string> owner;
    if (!options.user.empty()) {
        owner = options.user;
    }
    Lifecycle& lifecycle = owner ? context.lifecycle_of(*owner) : context.lifecycle();

    std::vector<std::string> names;
    for (const auto& name : options.names) {
        names.push_back(owner ? name : context.resolve_sandbox_name(name));
    }
    if (options.all) {
        // Every user's records share the state folder of enforced mode.
        const std::string requester =
            enforced::is_enforced() ? value_or_throw(current_identity()).user : "";
        for (const auto& record : value_or_throw(context.store().list())) {
            if (requester.empty() || record.owner == requester) {
                names.push_back(record.name);
            }
        }
    }
    // Remove every sandbox asked for, then fail with the first failure's code: one missing
    // name must not keep the others alive.
    std::vector<Failure> failures;
    const ProgressFn progress = context.progress();
    for (std::size_t i = 0; i < names.size(); ++i) {
        const std::string& name = names[i];
        progress(progress_step(
            names.size() > 1 ? fmt::format("removing {} ({} of {})", name, i + 1, names.size())
                             : fmt::format("removing {}", name)));
        auto removed = lifecycle.down(name, owner);
        context.end_progress();
        if (removed) {
            context.notice("removed {}", name);
            continue;
        }
        if (removed.error().code == ExitCode::not_found && options.ignore_missing) {
            continue;
        }
        failures.push_back(removed.error());
    }
    if (failures.size() == 1) {
        throw Error(failures.front());
    }
    if (!failures.empty()) {
        for (const auto& failure : failures) {
            fmt::print(stderr, "jitbox: error: {}\n", failure.message);
        }
        throw Error(failures.front().code, fmt::format("{} of {} sandboxes were not removed",
                                                       failures.size(), names.size()));
    }
}

} // namespace

void register_down(CLI::App& app, Context& context) {
    auto options = std::make_shared<DownOptions>();
    CLI::App* down = app.add_subcommand("down", "Remove sandboxes now");
    down->add_option("names", options->names, "Sandboxes to remove")->type_name("NAME");
    down->add_flag("--all", options->all, "Remove all of your sandboxes");
    down->add_option("--user", options->user,
                     "Remove these sandboxes of user NAME, such as a colleague's that is left "
                     "running; needs a role whose actions include down-others")
        ->type_name("NAME");
    down->add_flag("--ignore-missing", options->ignore_missing,
                   "Exit 0 for names that have no sandbox, as `make clean` wants");
    down->callback([&context, options] { run_down(context, *options); });
}

} // namespace jitbox::cli
