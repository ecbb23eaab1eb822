// `jitbox shell NAME`: an interactive shell in a docker sandbox's container, with a TTY.

#include "container.hpp"

#include <unistd.h>

namespace jitbox::cli {

namespace {

// The shell of a sandbox whose template sets none, as with `docker exec -it NAME sh`. Busybox
// images have it.
constexpr const char* k_default_shell = "/bin/sh";

struct ShellOptions {
    std::string name;
    std::string user;
    std::string workdir;
};

void run_shell(Context& context, const ShellOptions& options) {
    if (!is_terminal(STDIN_FILENO)) {
        throw Error(ExitCode::usage,
                    fmt::format("standard input is not a terminal, which shell needs; to pipe "
                                "commands into a shell, use `jitbox exec -i {} -- sh`",
                                options.name));
    }
    try {
        SandboxRecord record = find_live_sandbox(context, options.name);
        throw_if_failed(context.lifecycle().authorize_exec(record, "shell"));
        DockerSandbox sandbox = open_docker_sandbox(std::move(record), "shell");
        const std::string shell =
            sandbox.record.shell.empty() ? k_default_shell : sandbox.record.shell;
        ExecRequest request;
        request.command = {shell};
        request.env = secret_variables(context, sandbox.record);
        request.user = options.user;
        request.workdir = options.workdir;
        request.tty = true;
        request.attach_stdin = true;
        const SessionAudit audit{"shell", fmt::format("shell {}", shell)};
        context.set_exit_status(run_session(context, sandbox, request, audit));
    } catch (const Error& error) {
        rethrow_for_exec(error);
    }
}

} // namespace

void register_shell(CLI::App& app, Context& context) {
    auto options = std::make_shared<ShellOptions>();
    CLI::App* shell = app.add_subcommand(
        "shell", "Open an interactive shell in a docker sandbox's container");
    shell->add_option("name", options->name, "Sandbox")->required()->type_name("NAME");
    shell->add_option("-u,--user", options->user,
                      "The user to run as, uid[:gid] or name[:group] (default: the container's)")
        ->type_name("USER");
    shell->add_option("-w,--workdir", options->workdir,
                      "The working folder inside the container (default: the container's)")
        ->type_name("DIR")
        ->check(absolute_path_validator());
    shell->footer("The shell is the template's `shell`, else /bin/sh. Exit codes: the shell's "
                  "own; 125 when jitbox or the engine fails, 126 when the shell cannot run, 127 "
                  "when it is not found; 2 when standard input is not a terminal.");
    shell->callback([&context, options] { run_shell(context, *options); });
}

} // namespace jitbox::cli
