#include "jitbox/aws/query.hpp"

#include "jitbox/aws/errors.hpp"
#include "jitbox/util/log.hpp"

#include <algorithm>
#include <array>
#include <fmt/format.h>
#include <map>

namespace jitbox::aws {
namespace {

// Codes with which STS and EC2 reject a request for its rate rather than its content.
constexpr std::array<std::string_view, 6> k_throttling_codes{
    "Throttling",       "ThrottlingException",       "RequestLimitExceeded",
    "RequestThrottled", "RequestThrottledException", "TooManyRequestsException",
};

constexpr std::string_view k_content_type = "application/x-www-form-urlencoded; charset=utf-8";

std::optional<std::string> variable(const Environment& environment, std::string_view name) {
    const auto found = environment.variables.find(std::string(name));
    if (found == environment.variables.end() || found->second.empty()) {
        return std::nullopt;
    }
    return found->second;
}

bool is_loopback_host(std::string_view host) {
    return host == "localhost" || host == "[::1]" || host.starts_with("127.");
}

// Splits "host:port" or "[v6]:port" into the host and the port text (empty when absent).
std::pair<std::string_view, std::string_view> split_authority(std::string_view authority) {
    const std::size_t bracket = authority.rfind(']');
    const std::size_t colon = authority.rfind(':');
    if (colon == std::string_view::npos || (bracket != std::string_view::npos && colon < bracket)) {
        return {authority, {}};
    }
    return {authority.substr(0, colon), authority.substr(colon + 1)};
}

bool should_retry(long status, std::string_view code) {
    return status >= 500 || status == 429 || is_throttling_error(code);
}

} // namespace

bool is_throttling_error(std::string_view code) {
    return std::find(k_throttling_codes.begin(), k_throttling_codes.end(), code) !=
           k_throttling_codes.end();
}

Result<EndpointUrl> parse_endpoint_url(std::string_view url, std::string_view source) {
    const auto invalid = [&](std::string_view problem) {
        return make_failure(ExitCode::usage, "{}: invalid AWS endpoint URL \"{}\": {}", source, url,
                            problem);
    };
    const std::size_t scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) {
        return invalid("expected https://HOST[:PORT][/PATH]");
    }
    const std::string_view scheme = url.substr(0, scheme_end);
    if (scheme != "https" && scheme != "http") {
        return invalid("the scheme must be https, or http for a loopback host");
    }
    std::string_view rest = url.substr(scheme_end + 3);
    if (rest.find_first_of("?#") != std::string_view::npos) {
        return invalid("remove the query or fragment");
    }
    // The path goes into the request line and the signature, so it keeps to printable ASCII.
    if (std::any_of(rest.begin(), rest.end(), [](char c) { return c <= ' ' || c >= '\x7f'; })) {
        return invalid("remove the white space, control and non-ASCII characters");
    }
    const std::size_t slash = rest.find('/');
    const std::string_view authority = rest.substr(0, slash);
    const std::string path =
        slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    if (authority.empty() || authority.find('@') != std::string_view::npos) {
        return invalid("name a host, without user information");
    }

    const auto [host, port] = split_authority(authority);
    if (host.empty() || (!port.empty() && !std::all_of(port.begin(), port.end(), [](char c) {
            return c >= '0' && c <= '9';
        }))) {
        return invalid("expected HOST or HOST:PORT");
    }
    if (scheme == "http" && !is_loopback_host(host)) {
        return invalid("plain http is accepted only for a loopback host; use https");
    }
    const bool default_port =
        port.empty() || (scheme == "https" && port == "443") || (scheme == "http" && port == "80");
    EndpointUrl endpoint;
    endpoint.base_url = fmt::format("{}://{}", scheme, authority);
    endpoint.host = default_port ? std::string(host) : std::string(authority);
    endpoint.path = path;
    return endpoint;
}

Result<std::string> resolve_region(const Template& spec, const Environment& environment) {
    if (!spec.aws.region.empty()) {
        if (!is_valid_region(spec.aws.region)) {
            return make_failure(ExitCode::usage,
                                "template \"{}\": invalid AWS region \"{}\"; use a region code "
                                "such as us-east-1",
                                spec.name, spec.aws.region);
        }
        return spec.aws.region;
    }
    auto found = find_region(environment);
    if (!found) {
        return found.error();
    }
    if (!*found) {
        return make_failure(ExitCode::usage,
                            "template \"{}\" names no AWS region and none is configured; set "
                            "region in the template, or set AWS_REGION (or region in the AWS "
                            "profile \"{}\")",
                            spec.name, selected_profile(environment));
    }
    return std::move(**found);
}

Result<std::string> resolve_endpoint_url(const QueryService& service, const Template& spec,
                                         const std::string& region,
                                         const Environment& environment) {
    std::string url;
    std::string source;
    if (!spec.aws.endpoint_url.empty()) {
        url = spec.aws.endpoint_url;
        source = fmt::format("template \"{}\": endpoint_url", spec.name);
    } else if (auto own = variable(environment, service.endpoint_variable)) {
        url = *own;
        source = std::string(service.endpoint_variable);
    } else if (auto shared = variable(environment, "AWS_ENDPOINT_URL")) {
        url = *shared;
        source = "AWS_ENDPOINT_URL";
    } else {
        url = fmt::format("https://{}.{}.amazonaws.com", service.signing_name, region);
        source = "the default endpoint";
    }
    if (auto parsed = parse_endpoint_url(url, source); !parsed) {
        return parsed.error();
    }
    return url;
}

std::string encode_query_body(std::string_view action, std::string_view version,
                              const QueryParameters& parameters) {
    std::string body = fmt::format("Action={}&Version={}", url_encode(action), url_encode(version));
    for (const auto& [name, value] : parameters) {
        body += fmt::format("&{}={}", url_encode(name), url_encode(value));
    }
    return body;
}

QueryClient::QueryClient(const QueryService& service, std::unique_ptr<HttpClient> http,
                         EndpointUrl endpoint, std::string region, CredentialSource credentials,
                         const Clock& clock, SleepFn sleep, RetryPolicy retry)
    : m_service(service), m_http(std::move(http)), m_endpoint(std::move(endpoint)),
      m_region(std::move(region)), m_credential_source(std::move(credentials)), m_clock(clock),
      m_sleep(std::move(sleep)), m_retry(retry) {}

Result<HttpRequest> QueryClient::build_request(std::string_view action,
                                               const QueryParameters& parameters) {
    if (!m_credentials) {
        auto found = m_credential_source();
        if (!found) {
            return found.error();
        }
        m_credentials = std::move(found).value();
        add_redacted_value(m_credentials->secret_access_key);
        add_redacted_value(m_credentials->session_token);
    }

    SigningRequest unsigned_request;
    unsigned_request.method = "POST";
    unsigned_request.path = m_endpoint.path;
    unsigned_request.headers = {{"Host", m_endpoint.host},
                                {"Content-Type", std::string(k_content_type)}};
    unsigned_request.body = encode_query_body(action, m_service.version, parameters);
    const SigningScope scope{m_region, std::string(m_service.signing_name), m_clock.now()};
    auto signed_request = sign(std::move(unsigned_request), *m_credentials, scope);
    if (!signed_request) {
        return signed_request.error();
    }

    HttpRequest request;
    request.method = "POST";
    request.target = signed_request->path;
    request.body = std::move(signed_request->body);
    request.headers = std::move(signed_request->headers);
    request.timeout = k_query_timeout;
    return request;
}

Result<std::string> QueryClient::call(std::string_view action, const QueryParameters& parameters,
                                      std::string* error_code) {
    const std::string operation = fmt::format("{} {}", m_service.name, action);
    std::chrono::milliseconds delay = m_retry.first_delay;
    for (int attempt = 1;; ++attempt) {
        // Signed anew for each attempt, so a retry carries a current X-Amz-Date.
        auto request = build_request(action, parameters);
        if (!request) {
            return request.error();
        }
        auto response = m_http->send(*request);
        if (!response) {
            return make_failure(response.error().code, "{}: {}", operation,
                                response.error().message);
        }
        const TimePoint received_at = m_clock.now();
        log_debug(1, "{} ({}, {}) -> HTTP {}", operation, m_endpoint.base_url, m_region,
                  response->status);
        if (response->status >= 200 && response->status < 300) {
            return std::move(response->body);
        }

        const std::optional<ApiError> error = parse_api_error(response->body);
        const std::string code = error ? error->code : std::string();
        if (attempt < m_retry.max_attempts && should_retry(response->status, code)) {
            log_debug(1, "{} failed with HTTP {} {}; retry {} of {} in {} ms", operation,
                      response->status, code, attempt, m_retry.max_attempts - 1, delay.count());
            m_sleep(delay);
            delay = std::min(delay * 2, m_retry.max_delay);
            continue;
        }
        if (error_code != nullptr) {
            *error_code = code;
        }
        return api_failure(operation, *response, received_at);
    }
}

} // namespace jitbox::aws
