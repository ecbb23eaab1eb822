#pragma once

#include "jitbox/util/result.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace jitbox {

/// An HTTP server address: a unix socket, or a TCP base URL with optional TLS files.
struct HttpEndpoint {
    std::string unix_socket; // set for unix sockets; the URL host is then a placeholder
    std::string base_url;    // "http://localhost" for unix sockets, "https://host:2376" for TCP
    std::string ca_file;     // PEM files for TLS, all empty for plain HTTP
    std::string cert_file;
    std::string key_file;
    bool verify_peer = true; // check the server certificate against ca_file and the host name

    /// A description for messages, such as "unix:///var/run/docker.sock".
    std::string describe() const;
};

struct HttpRequest {
    std::string method = "GET";
    std::string target; // path and query, such as "/v1.41/containers/json?all=1"
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
    /// Limit on the whole exchange; zero means no total limit (used for streams that a
    /// low-speed limit guards instead, such as image pulls).
    std::chrono::milliseconds timeout{std::chrono::seconds(30)};
    /// Receives the body as it arrives. When unset, the body is collected into
    /// HttpResponse::body. Returning false aborts the transfer, and send then returns the status
    /// and headers received so far.
    std::function<bool(std::string_view chunk)> on_body;
};

struct HttpResponse {
    long status = 0;
    std::string body;
    std::map<std::string, std::string> headers; // names lower-cased, repeats joined with ", "
};

/// The seam between providers and the transport, so unit tests can serve requests in memory.
class HttpClient {
public:
    virtual ~HttpClient() = default;
    /// Sends one request. A transport failure (refused, timed out, TLS) is a Failure with
    /// ExitCode::provider and the message "cannot reach ENDPOINT: REASON", which callers may
    /// extend with a fix. Any HTTP status, including 4xx and 5xx, is a response.
    virtual Result<HttpResponse> send(const HttpRequest& request) = 0;
};

/// libcurl-backed client; owns one easy handle that is reused across requests, so one client
/// must not send from two threads at once. It ignores http_proxy, ALL_PROXY and the other proxy
/// variables, and it follows no redirects.
std::unique_ptr<HttpClient> make_curl_client(const HttpEndpoint& endpoint,
                                             std::chrono::milliseconds connect_timeout);

/// The reason of a transport failure without the "cannot reach ENDPOINT: " that
/// HttpClient::send puts before it; other messages are returned unchanged.
std::string transport_reason(const std::string& message);

/// Percent-encodes a string for use in a URL path segment or query value.
std::string url_encode(std::string_view text);

} // namespace jitbox
