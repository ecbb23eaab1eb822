// Fuzz target: the readers of AWS Query API replies (STS and EC2), which are the success
// parsers of responses.hpp, parse_api_error and api_failure with the Date header.

#include "jitbox/aws/errors.hpp"
#include "jitbox/aws/responses.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace aws = jitbox::aws;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    static_cast<void>(aws::parse_assume_role_response(body));
    static_cast<void>(aws::parse_run_instances_response(body));
    static_cast<void>(aws::parse_describe_instances_response(body));
    static_cast<void>(aws::parse_terminate_instances_response(body));
    static_cast<void>(aws::parse_describe_images_response(body));
    static_cast<void>(aws::parse_api_error(body));

    // The first line doubles as the Date header, so the clock skew hint is reached too.
    const std::string_view first_line = body.substr(0, body.find('\n'));
    static_cast<void>(aws::parse_http_date(first_line));
    jitbox::HttpResponse response;
    response.status = 400;
    response.headers.emplace("date", std::string(first_line));
    response.body = std::string(body);
    const jitbox::TimePoint received_at{std::chrono::seconds(1'700'000'000)};
    static_cast<void>(aws::api_failure("AWS STS AssumeRole", response, received_at));
    return 0;
}
