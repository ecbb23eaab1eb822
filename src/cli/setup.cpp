// `jitbox setup enforced`: install enforced mode, or undo that installation.

#include "jitbox/enforced/setup.hpp"

#include "commands.hpp"

namespace jitbox::cli {

namespace {

struct SetupOptions {
    std::string group;
    std::string prefix = "/usr/local";
    bool undo = false;
    bool purge = false;
};

void run_setup_enforced(const SetupOptions& options) {
    const enforced::ChangeFn print = [](const std::string& line) { fmt::print("{}\n", line); };
    if (options.undo) {
        throw_if_failed(enforced::undo_setup_enforced(options.purge, print));
        return;
    }
    if (options.purge) {
        throw Error(ExitCode::usage, "--purge works only with --undo");
    }
    if (options.group.empty()) {
        throw Error(ExitCode::usage, "setup enforced needs --group GROUP, the group that owns "
                                     "the engine socket, such as docker");
    }
    enforced::SetupRequest request;
    request.group = options.group;
    request.prefix = options.prefix;
    throw_if_failed(enforced::setup_enforced(request, print));
}

} // namespace

void register_setup(CLI::App& app, Context&) {
    CLI::App* setup = app.add_subcommand("setup", "Install jitbox system-wide (as root)");
    setup->require_subcommand(1);
    auto options = std::make_shared<SetupOptions>();
    CLI::App* enforced_mode = setup->add_subcommand(
        "enforced", "Install enforced mode: a set-id binary that is the only door to the "
                    "engine, with state and audit log out of users' reach");
    enforced_mode
        ->add_option("--group", options->group,
                     "The group that owns the engine socket, such as docker; the "
                     "binary is set-group-id to it")
        ->type_name("GROUP");
    enforced_mode
        ->add_option("--prefix", options->prefix,
                     "Install the binary into PREFIX/bin (default: /usr/local)")
        ->type_name("DIR");
    enforced_mode->add_flag("--undo", options->undo,
                            "Remove what an earlier setup created, as its manifest in "
                            "/etc/jitbox lists; keeps the state, audit log and account");
    enforced_mode->add_flag("--purge", options->purge,
                            "With --undo: also remove the state, the audit log and the account");
    enforced_mode->callback([options] { run_setup_enforced(*options); });
}

} // namespace jitbox::cli
