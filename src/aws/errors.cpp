#include "jitbox/aws/errors.hpp"

#include "xml.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>

namespace jitbox::aws {
namespace {

// Codes with which AWS rejects a request whose signature or time stamp it does not accept.
constexpr std::array<std::string_view, 5> k_signature_error_codes{
    "SignatureDoesNotMatch", "RequestExpired",       "InvalidSignatureException",
    "AuthFailure",           "RequestTimeTooSkewed",
};

// Words in AWS's messages for requests signed too far from its clock, such as "Signature
// expired: ... is now earlier than ..." and "Signature not yet current: ...".
constexpr std::array<std::string_view, 4> k_clock_words{
    "expired",
    "not yet current",
    "skew",
    "clock",
};

constexpr std::array<std::string_view, 12> k_month_names{
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

bool contains_case_insensitive(std::string_view text, std::string_view lower_word) {
    std::string lower(text);
    std::transform(lower.begin(), lower.end(), lower.begin(), [](char c) {
        return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    });
    return lower.find(lower_word) != std::string::npos;
}

bool is_signature_error(std::string_view code) {
    return std::find(k_signature_error_codes.begin(), k_signature_error_codes.end(), code) !=
           k_signature_error_codes.end();
}

bool mentions_clock(std::string_view message) {
    return std::any_of(k_clock_words.begin(), k_clock_words.end(), [&](std::string_view word) {
        return contains_case_insensitive(message, word);
    });
}

std::optional<int> parse_number(std::string_view text) {
    int value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size()) {
        return std::nullopt;
    }
    return value;
}

// Finds the error element of either document shape.
pugi::xml_node find_error_element(const pugi::xml_document& document) {
    const pugi::xml_node root = document.document_element();
    if (xml::local_name(root) == "ErrorResponse") {
        return xml::child(root, "Error");
    }
    if (xml::local_name(root) == "Response") {
        return xml::child(xml::child(root, "Errors"), "Error");
    }
    return {};
}

// Appends the measured clock skew to the message of a rejected signature when the Date header
// shows more than k_max_clock_skew, or a hint to check the clock when there is no Date header
// but AWS's message speaks of expiry or the clock.
void add_clock_advice(std::string& message, const ApiError& error, const HttpResponse& response,
                      TimePoint received_at) {
    if (!is_signature_error(error.code)) {
        return;
    }
    const std::optional<Seconds> skew = measure_clock_skew(response, received_at);
    if (!skew) {
        if (mentions_clock(error.message)) {
            message += "; the local clock may be off from AWS's, but the response has no Date "
                       "header to measure by how much; check the system time";
        }
        return;
    }
    const Seconds distance = std::chrono::abs(*skew);
    if (distance > k_max_clock_skew) {
        message += fmt::format("; the local clock is off by {} s from AWS's ({}); fix the "
                               "system time",
                               distance.count(), skew->count() > 0 ? "behind" : "ahead");
    }
}

} // namespace

std::optional<ApiError> parse_api_error(std::string_view body) {
    pugi::xml_document document;
    if (!xml::load(document, body, "AWS error")) {
        return std::nullopt;
    }
    const pugi::xml_node error = find_error_element(document);
    ApiError parsed{
        xml::text(xml::child(error, "Code")), xml::text(xml::child(error, "Message")), {}};
    if (parsed.code.empty()) {
        return std::nullopt;
    }

    // STS puts RequestId beside Error, EC2 puts RequestID beside Errors.
    const pugi::xml_node root = document.document_element();
    parsed.request_id = xml::text(xml::child(root, "RequestId"));
    if (parsed.request_id.empty()) {
        parsed.request_id = xml::text(xml::child(root, "RequestID"));
    }
    return parsed;
}

std::optional<TimePoint> parse_http_date(std::string_view text) {
    // "Sun, 30 Aug 2015 12:36:00 GMT": fixed positions, as RFC 9110 section 5.6.7 defines.
    if (text.size() != 29 || text.substr(3, 2) != ", " || text[7] != ' ' || text[11] != ' ' ||
        text[16] != ' ' || text[19] != ':' || text[22] != ':' || text.substr(25) != " GMT") {
        return std::nullopt;
    }
    const auto month_name = text.substr(8, 3);
    const auto month = std::find(k_month_names.begin(), k_month_names.end(), month_name);
    const auto day = parse_number(text.substr(5, 2));
    const auto year = parse_number(text.substr(12, 4));
    const auto hours = parse_number(text.substr(17, 2));
    const auto minutes = parse_number(text.substr(20, 2));
    const auto seconds = parse_number(text.substr(23, 2));
    if (month == k_month_names.end() || !day || !year || !hours || !minutes || !seconds ||
        *hours > 23 || *minutes > 59 || *seconds > 60) {
        return std::nullopt;
    }

    const std::chrono::year_month_day date{
        std::chrono::year{*year},
        std::chrono::month{static_cast<unsigned>(month - k_month_names.begin() + 1)},
        std::chrono::day{static_cast<unsigned>(*day)}};
    if (!date.ok()) {
        return std::nullopt;
    }
    return TimePoint{std::chrono::sys_days{date}} + std::chrono::hours{*hours} +
           std::chrono::minutes{*minutes} + Seconds{*seconds};
}

std::optional<Seconds> measure_clock_skew(const HttpResponse& response, TimePoint received_at) {
    const auto date = response.headers.find("date");
    if (date == response.headers.end()) {
        return std::nullopt;
    }
    const std::optional<TimePoint> aws_time = parse_http_date(date->second);
    if (!aws_time) {
        return std::nullopt;
    }
    return *aws_time - received_at;
}

Failure api_failure(std::string_view operation, const HttpResponse& response,
                    TimePoint received_at) {
    const std::optional<ApiError> error = parse_api_error(response.body);
    if (!error) {
        return make_failure(ExitCode::provider,
                            "{} failed with HTTP status {} and no AWS error in the response; "
                            "try again later, and check for a proxy between jitbox and AWS if it "
                            "persists",
                            operation, response.status);
    }

    std::string message = fmt::format("{} failed: {}", operation, error->code);
    if (!error->message.empty()) {
        message += fmt::format(": {}", error->message);
    }
    if (!error->request_id.empty()) {
        message += fmt::format(" (request ID {})", error->request_id);
    }
    add_clock_advice(message, *error, response, received_at);
    return Failure{ExitCode::provider, std::move(message)};
}

} // namespace jitbox::aws
