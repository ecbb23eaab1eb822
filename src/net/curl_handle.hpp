#pragma once

// The libcurl pieces that the request client (curl_client.cpp) and the upgraded connections
// (curl_upgrade.cpp) share. Internal to src/net.

#include "jitbox/net/http.hpp"

#include <curl/curl.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace jitbox::net_detail {

struct CurlEasyDeleter {
    void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};

using CurlEasy = std::unique_ptr<CURL, CurlEasyDeleter>;

/// Runs curl_easy_perform on `handle`. In enforced mode, set_endpoint_options has the unix
/// socket connected with the set-id ids, and this lowers them again whatever the outcome.
CURLcode perform_transfer(CURL* handle);

/// Runs curl_global_init once per process and returns its result.
CURLcode init_curl_once();

/// Sets the URL of `target` on `endpoint`, the unix socket, the TLS files, the user agent, and
/// an empty proxy so that proxy variables are ignored.
void set_endpoint_options(CURL* handle, const HttpEndpoint& endpoint, std::string_view target);

/// `text` with A-Z lowered, for HTTP header names.
std::string to_lower(std::string_view text);

/// Adds one header line of a reply to response.headers, under its lower-cased name. A status
/// line clears them, because it starts a new response, such as the final one after
/// "100 Continue".
void store_header_line(HttpResponse& response, std::string_view line);

/// The reason a transfer on `handle` failed, for "cannot reach ENDPOINT: REASON".
std::string describe_transport_error(CURL* handle, CURLcode code, const char* error_text);

/// HttpClient::upgrade for libcurl: connects (with TLS for https) through a handle of its own
/// in CONNECT_ONLY mode, writes the request and reads the reply headers itself.
Result<UpgradeResponse> curl_upgrade(const HttpEndpoint& endpoint,
                                     std::chrono::milliseconds connect_timeout,
                                     const HttpRequest& request);

} // namespace jitbox::net_detail
