#include "jitbox/util/log.hpp"

#include <doctest/doctest.h>

#include <string>

namespace jitbox {
namespace {

bool contains(const std::string& text, std::string_view fragment) {
    return text.find(fragment) != std::string::npos;
}

TEST_SUITE("util log") {
    TEST_CASE("redact hides header values") {
        const std::string line =
            redact("Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261204/us-east-1/"
                   "sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=5d672d79c15b13");
        CHECK(line == "Authorization: [redacted]");

        CHECK(redact("x-amz-security-token: FQoGZXIvYXdzEJr//////////") ==
              "x-amz-security-token: [redacted]");
        CHECK(redact("X-Registry-Auth: eyJ1c2VybmFtZSI6ImEiLCJwYXNzd29yZCI6ImIifQ==") ==
              "X-Registry-Auth: [redacted]");
        CHECK(redact("Cookie: session=abc") == "Cookie: [redacted]");
    }

    TEST_CASE("redact hides query and form parameters") {
        const std::string query = redact("GET /?Action=GetCallerIdentity&X-Amz-Credential=AKID%2F"
                                          "x&X-Amz-Signature=abc123&X-Amz-Security-Token=tok");
        CHECK(query == "GET /?Action=GetCallerIdentity&X-Amz-Credential=[redacted]"
                       "&X-Amz-Signature=[redacted]&X-Amz-Security-Token=[redacted]");

        const std::string form = redact("Action=AssumeRole&SerialNumber=arn&TokenCode=123456");
        CHECK(form == "Action=AssumeRole&SerialNumber=arn&TokenCode=[redacted]");
    }

    TEST_CASE("redact hides XML elements and JSON members") {
        CHECK(redact("<SecretAccessKey>wJalrXUtnFEMI</SecretAccessKey>") ==
              "<SecretAccessKey>[redacted]</SecretAccessKey>");
        CHECK(redact("<SessionToken>FQoG</SessionToken>") ==
              "<SessionToken>[redacted]</SessionToken>");
        CHECK(redact(R"({"username":"a","password":"p\"w","auth":"YTpi"})") ==
              R"({"username":"a","password":"[redacted]","auth":"[redacted]"})");
        CHECK(redact(R"({"SecretAccessKey" : "k"})") == R"({"SecretAccessKey" : "[redacted]"})");
    }

    TEST_CASE("redact hides registered secret values") {
        add_redacted_value("Zq8xW3vT0pLm9KsA2bCd4eFg");
        const std::string body =
            redact(R"({"Env":["POSTGRES_PASSWORD=Zq8xW3vT0pLm9KsA2bCd4eFg","A=Zq8xW3vT0pLm9KsA2bCd4eFg"]})");
        CHECK_FALSE(contains(body, "Zq8xW3vT0pLm9KsA2bCd4eFg"));
        CHECK(body == R"({"Env":["POSTGRES_PASSWORD=[redacted]","A=[redacted]"]})");
    }

    TEST_CASE("redact keeps short values and ordinary lines") {
        add_redacted_value("abc");
        CHECK(redact("POST /v1.41/containers/create?name=jitbox-abc-1 -> 201 in 12 ms") ==
              "POST /v1.41/containers/create?name=jitbox-abc-1 -> 201 in 12 ms");
        CHECK(redact("") == "");
    }
}

} // namespace
} // namespace jitbox
