// `jitbox env NAME`: the sandbox's credentials as shell commands, for
// `eval "$(jitbox env NAME)"`.

#include "commands.hpp"

namespace jitbox::cli {

namespace {

struct EnvOptions {
    std::string name;
    bool mfa_stdin = false;
};

void run_env(Context& context, const EnvOptions& options) {
    const SandboxEnvironment environment =
        sandbox_environment(context, context.resolve_sandbox_name(options.name),
                            make_mfa_source(options.mfa_stdin));
    // Standard output may be a file the user named, so it is written with the user's ids.
    throw_if_failed(enforced::drop_for_good());
    if (context.options().json) {
        nlohmann::json object = nlohmann::json::object();
        for (const auto& [name, value] : environment.set) {
            object[name] = value;
        }
        fmt::print("{}\n", object.dump(2));
        return;
    }
    if (!environment.unset.empty()) {
        fmt::print("unset");
        for (const auto& name : environment.unset) {
            fmt::print(" {}", name);
        }
        fmt::print("\n");
    }
    for (const auto& [name, value] : environment.set) {
        fmt::print("export {}={}\n", name, shell_quote(value));
    }
}

} // namespace

void register_env(CLI::App& app, Context& context) {
    auto options = std::make_shared<EnvOptions>();
    CLI::App* env = app.add_subcommand(
        "env", "Print a sandbox's credentials as export lines, for eval \"$(jitbox env NAME)\"");
    env->add_option("name", options->name, "Sandbox")->required()->type_name("NAME");
    env->add_flag("--mfa-stdin", options->mfa_stdin,
                  "Read the MFA code, when a new session needs one, from standard input");
    env->callback([&context, options] { run_env(context, *options); });
}

} // namespace jitbox::cli
