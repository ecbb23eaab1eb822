#pragma once

// Error responses of the AWS Query protocol, which STS and EC2 use, turned into failures with
// AWS's error code and message, plus the measured clock skew when the local clock is the cause.

#include "jitbox/net/http.hpp"
#include "jitbox/util/result.hpp"
#include "jitbox/util/time.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace jitbox::aws {

/// AWS rejects most signed requests whose time stamp is more than five minutes from its own
/// clock (AWS IAM User Guide, "Signing AWS API requests").
inline constexpr Seconds k_max_clock_skew{5 * 60};

/// The error of an AWS error document.
struct ApiError {
    std::string code;    // such as "AccessDenied"
    std::string message; // AWS's own sentence
    std::string request_id;
};

/// Parses an AWS error document: `<ErrorResponse><Error>` with Code and Message (STS, IAM) or
/// `<Response><Errors><Error>` (EC2). Returns none when the body is not XML, not one of these
/// documents, or has no Code.
std::optional<ApiError> parse_api_error(std::string_view body);

/// Parses an HTTP Date header in the IMF-fixdate form, such as "Sun, 30 Aug 2015 12:36:00 GMT".
/// The obsolete RFC 850 and asctime forms, which AWS does not send, return none.
std::optional<TimePoint> parse_http_date(std::string_view text);

/// Measures AWS's time minus the local time from the response's Date header, so a positive
/// result means the local clock is behind. `received_at` is the local time when the response
/// arrived. Returns none when the header is missing or invalid.
std::optional<Seconds> measure_clock_skew(const HttpResponse& response, TimePoint received_at);

/// Builds the failure, with ExitCode::provider, for an AWS response with an error status:
/// "OPERATION failed: CODE: MESSAGE (request ID ID)", where `operation` is such as
/// "AWS STS AssumeRole".
///
/// The signature and expiry codes (SignatureDoesNotMatch, RequestExpired,
/// InvalidSignatureException, AuthFailure, RequestTimeTooSkewed) get "the local clock is off by
/// N s from AWS's" when the Date header shows more than k_max_clock_skew. Without a Date header,
/// they get a hint to check the clock when AWS's message speaks of expiry or the clock.
Failure api_failure(std::string_view operation, const HttpResponse& response,
                    TimePoint received_at);

} // namespace jitbox::aws
