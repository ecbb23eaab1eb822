#include "fake_aws.hpp"
#include "jitbox/aws/query.hpp"

#include <doctest/doctest.h>

using namespace jitbox;
using namespace jitbox::test;

namespace {

Template aws_template() {
    Template spec;
    spec.name = "ops";
    spec.provider = "aws-ec2";
    return spec;
}

aws::Environment environment(std::map<std::string, std::string> variables) {
    return aws::Environment{std::move(variables), "/nonexistent-home"};
}

// Recomputes the signature of a request the client sent, from its own headers.
std::string expected_authorization(const HttpRequest& sent, std::string_view service,
                                   TimePoint time) {
    aws::SigningRequest request;
    request.method = sent.method;
    request.path = sent.target;
    request.body = sent.body;
    for (const auto& [name, value] : sent.headers) {
        if (name != "Authorization") {
            request.headers.emplace_back(name, value);
        }
    }
    return aws::authorization_header(request, k_base_credentials,
                                     aws::SigningScope{"us-east-1", std::string(service), time});
}

} // namespace

TEST_SUITE("aws query") {
    TEST_CASE("body encoding") {
        const std::string body = aws::encode_query_body(
            "AssumeRole", "2011-06-15", {{"RoleSessionName", "a@b c"}, {"Policy", "{\"x\":1}"}});

        CHECK(body == "Action=AssumeRole&Version=2011-06-15&RoleSessionName=a%40b%20c"
                      "&Policy=%7B%22x%22%3A1%7D");
    }

    TEST_CASE("endpoint URL parsing") {
        struct Case {
            std::string url;
            bool ok;
            std::string base_url;
            std::string host;
            std::string path;
        };
        const std::vector<Case> cases{
            {"https://sts.eu-west-1.amazonaws.com", true, "https://sts.eu-west-1.amazonaws.com",
             "sts.eu-west-1.amazonaws.com", "/"},
            {"https://ec2.example.test:443/", true, "https://ec2.example.test:443",
             "ec2.example.test", "/"},
            {"http://127.0.0.1:4566", true, "http://127.0.0.1:4566", "127.0.0.1:4566", "/"},
            {"http://localhost/aws", true, "http://localhost", "localhost", "/aws"},
            {"http://[::1]:8080", true, "http://[::1]:8080", "[::1]:8080", "/"},
            {"http://ec2.example.test", false},
            {"ftp://ec2.example.test", false},
            {"ec2.example.test", false},
            {"https://user@ec2.example.test", false},
            {"https://ec2.example.test/?a=1", false},
            {"https://ec2.example.test:http", false},
            {"https://", false},
        };
        for (const Case& item : cases) {
            CAPTURE(item.url);
            const auto parsed = aws::parse_endpoint_url(item.url, "test");
            REQUIRE(parsed.ok() == item.ok);
            if (!item.ok) {
                CHECK(parsed.error().code == ExitCode::usage);
                CHECK(parsed.error().message.find(item.url) != std::string::npos);
                continue;
            }
            CHECK(parsed->base_url == item.base_url);
            CHECK(parsed->host == item.host);
            CHECK(parsed->path == item.path);
        }
    }

    TEST_CASE("region resolution") {
        Template spec = aws_template();
        SUBCASE("template wins") {
            spec.aws.region = "eu-central-1";
            const auto region =
                aws::resolve_region(spec, environment({{"AWS_REGION", "us-west-2"}}));
            REQUIRE(region.ok());
            CHECK(*region == "eu-central-1");
        }
        SUBCASE("environment next") {
            const auto region =
                aws::resolve_region(spec, environment({{"AWS_REGION", "us-west-2"}}));
            REQUIRE(region.ok());
            CHECK(*region == "us-west-2");
        }
        SUBCASE("invalid template region") {
            spec.aws.region = "EU central";
            const auto region = aws::resolve_region(spec, environment({}));
            REQUIRE_FALSE(region.ok());
            CHECK(region.error().code == ExitCode::usage);
        }
        SUBCASE("none names both fixes") {
            const auto region = aws::resolve_region(spec, environment({}));
            REQUIRE_FALSE(region.ok());
            CHECK(region.error().code == ExitCode::usage);
            CHECK(region.error().message.find("set region in the template") != std::string::npos);
            CHECK(region.error().message.find("AWS_REGION") != std::string::npos);
        }
    }

    TEST_CASE("endpoint resolution order") {
        Template spec = aws_template();
        std::map<std::string, std::string> variables{
            {"AWS_ENDPOINT_URL_EC2", "http://127.0.0.1:1001"},
            {"AWS_ENDPOINT_URL", "http://127.0.0.1:1002"},
        };
        const auto resolve = [&](const aws::QueryService& service) {
            auto url =
                aws::resolve_endpoint_url(service, spec, "eu-west-1", environment(variables));
            REQUIRE(url.ok());
            return *url;
        };

        spec.aws.endpoint_url = "http://127.0.0.1:1000";
        CHECK(resolve(aws::k_ec2_service) == "http://127.0.0.1:1000");
        spec.aws.endpoint_url.clear();
        CHECK(resolve(aws::k_ec2_service) == "http://127.0.0.1:1001");
        CHECK(resolve(aws::k_sts_service) == "http://127.0.0.1:1002");
        variables.clear();
        CHECK(resolve(aws::k_ec2_service) == "https://ec2.eu-west-1.amazonaws.com");
        CHECK(resolve(aws::k_sts_service) == "https://sts.eu-west-1.amazonaws.com");

        spec.aws.endpoint_url = "http://metadata.example.test";
        const auto rejected =
            aws::resolve_endpoint_url(aws::k_ec2_service, spec, "eu-west-1", environment({}));
        REQUIRE_FALSE(rejected.ok());
        CHECK(rejected.error().message.find("endpoint_url") != std::string::npos);
    }

    TEST_CASE("signed POST request") {
        auto state = std::make_shared<FakeAwsState>();
        state->reply(200, "<DescribeInstancesResponse/>");
        auto client = make_fake_query_client(aws::k_ec2_service, state);

        const auto body = client->call("DescribeInstances", {{"InstanceId.1", "i-1"}});

        REQUIRE(body.ok());
        CHECK(*body == "<DescribeInstancesResponse/>");
        REQUIRE(state->requests.size() == 1);
        const HttpRequest& sent = state->requests[0];
        CHECK(sent.method == "POST");
        CHECK(sent.target == "/");
        CHECK(sent.timeout == aws::k_query_timeout);
        CHECK(header(sent, "Host") == "ec2.us-east-1.amazonaws.com");
        CHECK(header(sent, "Content-Type") == "application/x-www-form-urlencoded; charset=utf-8");
        CHECK(header(sent, "X-Amz-Date") == "20270115T080000Z");
        CHECK(header(sent, "Authorization")
                  .starts_with("AWS4-HMAC-SHA256 "
                               "Credential=AKIDJITBOXTEST/20270115/us-east-1/ec2/aws4_request, "
                               "SignedHeaders=content-type;host;x-amz-date, Signature="));
        CHECK(header(sent, "Authorization") ==
              expected_authorization(sent, "ec2", state->clock.current));
        const auto parameters = state->parameters(0);
        CHECK(parameters.at("Action") == "DescribeInstances");
        CHECK(parameters.at("Version") == "2016-11-15");
        CHECK(parameters.at("InstanceId.1") == "i-1");
    }

    TEST_CASE("AWS errors map to failures") {
        struct Case {
            std::string code;
            std::string message;
        };
        for (const Case& item : std::vector<Case>{
                 {"AccessDenied", "User is not authorized to perform: sts:AssumeRole"},
                 {"ExpiredToken", "The security token included in the request is expired"},
                 {"InvalidInstanceID.NotFound", "The instance ID 'i-1' does not exist"},
             }) {
            CAPTURE(item.code);
            auto state = std::make_shared<FakeAwsState>();
            state->reply(403, sts_error(item.code, item.message));
            auto client = make_fake_query_client(aws::k_sts_service, state);

            std::string code;
            const auto body = client->call("AssumeRole", {}, &code);

            REQUIRE_FALSE(body.ok());
            CHECK(body.error().code == ExitCode::provider);
            CHECK(body.error().message == "AWS STS AssumeRole failed: " + item.code + ": " +
                                              item.message + " (request ID req-8)");
            CHECK(code == item.code);
            CHECK(state->requests.size() == 1);
            CHECK(state->sleeps.empty());
        }
    }

    TEST_CASE("throttling is retried with backoff") {
        auto state = std::make_shared<FakeAwsState>();
        state->reply(503, ec2_error("RequestLimitExceeded", "Request limit exceeded."));
        state->reply(400, sts_error("Throttling", "Rate exceeded"));
        state->reply(200, "<ok/>");
        auto client = make_fake_query_client(aws::k_ec2_service, state);

        const auto body = client->call("DescribeInstances", {});

        REQUIRE(body.ok());
        CHECK(state->requests.size() == 3);
        REQUIRE(state->sleeps.size() == 2);
        CHECK(state->sleeps[0] == std::chrono::milliseconds(500));
        CHECK(state->sleeps[1] == std::chrono::milliseconds(1000));
        // Each attempt is signed at its own time.
        CHECK(header(state->requests[0], "X-Amz-Date") == "20270115T080000Z");
        CHECK(header(state->requests[2], "X-Amz-Date") == "20270115T080001Z");
    }

    TEST_CASE("server errors give up after the last attempt") {
        auto state = std::make_shared<FakeAwsState>();
        for (int i = 0; i < 5; ++i) {
            state->reply(500, ec2_error("InternalError", "An internal error has occurred"));
        }
        auto client = make_fake_query_client(aws::k_ec2_service, state);

        std::string code;
        const auto body = client->call("RunInstances", {}, &code);

        REQUIRE_FALSE(body.ok());
        CHECK(state->requests.size() == 4);
        CHECK(state->sleeps.size() == 3);
        CHECK(code == "InternalError");
        CHECK(body.error().message.find("InternalError") != std::string::npos);
    }

    TEST_CASE("clock skew is reported") {
        auto state = std::make_shared<FakeAwsState>();
        state->reply(403,
                     sts_error("SignatureDoesNotMatch",
                               "Signature expired: 20270115T080000Z is now earlier than ..."),
                     {{"date", "Fri, 15 Jan 2027 08:10:00 GMT"}});
        auto client = make_fake_query_client(aws::k_sts_service, state);

        const auto body = client->call("AssumeRole", {});

        REQUIRE_FALSE(body.ok());
        CHECK(body.error().message.find("the local clock is off by 600 s from AWS's (behind)") !=
              std::string::npos);
        CHECK(state->requests.size() == 1);
    }

    TEST_CASE("transport failure is not retried") {
        auto state = std::make_shared<FakeAwsState>();
        state->replies.push_back(Failure{ExitCode::provider,
                                         "cannot reach https://sts.us-east-1.amazonaws.com: "
                                         "Connection refused"});
        auto client = make_fake_query_client(aws::k_sts_service, state);

        const auto body = client->call("AssumeRole", {});

        REQUIRE_FALSE(body.ok());
        CHECK(body.error().message ==
              "AWS STS AssumeRole: cannot reach https://sts.us-east-1.amazonaws.com: Connection "
              "refused");
        CHECK(state->requests.size() == 1);
    }

    TEST_CASE("credentials are looked up once and lazily") {
        auto state = std::make_shared<FakeAwsState>();
        int lookups = 0;
        aws::QueryClient client(
            aws::k_sts_service, std::make_unique<FakeAwsClient>(state),
            aws::EndpointUrl{"https://sts.us-east-1.amazonaws.com", "sts.us-east-1.amazonaws.com",
                             "/"},
            "us-east-1",
            [&lookups]() -> Result<aws::Credentials> {
                ++lookups;
                if (lookups == 1) {
                    return Failure{ExitCode::usage, "no AWS credentials found"};
                }
                return k_base_credentials;
            },
            state->clock, [](std::chrono::milliseconds) {});
        CHECK(lookups == 0);

        const auto first = client.call("AssumeRole", {});
        REQUIRE_FALSE(first.ok());
        CHECK(first.error().code == ExitCode::usage);
        CHECK(state->requests.empty());

        state->reply(200, "<a/>");
        state->reply(200, "<b/>");
        CHECK(client.call("AssumeRole", {}).ok());
        CHECK(client.call("AssumeRole", {}).ok());
        CHECK(lookups == 2);
    }
}
