#pragma once

#include "jitbox/util/result.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
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
    /// Without a total limit, the transfer fails when it receives less than 1 byte per second
    /// for this long. Zero waits for ever, for streams that may stay quiet, such as followed
    /// logs.
    std::chrono::seconds stall_timeout{120};
    /// Receives the body as it arrives. When unset, the body is collected into
    /// HttpResponse::body. Returning false aborts the transfer, and send then returns the status
    /// and headers received so far.
    std::function<bool(std::string_view chunk)> on_body;
    /// When true, on_body receives only the body of a 2xx reply, and the body of any other
    /// reply goes to HttpResponse::body, so that an error message is not taken for stream data.
    bool stream_success_only = false;
    /// Called about once a second and after each chunk, so that Ctrl-C can stop a long stream.
    /// Returning true ends the transfer as on_body returning false does.
    std::function<bool()> cancelled;
};

struct HttpResponse {
    long status = 0;
    std::string body;
    std::map<std::string, std::string> headers; // names lower-cased, repeats joined with ", "
};

/// A connection that the server switched from HTTP to a raw byte stream in both directions, as
/// the Docker Engine does for exec and attach. The socket is non-blocking.
class RawStream {
public:
    virtual ~RawStream() = default;

    /// The socket, for poll(2) only. Reads and writes go through the members below.
    virtual int socket() const = 0;
    /// Reads up to buffer.size() bytes without blocking. Returns the number read, 0 at the end
    /// of the stream, or nullopt when nothing is ready. Bytes can wait where poll(2) cannot see
    /// them (in TLS records, or read together with the response headers), so call this until
    /// it returns nullopt before waiting for the socket.
    virtual Result<std::optional<std::size_t>> receive(std::span<char> buffer) = 0;
    /// Writes a prefix of `data` without blocking. Returns its length, or nullopt when the
    /// socket takes nothing now.
    virtual Result<std::optional<std::size_t>> send(std::string_view data) = 0;
    /// Shuts down the sending direction, so the server reads the end of its input, while
    /// receiving goes on.
    virtual Result<void> close_write() = 0;
};

/// The reply to an upgrade request. `stream` is set when the server switched protocols (HTTP
/// 101, or 200 from an engine that switches without saying so). Otherwise `response` has the
/// status and the error body.
struct UpgradeResponse {
    HttpResponse response;
    std::unique_ptr<RawStream> stream;
};

/// The seam between providers and the transport, so unit tests can serve requests in memory.
class HttpClient {
public:
    virtual ~HttpClient() = default;
    /// Sends one request. A transport failure (refused, timed out, TLS) is a Failure with
    /// ExitCode::provider and the message "cannot reach ENDPOINT: REASON", which callers may
    /// extend with a fix. Any HTTP status, including 4xx and 5xx, is a response.
    virtual Result<HttpResponse> send(const HttpRequest& request) = 0;
    /// Sends `request` on a connection of its own with `Connection: Upgrade` and
    /// `Upgrade: tcp`, and hands over the connection when the server switches to a raw
    /// stream. request.timeout bounds the connection and the reply headers; on_body and
    /// cancelled are not used. Transport failures are reported as send reports them. The
    /// default fails, for clients that cannot upgrade.
    virtual Result<UpgradeResponse> upgrade(const HttpRequest& request);
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
