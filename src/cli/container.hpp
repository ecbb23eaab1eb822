#pragma once

// Shared by `exec`, `shell` and `logs` (container.cpp, session.cpp): finding a live docker
// sandbox's container and running a command in it with the local terminal and streams.

#include "commands.hpp"

#include "jitbox/providers/docker_container.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace jitbox::cli {

/// A live docker sandbox and the Engine API access to its container.
struct DockerSandbox {
    SandboxRecord record;
    std::unique_ptr<DockerContainer> container;
};

/// The record of live sandbox `name`, where a template's name means the user's only sandbox of
/// that template. Throws the failures of Lifecycle::find_live.
SandboxRecord find_live_sandbox(Context& context, const std::string& name);

/// The container of live sandbox `record`. Throws ExitCode::usage for a sandbox of another
/// provider than docker, with what to use instead of `command`.
DockerSandbox open_docker_sandbox(SandboxRecord record, std::string_view command);

/// The sandbox's generated secrets as NAME=value, read from the keyring. When the keyring
/// cannot be read, it warns and returns none, because an exec inherits the container's
/// environment, which got the same values at `up`.
std::vector<std::string> secret_variables(Context& context, const SandboxRecord& record);

/// A CLI11 validator for -w: an absolute path inside the container.
CLI::Validator absolute_path_validator();

/// Rethrows a failure of `exec` or `shell` with ExitCode::exec_failed, unless it is 126 or 127
/// already, so that jitbox's own failures cannot pass for the command's exit code.
[[noreturn]] void rethrow_for_exec(const Error& error);

/// Writes all of `data` to `fd`. Returns false when the reader has gone (EPIPE, with SIGPIPE
/// ignored), and throws ExitCode::internal for other write errors.
bool write_all(int fd, std::string_view data);

/// The audit record's view of a session: the action ("exec" or "shell") and a description of
/// what ran, without argument values, which may contain secrets.
struct SessionAudit {
    std::string action;
    std::string detail;
};

/// Runs `request` in the sandbox's container and connects it to the local streams: stdin when
/// request.attach_stdin, stdout, and stderr unless request.tty merges it into stdout. With
/// request.tty and request.attach_stdin, a terminal on stdin is raw for the session, and the
/// TTY's size follows the local terminal's. Returns the status to exit with: the command's
/// exit code, or 128+N when signal N (SIGINT, SIGTERM, SIGHUP) ended the session. Throws
/// ExitCode::command_not_found or cannot_execute when the engine could not start the command,
/// and ExitCode::exec_failed for jitbox's and the engine's own failures.
int run_session(Context& context, DockerSandbox& sandbox, const ExecRequest& request,
                const SessionAudit& audit);

} // namespace jitbox::cli
