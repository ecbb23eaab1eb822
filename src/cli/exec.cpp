// `jitbox exec NAME -- CMD...`: for a docker sandbox, runs CMD inside its container through
// the Engine API's exec. For an aws-sts sandbox, runs a local CMD with the session's
// credentials in its environment: jitbox replaces itself with CMD (execvpe), so CMD's exit
// code, signals and terminal are its own. Either way jitbox's own failures use 125 to 127,
// the codes docker reserves.

#include "container.hpp"

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
    // For docker sandboxes only.
    bool interactive = false;
    bool tty = false;
    std::vector<std::string> env; // NAME=VALUE, or NAME for the local value
    std::string workdir;
    std::string user;
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

void reject_container_options(const ExecOptions& options, const SandboxRecord& record) {
    if (options.interactive || options.tty || !options.env.empty() || !options.workdir.empty() ||
        !options.user.empty()) {
        throw Error(ExitCode::usage,
                    fmt::format("-i, -t, -e, -w and -u apply to docker sandboxes, but \"{}\" is "
                                "an {} sandbox, whose command runs on this machine; leave them "
                                "out",
                                record.name, record.provider));
    }
}

// Replaces jitbox with the local command, or throws.
[[noreturn]] void exec_local(Context& context, const ExecOptions& options,
                             const SandboxRecord& record) {
    reject_container_options(options, record);
    const char* marker = std::getenv(k_sandbox_marker);
    if (marker != nullptr && marker[0] != '\0' && !options.allow_nested) {
        throw Error(ExitCode::usage,
                    fmt::format("already inside the environment of sandbox \"{}\" ({} is "
                                "set); run exec from a shell outside it, or pass "
                                "--allow-nested",
                                marker, k_sandbox_marker));
    }
    const SandboxEnvironment environment =
        sandbox_environment(context, record.name, make_mfa_source(options.mfa_stdin));
    std::vector<std::string> variables = child_environment(environment);
    std::vector<char*> envp = pointers_to(variables);
    std::vector<std::string> command = options.command;
    std::vector<char*> argv = pointers_to(command);
    // The command runs with the user's ids alone, and can never regain the set-id ones.
    throw_if_failed(enforced::drop_for_good());
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

// `-e NAME` passes the local value, as docker does, and nothing when NAME is unset.
std::vector<std::string> option_variables(const std::vector<std::string>& entries) {
    std::vector<std::string> variables;
    for (const std::string& entry : entries) {
        if (entry.find('=') != std::string::npos) {
            variables.push_back(entry);
        } else if (const char* value = std::getenv(entry.c_str()); value != nullptr) {
            variables.push_back(entry + "=" + value);
        }
    }
    return variables;
}

int exec_in_container(Context& context, const ExecOptions& options, SandboxRecord record) {
    DockerSandbox sandbox = open_docker_sandbox(std::move(record), "exec");
    ExecRequest request;
    request.command = options.command;
    request.env = secret_variables(context, sandbox.record);
    for (std::string& variable : option_variables(options.env)) {
        request.env.push_back(std::move(variable)); // later entries win over the secrets
    }
    request.workdir = options.workdir;
    request.user = options.user;
    request.tty = options.tty;
    request.attach_stdin = options.interactive;
    const std::size_t arguments = options.command.size() - 1;
    const SessionAudit audit{"exec", fmt::format("command {} with {} argument{}",
                                                 options.command.front(), arguments,
                                                 arguments == 1 ? "" : "s")};
    return run_session(context, sandbox, request, audit);
}

void run_exec(Context& context, const ExecOptions& options) {
    // As docker does: a TTY that reads input needs a terminal to read it from.
    if (options.interactive && options.tty && !is_terminal(STDIN_FILENO)) {
        throw Error(ExitCode::usage, "-i with -t needs a terminal on standard input; leave out "
                                     "-t to pipe input into the command");
    }
    try {
        SandboxRecord record = find_live_sandbox(context, options.name);
        throw_if_failed(context.lifecycle().authorize_exec(record, "exec"));
        if (record.provider == "aws-sts") {
            exec_local(context, options, record);
        }
        context.set_exit_status(exec_in_container(context, options, std::move(record)));
    } catch (const Error& error) {
        rethrow_for_exec(error);
    }
}

CLI::Validator variable_validator() {
    return CLI::Validator(
        [](std::string& value) -> std::string {
            const auto equals = value.find('=');
            if (value.empty() || equals == 0) {
                return fmt::format("\"{}\" has no variable name; use NAME=VALUE, or NAME to "
                                   "pass the local value",
                                   value);
            }
            return {};
        },
        "");
}

} // namespace

void register_exec(CLI::App& app, Context& context) {
    auto options = std::make_shared<ExecOptions>();
    CLI::App* exec = app.add_subcommand(
        "exec", "Run a command in a docker sandbox's container, or a local command with an "
                "aws-sts sandbox's credentials");
    exec->add_option("name", options->name, "Sandbox")->required()->type_name("NAME");
    // As with kubectl exec, the command's own options need `--` before the command, or CLI11
    // takes them for jitbox's.
    exec->add_option("command", options->command, "The command and its arguments, after --")
        ->required()
        ->type_name("CMD...");
    exec->add_flag("-i,--interactive", options->interactive,
                   "docker: pass standard input to the command, and its end");
    exec->add_flag("-t,--tty", options->tty,
                   "docker: give the command a TTY; its stderr then arrives on stdout");
    exec->add_option("-e,--env", options->env,
                     "docker: set a variable for the command; NAME alone passes the local value")
        ->type_name("NAME=VALUE")
        ->allow_extra_args(false) // one value per -e, so the sandbox's name is not taken
        ->check(variable_validator());
    exec->add_option("-w,--workdir", options->workdir,
                     "docker: the working folder inside the container (default: the container's)")
        ->type_name("DIR")
        ->check(absolute_path_validator());
    exec->add_option("-u,--user", options->user,
                     "docker: the user to run as, uid[:gid] or name[:group] (default: the "
                     "container's)")
        ->type_name("USER");
    exec->add_flag("--allow-nested", options->allow_nested,
                   "aws-sts: run even inside another sandbox's environment (JITBOX_SANDBOX is "
                   "set)");
    exec->add_flag("--mfa-stdin", options->mfa_stdin,
                   "aws-sts: read the MFA code, when a new session needs one, from standard "
                   "input");
    exec->footer("Exit codes: CMD's own; 125 when jitbox or the engine fails, 126 when CMD "
                 "cannot run, 127 when CMD is not found; 2 for a command line jitbox cannot "
                 "use.");
    exec->callback([&context, options] { run_exec(context, *options); });
}

} // namespace jitbox::cli
