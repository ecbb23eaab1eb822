#include "curl_handle.hpp"

#include "jitbox/enforced/mode.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <mutex>
#include <optional>
#include <system_error>

namespace jitbox::net_detail {

namespace {

// The URL base for requests over a unix socket. Its host name appears only in the Host header.
constexpr const char* k_unix_socket_base_url = "http://localhost";

std::once_flag g_curl_init_once;
CURLcode g_curl_init_result = CURLE_OK;

std::string_view trim(std::string_view text) {
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) {
        return {};
    }
    const auto last = text.find_last_not_of(" \t\r\n");
    return text.substr(first, last - first + 1);
}

// The set-id ids of enforced mode, raised from the opening of the engine's unix socket until
// libcurl has connected it, because the socket file belongs to the engine's group. The socket
// cannot be connected in the open callback and handed over: libcurl 7.88.1 (Debian 12) ignores
// CURL_SOCKOPT_ALREADY_CONNECTED and calls connect(2) again, which checks the socket file's
// permission with the ids of that moment.
thread_local std::optional<enforced::ElevatedScope> t_connect_scope;

curl_socket_t open_socket_elevated(void*, curlsocktype, curl_sockaddr* address) {
    const int fd = ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
    if (fd < 0) {
        return CURL_SOCKET_BAD;
    }
    if (!t_connect_scope) {
        t_connect_scope.emplace();
    }
    return fd;
}

// Lowers the ids once the connection exists and before the request is sent.
int lower_after_connect(void*, char*, char*, int, int) {
    t_connect_scope.reset();
    return CURL_PREREQFUNC_OK;
}

} // namespace

CURLcode perform_transfer(CURL* handle) {
    const CURLcode code = curl_easy_perform(handle);
    // A connect that failed, and CONNECT_ONLY, which sends no request, skip the PREREQ callback.
    t_connect_scope.reset();
    return code;
}

CURLcode init_curl_once() {
    std::call_once(g_curl_init_once,
                   [] { g_curl_init_result = curl_global_init(CURL_GLOBAL_ALL); });
    return g_curl_init_result;
}

void set_endpoint_options(CURL* handle, const HttpEndpoint& endpoint, std::string_view target) {
    const bool use_socket = !endpoint.unix_socket.empty();
    std::string url = endpoint.base_url;
    if (use_socket && url.empty()) {
        url = k_unix_socket_base_url;
    }
    url += target;
    curl_easy_setopt(handle, CURLOPT_URL, url.c_str()); // libcurl copies string options
    curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "http,https");
    if (use_socket) {
        curl_easy_setopt(handle, CURLOPT_UNIX_SOCKET_PATH, endpoint.unix_socket.c_str());
        if (enforced::is_enforced()) {
            curl_easy_setopt(handle, CURLOPT_OPENSOCKETFUNCTION, open_socket_elevated);
            curl_easy_setopt(handle, CURLOPT_PREREQFUNCTION, lower_after_connect);
        }
    }

    // An empty proxy and a "*" no-proxy list override http_proxy, HTTPS_PROXY and ALL_PROXY.
    curl_easy_setopt(handle, CURLOPT_PROXY, "");
    curl_easy_setopt(handle, CURLOPT_NOPROXY, "*");

    if (!endpoint.ca_file.empty()) {
        curl_easy_setopt(handle, CURLOPT_CAINFO, endpoint.ca_file.c_str());
    }
    if (!endpoint.cert_file.empty()) {
        curl_easy_setopt(handle, CURLOPT_SSLCERT, endpoint.cert_file.c_str());
    }
    if (!endpoint.key_file.empty()) {
        curl_easy_setopt(handle, CURLOPT_SSLKEY, endpoint.key_file.c_str());
    }
    curl_easy_setopt(handle, CURLOPT_SSL_VERIFYPEER, endpoint.verify_peer ? 1L : 0L);
    curl_easy_setopt(handle, CURLOPT_SSL_VERIFYHOST, endpoint.verify_peer ? 2L : 0L);
    curl_easy_setopt(handle, CURLOPT_USERAGENT, "jitbox/" JITBOX_VERSION);
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

std::string describe_transport_error(CURL* handle, CURLcode code, const char* error_text) {
    // For a refused or missing socket, libcurl's own text names "localhost port 80", which
    // misleads on a unix socket, so the system error is shown instead.
    long os_error = 0;
    curl_easy_getinfo(handle, CURLINFO_OS_ERRNO, &os_error);
    if (code == CURLE_COULDNT_CONNECT && os_error != 0) {
        return fmt::format("{} ({})", std::generic_category().message(static_cast<int>(os_error)),
                           curl_easy_strerror(code));
    }
    if (error_text[0] != '\0') {
        return error_text;
    }
    return curl_easy_strerror(code);
}

} // namespace jitbox::net_detail
