// HttpClient::upgrade over libcurl. libcurl has no API for HTTP's protocol switch, so the
// handle only connects (CURLOPT_CONNECT_ONLY, with the TLS handshake for https). This file then
// writes the request and reads the reply headers through curl_easy_send and curl_easy_recv.
// The bytes after the headers are the raw stream.

#include "curl_handle.hpp"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <poll.h>
#include <sys/socket.h>
#include <system_error>

namespace jitbox::net_detail {

namespace {

using Clock = std::chrono::steady_clock;

// The maximum size of the reply headers, far above what a Docker engine sends.
constexpr std::size_t k_max_header_bytes = 64 * 1024;
// The maximum size of a kept error body. The engine's error body is one short JSON object.
constexpr std::size_t k_max_error_body_bytes = 64 * 1024;
// The retries of the TLS close_notify while the send buffer is full: 50 waits of 100 ms, so
// 5 s at most.
constexpr int k_close_notify_attempts = 50;
constexpr int k_close_notify_wait_ms = 100;

class CurlRawStream final : public RawStream {
public:
    CurlRawStream(CurlEasy handle, curl_socket_t socket, std::string pending)
        : m_handle(std::move(handle)), m_socket(socket), m_pending(std::move(pending)) {}

    int socket() const override { return static_cast<int>(m_socket); }

    Result<std::optional<std::size_t>> receive(std::span<char> buffer) override {
        if (!m_pending.empty()) {
            const std::size_t count = std::min(buffer.size(), m_pending.size());
            std::copy_n(m_pending.begin(), count, buffer.begin());
            m_pending.erase(0, count);
            return std::optional<std::size_t>(count);
        }
        std::size_t count = 0;
        const CURLcode code = curl_easy_recv(m_handle.get(), buffer.data(), buffer.size(), &count);
        if (code == CURLE_AGAIN) {
            return std::optional<std::size_t>();
        }
        if (code != CURLE_OK) {
            return make_failure(ExitCode::provider, "reading the engine's stream failed: {}",
                                curl_easy_strerror(code));
        }
        return std::optional<std::size_t>(count);
    }

    Result<std::optional<std::size_t>> send(std::string_view data) override {
        std::size_t count = 0;
        const CURLcode code = curl_easy_send(m_handle.get(), data.data(), data.size(), &count);
        if (code == CURLE_AGAIN) {
            return std::optional<std::size_t>();
        }
        if (code != CURLE_OK) {
            return make_failure(ExitCode::provider, "writing to the engine's stream failed: {}",
                                curl_easy_strerror(code));
        }
        return std::optional<std::size_t>(count);
    }

    // TLS marks the end of a party's data with a close_notify alert, and a TLS peer may treat a
    // bare TCP shutdown as a truncated connection. So over TLS the alert is sent through the
    // OpenSSL connection that libcurl exposes, and reading continues after it.
    // NOTE: tested against a TLS proxy that rejects a bare shutdown, not against an engine
    // that serves TLS itself.
    Result<void> close_write() override {
        curl_tlssessioninfo* tls = nullptr;
        // A plain connection reports no TLS object, whatever backend libcurl has.
        if (curl_easy_getinfo(m_handle.get(), CURLINFO_TLS_SSL_PTR, &tls) == CURLE_OK &&
            tls != nullptr && tls->internals != nullptr) {
            return send_close_notify(*tls);
        }
        if (::shutdown(m_socket, SHUT_WR) != 0) {
            return make_failure(ExitCode::provider, "closing the engine stream's input failed: {}",
                                std::generic_category().message(errno));
        }
        return {};
    }

private:
    Result<void> send_close_notify(const curl_tlssessioninfo& tls) {
        if (tls.backend != CURLSSLBACKEND_OPENSSL) {
            return make_failure(ExitCode::provider,
                                "closing the engine stream's input over TLS needs libcurl "
                                "built with OpenSSL; pipe no input, or use a unix socket");
        }
        SSL* ssl = static_cast<SSL*>(tls.internals);
        // The socket is non-blocking, so the alert may wait for room in the send buffer.
        for (int attempt = 0; attempt < k_close_notify_attempts; ++attempt) {
            const int result = SSL_shutdown(ssl);
            if (result >= 0) {
                return {}; // sent; a result of 0 means the engine's alert is still to come
            }
            if (SSL_get_error(ssl, result) != SSL_ERROR_WANT_WRITE) {
                break;
            }
            pollfd entry{static_cast<int>(m_socket), POLLOUT, 0};
            ::poll(&entry, 1, k_close_notify_wait_ms);
        }
        const char* reason = ERR_reason_error_string(ERR_get_error());
        return make_failure(ExitCode::provider,
                            "sending the end of input to the engine over TLS failed: {}",
                            reason != nullptr ? reason : "OpenSSL gave no reason");
    }

    CurlEasy m_handle;
    curl_socket_t m_socket;
    std::string m_pending; // stream bytes that arrived together with the reply headers
};

// The connected handle during the exchange of request and reply headers, with its deadline.
struct Exchange {
    CURL* handle;
    curl_socket_t socket;
    const HttpEndpoint& endpoint;
    Clock::time_point deadline;
};

Failure transport_failure(const Exchange& exchange, std::string_view reason) {
    return make_failure(ExitCode::provider, "cannot reach {}: {}", exchange.endpoint.describe(),
                        reason);
}

// Waits until the socket is ready for `events`. Fails at the deadline.
Result<void> wait_for(const Exchange& exchange, short events) {
    while (true) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            exchange.deadline - Clock::now());
        if (left.count() <= 0) {
            return transport_failure(exchange, "timed out waiting for the engine's reply");
        }
        pollfd entry{static_cast<int>(exchange.socket), events, 0};
        const int ready = ::poll(&entry, 1, static_cast<int>(left.count()));
        if (ready > 0) {
            return {};
        }
        if (ready < 0 && errno != EINTR) {
            return transport_failure(exchange, std::generic_category().message(errno));
        }
    }
}

Result<void> send_all(const Exchange& exchange, std::string_view data) {
    while (!data.empty()) {
        std::size_t count = 0;
        const CURLcode code = curl_easy_send(exchange.handle, data.data(), data.size(), &count);
        if (code == CURLE_AGAIN) {
            if (Result<void> ready = wait_for(exchange, POLLOUT); !ready) {
                return ready;
            }
            continue;
        }
        if (code != CURLE_OK) {
            return transport_failure(exchange, curl_easy_strerror(code));
        }
        data.remove_prefix(count);
    }
    return {};
}

// Appends the bytes available on the socket to `received`, waiting until the deadline for at
// least one. Returns false at the end of the stream.
Result<bool> receive_some(const Exchange& exchange, std::string& received) {
    char buffer[16 * 1024];
    while (true) {
        std::size_t count = 0;
        const CURLcode code = curl_easy_recv(exchange.handle, buffer, sizeof buffer, &count);
        if (code == CURLE_AGAIN) {
            if (Result<void> ready = wait_for(exchange, POLLIN); !ready) {
                return ready.error();
            }
            continue;
        }
        if (code != CURLE_OK) {
            return transport_failure(exchange, curl_easy_strerror(code));
        }
        received.append(buffer, count);
        return count > 0;
    }
}

// Returns the Host header value: the authority of a TCP base URL, such as "host:2376" for
// "https://host:2376", or "localhost" for a unix socket.
std::string host_header(const HttpEndpoint& endpoint) {
    if (!endpoint.unix_socket.empty()) {
        return "localhost";
    }
    std::string_view authority = endpoint.base_url;
    if (const auto scheme_end = authority.find("://"); scheme_end != std::string_view::npos) {
        authority.remove_prefix(scheme_end + 3);
    }
    return std::string(authority.substr(0, authority.find('/')));
}

std::string request_text(const HttpEndpoint& endpoint, const HttpRequest& request) {
    std::string text = fmt::format("{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: jitbox/{}\r\n"
                                   "Connection: Upgrade\r\nUpgrade: tcp\r\n",
                                   request.method, request.target, host_header(endpoint),
                                   JITBOX_VERSION);
    for (const auto& [name, value] : request.headers) {
        text += fmt::format("{}: {}\r\n", name, value);
    }
    if (!request.body.empty() || request.method == "POST") {
        text += fmt::format("Content-Length: {}\r\n", request.body.size());
    }
    text += "\r\n";
    text += request.body;
    return text;
}

// Parses "HTTP/1.1 101 UPGRADED" and the header lines into `response`.
Result<void> parse_reply_head(const Exchange& exchange, std::string_view head,
                              HttpResponse& response) {
    const auto line_end = head.find("\r\n");
    const std::string_view status_line = head.substr(0, line_end);
    const auto space = status_line.find(' ');
    const std::string_view code = space == std::string_view::npos
                                      ? std::string_view()
                                      : status_line.substr(space + 1, 3);
    const auto parsed = std::from_chars(code.data(), code.data() + code.size(), response.status);
    if (!status_line.starts_with("HTTP/") || parsed.ec != std::errc() || code.size() != 3) {
        return transport_failure(exchange, "the reply does not start with an HTTP status line");
    }
    std::size_t start = line_end == std::string_view::npos ? head.size() : line_end + 2;
    while (start < head.size()) {
        const auto end = std::min(head.find("\r\n", start), head.size());
        store_header_line(response, head.substr(start, end - start));
        start = end + 2;
    }
    return {};
}

bool switched_protocols(const HttpResponse& response) {
    if (response.status == 101) {
        return true;
    }
    // The API specification (v1.41) documents 200 with a raw-stream content type, while
    // Docker 20.10 replies 101 to the Upgrade header. Both carry the stream.
    const auto type = response.headers.find("content-type");
    return response.status == 200 && type != response.headers.end() &&
           type->second.starts_with("application/vnd.docker.");
}

// Reads the rest of an error body, by Content-Length when the reply has one.
Result<void> read_error_body(const Exchange& exchange, HttpResponse& response) {
    const auto length_header = response.headers.find("content-length");
    if (length_header == response.headers.end()) {
        // NOTE: a chunked or unterminated error body is kept only as far as it arrived with the
        // headers. Docker 20.10 sends its errors with a Content-Length.
        return {};
    }
    std::size_t length = 0;
    std::from_chars(length_header->second.data(),
                    length_header->second.data() + length_header->second.size(), length);
    length = std::min(length, k_max_error_body_bytes);
    while (response.body.size() < length) {
        Result<bool> more = receive_some(exchange, response.body);
        if (!more) {
            return more.error();
        }
        if (!*more) {
            break;
        }
    }
    response.body.resize(std::min(response.body.size(), length));
    return {};
}

Result<CurlEasy> connect(const HttpEndpoint& endpoint, std::chrono::milliseconds connect_timeout,
                         const HttpRequest& request) {
    if (const CURLcode init = init_curl_once(); init != CURLE_OK) {
        return make_failure(ExitCode::provider, "cannot reach {}: libcurl failed to start: {}",
                            endpoint.describe(), curl_easy_strerror(init));
    }
    CurlEasy handle(curl_easy_init());
    if (!handle) {
        return make_failure(ExitCode::provider,
                            "cannot reach {}: libcurl could not create a handle (out of memory?)",
                            endpoint.describe());
    }
    set_endpoint_options(handle.get(), endpoint, request.target);
    curl_easy_setopt(handle.get(), CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(handle.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(handle.get(), CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(connect_timeout.count()));
    char error_text[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(handle.get(), CURLOPT_ERRORBUFFER, error_text);
    const CURLcode code = perform_transfer(handle.get());
    const std::string reason =
        code == CURLE_OK ? std::string() : describe_transport_error(handle.get(), code, error_text);
    curl_easy_setopt(handle.get(), CURLOPT_ERRORBUFFER, nullptr); // error_text leaves scope
    if (code != CURLE_OK) {
        return make_failure(ExitCode::provider, "cannot reach {}: {}", endpoint.describe(),
                            reason);
    }
    return handle;
}

} // namespace

Result<UpgradeResponse> curl_upgrade(const HttpEndpoint& endpoint,
                                     std::chrono::milliseconds connect_timeout,
                                     const HttpRequest& request) {
    Result<CurlEasy> handle = connect(endpoint, connect_timeout, request);
    if (!handle) {
        return handle.error();
    }
    curl_socket_t socket = CURL_SOCKET_BAD;
    curl_easy_getinfo(handle->get(), CURLINFO_ACTIVESOCKET, &socket);
    const Exchange exchange{handle->get(), socket, endpoint, Clock::now() + request.timeout};
    if (socket == CURL_SOCKET_BAD) {
        return transport_failure(exchange, "libcurl reported no connected socket");
    }
    if (Result<void> sent = send_all(exchange, request_text(endpoint, request)); !sent) {
        return sent.error();
    }

    std::string received;
    auto head_end = std::string::npos;
    while ((head_end = received.find("\r\n\r\n")) == std::string::npos) {
        if (received.size() > k_max_header_bytes) {
            return transport_failure(exchange, "the reply headers exceed 64 KiB");
        }
        Result<bool> more = receive_some(exchange, received);
        if (!more) {
            return more.error();
        }
        if (!*more) {
            return transport_failure(exchange, "the engine closed the connection before it "
                                               "replied");
        }
    }

    UpgradeResponse reply;
    const std::string_view head = std::string_view(received).substr(0, head_end);
    if (Result<void> parsed = parse_reply_head(exchange, head, reply.response); !parsed) {
        return parsed.error();
    }
    std::string rest = received.substr(head_end + 4);
    if (switched_protocols(reply.response)) {
        reply.stream =
            std::make_unique<CurlRawStream>(std::move(handle).value(), socket, std::move(rest));
        return reply;
    }
    reply.response.body = std::move(rest);
    if (Result<void> body = read_error_body(exchange, reply.response); !body) {
        return body.error();
    }
    return reply;
}

} // namespace jitbox::net_detail
