#pragma once

// An in-memory AWS Query endpoint for unit tests. It records every request, replies from a
// script, and shares a clock with a sleep function that advances it instead of waiting.

#include "jitbox/aws/query.hpp"
#include "jitbox/aws/sigv4.hpp"

#include <deque>
#include <doctest/doctest.h>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace jitbox::test {

/// A clock that tests move by hand or through the sleep function of make_fake_query_client.
class ManualClock final : public Clock {
public:
    TimePoint now() const override { return current; }
    TimePoint current{Seconds(1'800'000'000)}; // 2027-01-15T08:00:00Z
};

inline const aws::Credentials k_base_credentials{"AKIDJITBOXTEST", "base/secret+key", "", {}};

/// Decodes one percent-encoded form value.
inline std::string form_decode(std::string_view text) {
    std::string decoded;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size()) {
            decoded +=
                static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        } else {
            decoded += text[i];
        }
    }
    return decoded;
}

/// Decodes a form-encoded body into its parameters, by name.
inline std::map<std::string, std::string> form_parameters(std::string_view body) {
    std::map<std::string, std::string> parameters;
    while (!body.empty()) {
        const std::size_t end = std::min(body.find('&'), body.size());
        const std::string_view pair = body.substr(0, end);
        const std::size_t equals = pair.find('=');
        parameters[form_decode(pair.substr(0, equals))] = form_decode(pair.substr(equals + 1));
        body.remove_prefix(std::min(end + 1, body.size()));
    }
    return parameters;
}

inline std::string header(const HttpRequest& request, std::string_view name) {
    for (const auto& [key, value] : request.headers) {
        if (key == name) {
            return value;
        }
    }
    return {};
}

struct FakeAwsState {
    std::vector<HttpRequest> requests;
    std::deque<Result<HttpResponse>> replies;
    std::vector<std::chrono::milliseconds> sleeps;
    ManualClock clock;

    void reply(long status, std::string body, std::map<std::string, std::string> headers = {}) {
        replies.push_back(HttpResponse{status, std::move(body), std::move(headers)});
    }

    /// Returns the parameters of request `index`, Action and Version included.
    std::map<std::string, std::string> parameters(std::size_t index) const {
        REQUIRE(index < requests.size());
        return form_parameters(requests[index].body);
    }
};

class FakeAwsClient final : public HttpClient {
public:
    explicit FakeAwsClient(std::shared_ptr<FakeAwsState> state) : m_state(std::move(state)) {}

    Result<HttpResponse> send(const HttpRequest& request) override {
        m_state->requests.push_back(request);
        if (m_state->replies.empty()) {
            return HttpResponse{599, "no scripted reply", {}};
        }
        auto reply = m_state->replies.front();
        m_state->replies.pop_front();
        return reply;
    }

private:
    std::shared_ptr<FakeAwsState> m_state;
};

/// Builds a Query client for `service` in us-east-1 over the fake, whose sleep function
/// advances the clock instead of waiting.
inline std::unique_ptr<aws::QueryClient>
make_fake_query_client(const aws::QueryService& service,
                       const std::shared_ptr<FakeAwsState>& state) {
    aws::EndpointUrl endpoint{"https://" + std::string(service.signing_name) +
                                  ".us-east-1.amazonaws.com",
                              std::string(service.signing_name) + ".us-east-1.amazonaws.com", "/"};
    aws::SleepFn sleep = [state](std::chrono::milliseconds delay) {
        state->sleeps.push_back(delay);
        state->clock.current += std::chrono::duration_cast<Seconds>(delay);
    };
    return std::make_unique<aws::QueryClient>(
        service, std::make_unique<FakeAwsClient>(state), endpoint, "us-east-1",
        [] { return Result<aws::Credentials>(k_base_credentials); }, state->clock, sleep);
}

/// Builds an EC2 error document.
inline std::string ec2_error(std::string_view code, std::string_view message) {
    return "<Response><Errors><Error><Code>" + std::string(code) + "</Code><Message>" +
           std::string(message) + "</Message></Error></Errors><RequestID>req-9</RequestID>" +
           "</Response>";
}

/// Builds an STS error document.
inline std::string sts_error(std::string_view code, std::string_view message) {
    return "<ErrorResponse><Error><Type>Sender</Type><Code>" + std::string(code) +
           "</Code><Message>" + std::string(message) +
           "</Message></Error><RequestId>req-8</RequestId></ErrorResponse>";
}

} // namespace jitbox::test
