#include "docker_api.hpp"

#include "docker_json.hpp"
#include "jitbox/providers/docker.hpp"
#include "jitbox/util/log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

namespace jitbox::docker_api {

using docker_json::ApiVersion;
using docker_json::engine_message;
using docker_json::one_line;

namespace {

// A healthy engine replies to a ping in milliseconds, so a socket that accepts and stays
// silent fails the command quickly rather than after the general request limit.
constexpr auto k_ping_timeout = std::chrono::seconds(10);

// Removes the "cannot reach ENDPOINT: " that HttpClient puts before a transport failure.
std::string transport_reason(const std::string& message) {
    constexpr std::string_view k_prefix = "cannot reach ";
    const auto separator = message.find(": ");
    if (!message.starts_with(k_prefix) || separator == std::string::npos) {
        return message;
    }
    return message.substr(separator + 2);
}

} // namespace

Failure http_failure(std::string_view action, const HttpResponse& response, std::string_view hint) {
    return make_failure(ExitCode::provider, "{} failed (HTTP {}: {}); {}", action, response.status,
                        engine_message(response.body), hint);
}

std::string default_hint(const docker_engine::EngineTerms& terms, long status) {
    if (status == 400) {
        return "check the template's settings against the engine's message";
    }
    if (status == 401 || status == 403) {
        return fmt::format("check that this user may use the {}", terms.name);
    }
    return std::string(terms.log_hint);
}

bool is_path_token(std::string_view token) {
    if (token.empty() || token.front() == '.' || token.front() == '-' || token.front() == '_') {
        return false;
    }
    for (const char c : token) {
        const bool allowed = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                             (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
        if (!allowed) {
            return false;
        }
    }
    return true;
}

HttpRequest make_request(std::string method, std::string target, std::string body) {
    HttpRequest request;
    request.method = std::move(method);
    request.target = std::move(target);
    request.body = std::move(body);
    request.timeout = k_request_timeout;
    return request;
}

Failure EngineApi::ping_failure(const Failure& transport) const {
    const std::string reason = transport_reason(transport.message);
    std::string hint(terms().start_hint);
    if (reason.find("Permission denied") != std::string::npos) {
        hint = terms().access_hint;
    } else if (reason.find("SSL") != std::string::npos ||
               reason.find("certificate") != std::string::npos) {
        hint = "check that ca.pem, cert.pem and key.pem in DOCKER_CERT_PATH (default ~/.docker) "
               "belong to this engine";
    }
    return make_failure(ExitCode::provider, "cannot reach the {} at {}: {}; {}", terms().name,
                        m_endpoint, reason, hint);
}

Result<void> EngineApi::negotiate() {
    if (!m_version_prefix.empty()) {
        return {};
    }

    HttpRequest ping = make_request("GET", "/_ping");
    ping.timeout = k_ping_timeout;
    const Result<HttpResponse> response = m_client->send(ping);
    if (!response) {
        return ping_failure(response.error());
    }
    m_engine = docker_engine::identify_from_ping(response->headers);
    if (response->status != 200) {
        return make_failure(ExitCode::provider,
                            "the {} at {} answered GET /_ping with HTTP {} ({}); {}", terms().name,
                            m_endpoint, response->status, engine_message(response->body),
                            terms().log_hint);
    }
    return choose_version(*response);
}

Result<void> EngineApi::choose_version(const HttpResponse& ping) {
    const auto header = ping.headers.find("api-version");
    if (header == ping.headers.end()) {
        return make_failure(ExitCode::provider,
                            "the server at {} sent no Api-Version header, so it is probably not a "
                            "Docker or Podman engine; check DOCKER_HOST",
                            m_endpoint);
    }
    const std::optional<ApiVersion> server = docker_json::parse_api_version(header->second);
    if (!server) {
        return make_failure(ExitCode::provider,
                            "the {} at {} sent the invalid API version \"{}\"; {}", terms().name,
                            m_endpoint, one_line(header->second), terms().log_hint);
    }
    if (*server < *docker_json::parse_api_version(k_docker_min_api)) {
        return make_failure(
            ExitCode::provider, "the {} at {} speaks API {}, older than the {} jitbox needs; {}",
            terms().name, m_endpoint, header->second, k_docker_min_api, terms().upgrade_hint);
    }

    const ApiVersion chosen = std::min(*server, *docker_json::parse_api_version(k_docker_max_api));
    m_version_prefix = fmt::format("/v{}.{}", chosen.major, chosen.minor);
    std::string product = docker_engine::describe_server(ping.headers);
    if (product.empty()) {
        product = terms().name;
    }
    log_debug(1, "engine at {}: {}, using Engine API {} (the engine's newest is {})", m_endpoint,
              product, m_version_prefix.substr(2), one_line(header->second));
    return {};
}

HttpRequest EngineApi::versioned(HttpRequest request) const {
    request.target = m_version_prefix + request.target;
    if (!request.body.empty()) {
        request.headers.emplace_back("Content-Type", "application/json");
    }
    return request;
}

Result<HttpResponse> EngineApi::exchange(HttpRequest request) {
    if (Result<void> ready = negotiate(); !ready) {
        return ready.error();
    }
    return m_client->send(versioned(std::move(request)));
}

Failure EngineApi::transport_failure(std::string_view action, const Failure& failure) const {
    if (m_version_prefix.empty()) {
        return failure; // negotiation failed, and its message is complete
    }
    return make_failure(ExitCode::provider,
                        "{} failed: {}; check that {} is running and responsive", action,
                        failure.message, terms().server);
}

Result<HttpResponse> EngineApi::send(std::string_view action, HttpRequest request) {
    Result<HttpResponse> response = exchange(std::move(request));
    if (!response) {
        return transport_failure(action, response.error());
    }
    return response;
}

Result<UpgradeResponse> EngineApi::upgrade(std::string_view action, HttpRequest request) {
    if (Result<void> ready = negotiate(); !ready) {
        return ready.error();
    }
    Result<UpgradeResponse> reply = m_client->upgrade(versioned(std::move(request)));
    if (!reply) {
        return transport_failure(action, reply.error());
    }
    return reply;
}

} // namespace jitbox::docker_api
