#pragma once

// The Engine API connection shared by the provider (docker.cpp) and the access to a running
// container (docker_container.cpp). It covers version negotiation, which also identifies the
// engine (Docker or Podman), request helpers and the wording of failures for that engine.
// Internal to src/providers.

#include "docker_engine.hpp"
#include "jitbox/net/http.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace jitbox::docker_api {

inline constexpr auto k_request_timeout = std::chrono::seconds(60);

/// Builds the failure "ACTION failed (HTTP STATUS: ENGINE MESSAGE); HINT".
Failure http_failure(std::string_view action, const HttpResponse& response, std::string_view hint);

/// Returns the usual fix for an unexpected HTTP status from the engine that `terms` describes.
std::string default_hint(const docker_engine::EngineTerms& terms, long status);

/// Returns true when `token` can go into a URL path unchanged. Docker ids are hex, and the
/// names that jitbox gives match [a-zA-Z0-9][a-zA-Z0-9_.-]+.
bool is_path_token(std::string_view token);

/// Builds a request with the general time limit, k_request_timeout.
HttpRequest make_request(std::string method, std::string target, std::string body = {});

/// One engine endpoint. The API version is negotiated through GET /_ping on first use, and
/// every request then goes to that version's path prefix. The ping's headers also distinguish
/// Docker from Podman, whose messages name other commands and logs.
class EngineApi {
public:
    EngineApi(std::unique_ptr<HttpClient> client, std::string endpoint)
        : m_client(std::move(client)), m_endpoint(std::move(endpoint)),
          m_engine(docker_engine::guess_from_address(m_endpoint)) {}

    /// The endpoint as messages name it, such as "unix:///var/run/docker.sock".
    const std::string& endpoint() const { return m_endpoint; }
    /// The engine kind, identified by the first ping that gets a response and guessed from the
    /// address before that.
    docker_engine::EngineKind engine() const { return m_engine; }
    /// The words that messages use for engine().
    const docker_engine::EngineTerms& terms() const { return docker_engine::terms_of(m_engine); }
    /// default_hint() for engine().
    std::string default_hint(long status) const {
        return docker_api::default_hint(terms(), status);
    }

    /// Pings once, identifies the engine and picks the newest API version that both sides
    /// support. A failed ping is not cached, so the next call tries again.
    Result<void> negotiate();
    /// Sends `request` under the negotiated version prefix, with a JSON body's content type.
    Result<HttpResponse> exchange(HttpRequest request);
    /// Calls exchange() and wraps a transport failure in "ACTION failed: ...".
    Result<HttpResponse> send(std::string_view action, HttpRequest request);
    /// Sends like send(), for a request that switches the connection to a raw stream.
    Result<UpgradeResponse> upgrade(std::string_view action, HttpRequest request);

private:
    Failure ping_failure(const Failure& transport) const;
    Result<void> choose_version(const HttpResponse& ping);
    HttpRequest versioned(HttpRequest request) const;
    Failure transport_failure(std::string_view action, const Failure& failure) const;

    std::unique_ptr<HttpClient> m_client;
    std::string m_endpoint;
    docker_engine::EngineKind m_engine; // affects only the wording of messages
    std::string m_version_prefix; // such as "/v1.41"; empty until negotiated
};

} // namespace jitbox::docker_api
