// `jitbox exec NAME -- CMD...`: runs a local command with a sandbox's credentials in its
// environment. jitbox replaces itself with CMD (execvpe), so CMD's exit code, signals and
// terminal are its own. jitbox's own failures use 125 to 127, the codes docker reserves.

#include "commands.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>

#include <unistd.h>

extern char** environ; // NOLINT: the process environment, as POSIX declares it

namespace jitbox::cli {

namespace {

struct ExecOptions {
    std::string name;
    std::vector<std::string> command;
    bool allow_nested = false;
    bool mfa_stdin = false;
};

// Returns the process environment without the names `environment` unsets or sets, followed by
// the values it sets.
std::vector<std::string> child_environment(const SandboxEnvironment& environment) {
    std::set<std::string, std::less<>> replaced(environment.unset.begin(),
                                                environment.unset.end());
    for (const auto& [name, value] : environment.set) {
        replaced.insert(name);
    }
    std::vector<std::string> result;
    for (char** entry = environ; *entry != nullptr; ++entry) {
        const std::string_view text(*entry);
        const std::string_view name = text.substr(0, text.find('='));
        if (replaced.count(name) == 0) {
            result.emplace_back(text);
        }
    }
    for (const auto& [name, value] : environment.set) {
        result.push_back(name + "=" + value);
    }
    return result;
}

std::vector<char*> pointers_to(std::vector<std::string>& strings) {
    std::vector<char*> pointers;
    for (std::string& text : strings) {
        pointers.push_back(text.data());
    }
    pointers.push_back(nullptr);
    return pointers;
}

[[noreturn]] void run_exec(Context& context, ExecOptions& options) {
    SandboxEnvironment environment;
    try {
        const char* marker = std::getenv(k_sandbox_marker);
        if (marker != nullptr && marker[0] != '\0' && !options.allow_nested) {
            throw Error(ExitCode::usage,
                        fmt::format("already inside the environment of sandbox \"{}\" ({} is "
                                    "set); run exec from a shell outside it, or pass "
                                    "--allow-nested",
                                    marker, k_sandbox_marker));
        }
        environment = sandbox_environment(context, context.resolve_sandbox_name(options.name),
                                          make_mfa_source(options.mfa_stdin));
    } catch (const Error& error) {
        throw Error(ExitCode::exec_failed, error.what());
    }
    std::vector<std::string> variables = child_environment(environment);
    std::vector<char*> envp = pointers_to(variables);
    std::vector<char*> argv = pointers_to(options.command);
    std::fflush(stdout);
    std::fflush(stderr);
    ::execvpe(argv[0], argv.data(), envp.data());
    const int error = errno;
    if (error == ENOENT || error == ENOTDIR) {
        throw Error(ExitCode::command_not_found,
                    fmt::format("{}: command not found", options.command.front()));
    }
    throw Error(ExitCode::cannot_execute,
                fmt::format("cannot run {}: {}", options.command.front(), std::strerror(error)));
}

} // namespace

void register_exec(CLI::App& app, Context& context) {
    auto options = std::make_shared<ExecOptions>();
    CLI::App* exec = app.add_subcommand(
        "exec", "Run a local command with a sandbox's credentials in its environment");
    exec->add_option("name", options->name, "Sandbox")->required()->type_name("NAME");
    // As with kubectl exec, the command's own options need `--` before the command, or CLI11
    // takes them for jitbox's.
    exec->add_option("command", options->command, "The command and its arguments, after --")
        ->required()
        ->type_name("CMD...");
    exec->add_flag("--allow-nested", options->allow_nested,
                   "Run even inside another sandbox's environment (JITBOX_SANDBOX is set)");
    exec->add_flag("--mfa-stdin", options->mfa_stdin,
                   "Read the MFA code, when a new session needs one, from standard input");
    exec->footer("Exit codes: CMD's own; 125 when jitbox fails, 126 when CMD cannot run, 127 "
                 "when CMD is not found.");
    exec->callback([&context, options] { run_exec(context, *options); });
}

} // namespace jitbox::cli
