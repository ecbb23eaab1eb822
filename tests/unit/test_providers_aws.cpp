#include "fake_aws.hpp"
#include "jitbox/providers/aws.hpp"
#include "memory_secret_store.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <functional>

using namespace jitbox;
using namespace jitbox::test;

namespace {

constexpr const char* k_role_arn = "arn:aws:iam::123456789012:role/ci";
constexpr const char* k_session_arn = "arn:aws:sts::123456789012:assumed-role/ci/alice@db";
constexpr const char* k_secret = "session/secret+value";
constexpr const char* k_token = "session-token==";

std::string assume_role_reply(std::string_view expiration) {
    return std::string(R"(<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser><Arn>)") +
           k_session_arn + R"(</Arn></AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAJITBOX</AccessKeyId>
      <SecretAccessKey>)" +
           k_secret + R"(</SecretAccessKey>
      <SessionToken>)" +
           k_token + R"(</SessionToken>
      <Expiration>)" +
           std::string(expiration) + R"(</Expiration>
    </Credentials>
  </AssumeRoleResult>
</AssumeRoleResponse>)";
}

Template sts_template() {
    Template spec;
    spec.name = "deploy";
    spec.provider = "aws-sts";
    spec.aws.role_arn = k_role_arn;
    return spec;
}

struct StsFixture {
    std::shared_ptr<FakeAwsState> state = std::make_shared<FakeAwsState>();
    MemorySecretStore secrets;
    std::unique_ptr<Provider> provider =
        make_aws_sts_provider(make_fake_query_client(aws::k_sts_service, state), state->clock);
    ProgressFn progress = [](const ProgressEvent&) {};

    SandboxPlan plan(Seconds ttl) {
        SandboxPlan plan;
        plan.id = "0123456789abcdef";
        plan.name = "db";
        plan.owner = "alice";
        plan.spec = sts_template();
        plan.expires_at = state->clock.current + ttl;
        plan.secrets = &secrets;
        return plan;
    }
};

// Checks the item of sandbox "db" that a reply of assume_role_reply("2027-01-15T09:00:00Z")
// leaves in the keyring.
void check_stored_session(const MemorySecretStore& secrets) {
    const auto& item = secrets.items.at({"0123456789abcdef", "aws-session"});
    CHECK(item.sandbox_name == "db");
    CHECK(item.expires_at == TimePoint{Seconds(1'800'003'600)});
    const auto session = decode_aws_session(item.value);
    REQUIRE(session.ok());
    CHECK(session->credentials.access_key_id == "ASIAJITBOX");
    CHECK(session->credentials.secret_access_key == k_secret);
    CHECK(session->credentials.session_token == k_token);
    CHECK(session->region == "us-east-1");
}

Template ec2_template() {
    Template spec;
    spec.name = "box";
    spec.provider = "aws-ec2";
    spec.aws.image_id = "ami-0123";
    spec.aws.instance_type = "t3.micro";
    spec.aws.subnet_id = "subnet-1";
    spec.aws.security_group_ids = {"sg-1", "sg-2"};
    spec.aws.key_name = "ops";
    return spec;
}

std::string instance_xml(std::string_view id, std::string_view state) {
    return "<item><instanceId>" + std::string(id) +
           "</instanceId><instanceState><code>0</code>"
           "<name>" +
           std::string(state) +
           "</name></instanceState>"
           "<privateIpAddress>10.0.1.5</privateIpAddress><ipAddress>3.80.1.2</ipAddress>"
           "<tagSet><item><key>io.jitbox.sandbox</key><value>sb-" +
           std::string(id) + "</value></item><item><key>Name</key><value>jitbox-" +
           std::string(id) + "</value></item></tagSet></item>";
}

std::string run_reply(std::string_view id) {
    return "<RunInstancesResponse><instancesSet>" + instance_xml(id, "pending") +
           "</instancesSet></RunInstancesResponse>";
}

std::string describe_reply(const std::vector<std::string>& items, std::string_view next = "") {
    std::string body = "<DescribeInstancesResponse><reservationSet><item><instancesSet>";
    for (const auto& item : items) {
        body += item;
    }
    body += "</instancesSet></item></reservationSet>";
    if (!next.empty()) {
        body += "<nextToken>" + std::string(next) + "</nextToken>";
    }
    return body + "</DescribeInstancesResponse>";
}

std::string terminate_reply(std::string_view id) {
    return "<TerminateInstancesResponse><instancesSet><item><instanceId>" + std::string(id) +
           "</instanceId><currentState><name>shutting-down</name></currentState>"
           "<previousState><name>running</name></previousState></item></instancesSet>"
           "</TerminateInstancesResponse>";
}

struct Ec2Fixture {
    std::shared_ptr<FakeAwsState> state = std::make_shared<FakeAwsState>();
    std::unique_ptr<Provider> provider = make_aws_ec2_provider(
        make_fake_query_client(aws::k_ec2_service, state), state->clock,
        [this](std::chrono::milliseconds delay) {
            state->sleeps.push_back(delay);
            state->clock.current += std::chrono::duration_cast<Seconds>(delay);
        },
        Ec2Timing{Seconds(5), Seconds(60), Seconds(120)});
    std::vector<std::string> messages;
    ProgressFn progress = [this](const ProgressEvent& event) { messages.push_back(event.text); };

    SandboxPlan plan() {
        SandboxPlan plan;
        plan.id = "0123456789abcdef";
        plan.name = "box";
        plan.owner = "alice";
        plan.spec = ec2_template();
        plan.expires_at = state->clock.current + Seconds(3600);
        plan.labels = {{k_label_sandbox, plan.id}, {"team", "ops"}};
        return plan;
    }
};

std::string decode_base64(const std::string& text) {
    std::string decoded(text.size(), '\0');
    const int length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                                       reinterpret_cast<const unsigned char*>(text.data()),
                                       static_cast<int>(text.size()));
    REQUIRE(length >= 0);
    decoded.resize(static_cast<std::size_t>(length));
    while (!decoded.empty() && decoded.back() == '\0') {
        decoded.pop_back(); // EVP_DecodeBlock counts the padding as zero bytes
    }
    return decoded;
}

} // namespace

TEST_SUITE("providers aws") {
    TEST_CASE("session item round trip") {
        AwsSession session{{"ASIA1", k_secret, k_token, TimePoint{Seconds(1'800'003'600)}},
                           "eu-west-1"};

        const SecretItem item = make_aws_session_item("0123456789abcdef", "db", session);
        const auto decoded = decode_aws_session(item.value);

        CHECK(item.sandbox_id == "0123456789abcdef");
        CHECK(item.sandbox_name == "db");
        CHECK(item.key == "aws-session");
        CHECK(item.expires_at == TimePoint{Seconds(1'800'003'600)});
        const auto json = nlohmann::json::parse(item.value);
        CHECK(json.at("Expiration") == "2027-01-15T09:00:00Z");
        CHECK(json.at("Region") == "eu-west-1");
        REQUIRE(decoded.ok());
        CHECK(decoded->credentials.access_key_id == "ASIA1");
        CHECK(decoded->credentials.secret_access_key == k_secret);
        CHECK(decoded->credentials.session_token == k_token);
        CHECK(decoded->credentials.expiration == session.credentials.expiration);
        CHECK(decoded->region == "eu-west-1");
    }

    TEST_CASE("session item decode failures hide values") {
        for (const std::string& text :
             {std::string("not json ") + k_secret,
              std::string(R"({"AccessKeyId":"A","SecretAccessKey":")") + k_secret +
                  R"(","SessionToken":"t","Expiration":"soon","Region":"r"})",
              std::string(R"({"AccessKeyId":"A","SecretAccessKey":")") + k_secret + R"("})"}) {
            const auto decoded = decode_aws_session(text);
            REQUIRE_FALSE(decoded.ok());
            CHECK(decoded.error().message.find(k_secret) == std::string::npos);
        }
    }

    TEST_CASE("session and identity names") {
        CHECK(make_role_session_name("alice", "db-1") == "alice@db-1");
        CHECK(make_role_session_name("Ana María", "db") == "Ana-Mar--a@db");
        CHECK(make_role_session_name(std::string(70, 'a'), "db").size() == 64);
        CHECK(make_source_identity("a") == "a-");
        CHECK(make_source_identity("dom\\user") == "dom-user");
    }

    TEST_CASE("sts create stores the session") {
        StsFixture fixture;
        fixture.state->reply(200, assume_role_reply("2027-01-15T09:00:00Z"));
        SandboxPlan plan = fixture.plan(Seconds(3600));
        ResourceSet created;

        const auto result = fixture.provider->create(plan, created, fixture.progress);

        REQUIRE(result.ok());
        const auto parameters = fixture.state->parameters(0);
        CHECK(parameters.at("Action") == "AssumeRole");
        CHECK(parameters.at("Version") == "2011-06-15");
        CHECK(parameters.at("RoleArn") == k_role_arn);
        CHECK(parameters.at("RoleSessionName") == "alice@db");
        CHECK(parameters.at("DurationSeconds") == "3600");
        CHECK(parameters.at("SourceIdentity") == "alice");
        CHECK(parameters.at("Tags.member.1.Key") == "io.jitbox.owner");
        CHECK(parameters.at("Tags.member.1.Value") == "alice");
        CHECK(parameters.at("Tags.member.2.Key") == "io.jitbox.template");
        CHECK(parameters.at("Tags.member.2.Value") == "deploy");
        CHECK(parameters.at("Tags.member.3.Key") == "io.jitbox.sandbox");
        CHECK(parameters.at("Tags.member.3.Value") == "0123456789abcdef");
        CHECK(parameters.count("Policy") == 0);
        CHECK(parameters.count("SerialNumber") == 0);
        CHECK(header(fixture.state->requests[0], "Authorization")
                  .find("/us-east-1/sts/aws4_request") != std::string::npos);

        REQUIRE(created.items.size() == 1);
        CHECK(created.items[0].kind == "aws-session");
        CHECK(created.items[0].id == k_session_arn);
        CHECK(created.items[0].name == "alice@db");

        check_stored_session(fixture.secrets);
    }

    TEST_CASE("sts session policy is passed as it is") {
        StsFixture fixture;
        fixture.state->reply(200, assume_role_reply("2027-01-15T09:00:00Z"));
        SandboxPlan plan = fixture.plan(Seconds(3600));
        plan.spec.aws.session_policy = R"({"Version":"2012-10-17","Statement":[]})";
        ResourceSet created;

        REQUIRE(fixture.provider->create(plan, created, fixture.progress).ok());

        CHECK(fixture.state->parameters(0).at("Policy") == plan.spec.aws.session_policy);
    }

    TEST_CASE("sts duration bounds") {
        struct Case {
            Seconds ttl;
            bool ok;
            std::string duration;
        };
        const std::vector<Case> cases{
            {Seconds(899), true, "900"}, // a grant of 15m seen a second later
            {Seconds(900), true, "900"}, {Seconds(43200), true, "43200"},
            {Seconds(869), false, ""},   {Seconds(600), false, ""},
            {Seconds(43231), false, ""}, {Seconds(86400), false, ""},
        };
        for (const Case& item : cases) {
            CAPTURE(item.ttl.count());
            StsFixture fixture;
            fixture.state->reply(200, assume_role_reply("2027-01-15T09:00:00Z"));
            ResourceSet created;

            const auto result =
                fixture.provider->create(fixture.plan(item.ttl), created, fixture.progress);

            REQUIRE(result.ok() == item.ok);
            if (item.ok) {
                CHECK(fixture.state->parameters(0).at("DurationSeconds") == item.duration);
                continue;
            }
            CHECK(result.error().code == ExitCode::usage);
            CHECK(result.error().message.find("15m to 12h") != std::string::npos);
            CHECK(fixture.state->requests.empty());
            CHECK(created.items.empty());
        }
    }

    TEST_CASE("sts MFA code") {
        StsFixture fixture;
        SandboxPlan plan = fixture.plan(Seconds(3600));
        plan.spec.aws.mfa_serial = "arn:aws:iam::123456789012:mfa/alice";
        ResourceSet created;

        SUBCASE("sent with the serial") {
            fixture.state->reply(200, assume_role_reply("2027-01-15T09:00:00Z"));
            plan.mfa_code = [] { return Result<std::string>(std::string("123456")); };
            REQUIRE(fixture.provider->create(plan, created, fixture.progress).ok());
            const auto parameters = fixture.state->parameters(0);
            CHECK(parameters.at("SerialNumber") == "arn:aws:iam::123456789012:mfa/alice");
            CHECK(parameters.at("TokenCode") == "123456");
        }
        SUBCASE("missing prompt") {
            const auto result = fixture.provider->create(plan, created, fixture.progress);
            REQUIRE_FALSE(result.ok());
            CHECK(result.error().code == ExitCode::usage);
            CHECK(result.error().message.find("--mfa-stdin") != std::string::npos);
            CHECK(fixture.state->requests.empty());
        }
        SUBCASE("invalid code") {
            plan.mfa_code = [] { return Result<std::string>(std::string("12a456")); };
            const auto result = fixture.provider->create(plan, created, fixture.progress);
            REQUIRE_FALSE(result.ok());
            CHECK(result.error().message.find("12a456") == std::string::npos);
            CHECK(fixture.state->requests.empty());
        }
    }

    TEST_CASE("sts failures") {
        StsFixture fixture;
        ResourceSet created;
        SUBCASE("access denied") {
            fixture.state->reply(403, sts_error("AccessDenied", "not authorized"));
            const auto result =
                fixture.provider->create(fixture.plan(Seconds(3600)), created, fixture.progress);
            REQUIRE_FALSE(result.ok());
            CHECK(result.error().code == ExitCode::provider);
            CHECK(result.error().message.find("AccessDenied: not authorized") != std::string::npos);
            CHECK(created.items.empty());
            CHECK(fixture.secrets.items.empty());
        }
        SUBCASE("no keyring") {
            SandboxPlan plan = fixture.plan(Seconds(3600));
            plan.secrets = nullptr;
            const auto result = fixture.provider->create(plan, created, fixture.progress);
            REQUIRE_FALSE(result.ok());
            CHECK(result.error().code == ExitCode::internal);
            CHECK(fixture.state->requests.empty());
        }
        SUBCASE("no role") {
            SandboxPlan plan = fixture.plan(Seconds(3600));
            plan.spec.aws.role_arn.clear();
            const auto result = fixture.provider->create(plan, created, fixture.progress);
            REQUIRE_FALSE(result.ok());
            CHECK(result.error().code == ExitCode::usage);
        }
    }

    TEST_CASE("sts destroy and listing call nothing") {
        StsFixture fixture;
        ResourceSet resources;
        resources.items.push_back({"aws-session", k_session_arn, "alice@db"});

        CHECK(fixture.provider->destroy(resources, std::nullopt).ok());
        const auto listed = fixture.provider->list_labelled(ListScope::all);
        REQUIRE(listed.ok());
        CHECK(listed->empty());
        CHECK_FALSE(fixture.provider->lists_resources());
        CHECK(fixture.state->requests.empty());
    }

    TEST_CASE("deny after deadline policy") {
        const TimePoint deadline{Seconds(1'800'000'600)};
        SUBCASE("without a session policy") {
            const auto policy = deny_after_deadline("", deadline, "deploy");
            REQUIRE(policy.ok());
            const auto json = nlohmann::json::parse(*policy);
            REQUIRE(json.at("Statement").size() == 2);
            CHECK(json.at("Statement")[0].at("Effect") == "Allow");
            CHECK(json.at("Statement")[0].at("Action") == "*");
            const auto& deny = json.at("Statement")[1];
            CHECK(deny.at("Effect") == "Deny");
            CHECK(deny.at("Action") == "*");
            CHECK(deny.at("Resource") == "*");
            CHECK(deny.at("Condition").at("DateGreaterThan").at("aws:CurrentTime") ==
                  "2027-01-15T08:10:00Z");
        }
        SUBCASE("merged into a statement object") {
            const auto policy = deny_after_deadline(
                R"({"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:Get*",
                    "Resource":"*"}})",
                deadline, "deploy");
            REQUIRE(policy.ok());
            const auto json = nlohmann::json::parse(*policy);
            REQUIRE(json.at("Statement").size() == 2);
            CHECK(json.at("Statement")[0].at("Action") == "s3:Get*");
            CHECK(json.at("Statement")[1].at("Effect") == "Deny");
        }
        SUBCASE("invalid session policy") {
            const auto policy = deny_after_deadline("[1, 2", deadline, "deploy");
            REQUIRE_FALSE(policy.ok());
            CHECK(policy.error().code == ExitCode::usage);
        }
    }

    TEST_CASE("sts renewal") {
        auto state = std::make_shared<FakeAwsState>();
        auto sts = make_fake_query_client(aws::k_sts_service, state);
        const AwsSessionSubject subject{"0123456789abcdef", "db", "alice"};
        const TimePoint now = state->clock.current;
        Template spec = sts_template();

        SUBCASE("short grant adds the deadline") {
            spec.aws.session_policy =
                R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:*","Resource":"*"}]})";
            state->reply(200, assume_role_reply("2027-01-15T08:15:00Z"));
            const auto renewed =
                renew_aws_session(*sts, spec, subject, now + Seconds(400), now, nullptr);
            REQUIRE(renewed.ok());
            const auto parameters = state->parameters(0);
            CHECK(parameters.at("DurationSeconds") == "900");
            const auto policy = nlohmann::json::parse(parameters.at("Policy"));
            REQUIRE(policy.at("Statement").size() == 2);
            CHECK(policy.at("Statement")[0].at("Action") == "ec2:*");
            CHECK(policy.at("Statement")[1]
                      .at("Condition")
                      .at("DateGreaterThan")
                      .at("aws:CurrentTime") == "2027-01-15T08:06:40Z");
            CHECK(renewed->assumed_role_arn == k_session_arn);
        }
        SUBCASE("long grant keeps the template policy") {
            state->reply(200, assume_role_reply("2027-01-15T10:00:00Z"));
            const auto renewed =
                renew_aws_session(*sts, spec, subject, now + Seconds(7200), now, nullptr);
            REQUIRE(renewed.ok());
            const auto parameters = state->parameters(0);
            CHECK(parameters.at("DurationSeconds") == "7200");
            CHECK(parameters.count("Policy") == 0);
        }
        SUBCASE("very long grant is clamped") {
            state->reply(200, assume_role_reply("2027-01-15T20:00:00Z"));
            REQUIRE(
                renew_aws_session(*sts, spec, subject, now + Seconds(50'000), now, nullptr).ok());
            CHECK(state->parameters(0).at("DurationSeconds") == "43200");
        }
        SUBCASE("ended grant") {
            const auto renewed = renew_aws_session(*sts, spec, subject, now, now, nullptr);
            REQUIRE_FALSE(renewed.ok());
            CHECK(renewed.error().code == ExitCode::not_found);
            CHECK(state->requests.empty());
        }
    }

    TEST_CASE("sts renew credentials duration") {
        struct Case {
            Seconds remaining;
            std::string duration;
            bool deadline_policy;
        };
        const std::vector<Case> cases{
            {Seconds(1), "900", true},         {Seconds(400), "900", true},
            {Seconds(899), "900", true},       {Seconds(900), "900", false},
            {Seconds(7200), "7200", false},    {Seconds(43200), "43200", false},
            {Seconds(50'000), "43200", false},
        };
        for (const Case& item : cases) {
            CAPTURE(item.remaining.count());
            StsFixture fixture;
            fixture.state->reply(200, assume_role_reply("2027-01-15T09:00:00Z"));
            const SandboxPlan plan = fixture.plan(item.remaining);

            REQUIRE(fixture.provider->renew_credentials(plan).ok());

            REQUIRE(fixture.state->requests.size() == 1);
            const auto parameters = fixture.state->parameters(0);
            CHECK(parameters.at("Action") == "AssumeRole");
            CHECK(parameters.at("RoleArn") == k_role_arn);
            CHECK(parameters.at("DurationSeconds") == item.duration);
            REQUIRE(parameters.count("Policy") == (item.deadline_policy ? 1U : 0U));
            if (item.deadline_policy) {
                const auto policy = nlohmann::json::parse(parameters.at("Policy"));
                const auto& deny = policy.at("Statement").back();
                CHECK(deny.at("Effect") == "Deny");
                CHECK(deny.at("Condition").at("DateGreaterThan").at("aws:CurrentTime") ==
                      format_rfc3339(plan.expires_at));
            }
        }
    }

    TEST_CASE("sts renew credentials stores session") {
        StsFixture fixture;
        fixture.state->reply(200, assume_role_reply("2027-01-15T09:00:00Z"));
        const AwsSession old{{"ASIAOLD", "old", "old", fixture.state->clock.current + Seconds(60)},
                             "us-east-1"};
        REQUIRE(fixture.secrets.put(make_aws_session_item("0123456789abcdef", "db", old)).ok());

        REQUIRE(fixture.provider->renew_credentials(fixture.plan(Seconds(3600))).ok());

        REQUIRE(fixture.secrets.items.size() == 1);
        check_stored_session(fixture.secrets);
    }

    TEST_CASE("sts renew credentials MFA code") {
        StsFixture fixture;
        fixture.state->reply(200, assume_role_reply("2027-01-15T09:00:00Z"));
        SandboxPlan plan = fixture.plan(Seconds(3600));
        plan.spec.aws.mfa_serial = "arn:aws:iam::123456789012:mfa/alice";
        plan.mfa_code = [] { return Result<std::string>(std::string("654321")); };

        REQUIRE(fixture.provider->renew_credentials(plan).ok());

        const auto parameters = fixture.state->parameters(0);
        CHECK(parameters.at("SerialNumber") == "arn:aws:iam::123456789012:mfa/alice");
        CHECK(parameters.at("TokenCode") == "654321");
    }

    TEST_CASE("sts renew credentials failures") {
        struct Case {
            std::string label;
            std::function<void(StsFixture&, SandboxPlan&)> change;
            ExitCode code;
            std::string message;
            std::size_t requests;
        };
        const std::vector<Case> cases{
            {"ended grant",
             [](StsFixture& f, SandboxPlan& plan) { plan.expires_at = f.state->clock.current; },
             ExitCode::not_found, "ended at", 0},
            {"no keyring", [](StsFixture&, SandboxPlan& plan) { plan.secrets = nullptr; },
             ExitCode::internal, "no keyring", 0},
            {"no role", [](StsFixture&, SandboxPlan& plan) { plan.spec.aws.role_arn.clear(); },
             ExitCode::usage, "sets no role_arn", 0},
            {"access denied",
             [](StsFixture& f, SandboxPlan&) {
                 f.state->reply(403, sts_error("AccessDenied", "not authorized"));
             },
             ExitCode::provider, "AccessDenied: not authorized", 1},
            {"locked keyring",
             [](StsFixture& f, SandboxPlan&) {
                 f.state->reply(200, assume_role_reply("2027-01-15T09:00:00Z"));
                 f.secrets.locked = true;
             },
             ExitCode::locked, "is locked", 1},
        };
        for (const Case& c : cases) {
            CAPTURE(c.label);
            StsFixture fixture;
            SandboxPlan plan = fixture.plan(Seconds(3600));
            c.change(fixture, plan);

            const auto result = fixture.provider->renew_credentials(plan);

            REQUIRE_FALSE(result.ok());
            CHECK(result.error().code == c.code);
            CHECK(result.error().message.find(c.message) != std::string::npos);
            CHECK(fixture.state->requests.size() == c.requests);
            CHECK(fixture.secrets.items.empty());
        }
    }

    TEST_CASE("session renewal margin") {
        const TimePoint now{Seconds(1'800'000'000)};
        AwsSession session{{"A", "s", "t", now + Seconds(240)}, "us-east-1"};
        CHECK(aws_session_needs_renewal(session, now + Seconds(3600), now));
        CHECK_FALSE(aws_session_needs_renewal(session, now + Seconds(200), now));
        CHECK_FALSE(aws_session_needs_renewal(session, now, now));
        session.credentials.expiration = now + Seconds(600);
        CHECK_FALSE(aws_session_needs_renewal(session, now + Seconds(3600), now));
    }

    TEST_CASE("ec2 create launches and waits") {
        Ec2Fixture fixture;
        SandboxPlan plan = fixture.plan();
        plan.spec.aws.root_volume_gib = 40;
        fixture.state->reply(200, "<DescribeImagesResponse><imagesSet><item><imageId>ami-0123"
                                  "</imageId><rootDeviceName>/dev/xvda</rootDeviceName></item>"
                                  "</imagesSet></DescribeImagesResponse>");
        fixture.state->reply(200, run_reply("i-1"));
        fixture.state->reply(400, ec2_error("InvalidInstanceID.NotFound", "not yet"));
        fixture.state->reply(200, describe_reply({instance_xml("i-1", "pending")}));
        fixture.state->reply(200, describe_reply({instance_xml("i-1", "running")}));
        ResourceSet created;

        const auto result = fixture.provider->create(plan, created, fixture.progress);

        REQUIRE(result.ok());
        REQUIRE(fixture.state->requests.size() == 5);
        const auto images = fixture.state->parameters(0);
        CHECK(images.at("Action") == "DescribeImages");
        CHECK(images.at("ImageId.1") == "ami-0123");

        const auto run = fixture.state->parameters(1);
        CHECK(run.at("Action") == "RunInstances");
        CHECK(run.at("Version") == "2016-11-15");
        CHECK(run.at("ImageId") == "ami-0123");
        CHECK(run.at("InstanceType") == "t3.micro");
        CHECK(run.at("MinCount") == "1");
        CHECK(run.at("MaxCount") == "1");
        CHECK(run.at("SubnetId") == "subnet-1");
        CHECK(run.at("SecurityGroupId.1") == "sg-1");
        CHECK(run.at("SecurityGroupId.2") == "sg-2");
        CHECK(run.at("KeyName") == "ops");
        CHECK(run.at("ClientToken") == "0123456789abcdef");
        CHECK(run.at("InstanceInitiatedShutdownBehavior") == "terminate");
        CHECK(run.at("MetadataOptions.HttpTokens") == "required");
        CHECK(run.at("MetadataOptions.InstanceMetadataTags") == "enabled");
        CHECK(run.at("BlockDeviceMapping.1.DeviceName") == "/dev/xvda");
        CHECK(run.at("BlockDeviceMapping.1.Ebs.VolumeSize") == "40");
        CHECK(run.at("BlockDeviceMapping.1.Ebs.VolumeType") == "gp3");
        CHECK(run.at("BlockDeviceMapping.1.Ebs.DeleteOnTermination") == "true");
        for (const std::string& spec : std::vector<std::string>{"1", "2"}) {
            const std::string prefix = "TagSpecification." + spec;
            CHECK(run.at(prefix + ".ResourceType") == (spec == "1" ? "instance" : "volume"));
            // Tags go in key order: Name, io.jitbox.sandbox, team.
            CHECK(run.at(prefix + ".Tag.1.Key") == "Name");
            CHECK(run.at(prefix + ".Tag.1.Value") == "jitbox-box");
            CHECK(run.at(prefix + ".Tag.2.Key") == "io.jitbox.sandbox");
            CHECK(run.at(prefix + ".Tag.2.Value") == "0123456789abcdef");
            CHECK(run.at(prefix + ".Tag.3.Key") == "team");
            CHECK(run.at(prefix + ".Tag.3.Value") == "ops");
        }
        const std::string script = decode_base64(run.at("UserData"));
        CHECK(script.starts_with("#!/bin/sh\n"));
        CHECK(script.find("deadline=1800003600\n") != std::string::npos);
        CHECK(script.find("tags/instance/io.jitbox.expires-at") != std::string::npos);

        CHECK(fixture.state->parameters(2).at("InstanceId.1") == "i-1");
        REQUIRE(created.items.size() == 1);
        CHECK(created.items[0].kind == "instance");
        CHECK(created.items[0].id == "i-1");
        CHECK(created.items[0].name == "jitbox-box");
        CHECK(fixture.state->sleeps.size() == 2);
        REQUIRE_FALSE(fixture.messages.empty());
        CHECK(fixture.messages.back() == "instance i-1 private 10.0.1.5 public 3.80.1.2 is "
                                         "running");
    }

    TEST_CASE("ec2 create without a root volume size") {
        Ec2Fixture fixture;
        fixture.state->reply(200, run_reply("i-1"));
        fixture.state->reply(200, describe_reply({instance_xml("i-1", "running")}));
        ResourceSet created;

        REQUIRE(fixture.provider->create(fixture.plan(), created, fixture.progress).ok());

        const auto run = fixture.state->parameters(0);
        CHECK(run.at("Action") == "RunInstances");
        CHECK(run.count("BlockDeviceMapping.1.DeviceName") == 0);
        CHECK(fixture.state->sleeps.empty());
    }

    TEST_CASE("ec2 launch gives up after the timeout") {
        Ec2Fixture fixture;
        fixture.state->reply(200, run_reply("i-1"));
        for (int i = 0; i < 40; ++i) {
            fixture.state->reply(200, describe_reply({instance_xml("i-1", "pending")}));
        }
        ResourceSet created;

        const auto result = fixture.provider->create(fixture.plan(), created, fixture.progress);

        REQUIRE_FALSE(result.ok());
        CHECK(result.error().code == ExitCode::provider);
        CHECK(result.error().message.find("was not running after 1m") != std::string::npos);
        REQUIRE(created.items.size() == 1); // kept, so the rollback terminates it
        CHECK(fixture.state->sleeps.size() == 12);
        CHECK(fixture.state->requests.size() == 14);
    }

    TEST_CASE("ec2 launch fails when the instance stops") {
        Ec2Fixture fixture;
        fixture.state->reply(200, run_reply("i-1"));
        fixture.state->reply(200, describe_reply({instance_xml("i-1", "terminated")}));
        ResourceSet created;

        const auto result = fixture.provider->create(fixture.plan(), created, fixture.progress);

        REQUIRE_FALSE(result.ok());
        CHECK(result.error().message.find("went to state terminated") != std::string::npos);
        CHECK(created.items.size() == 1);
    }

    TEST_CASE("ec2 create rejects missing settings") {
        Ec2Fixture fixture;
        SandboxPlan plan = fixture.plan();
        plan.spec.aws.image_id.clear();
        ResourceSet created;

        const auto result = fixture.provider->create(plan, created, fixture.progress);

        REQUIRE_FALSE(result.ok());
        CHECK(result.error().code == ExitCode::usage);
        CHECK(result.error().message.find("image_id") != std::string::npos);
        CHECK(fixture.state->requests.empty());
    }

    TEST_CASE("ec2 destroy terminates and waits") {
        Ec2Fixture fixture;
        ResourceSet resources;
        resources.items.push_back({"instance", "i-1", "jitbox-box"});
        resources.items.push_back({"instance", "i-2", "jitbox-box"});
        fixture.state->reply(200, terminate_reply("i-1"));
        fixture.state->reply(200, describe_reply({instance_xml("i-1", "shutting-down")}));
        fixture.state->reply(200, describe_reply({instance_xml("i-1", "terminated")}));
        fixture.state->reply(400, ec2_error("InvalidInstanceID.NotFound", "gone"));

        const auto result = fixture.provider->destroy(resources, Seconds(10));

        REQUIRE(result.ok());
        REQUIRE(fixture.state->requests.size() == 4);
        CHECK(fixture.state->parameters(0).at("Action") == "TerminateInstances");
        CHECK(fixture.state->parameters(0).at("InstanceId.1") == "i-1");
        CHECK(fixture.state->parameters(1).at("Action") == "DescribeInstances");
        CHECK(fixture.state->parameters(3).at("InstanceId.1") == "i-2");
        CHECK(fixture.state->sleeps.size() == 1);
    }

    TEST_CASE("ec2 destroy times out") {
        Ec2Fixture fixture;
        ResourceSet resources;
        resources.items.push_back({"instance", "i-1", "jitbox-box"});
        fixture.state->reply(200, terminate_reply("i-1"));
        for (int i = 0; i < 40; ++i) {
            fixture.state->reply(200, describe_reply({instance_xml("i-1", "shutting-down")}));
        }

        const auto result = fixture.provider->destroy(resources, std::nullopt);

        REQUIRE_FALSE(result.ok());
        CHECK(result.error().message.find("still shutting-down after 2m") != std::string::npos);
    }

    TEST_CASE("ec2 destroy reports other errors") {
        Ec2Fixture fixture;
        ResourceSet resources;
        resources.items.push_back({"instance", "i-1", "jitbox-box"});
        fixture.state->reply(403, ec2_error("UnauthorizedOperation", "not allowed"));

        const auto result = fixture.provider->destroy(resources, std::nullopt);

        REQUIRE_FALSE(result.ok());
        CHECK(result.error().message.find("UnauthorizedOperation") != std::string::npos);
    }

    TEST_CASE("ec2 listing follows pages") {
        Ec2Fixture fixture;
        fixture.state->reply(200, describe_reply({instance_xml("i-1", "running")}, "page-2"));
        fixture.state->reply(200, describe_reply({instance_xml("i-2", "stopped")}));

        const auto listed = fixture.provider->list_labelled(ListScope::containers);

        REQUIRE(listed.ok());
        REQUIRE(listed->size() == 2);
        CHECK((*listed)[0].resource.kind == "instance");
        CHECK((*listed)[0].resource.id == "i-1");
        CHECK((*listed)[0].resource.name == "jitbox-i-1");
        CHECK((*listed)[0].state == "running");
        CHECK((*listed)[0].labels.at(k_label_sandbox) == "sb-i-1");
        CHECK((*listed)[0].detail == "i-1 private 10.0.1.5 public 3.80.1.2");
        CHECK((*listed)[1].resource.id == "i-2");

        const auto first = fixture.state->parameters(0);
        CHECK(first.at("Filter.1.Name") == "tag-key");
        CHECK(first.at("Filter.1.Value.1") == "io.jitbox.sandbox");
        CHECK(first.at("Filter.2.Name") == "instance-state-name");
        CHECK(first.at("Filter.2.Value.1") == "pending");
        CHECK(first.at("Filter.2.Value.5") == "stopped");
        CHECK(first.count("Filter.2.Value.6") == 0);
        CHECK(first.count("NextToken") == 0);
        CHECK(fixture.state->parameters(1).at("NextToken") == "page-2");
    }

    TEST_CASE("ec2 extend moves the tag") {
        Ec2Fixture fixture;
        ResourceSet resources;
        resources.items.push_back({"instance", "i-1", "jitbox-box"});
        fixture.state->reply(200, "<CreateTagsResponse><return>true</return></CreateTagsResponse>");

        const auto moved = fixture.provider->extend(resources, TimePoint{Seconds(1'800'007'200)});

        REQUIRE(moved.ok());
        const auto parameters = fixture.state->parameters(0);
        CHECK(parameters.at("Action") == "CreateTags");
        CHECK(parameters.at("ResourceId.1") == "i-1");
        CHECK(parameters.at("Tag.1.Key") == "io.jitbox.expires-at");
        CHECK(parameters.at("Tag.1.Value") == "2027-01-15T10:00:00Z");
    }
}
