#include "jitbox/aws/errors.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace jitbox::aws {
namespace {

// Error documents in the shapes that STS and EC2 return, with made-up request IDs.
constexpr std::string_view k_sts_error =
    R"(<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>AccessDenied</Code>
    <Message>User is not authorized to perform: sts:AssumeRole</Message>
  </Error>
  <RequestId>11111111-2222-3333-4444-555555555555</RequestId>
</ErrorResponse>)";

constexpr std::string_view k_ec2_error = R"(<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code><Message>The instance ID 'i-0abc' does not exist</Message></Error></Errors><RequestID>aaaa-bbbb</RequestID></Response>)";

// 2026-03-01T08:30:45Z, and the same instant as an HTTP date.
const TimePoint k_aws_time =
    TimePoint{std::chrono::sys_days{std::chrono::year{2026} / std::chrono::March / 1}} + 8h +
    30min + 45s;
constexpr std::string_view k_aws_date = "Sun, 01 Mar 2026 08:30:45 GMT";

std::string error_body(std::string_view code, std::string_view message) {
    return "<ErrorResponse><Error><Code>" + std::string(code) + "</Code><Message>" +
           std::string(message) + "</Message></Error></ErrorResponse>";
}

HttpResponse response(long status, std::string body, std::string_view date = {}) {
    HttpResponse response;
    response.status = status;
    response.body = std::move(body);
    if (!date.empty()) {
        response.headers["date"] = std::string(date);
    }
    return response;
}

bool contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

} // namespace

TEST_SUITE("aws errors") {

    TEST_CASE("parse_api_error reads STS and EC2 documents") {
        const auto sts = parse_api_error(k_sts_error);
        REQUIRE(sts.has_value());
        CHECK(sts->code == "AccessDenied");
        CHECK(sts->message == "User is not authorized to perform: sts:AssumeRole");
        CHECK(sts->request_id == "11111111-2222-3333-4444-555555555555");

        const auto ec2 = parse_api_error(k_ec2_error);
        REQUIRE(ec2.has_value());
        CHECK(ec2->code == "InvalidInstanceID.NotFound");
        CHECK(ec2->message == "The instance ID 'i-0abc' does not exist");
        CHECK(ec2->request_id == "aaaa-bbbb");
    }

    TEST_CASE("parse_api_error rejects other bodies") {
        const std::vector<std::string> bodies{
            "",
            "not xml",
            "<html><body>502 Bad Gateway</body></html>",
            "<ErrorResponse><Error><Message>no code</Message></Error></ErrorResponse>",
            "<ErrorResponse><Error><Code>Truncated</Code>",
            "<Response><Error><Code>WrongNesting</Code></Error></Response>",
        };
        for (const std::string& body : bodies) {
            CAPTURE(body);
            CHECK_FALSE(parse_api_error(body).has_value());
        }
    }

    TEST_CASE("parse_http_date") {
        CHECK(parse_http_date(k_aws_date) == std::optional<TimePoint>(k_aws_time));
        CHECK(parse_http_date("Thu, 29 Feb 2024 23:59:59 GMT").has_value());

        const std::vector<std::string> invalid{
            "",
            "Sun, 1 Mar 2026 08:30:45 GMT",
            "Sun, 01 Mar 2026 08:30:45 UTC",
            "Sun, 01 Foo 2026 08:30:45 GMT",
            "Fri, 30 Feb 2026 08:30:45 GMT",
            "Sun, 01 Mar 2026 24:30:45 GMT",
            "Sun, 01 Mar 2026 08:3x:45 GMT",
            "Sunday, 01-Mar-26 08:30:45 GMT",
            "Sun Mar  1 08:30:45 2026",
        };
        for (const std::string& text : invalid) {
            CAPTURE(text);
            CHECK_FALSE(parse_http_date(text).has_value());
        }
    }

    TEST_CASE("measure_clock_skew") {
        CHECK(measure_clock_skew(response(403, "", k_aws_date), k_aws_time - 20min) ==
              std::optional<Seconds>(20min));
        CHECK(measure_clock_skew(response(403, "", k_aws_date), k_aws_time + 7s) ==
              std::optional<Seconds>(-7s));
        CHECK_FALSE(measure_clock_skew(response(403, ""), k_aws_time).has_value());
        CHECK_FALSE(measure_clock_skew(response(403, "", "yesterday"), k_aws_time).has_value());
    }

    TEST_CASE("api_failure carries AWS's code and message") {
        const Failure sts =
            api_failure("AWS STS AssumeRole", response(403, std::string(k_sts_error)), k_aws_time);
        CHECK(sts.code == ExitCode::provider);
        CHECK(sts.message == "AWS STS AssumeRole failed: AccessDenied: User is not authorized to "
                             "perform: sts:AssumeRole (request ID "
                             "11111111-2222-3333-4444-555555555555)");

        const Failure ec2 = api_failure("AWS EC2 DescribeInstances",
                                        response(400, std::string(k_ec2_error)), k_aws_time);
        CHECK(ec2.code == ExitCode::provider);
        CHECK(ec2.message == "AWS EC2 DescribeInstances failed: InvalidInstanceID.NotFound: The "
                             "instance ID 'i-0abc' does not exist (request ID aaaa-bbbb)");
    }

    TEST_CASE("api_failure for a body that is not an AWS error") {
        const Failure failure = api_failure("AWS STS AssumeRole",
                                            response(502, "<html>Bad Gateway</html>"), k_aws_time);
        CHECK(failure.code == ExitCode::provider);
        CHECK(contains(failure.message, "AWS STS AssumeRole failed with HTTP status 502 and no AWS "
                                        "error in the response"));
    }

    TEST_CASE("api_failure reports clock skew") {
        const std::string expired = error_body(
            "SignatureDoesNotMatch", "Signature expired: 20260301T081045Z is now earlier than "
                                     "20260301T082545Z (20260301T083045Z - 5 min.)");

        SUBCASE("local clock behind") {
            const Failure failure = api_failure(
                "AWS STS AssumeRole", response(403, expired, k_aws_date), k_aws_time - 20min);
            CHECK(contains(failure.message, "failed: SignatureDoesNotMatch: Signature expired"));
            CHECK(contains(failure.message,
                           "; the local clock is off by 1200 s from AWS's (behind); fix the system "
                           "time"));
        }
        SUBCASE("local clock ahead") {
            const Failure failure =
                api_failure("AWS EC2 RunInstances",
                            response(401,
                                     error_body("AuthFailure", "AWS was not able to validate "
                                                               "the provided access credentials"),
                                     k_aws_date),
                            k_aws_time + 1h);
            CHECK(contains(
                failure.message,
                "the local clock is off by 3600 s from AWS's (ahead); fix the system time"));
        }
        SUBCASE("all signature codes") {
            for (const std::string code :
                 {"SignatureDoesNotMatch", "RequestExpired", "InvalidSignatureException",
                  "AuthFailure", "RequestTimeTooSkewed"}) {
                CAPTURE(code);
                const Failure failure = api_failure(
                    "AWS EC2 RunInstances", response(400, error_body(code, "rejected"), k_aws_date),
                    k_aws_time - 6min);
                CHECK(contains(failure.message, "off by 360 s"));
            }
        }
        SUBCASE("skew within the limit is not blamed") {
            const Failure failure = api_failure(
                "AWS STS AssumeRole", response(403, expired, k_aws_date), k_aws_time - 4min);
            CHECK_FALSE(contains(failure.message, "clock"));
        }
        SUBCASE("other codes are not blamed on the clock") {
            const Failure failure =
                api_failure("AWS STS AssumeRole",
                            response(403, error_body("AccessDenied", "not allowed"), k_aws_date),
                            k_aws_time - 1h);
            CHECK_FALSE(contains(failure.message, "clock"));
        }
        SUBCASE("message shows skew but there is no Date header") {
            const Failure failure = api_failure(
                "AWS EC2 RunInstances",
                response(400, error_body("RequestExpired", "Request has expired.")), k_aws_time);
            CHECK(contains(failure.message,
                           "the local clock may be off from AWS's, but the response "
                           "has no Date header"));
        }
        SUBCASE("no Date header and no sign of skew") {
            const Failure failure = api_failure(
                "AWS STS AssumeRole",
                response(403, error_body("SignatureDoesNotMatch", "The request signature we "
                                                                  "calculated does not match")),
                k_aws_time);
            CHECK_FALSE(contains(failure.message, "clock"));
        }
    }

} // TEST_SUITE

} // namespace jitbox::aws
