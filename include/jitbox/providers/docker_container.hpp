#pragma once

#include "jitbox/net/http.hpp"
#include "jitbox/util/time.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jitbox {

namespace docker_api {
class EngineApi;
}

/// A command to run in a running container: the body of POST /containers/{id}/exec.
struct ExecRequest {
    std::vector<std::string> command;
    std::vector<std::string> env; // "NAME=value", added to the container's own variables
    std::string workdir;          // empty for the container's default
    std::string user;             // empty for the container's default
    bool tty = false;
    bool attach_stdin = false;
};

/// An exec instance as GET /exec/{id}/json reports it.
struct ExecState {
    bool running = false;
    std::optional<int> exit_code; // unset until the engine reports one
    long pid = 0;                 // 0 when the process has not started
};

/// The facts about a container that exec and logs need, from GET /containers/{id}/json.
struct ContainerState {
    std::string status; // the engine's state name: "running", "exited", "paused", ...
    bool tty = false;   // when true, its log is one raw stream, not multiplexed
};

/// The options of GET /containers/{id}/logs.
struct LogsRequest {
    bool follow = false;
    std::optional<long> tail;       // the last N lines, or all of them when unset
    std::optional<TimePoint> since; // lines from this time on, to the second
    bool timestamps = false;        // the engine puts an RFC 3339 time before each line
    /// Polled about once a second while the log streams. Returning true ends it early.
    std::function<bool()> cancelled;
};

/// Engine API requests about one existing container, for `exec`, `shell` and `logs`. The API
/// version is negotiated as the provider does, through GET /_ping before the first request.
class DockerContainer {
public:
    DockerContainer(std::unique_ptr<HttpClient> client, std::string endpoint_description,
                    std::string container_id);
    ~DockerContainer();
    DockerContainer(const DockerContainer&) = delete;
    DockerContainer& operator=(const DockerContainer&) = delete;

    /// Fetches the container's state. Fails with ExitCode::not_found when the engine has no
    /// such container.
    Result<ContainerState> inspect();
    /// Creates an exec instance and returns its id. Fails with ExitCode::not_found when the
    /// container is gone, and with ExitCode::provider when it is not running or the engine fails.
    Result<std::string> create_exec(const ExecRequest& request);
    /// Starts an exec instance and returns its stream, which carries the command's output, and
    /// its input when the instance attaches stdin. Without a TTY the output is multiplexed (see
    /// StreamDemuxer), and with one it is raw. Fails with ExitCode::cannot_execute, and the
    /// engine's reason as the whole message, when the engine rejects the start because the
    /// exec's user or group does not exist. Podman rejects the start, while Docker reports the
    /// missing user in the stream.
    Result<std::unique_ptr<RawStream>> start_exec(const std::string& exec_id, bool tty);
    /// Sets the size of an exec instance's TTY, in character cells.
    Result<void> resize_exec(const std::string& exec_id, int rows, int columns);
    Result<ExecState> inspect_exec(const std::string& exec_id);
    /// Passes the container's log to `on_chunk` as it arrives, multiplexed unless the container
    /// has a TTY. With request.follow, it returns when the container stops or request.cancelled
    /// returns true.
    Result<void> stream_logs(const LogsRequest& request,
                             const std::function<void(std::string_view chunk)>& on_chunk);

private:
    /// Sends `request` and returns the JSON object of a reply with status `expected`.
    Result<nlohmann::json> fetch_object(std::string_view action, HttpRequest request,
                                        long expected);

    std::unique_ptr<docker_api::EngineApi> m_api;
    std::string m_id;
};

} // namespace jitbox
