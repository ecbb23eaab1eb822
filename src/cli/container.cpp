#include "container.hpp"

#include "jitbox/util/log.hpp"

#include <cerrno>
#include <cstring>

#include <poll.h>
#include <unistd.h>

namespace jitbox::cli {

namespace {

void check_docker_provider(const SandboxRecord& record, std::string_view command) {
    if (record.provider == "docker") {
        return;
    }
    if (record.provider == "aws-ec2") {
        throw Error(ExitCode::usage,
                    fmt::format("sandbox \"{}\" is an EC2 instance, which jitbox cannot {} into; "
                                "connect with ssh to the address that `jitbox status {}` shows",
                                record.name, command, record.name));
    }
    if (record.provider == "aws-sts") {
        throw Error(ExitCode::usage,
                    fmt::format("sandbox \"{}\" is an AWS session and has no container for {}; "
                                "run a local command with its credentials with `jitbox exec {} "
                                "-- CMD`",
                                record.name, command, record.name));
    }
    throw Error(ExitCode::usage, fmt::format("sandbox \"{}\" has provider {}, which has no "
                                             "container for {}",
                                             record.name, record.provider, command));
}

std::string container_id(const SandboxRecord& record) {
    for (const Resource& resource : record.resources.items) {
        if (resource.kind == "container") {
            return resource.id.empty() ? resource.name : resource.id;
        }
    }
    throw Error(ExitCode::not_found,
                fmt::format("the record of sandbox \"{}\" names no container; remove it with "
                            "`jitbox down {}`",
                            record.name, record.name));
}

} // namespace

SandboxRecord find_live_sandbox(Context& context, const std::string& name) {
    return value_or_throw(context.lifecycle().find_live(context.resolve_sandbox_name(name)));
}

DockerSandbox open_docker_sandbox(SandboxRecord record, std::string_view command) {
    check_docker_provider(record, command);
    const std::string id = container_id(record);
    log_debug(1, "sandbox {}: container {} on {}", record.name, id, record.endpoint);
    auto container = value_or_throw(open_docker_container(record.endpoint, id));
    return DockerSandbox{std::move(record), std::move(container)};
}

CLI::Validator absolute_path_validator() {
    return CLI::Validator(
        [](std::string& value) -> std::string {
            if (value.empty() || value.front() != '/') {
                return fmt::format("\"{}\" is not an absolute path; give the full path inside "
                                   "the container, such as /srv",
                                   value);
            }
            return {};
        },
        "");
}

void rethrow_for_exec(const Error& error) {
    if (error.code() == ExitCode::command_not_found || error.code() == ExitCode::cannot_execute) {
        throw error;
    }
    throw Error(ExitCode::exec_failed, error.what());
}

bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t count = ::write(fd, data.data(), data.size());
        if (count >= 0) {
            data.remove_prefix(static_cast<std::size_t>(count));
            continue;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN) { // an inherited non-blocking descriptor
            pollfd entry{fd, POLLOUT, 0};
            ::poll(&entry, 1, -1);
            continue;
        }
        if (errno == EPIPE) {
            return false;
        }
        throw Error(ExitCode::internal,
                    fmt::format("writing to fd {} failed: {}", fd, std::strerror(errno)));
    }
    return true;
}

std::vector<std::string> secret_variables(Context& context, const SandboxRecord& record) {
    if (record.secret_backend.empty()) {
        return {};
    }
    try {
        SecretStore* store = value_or_throw(context.secret_stores().open(record.secret_backend));
        std::vector<std::string> variables;
        for (const auto& [key, value] : read_sandbox_values(*store, record, "")) {
            variables.push_back(key + "=" + value);
        }
        return variables;
    } catch (const Error& error) {
        fmt::print(stderr,
                   "jitbox: warning: the generated secrets of \"{}\" cannot be read ({}); the "
                   "command sees the values the container got at `up`\n",
                   record.name, error.what());
        return {};
    }
}

} // namespace jitbox::cli
