#include "jitbox/providers/docker_container.hpp"

#include "docker_api.hpp"
#include "docker_json.hpp"

#include <fmt/format.h>

#include <chrono>

namespace jitbox {

using docker_api::http_failure;
using docker_api::make_request;
using docker_json::Json;

namespace {

constexpr std::string_view k_status_hint = "`jitbox status` shows the sandbox's state";
constexpr std::string_view k_not_running_hint =
    "the container is not running or is paused; `jitbox status` shows the sandbox's state";

// Returns `response` when its status is `expected`, else a failure, which is
// ExitCode::not_found for 404.
Result<HttpResponse> expect_status(const docker_api::EngineApi& api, std::string_view action,
                                   Result<HttpResponse> response, long expected) {
    if (!response) {
        return response;
    }
    if (response->status == expected) {
        return response;
    }
    if (response->status == 404) {
        Failure failure = http_failure(action, *response, k_status_hint);
        failure.code = ExitCode::not_found;
        return failure;
    }
    if (response->status == 409) {
        return http_failure(action, *response, k_status_hint);
    }
    // Podman's message for this conflict, "container state improper", does not name the state.
    if (docker_engine::is_container_state_conflict(*response)) {
        return http_failure(action, *response, k_not_running_hint);
    }
    return http_failure(action, *response, api.default_hint(response->status));
}

Result<Json> json_object(const docker_api::EngineApi& api, std::string_view action,
                         const HttpResponse& response) {
    Json reply = Json::parse(response.body, nullptr, false);
    if (!reply.is_object()) {
        return make_failure(ExitCode::provider, "{} failed: the reply is not a JSON object; {}",
                            action, api.terms().log_hint);
    }
    return reply;
}

std::string logs_query(const LogsRequest& request) {
    std::string query = "stdout=1&stderr=1";
    if (request.follow) {
        query += "&follow=1";
    }
    if (request.tail) {
        query += fmt::format("&tail={}", *request.tail);
    }
    if (request.since) {
        query += fmt::format("&since={}", std::chrono::duration_cast<std::chrono::seconds>(
                                              request.since->time_since_epoch())
                                              .count());
    }
    if (request.timestamps) {
        query += "&timestamps=1";
    }
    return query;
}

} // namespace

DockerContainer::DockerContainer(std::unique_ptr<HttpClient> client,
                                 std::string endpoint_description, std::string container_id)
    : m_api(std::make_unique<docker_api::EngineApi>(std::move(client),
                                                    std::move(endpoint_description))),
      m_id(std::move(container_id)) {}

DockerContainer::~DockerContainer() = default;

Result<Json> DockerContainer::fetch_object(std::string_view action, HttpRequest request,
                                           long expected) {
    Result<HttpResponse> response =
        expect_status(*m_api, action, m_api->send(action, std::move(request)), expected);
    if (!response) {
        return response.error();
    }
    return json_object(*m_api, action, *response);
}

Result<ContainerState> DockerContainer::inspect() {
    const std::string action = fmt::format("inspecting container {}", m_id);
    Result<Json> reply =
        fetch_object(action, make_request("GET", fmt::format("/containers/{}/json", m_id)), 200);
    if (!reply) {
        return reply.error();
    }
    return docker_json::container_state(*reply);
}

Result<std::string> DockerContainer::create_exec(const ExecRequest& request) {
    const std::string action = fmt::format("creating an exec instance in container {}", m_id);

    Json body = {{"Cmd", request.command},
                 {"Env", request.env},
                 {"Tty", request.tty},
                 {"AttachStdin", request.attach_stdin},
                 {"AttachStdout", true},
                 {"AttachStderr", true}};
    if (!request.workdir.empty()) {
        body["WorkingDir"] = request.workdir;
    }
    if (!request.user.empty()) {
        body["User"] = request.user;
    }

    // Invalid UTF-8 in an argument becomes U+FFFD instead of an exception.
    const std::string text = body.dump(-1, ' ', false, Json::error_handler_t::replace);
    Result<Json> reply = fetch_object(
        action, make_request("POST", fmt::format("/containers/{}/exec", m_id), text), 201);
    if (!reply) {
        return reply.error();
    }
    const std::string id = docker_json::string_field(*reply, "Id");
    if (!docker_api::is_path_token(id)) {
        return make_failure(ExitCode::provider, "{} failed: the reply has no valid Id; {}", action,
                            m_api->terms().log_hint);
    }
    return id;
}

Result<std::unique_ptr<RawStream>> DockerContainer::start_exec(const std::string& exec_id,
                                                               bool tty) {
    const std::string action = fmt::format("starting exec instance {}", exec_id);
    const Json body = {{"Detach", false}, {"Tty", tty}};
    Result<UpgradeResponse> reply = m_api->upgrade(
        action, make_request("POST", fmt::format("/exec/{}/start", exec_id), body.dump()));
    if (!reply) {
        return reply.error();
    }
    if (reply->stream) {
        return std::move(reply->stream);
    }
    if (docker_engine::is_exec_user_unknown(reply->response)) {
        return make_failure(ExitCode::cannot_execute, "{}",
                            docker_json::engine_message(reply->response.body));
    }
    const long status = reply->response.status;
    Result<HttpResponse> checked = expect_status(*m_api, action, std::move(reply->response), 101);
    if (checked) {
        return make_failure(ExitCode::provider, "{} failed: HTTP {} without a stream; {}", action,
                            status, m_api->terms().log_hint);
    }
    return checked.error();
}

Result<void> DockerContainer::resize_exec(const std::string& exec_id, int rows, int columns) {
    const std::string action = fmt::format("resizing the TTY of exec instance {}", exec_id);
    Result<HttpResponse> response = m_api->send(
        action,
        make_request("POST", fmt::format("/exec/{}/resize?h={}&w={}", exec_id, rows, columns)));
    if (!response) {
        return response.error();
    }
    if (response->status != 200 && response->status != 201) {
        return http_failure(action, *response, m_api->default_hint(response->status));
    }
    return {};
}

Result<ExecState> DockerContainer::inspect_exec(const std::string& exec_id) {
    const std::string action = fmt::format("inspecting exec instance {}", exec_id);
    Result<Json> reply =
        fetch_object(action, make_request("GET", fmt::format("/exec/{}/json", exec_id)), 200);
    if (!reply) {
        return reply.error();
    }
    return docker_json::exec_state(*reply);
}

Result<void> DockerContainer::stream_logs(
    const LogsRequest& request, const std::function<void(std::string_view chunk)>& on_chunk) {
    const std::string action = fmt::format("reading the log of container {}", m_id);
    HttpRequest http =
        make_request("GET", fmt::format("/containers/{}/logs?{}", m_id, logs_query(request)));
    // The transfer has no total time limit, because a log can be long and a followed log lasts
    // as long as the container runs, quiet or not.
    http.timeout = std::chrono::milliseconds::zero();
    if (request.follow) {
        http.stall_timeout = std::chrono::seconds::zero();
    }
    http.stream_success_only = true;
    http.cancelled = request.cancelled;
    http.on_body = [&on_chunk](std::string_view chunk) {
        on_chunk(chunk);
        return true;
    };
    Result<HttpResponse> response = m_api->send(action, std::move(http));
    // Podman 4.3 sends the status of a followed log only with its first line. Cancelling the
    // follow of a quiet container therefore ends the transfer before any status, and
    // HttpClient::send then reports status 0. Docker sends the status at once.
    if (response && response->status == 0 && request.follow) {
        return {};
    }
    response = expect_status(*m_api, action, std::move(response), 200);
    if (!response) {
        return response.error();
    }
    return {};
}

} // namespace jitbox
