#include "curl_handle.hpp"
#include "jitbox/net/http.hpp"
#include "jitbox/util/log.hpp"

#include <curl/curl.h>
#include <exception>
#include <fmt/format.h>
#include <memory>
#include <new>
#include <string>
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

Result<UpgradeResponse> HttpClient::upgrade(const HttpRequest& request) {
    return make_failure(ExitCode::internal, "this HTTP client cannot upgrade {} to a raw stream",
                        request.target);
}

namespace {

using net_detail::curl_upgrade;
using net_detail::CurlEasy;
using net_detail::describe_transport_error;
using net_detail::init_curl_once;
using net_detail::perform_transfer;
using net_detail::set_endpoint_options;
using net_detail::store_header_line;
using net_detail::to_lower;

// Without a total timeout, a transfer that moves less than this many bytes per second for
// HttpRequest::stall_timeout is aborted, so a stalled stream cannot hang the command.
constexpr long k_low_speed_limit_bytes = 1;

struct CurlSlistDeleter {
    void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

using CurlSlist = std::unique_ptr<curl_slist, CurlSlistDeleter>;

// The state that libcurl's callbacks share with send(). Callbacks must not throw through C
// code, so an exception is stored here and rethrown once curl_easy_perform has returned.
struct Transfer {
    const HttpRequest& request;
    CURL* handle;
    HttpResponse response;
    bool aborted_by_caller = false;
    std::exception_ptr exception;
};

bool is_cancelled(Transfer& transfer) {
    if (transfer.request.cancelled && transfer.request.cancelled()) {
        transfer.aborted_by_caller = true;
    }
    return transfer.aborted_by_caller;
}

// The progress callback (CURLOPT_XFERINFOFUNCTION), which libcurl calls about once a second
// even while no data arrives.
int check_cancelled(void* user_data, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto& transfer = *static_cast<Transfer*>(user_data);
    try {
        return is_cancelled(transfer) ? 1 : 0;
    } catch (...) {
        transfer.exception = std::current_exception();
        return 1;
    }
}

// Returns true when the body goes to on_body. That is always the case unless
// stream_success_only requires a 2xx status, which libcurl has once the headers have arrived.
bool streams_body(const Transfer& transfer) {
    if (!transfer.request.stream_success_only) {
        return true;
    }
    long status = 0;
    curl_easy_getinfo(transfer.handle, CURLINFO_RESPONSE_CODE, &status);
    return status >= 200 && status < 300;
}

std::size_t receive_body(char* data, std::size_t size, std::size_t count, void* user_data) {
    auto& transfer = *static_cast<Transfer*>(user_data);
    const std::size_t length = size * count;
    try {
        if (is_cancelled(transfer)) {
            return 0;
        }
        if (!transfer.request.on_body || !streams_body(transfer)) {
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
    Result<UpgradeResponse> upgrade(const HttpRequest& request) override {
        return curl_upgrade(m_endpoint, m_connect_timeout, request);
    }

private:
    void set_timeouts(const HttpRequest& request) const;
    void set_method(const HttpRequest& request) const;
    CurlSlist make_header_list(const HttpRequest& request) const;

    HttpEndpoint m_endpoint;
    std::chrono::milliseconds m_connect_timeout;
    CurlEasy m_handle;
};

void CurlClient::set_timeouts(const HttpRequest& request) const {
    CURL* handle = m_handle.get();
    curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(m_connect_timeout.count()));
    if (request.timeout.count() > 0) {
        curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
        return;
    }
    if (request.stall_timeout.count() > 0) {
        curl_easy_setopt(handle, CURLOPT_LOW_SPEED_LIMIT, k_low_speed_limit_bytes);
        curl_easy_setopt(handle, CURLOPT_LOW_SPEED_TIME,
                         static_cast<long>(request.stall_timeout.count()));
    }
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
    set_endpoint_options(handle, m_endpoint, request.target);
    set_timeouts(request);
    set_method(request);
    const CurlSlist headers = make_header_list(request);
    curl_easy_setopt(handle, CURLOPT_HTTPHEADER, headers.get());

    Transfer transfer{request, handle, {}, false, nullptr};
    curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, &receive_body);
    curl_easy_setopt(handle, CURLOPT_WRITEDATA, &transfer);
    curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, &receive_header);
    curl_easy_setopt(handle, CURLOPT_HEADERDATA, &transfer);
    if (request.cancelled) {
        curl_easy_setopt(handle, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, &check_cancelled);
        curl_easy_setopt(handle, CURLOPT_XFERINFODATA, &transfer);
    }
    char error_text[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, error_text);

    const auto started = std::chrono::steady_clock::now();
    const CURLcode code = perform_transfer(handle);
    curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &transfer.response.status);
    log_debug(2, "{} {} -> {} in {} ms", request.method, request.target, transfer.response.status,
              std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - started).count());
    const std::string transport_error =
        code == CURLE_OK ? std::string() : describe_transport_error(handle, code, error_text);
    curl_easy_reset(handle); // drops pointers to error_text, headers and request.body

    if (transfer.exception) {
        std::rethrow_exception(transfer.exception);
    }
    const bool aborted = (code == CURLE_WRITE_ERROR || code == CURLE_ABORTED_BY_CALLBACK) &&
                         transfer.aborted_by_caller;
    if (code != CURLE_OK && !aborted) {
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
