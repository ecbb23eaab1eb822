#include "jitbox/net/http.hpp"
#include "jitbox/util/log.hpp"

#include <curl/curl.h>
#include <exception>
#include <fmt/format.h>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <system_error>
#include <utility>

namespace jitbox {

std::string HttpEndpoint::describe() const {
    if (!unix_socket.empty()) {
        return "unix://" + unix_socket;
    }
    return base_url;
}

std::string transport_reason(const std::string& message) {
    constexpr std::string_view k_prefix = "cannot reach ";
    const auto separator = message.find(": ");
    if (!message.starts_with(k_prefix) || separator == std::string::npos) {
        return message;
    }
    return message.substr(separator + 2);
}

namespace {

bool is_unreserved(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

} // namespace

std::string url_encode(std::string_view text) {
    static constexpr char k_hex_digits[] = "0123456789ABCDEF";

    std::string encoded;
    encoded.reserve(text.size());
    for (const char c : text) {
        if (is_unreserved(c)) {
            encoded += c;
            continue;
        }
        const auto byte = static_cast<unsigned char>(c);
        encoded += '%';
        encoded += k_hex_digits[byte >> 4];
        encoded += k_hex_digits[byte & 0x0F];
    }
    return encoded;
}

namespace {

// Without a total timeout, a transfer that moves less than this many bytes per second for this
// many seconds is aborted, so a stalled stream cannot hang the command.
constexpr long k_low_speed_limit_bytes = 1;
constexpr long k_low_speed_time_seconds = 120;

// The URL base for requests over a unix socket. Its host name appears only in the Host header.
constexpr const char* k_unix_socket_base_url = "http://localhost";

struct CurlEasyDeleter {
    void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};

struct CurlSlistDeleter {
    void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

using CurlEasy = std::unique_ptr<CURL, CurlEasyDeleter>;
using CurlSlist = std::unique_ptr<curl_slist, CurlSlistDeleter>;

std::once_flag g_curl_init_once;
CURLcode g_curl_init_result = CURLE_OK;

CURLcode init_curl_once() {
    std::call_once(g_curl_init_once,
                   [] { g_curl_init_result = curl_global_init(CURL_GLOBAL_ALL); });
    return g_curl_init_result;
}

std::string to_lower(std::string_view text) {
    std::string lowered(text);
    for (char& c : lowered) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return lowered;
}

std::string_view trim(std::string_view text) {
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) {
        return {};
    }
    const auto last = text.find_last_not_of(" \t\r\n");
    return text.substr(first, last - first + 1);
}

// The state that libcurl's callbacks share with send(). Callbacks must not throw through C
// code, so an exception is stored here and rethrown once curl_easy_perform has returned.
struct Transfer {
    const HttpRequest& request;
    HttpResponse response;
    bool aborted_by_caller = false;
    std::exception_ptr exception;
};

std::size_t receive_body(char* data, std::size_t size, std::size_t count, void* user_data) {
    auto& transfer = *static_cast<Transfer*>(user_data);
    const std::size_t length = size * count;
    try {
        if (!transfer.request.on_body) {
            transfer.response.body.append(data, length);
            return length;
        }
        if (!transfer.request.on_body(std::string_view(data, length))) {
            transfer.aborted_by_caller = true;
            return 0;
        }
        return length;
    } catch (...) {
        transfer.exception = std::current_exception();
        return 0;
    }
}

void store_header_line(HttpResponse& response, std::string_view line) {
    // A status line starts a new response, such as the final one after "100 Continue".
    if (line.starts_with("HTTP/")) {
        response.headers.clear();
        return;
    }

    const auto colon = line.find(':');
    if (colon == std::string_view::npos) {
        return;
    }
    const std::string name = to_lower(trim(line.substr(0, colon)));
    const std::string_view value = trim(line.substr(colon + 1));
    auto [entry, inserted] = response.headers.try_emplace(name, value);
    if (!inserted) {
        entry->second += ", ";
        entry->second += value;
    }
}

std::size_t receive_header(char* data, std::size_t size, std::size_t count, void* user_data) {
    auto& transfer = *static_cast<Transfer*>(user_data);
    const std::size_t length = size * count;
    try {
        store_header_line(transfer.response, std::string_view(data, length));
        return length;
    } catch (...) {
        transfer.exception = std::current_exception();
        return 0;
    }
}

class CurlClient final : public HttpClient {
public:
    CurlClient(HttpEndpoint endpoint, std::chrono::milliseconds connect_timeout)
        : m_endpoint(std::move(endpoint)), m_connect_timeout(connect_timeout),
          m_handle(curl_easy_init()) {}

    Result<HttpResponse> send(const HttpRequest& request) override;

private:
    void set_endpoint_options(const HttpRequest& request) const;
    void set_timeouts(std::chrono::milliseconds timeout) const;
    void set_method(const HttpRequest& request) const;
    CurlSlist make_header_list(const HttpRequest& request) const;
    std::string describe_transport_error(CURLcode code, const char* error_text) const;

    HttpEndpoint m_endpoint;
    std::chrono::milliseconds m_connect_timeout;
    CurlEasy m_handle;
};

void CurlClient::set_endpoint_options(const HttpRequest& request) const {
    CURL* handle = m_handle.get();
    const bool use_socket = !m_endpoint.unix_socket.empty();
    std::string url = m_endpoint.base_url;
    if (use_socket && url.empty()) {
        url = k_unix_socket_base_url;
    }
    url += request.target;
    curl_easy_setopt(handle, CURLOPT_URL, url.c_str()); // libcurl copies string options
    curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "http,https");
    if (use_socket) {
        curl_easy_setopt(handle, CURLOPT_UNIX_SOCKET_PATH, m_endpoint.unix_socket.c_str());
    }

    // An empty proxy and a "*" no-proxy list override http_proxy, HTTPS_PROXY and ALL_PROXY.
    curl_easy_setopt(handle, CURLOPT_PROXY, "");
    curl_easy_setopt(handle, CURLOPT_NOPROXY, "*");

    if (!m_endpoint.ca_file.empty()) {
        curl_easy_setopt(handle, CURLOPT_CAINFO, m_endpoint.ca_file.c_str());
    }
    if (!m_endpoint.cert_file.empty()) {
        curl_easy_setopt(handle, CURLOPT_SSLCERT, m_endpoint.cert_file.c_str());
    }
    if (!m_endpoint.key_file.empty()) {
        curl_easy_setopt(handle, CURLOPT_SSLKEY, m_endpoint.key_file.c_str());
    }
    curl_easy_setopt(handle, CURLOPT_SSL_VERIFYPEER, m_endpoint.verify_peer ? 1L : 0L);
    curl_easy_setopt(handle, CURLOPT_SSL_VERIFYHOST, m_endpoint.verify_peer ? 2L : 0L);
    curl_easy_setopt(handle, CURLOPT_USERAGENT, "jitbox/" JITBOX_VERSION);
}

void CurlClient::set_timeouts(std::chrono::milliseconds timeout) const {
    CURL* handle = m_handle.get();
    curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(m_connect_timeout.count()));
    if (timeout.count() > 0) {
        curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
        return;
    }
    curl_easy_setopt(handle, CURLOPT_LOW_SPEED_LIMIT, k_low_speed_limit_bytes);
    curl_easy_setopt(handle, CURLOPT_LOW_SPEED_TIME, k_low_speed_time_seconds);
}

void CurlClient::set_method(const HttpRequest& request) const {
    CURL* handle = m_handle.get();
    if (request.method == "GET") {
        curl_easy_setopt(handle, CURLOPT_HTTPGET, 1L);
        return;
    }
    if (request.method == "HEAD") {
        curl_easy_setopt(handle, CURLOPT_NOBODY, 1L);
        return;
    }

    // libcurl does not copy POSTFIELDS, so request.body must outlive curl_easy_perform.
    if (request.method == "POST" || !request.body.empty()) {
        curl_easy_setopt(handle, CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(request.body.size()));
        curl_easy_setopt(handle, CURLOPT_POSTFIELDS, request.body.data());
    }
    if (request.method != "POST") {
        curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }
}

CurlSlist CurlClient::make_header_list(const HttpRequest& request) const {
    CurlSlist list;
    const auto append = [&list](const std::string& line) {
        // Appending to a list returns its unchanged head, or null when out of memory.
        curl_slist* head = curl_slist_append(list.get(), line.c_str());
        if (head == nullptr) {
            throw std::bad_alloc();
        }
        if (!list) {
            list.reset(head);
        }
    };

    // An empty "Expect:" stops libcurl from waiting for "100 Continue" before larger bodies,
    // and an empty "Content-Type:" drops the form type libcurl would add to a POST.
    append("Expect:");
    bool has_content_type = false;
    for (const auto& [name, value] : request.headers) {
        has_content_type = has_content_type || to_lower(name) == "content-type";
        append(name + ": " + value);
    }
    if (!has_content_type) {
        append("Content-Type:");
    }
    return list;
}

std::string CurlClient::describe_transport_error(CURLcode code, const char* error_text) const {
    // For a refused or missing socket, libcurl's own text names "localhost port 80", which
    // misleads on a unix socket, so the system error is shown instead.
    long os_error = 0;
    curl_easy_getinfo(m_handle.get(), CURLINFO_OS_ERRNO, &os_error);
    if (code == CURLE_COULDNT_CONNECT && os_error != 0) {
        return fmt::format("{} ({})", std::generic_category().message(static_cast<int>(os_error)),
                           curl_easy_strerror(code));
    }
    if (error_text[0] != '\0') {
        return error_text;
    }
    return curl_easy_strerror(code);
}

Result<HttpResponse> CurlClient::send(const HttpRequest& request) {
    if (const CURLcode init = init_curl_once(); init != CURLE_OK) {
        return make_failure(ExitCode::provider, "cannot reach {}: libcurl failed to start: {}",
                            m_endpoint.describe(), curl_easy_strerror(init));
    }
    if (!m_handle) {
        return make_failure(ExitCode::provider,
                            "cannot reach {}: libcurl could not create a handle (out of memory?)",
                            m_endpoint.describe());
    }

    CURL* handle = m_handle.get();
    curl_easy_reset(handle); // clears options but keeps open connections for reuse
    set_endpoint_options(request);
    set_timeouts(request.timeout);
    set_method(request);
    const CurlSlist headers = make_header_list(request);
    curl_easy_setopt(handle, CURLOPT_HTTPHEADER, headers.get());

    Transfer transfer{request, {}, false, nullptr};
    curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, &receive_body);
    curl_easy_setopt(handle, CURLOPT_WRITEDATA, &transfer);
    curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, &receive_header);
    curl_easy_setopt(handle, CURLOPT_HEADERDATA, &transfer);
    char error_text[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, error_text);

    const auto started = std::chrono::steady_clock::now();
    const CURLcode code = curl_easy_perform(handle);
    curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &transfer.response.status);
    log_debug(2, "{} {} -> {} in {} ms", request.method, request.target, transfer.response.status,
              std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - started).count());
    const std::string transport_error =
        code == CURLE_OK ? std::string() : describe_transport_error(code, error_text);
    curl_easy_reset(handle); // drops pointers to error_text, headers and request.body

    if (transfer.exception) {
        std::rethrow_exception(transfer.exception);
    }
    if (code != CURLE_OK && !(code == CURLE_WRITE_ERROR && transfer.aborted_by_caller)) {
        return make_failure(ExitCode::provider, "cannot reach {}: {}", m_endpoint.describe(),
                            transport_error);
    }
    return std::move(transfer.response);
}

} // namespace

std::unique_ptr<HttpClient> make_curl_client(const HttpEndpoint& endpoint,
                                             std::chrono::milliseconds connect_timeout) {
    // curl_global_init is not thread-safe, so it runs before the first handle exists.
    static_cast<void>(init_curl_once());
    return std::make_unique<CurlClient>(endpoint, connect_timeout);
}

} // namespace jitbox
