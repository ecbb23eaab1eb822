#include "jitbox/aws/responses.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace jitbox::aws {
namespace {

// Responses in the shapes that STS and EC2 return, with made-up identifiers and keys.
constexpr std::string_view k_secret = "assumed/secret+value";
constexpr std::string_view k_token = "assumed-session-token==";

std::string assume_role_body(std::string_view credentials) {
    return R"(<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <AssumedRoleId>AROAEXAMPLEID:jitbox</AssumedRoleId>
      <Arn>arn:aws:sts::123456789012:assumed-role/ci/jitbox</Arn>
    </AssumedRoleUser>
    <Credentials>)" +
           std::string(credentials) + R"(</Credentials>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleResponse>)";
}

const std::string k_full_credentials = R"(
      <AccessKeyId>ASIAJITBOXTEST</AccessKeyId>
      <SecretAccessKey>assumed/secret+value</SecretAccessKey>
      <SessionToken>assumed-session-token==</SessionToken>
      <Expiration>2026-03-01T09:30:45.123Z</Expiration>
    )";

constexpr std::string_view k_run_instances = R"(<?xml version="1.0" encoding="UTF-8"?>
<RunInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>req-1</requestId>
  <reservationId>r-0123</reservationId>
  <instancesSet>
    <item>
      <instanceId>i-0abc123def4567890</instanceId>
      <imageId>ami-0123</imageId>
      <instanceState><code>0</code><name>pending</name></instanceState>
      <privateIpAddress>10.0.1.25</privateIpAddress>
      <tagSet>
        <item><key>jitbox:id</key><value>db-1</value></item>
        <item><key>jitbox:owner</key><value>ana</value></item>
      </tagSet>
    </item>
  </instancesSet>
</RunInstancesResponse>)";

constexpr std::string_view k_describe_instances =
    R"(<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>req-2</requestId>
  <reservationSet>
    <item>
      <reservationId>r-1</reservationId>
      <instancesSet>
        <item>
          <instanceId>i-1</instanceId>
          <instanceState><code>16</code><name>running</name></instanceState>
          <privateIpAddress>10.0.1.25</privateIpAddress>
          <ipAddress>203.0.113.7</ipAddress>
        </item>
        <item>
          <instanceId>i-2</instanceId>
          <instanceState><code>80</code><name>stopped</name></instanceState>
        </item>
      </instancesSet>
    </item>
    <item>
      <reservationId>r-2</reservationId>
      <instancesSet>
        <item>
          <instanceId>i-3</instanceId>
          <instanceState><code>48</code><name>terminated</name></instanceState>
        </item>
      </instancesSet>
    </item>
  </reservationSet>
  <nextToken>page-2-token</nextToken>
</DescribeInstancesResponse>)";

constexpr std::string_view k_terminate_instances =
    R"(<TerminateInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>req-3</requestId>
  <instancesSet>
    <item>
      <instanceId>i-1</instanceId>
      <currentState><code>32</code><name>shutting-down</name></currentState>
      <previousState><code>16</code><name>running</name></previousState>
    </item>
  </instancesSet>
</TerminateInstancesResponse>)";

bool contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

void check_no_secrets(const Failure& failure) {
    CHECK_FALSE(contains(failure.message, k_secret));
    CHECK_FALSE(contains(failure.message, k_token));
}

} // namespace

TEST_SUITE("aws responses") {

    TEST_CASE("AssumeRole success") {
        const auto role = parse_assume_role_response(assume_role_body(k_full_credentials));

        REQUIRE(role.ok());
        CHECK(role->credentials.access_key_id == "ASIAJITBOXTEST");
        CHECK(role->credentials.secret_access_key == k_secret);
        CHECK(role->credentials.session_token == k_token);
        REQUIRE(role->credentials.expiration.has_value());
        CHECK(format_rfc3339(*role->credentials.expiration) == "2026-03-01T09:30:45Z");
        CHECK(role->arn == "arn:aws:sts::123456789012:assumed-role/ci/jitbox");
    }

    TEST_CASE("AssumeRole missing elements") {
        struct Case {
            std::string credentials;
            std::string element;
            std::string problem;
        };
        const std::vector<Case> cases{
            {"<SecretAccessKey>assumed/secret+value</SecretAccessKey>"
             "<SessionToken>assumed-session-token==</SessionToken>"
             "<Expiration>2026-03-01T09:30:45Z</Expiration>",
             "AssumeRoleResponse/AssumeRoleResult/Credentials/AccessKeyId", "no"},
            {"<AccessKeyId>ASIAJITBOXTEST</AccessKeyId>"
             "<SecretAccessKey>assumed/secret+value</SecretAccessKey>"
             "<Expiration>2026-03-01T09:30:45Z</Expiration>",
             "AssumeRoleResponse/AssumeRoleResult/Credentials/SessionToken", "no"},
            {"<AccessKeyId>ASIAJITBOXTEST</AccessKeyId>"
             "<SecretAccessKey></SecretAccessKey>"
             "<SessionToken>assumed-session-token==</SessionToken>"
             "<Expiration>2026-03-01T09:30:45Z</Expiration>",
             "AssumeRoleResponse/AssumeRoleResult/Credentials/SecretAccessKey", "an empty"},
        };
        for (const Case& c : cases) {
            CAPTURE(c.element);
            const auto role = parse_assume_role_response(assume_role_body(c.credentials));
            REQUIRE_FALSE(role.ok());
            CHECK(role.error().code == ExitCode::provider);
            CHECK(role.error().message == "the AWS STS AssumeRole response has " + c.problem + " " +
                                              c.element + " element");
            check_no_secrets(role.error());
        }
    }

    TEST_CASE("AssumeRole invalid expiration") {
        std::string credentials = k_full_credentials;
        credentials.replace(credentials.find("2026-03-01T09:30:45.123Z"), 24, "tomorrow");

        const auto role = parse_assume_role_response(assume_role_body(credentials));

        REQUIRE_FALSE(role.ok());
        CHECK(contains(role.error().message, "invalid Expiration \"tomorrow\""));
        check_no_secrets(role.error());
    }

    TEST_CASE("malformed XML") {
        const std::string full = assume_role_body(k_full_credentials);
        const std::vector<std::string> bodies{
            "",
            full.substr(0, full.find("</SessionToken>")),
            "<AssumeRoleResponse><a></b></AssumeRoleResponse>",
            "not xml at all",
        };
        for (const std::string& body : bodies) {
            CAPTURE(body.size());
            const auto role = parse_assume_role_response(body);
            REQUIRE_FALSE(role.ok());
            CHECK(role.error().code == ExitCode::provider);
            CHECK(contains(role.error().message, "AWS STS AssumeRole response"));
            check_no_secrets(role.error());
        }
    }

    TEST_CASE("error document in place of a result") {
        const auto role =
            parse_assume_role_response("<ErrorResponse><Error><Code>ExpiredToken</"
                                       "Code><Message>The security token included in "
                                       "the request is expired</Message></Error></ErrorResponse>");

        REQUIRE_FALSE(role.ok());
        CHECK(role.error().code == ExitCode::provider);
        CHECK(role.error().message == "AWS STS AssumeRole failed: ExpiredToken: The security token "
                                      "included in the request is expired");
    }

    TEST_CASE("unexpected root element") {
        const auto instances = parse_run_instances_response(k_terminate_instances);

        REQUIRE_FALSE(instances.ok());
        CHECK(instances.error().message == "the AWS EC2 RunInstances response is a "
                                           "<TerminateInstancesResponse> document; expected "
                                           "<RunInstancesResponse>");
    }

    TEST_CASE("RunInstances") {
        const auto instances = parse_run_instances_response(k_run_instances);

        REQUIRE(instances.ok());
        REQUIRE(instances->size() == 1);
        const Ec2Instance& instance = instances->front();
        CHECK(instance.instance_id == "i-0abc123def4567890");
        CHECK(instance.state == "pending");
        CHECK(instance.private_ip == "10.0.1.25");
        CHECK(instance.public_ip.empty());
        CHECK(instance.tags == std::vector<std::pair<std::string, std::string>>{
                                   {"jitbox:id", "db-1"}, {"jitbox:owner", "ana"}});
    }

    TEST_CASE("RunInstances without instances or IDs") {
        const auto empty = parse_run_instances_response(
            "<RunInstancesResponse><instancesSet/></RunInstancesResponse>");
        REQUIRE_FALSE(empty.ok());
        CHECK(contains(empty.error().message, "lists no instance"));

        const auto no_id = parse_run_instances_response(
            "<RunInstancesResponse><instancesSet><item><instanceState><name>pending</name>"
            "</instanceState></item></instancesSet></RunInstancesResponse>");
        REQUIRE_FALSE(no_id.ok());
        CHECK(no_id.error().message ==
              "the AWS EC2 RunInstances response has no instancesSet/item/instanceId element");
    }

    TEST_CASE("DescribeInstances across reservations") {
        const auto page = parse_describe_instances_response(k_describe_instances);

        REQUIRE(page.ok());
        REQUIRE(page->instances.size() == 3);
        CHECK(page->instances[0].instance_id == "i-1");
        CHECK(page->instances[0].state == "running");
        CHECK(page->instances[0].private_ip == "10.0.1.25");
        CHECK(page->instances[0].public_ip == "203.0.113.7");
        CHECK(page->instances[1].instance_id == "i-2");
        CHECK(page->instances[1].state == "stopped");
        CHECK(page->instances[1].private_ip.empty());
        CHECK(page->instances[2].instance_id == "i-3");
        CHECK(page->instances[2].state == "terminated");
        CHECK(page->next_token == "page-2-token");
    }

    TEST_CASE("DescribeInstances with no match") {
        const auto page = parse_describe_instances_response(
            "<DescribeInstancesResponse><requestId>r</requestId><reservationSet/>"
            "</DescribeInstancesResponse>");

        REQUIRE(page.ok());
        CHECK(page->instances.empty());
        CHECK(page->next_token.empty());
    }

    TEST_CASE("TerminateInstances") {
        const auto changes = parse_terminate_instances_response(k_terminate_instances);

        REQUIRE(changes.ok());
        REQUIRE(changes->size() == 1);
        CHECK(changes->front().instance_id == "i-1");
        CHECK(changes->front().previous_state == "running");
        CHECK(changes->front().current_state == "shutting-down");
    }

} // TEST_SUITE

} // namespace jitbox::aws
