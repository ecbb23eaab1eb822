#pragma once

// A client for the AWS Query protocol, which STS and EC2 speak: each call is a POST whose
// form-encoded body carries Action, Version and the parameters, signed with SigV4, and whose
// response is an XML document.
//
// Endpoints are never derived from the instance metadata service: the URL comes from the
// template, the AWS_ENDPOINT_URL_* variables, or the public regional host name.

#include "jitbox/aws/credentials.hpp"
#include "jitbox/aws/sigv4.hpp"
#include "jitbox/config/config.hpp"
#include "jitbox/net/http.hpp"
#include "jitbox/util/result.hpp"
#include "jitbox/util/time.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace jitbox::aws {

/// An AWS service that speaks the Query protocol.
struct QueryService {
    std::string_view name;              // for messages, such as "AWS STS"
    std::string_view signing_name;      // the SigV4 service name and the host name prefix
    std::string_view version;           // the API version sent as Version
    std::string_view endpoint_variable; // the service's own endpoint override variable
};

inline constexpr QueryService k_sts_service{"AWS STS", "sts", "2011-06-15", "AWS_ENDPOINT_URL_STS"};
inline constexpr QueryService k_ec2_service{"AWS EC2", "ec2", "2016-11-15", "AWS_ENDPOINT_URL_EC2"};

/// Query parameters in the order they are sent, such as {"InstanceId.1", "i-0abc"}.
using QueryParameters = std::vector<std::pair<std::string, std::string>>;

/// An endpoint URL split into what the HTTP client and the signature need.
struct EndpointUrl {
    std::string base_url; // scheme and authority, such as "https://sts.us-east-1.amazonaws.com"
    std::string host;     // the Host header: host name, plus the port when it is not the default
    std::string path;     // "/" unless the URL names a path
};

/// Parses an endpoint URL. Accepts https:// for any host, and http:// only for a loopback host
/// (localhost, 127.0.0.0/8, [::1]), because a Query request carries the session token and an
/// AssumeRole response carries a secret key. Rejects user info, queries and fragments with
/// ExitCode::usage; `source` names where the URL came from in that message.
Result<EndpointUrl> parse_endpoint_url(std::string_view url, std::string_view source);

/// Finds the region: the template's `region`, then find_region. Fails with ExitCode::usage when
/// neither sets one, naming both fixes.
Result<std::string> resolve_region(const Template& spec, const Environment& environment);

/// Finds the endpoint URL: the template's `endpoint_url`, then the service's variable (such as
/// AWS_ENDPOINT_URL_EC2), then AWS_ENDPOINT_URL, then https://NAME.REGION.amazonaws.com.
Result<std::string> resolve_endpoint_url(const QueryService& service, const Template& spec,
                                         const std::string& region, const Environment& environment);

/// Pauses the caller; tests pass one that advances a fake clock.
using SleepFn = std::function<void(std::chrono::milliseconds)>;

/// Supplies the credentials that sign requests. Called once, on the first request, so that a
/// client which never sends (an aws-sts teardown) needs no credentials.
using CredentialSource = std::function<Result<Credentials>()>;

/// How often a throttled or failing (HTTP 5xx) call is sent again.
struct RetryPolicy {
    int max_attempts = 4;
    std::chrono::milliseconds first_delay{500}; // doubled after each attempt
    std::chrono::milliseconds max_delay{8000};
};

/// The limit on one request, from connecting to the last byte of the response.
inline constexpr std::chrono::milliseconds k_query_timeout{std::chrono::seconds(30)};

/// True for the error codes with which STS and EC2 ask the caller to slow down.
bool is_throttling_error(std::string_view code);

/// Sends Query calls to one service in one region. Not thread-safe, like HttpClient.
class QueryClient {
public:
    QueryClient(const QueryService& service, std::unique_ptr<HttpClient> http, EndpointUrl endpoint,
                std::string region, CredentialSource credentials, const Clock& clock, SleepFn sleep,
                RetryPolicy retry = {});

    /// Calls `action` and returns the response body. An AWS error becomes api_failure's
    /// message with ExitCode::provider, and `error_code`, when given, receives AWS's code
    /// (empty for transport failures and bodies without one). Throttling errors and HTTP 5xx
    /// are retried with exponential backoff; other failures, transport ones included, are not.
    Result<std::string> call(std::string_view action, const QueryParameters& parameters,
                             std::string* error_code = nullptr);

    const std::string& region() const { return m_region; }
    const QueryService& service() const { return m_service; }

private:
    Result<HttpRequest> build_request(std::string_view action, const QueryParameters& parameters);

    QueryService m_service;
    std::unique_ptr<HttpClient> m_http;
    EndpointUrl m_endpoint;
    std::string m_region;
    CredentialSource m_credential_source;
    std::optional<Credentials> m_credentials;
    const Clock& m_clock;
    SleepFn m_sleep;
    RetryPolicy m_retry;
};

/// Form-encodes Action, Version and `parameters` in that order, as the request body.
std::string encode_query_body(std::string_view action, std::string_view version,
                              const QueryParameters& parameters);

} // namespace jitbox::aws
