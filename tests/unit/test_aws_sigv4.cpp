#include "jitbox/aws/sigv4.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace jitbox::aws {
namespace {

// 2026-03-01T08:30:45Z.
const TimePoint k_time =
    TimePoint{std::chrono::sys_days{std::chrono::year{2026} / std::chrono::March / 1}} + 8h +
    30min + 45s;

// Made-up keys for these tests only.
const Credentials k_long_term{"AKIDJITBOXTEST", "jitbox/test+secret", "", std::nullopt};
const Credentials k_temporary{"AKIDJITBOXTEST", "jitbox/test+secret", "jitbox-test-token",
                              std::nullopt};

constexpr std::string_view k_empty_body_hash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

SigningRequest assume_role_request() {
    SigningRequest request;
    request.method = "POST";
    request.path = "/";
    request.headers = {{"Host", "sts.us-west-2.amazonaws.com"},
                       {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
    request.body = "Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fci"
                   "&RoleSessionName=jitbox&Version=2011-06-15";
    return request;
}

SigningRequest describe_instances_request() {
    SigningRequest request;
    request.method = "GET";
    request.path = "/";
    request.query = "Version=2016-11-15&Action=DescribeInstances&Filter.1.Value.1=jitbox%3aid"
                    "&Filter.1.Name=tag-key";
    request.headers = {{"Host", "ec2.eu-central-1.amazonaws.com"}};
    return request;
}

std::vector<std::string> header_values(const SigningRequest& request, std::string_view name) {
    std::vector<std::string> values;
    for (const auto& [header, value] : request.headers) {
        if (header == name) {
            values.push_back(value);
        }
    }
    return values;
}

} // namespace

TEST_SUITE("aws sigv4") {

    TEST_CASE("format_amz_date and credential_scope") {
        CHECK(format_amz_date(k_time) == "20260301T083045Z");
        CHECK(credential_scope({"us-west-2", "sts", k_time}) ==
              "20260301/us-west-2/sts/aws4_request");
    }

    TEST_CASE("sha256_hex of the empty string") {
        CHECK(sha256_hex("") == k_empty_body_hash);
    }

    TEST_CASE("canonical_query sorts and encodes") {
        struct Case {
            std::string query;
            std::string expected;
        };
        const std::vector<Case> cases{
            {"", ""},
            {"b=2&a=3&a=1", "a=1&a=3&b=2"},
            {"a-b=1&a=2", "a=2&a-b=1"},
            {"B=1&a=2", "B=1&a=2"},
            {"flag", "flag="},
            {"flag=", "flag="},
            {"&&a=1&", "a=1"},
            {"k=a b", "k=a%20b"},
            {"k=a%20b", "k=a%20b"},
            {"k=a%2fb", "k=a%2Fb"},
            {"k=a/b", "k=a%2Fb"},
            {"k=%7E", "k=~"},
            {"k=a+b", "k=a%2Bb"},
            {"k=100%", "k=100%25"},
            {"k=%zz", "k=%25zz"},
            {"k=a=b", "k=a%3Db"},
            {"Filter.1.Name=tag:jitbox&Action=DescribeInstances",
             "Action=DescribeInstances&Filter.1.Name=tag%3Ajitbox"},
        };
        for (const Case& c : cases) {
            CAPTURE(c.query);
            CHECK(canonical_query(c.query) == c.expected);
        }
    }

    TEST_CASE("canonical_path normalizes and encodes") {
        struct Case {
            std::string path;
            PathNormalization normalization;
            std::string expected;
        };
        const std::vector<Case> cases{
            {"", PathNormalization::normalize, "/"},
            {"/", PathNormalization::normalize, "/"},
            {"/a/./b/../c", PathNormalization::normalize, "/a/c"},
            {"/a/b/..", PathNormalization::normalize, "/a/"},
            {"/../..", PathNormalization::normalize, "/"},
            {"//a//b//", PathNormalization::normalize, "/a/b/"},
            {"/a b", PathNormalization::normalize, "/a%20b"},
            // The wire form is encoded once more, as AWS services other than S3 expect.
            {"/a%20b", PathNormalization::normalize, "/a%2520b"},
            {"//a/./b", PathNormalization::keep, "//a/./b"},
        };
        for (const Case& c : cases) {
            CAPTURE(c.path);
            CHECK(canonical_path(c.path, c.normalization) == c.expected);
        }
    }

    TEST_CASE("canonical_request folds and joins header values") {
        SigningRequest request;
        request.method = "GET";
        request.path = "/";
        request.headers = {{"Host", "example.test"},
                           {" X-Note ", "  a \t  b  "},
                           {"x-list", "one"},
                           {"X-LIST", "two"}};

        const std::string canonical = canonical_request(request);

        CHECK(canonical.find("\nx-note:a b\n") != std::string::npos);
        CHECK(canonical.find("\nx-list:one,two\n") != std::string::npos);
        CHECK(signed_header_names(request) == "host;x-list;x-note");
    }

    TEST_CASE("sign matches an independent implementation") {
        // The expected texts were computed with a separate SigV4 implementation in Python (hashlib,
        // hmac and urllib.parse), written from the AWS documentation.
        SUBCASE("STS POST with a session token") {
            const SigningScope scope{"us-west-2", "sts", k_time};
            const SigningRequest prepared =
                add_signing_headers(assume_role_request(), k_temporary, scope);

            CHECK(canonical_request(prepared) ==
                  "POST\n/\n\n"
                  "content-type:application/x-www-form-urlencoded; charset=utf-8\n"
                  "host:sts.us-west-2.amazonaws.com\n"
                  "x-amz-date:20260301T083045Z\n"
                  "x-amz-security-token:jitbox-test-token\n\n"
                  "content-type;host;x-amz-date;x-amz-security-token\n"
                  "f7cf62545ef4fb94166eecada34f193c039c13f180dd803606425c8ecee4992e");
            CHECK(string_to_sign(canonical_request(prepared), scope) ==
                  "AWS4-HMAC-SHA256\n20260301T083045Z\n20260301/us-west-2/sts/aws4_request\n"
                  "35ba02313ea65e754f4d6405bdd793047727445b6f2eba67c682b51561fd7df4");
            CHECK(authorization_header(prepared, k_temporary, scope) ==
                  "AWS4-HMAC-SHA256 Credential=AKIDJITBOXTEST/20260301/us-west-2/sts/aws4_request, "
                  "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, "
                  "Signature=ae0836033827f0ad4c8d7ad549375a3dcb5e6e570928e4341f588881620f3d4f");
        }
        SUBCASE("EC2 GET with an unsorted query") {
            const SigningScope scope{"eu-central-1", "ec2", k_time};
            const SigningRequest prepared =
                add_signing_headers(describe_instances_request(), k_long_term, scope);

            CHECK(canonical_request(prepared) ==
                  "GET\n/\n"
                  "Action=DescribeInstances&Filter.1.Name=tag-key&Filter.1.Value.1=jitbox%3Aid"
                  "&Version=2016-11-15\n"
                  "host:ec2.eu-central-1.amazonaws.com\n"
                  "x-amz-date:20260301T083045Z\n\n"
                  "host;x-amz-date\n" +
                      std::string(k_empty_body_hash));
            CHECK(authorization_header(prepared, k_long_term, scope) ==
                  "AWS4-HMAC-SHA256 "
                  "Credential=AKIDJITBOXTEST/20260301/eu-central-1/ec2/aws4_request, "
                  "SignedHeaders=host;x-amz-date, "
                  "Signature=5d60205e56c0a7a32f6f48e2093a8b60e8682fd0d0956d6c141c0400332cfa86");
        }
    }

    TEST_CASE("sign adds the session token header") {
        const SigningScope scope{"us-west-2", "sts", k_time};

        SUBCASE("signed") {
            const auto signed_request = sign(assume_role_request(), k_temporary, scope);
            REQUIRE(signed_request.ok());
            CHECK(header_values(*signed_request, "X-Amz-Security-Token") ==
                  std::vector<std::string>{"jitbox-test-token"});
            const auto authorization = header_values(*signed_request, "Authorization");
            REQUIRE(authorization.size() == 1);
            CHECK(authorization[0].find(";x-amz-security-token,") != std::string::npos);
        }
        SUBCASE("appended after signing") {
            SigningOptions options;
            options.session_token = SessionTokenSigning::append_after_signing;
            const auto signed_request = sign(assume_role_request(), k_temporary, scope, options);
            REQUIRE(signed_request.ok());
            CHECK(header_values(*signed_request, "X-Amz-Security-Token") ==
                  std::vector<std::string>{"jitbox-test-token"});
            const auto authorization = header_values(*signed_request, "Authorization");
            REQUIRE(authorization.size() == 1);
            CHECK(authorization[0].find("x-amz-security-token") == std::string::npos);
        }
        SUBCASE("absent for long-term keys") {
            const auto signed_request = sign(assume_role_request(), k_long_term, scope);
            REQUIRE(signed_request.ok());
            CHECK(header_values(*signed_request, "X-Amz-Security-Token").empty());
        }
    }

    TEST_CASE("sign adds x-amz-content-sha256 only when asked") {
        const SigningScope scope{"us-west-2", "sts", k_time};
        const auto plain = sign(assume_role_request(), k_long_term, scope);
        REQUIRE(plain.ok());
        CHECK(header_values(*plain, "x-amz-content-sha256").empty());

        SigningOptions options;
        options.payload_hash_header = PayloadHashHeader::add;
        const auto hashed = sign(assume_role_request(), k_long_term, scope, options);
        REQUIRE(hashed.ok());
        CHECK(header_values(*hashed, "x-amz-content-sha256") ==
              std::vector<std::string>{sha256_hex(assume_role_request().body)});
    }

    TEST_CASE("sign replaces the headers of an earlier signature") {
        const SigningScope first{"us-west-2", "sts", k_time};
        const SigningScope second{"us-west-2", "sts", k_time + 10min};
        const auto once = sign(assume_role_request(), k_temporary, first);
        REQUIRE(once.ok());

        const auto twice = sign(*once, k_temporary, second);
        REQUIRE(twice.ok());

        CHECK(header_values(*twice, "Authorization").size() == 1);
        CHECK(header_values(*twice, "X-Amz-Security-Token").size() == 1);
        CHECK(header_values(*twice, "X-Amz-Date") == std::vector<std::string>{"20260301T084045Z"});
    }

    TEST_CASE("sign rejects unusable input without naming the secret") {
        const SigningScope scope{"us-west-2", "sts", k_time};

        SUBCASE("no Host header") {
            SigningRequest request = assume_role_request();
            request.headers.erase(request.headers.begin());
            const auto result = sign(request, k_long_term, scope);
            REQUIRE_FALSE(result.ok());
            CHECK(result.error().code == ExitCode::internal);
            CHECK(result.error().message.find("no Host header") != std::string::npos);
        }
        SUBCASE("no secret access key") {
            Credentials credentials = k_long_term;
            credentials.secret_access_key.clear();
            const auto result = sign(assume_role_request(), credentials, scope);
            REQUIRE_FALSE(result.ok());
            CHECK(result.error().code == ExitCode::usage);
            CHECK(result.error().message.find("AKIDJITBOXTEST") == std::string::npos);
        }
        SUBCASE("expired temporary credentials") {
            Credentials credentials = k_temporary;
            credentials.expiration = k_time - 1s;
            const auto result = sign(assume_role_request(), credentials, scope);
            REQUIRE_FALSE(result.ok());
            CHECK(result.error().code == ExitCode::provider);
            CHECK(result.error().message.find("expired at 2026-03-01T08:30:44Z") !=
                  std::string::npos);
            CHECK(result.error().message.find("jitbox/test+secret") == std::string::npos);
            CHECK(result.error().message.find("jitbox-test-token") == std::string::npos);
        }
        SUBCASE("no region") {
            const auto result = sign(assume_role_request(), k_long_term, {"", "sts", k_time});
            REQUIRE_FALSE(result.ok());
            CHECK(result.error().code == ExitCode::internal);
        }
    }

} // TEST_SUITE

} // namespace jitbox::aws
