#include "commands.hpp"

namespace jitbox::cli {

namespace {

struct DownOptions {
    std::vector<std::string> names;
    bool all = false;
    bool ignore_missing = false;
};

void run_down(Context& context, const DownOptions& options) {
    if (options.all == !options.names.empty()) {
        throw Error(ExitCode::usage, "name the sandboxes to remove, or give --all");
    }
    Lifecycle& lifecycle = context.lifecycle();
    lifecycle.reconcile();

    std::vector<std::string> names = options.names;
    if (options.all) {
        for (const auto& record : value_or_throw(context.store().list())) {
            names.push_back(record.name);
        }
    }
    // Remove every sandbox asked for, then report the first failure: one missing name must
    // not keep the others alive.
    std::optional<Failure> first_failure;
    for (const auto& name : names) {
        auto removed = lifecycle.down(name);
        if (removed) {
            context.notice("removed {}", name);
            continue;
        }
        if (removed.error().code == ExitCode::not_found && options.ignore_missing) {
            continue;
        }
        if (first_failure) {
            fmt::print(stderr, "jitbox: error: {}\n", first_failure->message);
        }
        first_failure = removed.error();
    }
    if (first_failure) {
        throw Error(*first_failure);
    }
}

} // namespace

void register_down(CLI::App& app, Context& context) {
    auto options = std::make_shared<DownOptions>();
    CLI::App* down = app.add_subcommand("down", "Remove sandboxes now");
    down->add_option("names", options->names, "Sandboxes to remove")->type_name("NAME");
    down->add_flag("--all", options->all, "Remove all of your sandboxes");
    down->add_flag("--ignore-missing", options->ignore_missing,
                   "Exit 0 for names that have no sandbox, as `make clean` wants");
    down->callback([&context, options] { run_down(context, *options); });
}

} // namespace jitbox::cli
