#include "jitbox/lifecycle/lifecycle.hpp"
#include "jitbox/audit/stats.hpp"
#include "memory_secret_store.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace jitbox;
using jitbox::test::MemorySecretStore;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "jitbox-test-XXXXXX").string();
        path = ::mkdtemp(pattern.data());
    }
    ~TempDir() { fs::remove_all(path); }
};

class FixedClock final : public Clock {
public:
    TimePoint now() const override { return current; }
    TimePoint current{Seconds(1'800'000'000)};
};

// Records every call; `fail_create_after` makes create fail once that many resources exist.
struct ProviderLog {
    std::vector<SandboxPlan> plans;
    std::vector<ResourceSet> destroyed;
    std::optional<std::size_t> fail_create_after;
    bool fail_destroy = false;
    bool destroy_leaves_container = false; // destroy reports success, but the container stays
    std::map<std::string, std::string> engine_states; // sandbox id -> state
    int list_calls = 0;
    std::vector<TimePoint> extended;
    bool fail_extend = false;
    bool lists_resources = true;
    std::string detail;
    ProviderLocation location{"fake://engine", ""};
    std::vector<ProviderLocation> made_at;
    std::vector<SandboxPlan> renewals;
    std::optional<Failure> fail_renew;
};

// The session the fake provider's renew_credentials stores: valid until the grant ends.
AwsSession renewed_session(TimePoint expires_at) {
    return AwsSession{{"ASIARENEWED", "renewed-secret", "renewed-token", expires_at}, "eu-west-1"};
}

class FakeProvider final : public Provider {
public:
    explicit FakeProvider(ProviderLog& log) : m_log(log) {}

    Result<void> create(const SandboxPlan& plan, ResourceSet& created,
                        const ProgressFn&) override {
        m_log.plans.push_back(plan);
        for (const char* kind : {"network", "container"}) {
            if (m_log.fail_create_after && created.items.size() == *m_log.fail_create_after) {
                return make_failure(ExitCode::provider, "creating {} failed", kind);
            }
            created.items.push_back({kind, std::string(kind) + "-" + plan.id, plan.name});
        }
        m_log.engine_states[plan.id] = "running";
        return {};
    }
    Result<void> destroy(const ResourceSet& resources, std::optional<Seconds>) override {
        if (m_log.fail_destroy) {
            return make_failure(ExitCode::provider, "engine unreachable");
        }
        m_log.destroyed.push_back(resources);
        if (m_log.destroy_leaves_container) {
            return {};
        }
        for (const Resource& resource : resources.items) {
            const std::size_t dash = resource.id.find('-');
            m_log.engine_states.erase(resource.id.substr(dash + 1));
        }
        return {};
    }
    Result<std::vector<LabelledResource>> list_labelled(ListScope) override {
        ++m_log.list_calls;
        std::vector<LabelledResource> found;
        for (const auto& [id, state] : m_log.engine_states) {
            found.push_back(
                {{"container", "c-" + id, ""}, state, {{k_label_sandbox, id}}, m_log.detail});
        }
        return found;
    }
    bool lists_resources() const override { return m_log.lists_resources; }
    Result<void> extend(const ResourceSet&, TimePoint expires_at) override {
        if (m_log.fail_extend) {
            return make_failure(ExitCode::provider, "cannot tag the instance");
        }
        m_log.extended.push_back(expires_at);
        return {};
    }
    Result<void> renew_credentials(const SandboxPlan& plan) override {
        m_log.renewals.push_back(plan);
        if (m_log.fail_renew) {
            return *m_log.fail_renew;
        }
        return plan.secrets->put(
            make_aws_session_item(plan.id, plan.name, renewed_session(plan.expires_at)));
    }

private:
    ProviderLog& m_log;
};

class FakeFactory final : public ProviderFactory {
public:
    explicit FakeFactory(ProviderLog& log) : m_log(log) {}
    Result<std::unique_ptr<Provider>> make(const std::string&,
                                           const ProviderLocation& location) override {
        m_log.made_at.push_back(location);
        return std::unique_ptr<Provider>(std::make_unique<FakeProvider>(m_log));
    }
    Result<ProviderLocation> locate(const Template&) override { return m_log.location; }

private:
    ProviderLog& m_log;
};

class FakeSupervisor final : public ChildSupervisor {
public:
    Result<ChildProcess> start(const std::string& name) override {
        if (fail_start) {
            return make_failure(ExitCode::internal, "cannot start");
        }
        alive.insert(name);
        ++starts;
        return ChildProcess{1000 + starts, 77};
    }
    bool is_alive(const std::string& name) override { return alive.count(name) > 0; }
    void stop(const SandboxRecord& record) override { alive.erase(record.name); }
    void notify(const SandboxRecord& record) override { notified.push_back(record.name); }

    std::set<std::string> alive;
    std::vector<std::string> notified;
    int starts = 0;
    bool fail_start = false;
};

Config test_config() {
    Template db;
    db.name = "db";
    db.image = "postgres:16";
    db.labels = {{"team", "payments"}};
    db.ttl = Seconds(30 * 60);
    db.max_ttl = Seconds(2 * 3600);
    Config config;
    config.templates["db"] = db;
    config.default_template = "db";
    return config;
}

Identity test_identity() {
    Identity identity;
    identity.uid = 1000;
    identity.user = "alice";
    return identity;
}

// Everything a Lifecycle needs, wired to fakes over a temporary state folder.
struct Fixture {
    TempDir temp;
    Config config = test_config();
    StateStore store = StateStore::open(temp.path).value();
    AuditLog audit{temp.path / "audit.log"};
    ProviderLog provider_log;
    FakeFactory providers{provider_log};
    FixedClock clock;
    FakeSupervisor children;
    MemorySecretStore secrets;
    std::vector<std::string> opened_backends;
    Lifecycle lifecycle;

    explicit Fixture(Identity identity = test_identity(), PolicyInputs policy = {})
        : lifecycle({config, store, audit, providers, clock, children, std::move(identity),
                     [](const ProgressEvent&) {}, std::move(policy), [] { return false; },
                     [this](std::string_view backend) -> Result<SecretStore*> {
                         opened_backends.emplace_back(backend);
                         return &secrets;
                     }}) {}

    std::size_t record_count() { return store.list().value().size(); }
    std::vector<std::string> audit_lines() {
        std::ifstream file(temp.path / "audit.log");
        std::vector<std::string> lines;
        for (std::string line; std::getline(file, line);) {
            lines.push_back(line);
        }
        return lines;
    }
};

// A policy where group dev may open db for up to 1 h, at most 2 at a time.
PolicyInputs dev_policy() {
    Role dev;
    dev.name = "dev";
    dev.members = {{Member::Kind::group, "dev"}};
    dev.templates = {"db"};
    dev.max_ttl = Seconds(3600);
    dev.max_active = 2;
    dev.origin = "jitbox.toml:1:1";
    PolicyLayer layer{"jitbox.toml", {}};
    layer.policy.roles = {dev};
    return PolicyInputs{{layer}, std::string(64, 'a'), {}};
}

constexpr const char* k_deploy_role = "arn:aws:iam::123456789012:role/deploy";

// Adds the aws-sts template "deploy" and starts sandbox "deploy-1" from it for `ttl`.
SandboxRecord start_sts_sandbox(Fixture& f, Seconds ttl) {
    Template deploy;
    deploy.name = "deploy";
    deploy.provider = "aws-sts";
    deploy.aws.role_arn = k_deploy_role;
    deploy.ttl = ttl;
    deploy.max_ttl = Seconds(12 * 3600);
    f.config.templates["deploy"] = deploy;
    auto record = f.lifecycle.up({"deploy", ttl, std::string("deploy-1")});
    REQUIRE(record.ok());
    return *record;
}

// The id of sandbox deploy-1, which keys its keyring items.
std::string deploy_id(Fixture& f) {
    auto record = f.store.find("deploy-1");
    REQUIRE(record.ok());
    REQUIRE(record->has_value());
    return (*record)->id;
}

// The keyring item of deploy-1's session.
const SecretItem& session_item(Fixture& f) {
    return f.secrets.items.at({deploy_id(f), "aws-session"});
}

// Stores a session for deploy-1 in the keyring that expires `left` from now.
void put_cached_session(Fixture& f, Seconds left) {
    const AwsSession cached{{"ASIACACHED", "cached-secret", "cached-token", f.clock.current + left},
                            "us-east-1"};
    REQUIRE(f.secrets.put(make_aws_session_item(deploy_id(f), "deploy-1", cached)).ok());
}

bool contains(const std::string& text, std::string_view part) {
    return text.find(part) != std::string::npos;
}

std::size_t count_renew_records(Fixture& f) {
    auto lines = f.audit_lines();
    return static_cast<std::size_t>(std::count_if(lines.begin(), lines.end(), [](const auto& l) {
        return contains(l, "\"action\":\"renew\"");
    }));
}

Result<std::string> mfa_654321() {
    return std::string("654321");
}

} // namespace

TEST_SUITE("lifecycle guardrails") {
    TEST_CASE("guardrail denial counts as violation") {
        Fixture f;
        f.config.guardrails.origin = "/etc/jitbox/jitbox.toml:1:1";
        f.config.guardrails.images = std::vector<std::string>{"busybox:*"};
        f.config.guardrails.origins["images"] = "/etc/jitbox/jitbox.toml:2:10";

        auto denied = f.lifecycle.up({"db", std::nullopt, std::string("db-1")});
        REQUIRE(!denied.ok());
        CHECK(denied.error().code == ExitCode::denied);
        CHECK(contains(denied.error().message, "guardrails.images (/etc/jitbox/jitbox.toml:2:10)"));
        CHECK(contains(denied.error().message, "docker.io/library/postgres:16"));
        CHECK(f.provider_log.plans.empty());
        CHECK(f.record_count() == 0);

        const std::string line = f.audit_lines().back();
        CHECK(contains(line, "\"result\":\"denied\""));
        CHECK(contains(line, "\"rule\":\"deny rule guardrails.images"));
        const AuditStats stats =
            compute_audit_stats({nlohmann::json::parse(line)}, std::nullopt, f.clock.current);
        CHECK(stats.totals().denials == 1);
        CHECK(stats.totals().attempted_violations == 1);
    }

    TEST_CASE("guardrail ceilings and max_ttl apply") {
        Fixture f;
        f.config.guardrails.origin = "/etc/jitbox/jitbox.toml:1:1";
        f.config.guardrails.max_memory = 128LL << 20;
        f.config.guardrails.max_ttl = Seconds(3600);
        f.config.guardrails.origins["max_memory"] = "/etc/jitbox/jitbox.toml:2:14";
        f.config.guardrails.origins["max_ttl"] = "/etc/jitbox/jitbox.toml:3:11";

        auto granted = f.lifecycle.up({"db", std::nullopt, std::string("db-1")});
        REQUIRE(granted.ok());
        REQUIRE(f.provider_log.plans.size() == 1);
        CHECK(f.provider_log.plans.front().spec.memory_bytes == 128LL << 20);
        CHECK(granted->max_expires_at == f.clock.current + Seconds(3600));

        auto extended = f.lifecycle.extend("db-1", Seconds(3600));
        REQUIRE(!extended.ok());
        CHECK(extended.error().code == ExitCode::denied);
        CHECK(contains(extended.error().message,
                       "guardrails.max_ttl (/etc/jitbox/jitbox.toml:3:11)"));
        CHECK(contains(f.audit_lines().back(), "\"rule\":\"deny rule guardrails.max_ttl"));

        auto too_long = f.lifecycle.up({"db", Seconds(7200), std::string("db-2")});
        REQUIRE(!too_long.ok());
        CHECK(contains(too_long.error().message, "guardrails.max_ttl"));
    }

    TEST_CASE("max_live_per_user counts own sandboxes") {
        Fixture f;
        f.config.guardrails.origin = "/etc/jitbox/jitbox.toml:1:1";
        f.config.guardrails.max_live_per_user = 1;
        f.config.guardrails.origins["max_live_per_user"] = "/etc/jitbox/jitbox.toml:2:21";
        SandboxRecord other;
        other.name = "theirs";
        other.id = "00000000000000ff";
        other.owner = "bob";
        other.state = SandboxState::running;
        other.created_at = f.clock.current;
        other.expires_at = f.clock.current + Seconds(600);
        other.max_expires_at = other.expires_at;
        REQUIRE(f.store.insert(other).ok());

        REQUIRE(f.lifecycle.up({"db", std::nullopt, std::string("db-1")}).ok());
        auto second = f.lifecycle.up({"db", std::nullopt, std::string("db-2")});
        REQUIRE(!second.ok());
        CHECK(contains(second.error().message, "guardrails.max_live_per_user"));
    }
}

// A policy where group ops may remove and list other users' sandboxes of db, and group dev may
// do everything else with their own.
PolicyInputs ops_policy() {
    Role dev;
    dev.name = "dev";
    dev.members = {{Member::Kind::group, "dev"}};
    dev.templates = {"db"};
    dev.origin = "jitbox.toml:1:1";
    Role ops;
    ops.name = "ops";
    ops.members = {{Member::Kind::group, "ops"}};
    ops.templates = {"db"};
    ops.actions = {Action::status_all, Action::down_others};
    ops.origin = "jitbox.toml:6:1";
    PolicyLayer layer{"jitbox.toml", {}};
    layer.policy.roles = {dev, ops};
    return PolicyInputs{{layer}, std::string(64, 'b'), {}};
}

TEST_SUITE("lifecycle ownership") {
    TEST_CASE("down of another user needs down-others") {
        Identity member = test_identity();
        member.groups = {"dev"};
        Fixture f(member, ops_policy());
        REQUIRE(f.lifecycle.up({"db", std::nullopt, std::string("db-1")}).ok());

        auto denied = f.lifecycle.down("db-1", std::string("alice"));
        REQUIRE(!denied.ok());
        CHECK(denied.error().code == ExitCode::denied);
        CHECK(f.record_count() == 1);
        const std::string line = f.audit_lines().back();
        CHECK(contains(line, "\"action\":\"down\""));
        CHECK(contains(line, "\"result\":\"denied\""));
        CHECK(contains(line, "\"detail\":\"sandbox of user alice\""));
    }

    TEST_CASE("down of another user with the role") {
        Identity admin = test_identity();
        admin.groups = {"dev", "ops"};
        Fixture f(admin, ops_policy());
        REQUIRE(f.lifecycle.up({"db", std::nullopt, std::string("db-1")}).ok());

        auto wrong_owner = f.lifecycle.down("db-1", std::string("bob"));
        REQUIRE(!wrong_owner.ok());
        CHECK(wrong_owner.error().code == ExitCode::not_found);
        CHECK(f.record_count() == 1);

        REQUIRE(f.lifecycle.down("db-1", std::string("alice")).ok());
        CHECK(f.record_count() == 0);
        const std::string line = f.audit_lines().back();
        CHECK(contains(line, "\"result\":\"ok\""));
        CHECK(contains(line, "sandbox of user alice"));
    }

    TEST_CASE("status-all needs a role that names it") {
        Identity member = test_identity();
        member.groups = {"dev"};
        Fixture denied_fixture(member, ops_policy());
        auto denied = denied_fixture.lifecycle.check_status_all();
        REQUIRE(!denied.ok());
        CHECK(denied.error().code == ExitCode::denied);
        CHECK(contains(denied.error().message, "status-all"));
        const std::string line = denied_fixture.audit_lines().back();
        CHECK(contains(line, "\"action\":\"status-all\""));
        CHECK(contains(line, "\"result\":\"denied\""));

        Identity admin = test_identity();
        admin.groups = {"ops"};
        Fixture allowed_fixture(admin, ops_policy());
        CHECK(allowed_fixture.lifecycle.check_status_all().ok());
    }
}

TEST_SUITE("lifecycle policy") {
    TEST_CASE("a denied up creates nothing and is audited with the rule") {
        Fixture f(test_identity(), dev_policy());
        auto denied = f.lifecycle.up({"db", Seconds(1800), std::string("db-1")});
        REQUIRE(!denied.ok());
        CHECK(denied.error().code == ExitCode::denied);
        CHECK(f.provider_log.plans.empty());
        CHECK(f.record_count() == 0);
        auto line = f.audit_lines().back();
        CHECK(line.find("\"result\":\"denied\"") != std::string::npos);
        CHECK(line.find(std::string(64, 'a')) != std::string::npos);
    }

    TEST_CASE("a role bounds the ttl, extensions and the number of sandboxes") {
        Identity member = test_identity();
        member.groups = {"dev"};
        Fixture f(member, dev_policy());
        auto too_long = f.lifecycle.up({"db", Seconds(2 * 3600), std::string("db-1")});
        REQUIRE(!too_long.ok());
        CHECK(too_long.error().message.find("role dev") != std::string::npos);

        auto granted = f.lifecycle.up({"db", std::nullopt, std::string("db-1")});
        REQUIRE(granted.ok());
        CHECK(granted->expires_at == f.clock.current + Seconds(1800));
        CHECK(granted->max_expires_at == f.clock.current + Seconds(3600));
        CHECK(f.audit_lines().back().find("\"rule\":\"role dev") != std::string::npos);

        CHECK(f.lifecycle.extend("db-1", Seconds(1800)).ok());
        CHECK(f.lifecycle.extend("db-1", Seconds(1)).error().code == ExitCode::denied);

        REQUIRE(f.lifecycle.up({"db", std::nullopt, std::string("db-2")}).ok());
        auto third = f.lifecycle.up({"db", std::nullopt, std::string("db-3")});
        REQUIRE(!third.ok());
        CHECK(third.error().code == ExitCode::denied);
    }

    TEST_CASE("exec needs a role that allows it") {
        Identity member = test_identity();
        member.groups = {"dev"};
        PolicyInputs policy = dev_policy();
        policy.layers[0].policy.roles[0].actions = {Action::up, Action::down};
        Fixture f(member, policy);
        auto record = f.lifecycle.up({"db", std::nullopt, std::string("db-1")});
        REQUIRE(record.ok());

        auto denied = f.lifecycle.authorize_exec(*record, "shell");
        REQUIRE(!denied.ok());
        CHECK(denied.error().code == ExitCode::denied);
        auto line = f.audit_lines().back();
        CHECK(contains(line, "\"action\":\"shell\""));
        CHECK(contains(line, "\"result\":\"denied\""));
    }

    TEST_CASE("exec needs no reason of its own") {
        Identity member = test_identity();
        member.groups = {"dev"};
        PolicyInputs policy = dev_policy();
        policy.layers[0].policy.roles[0].require_reason = true;
        Fixture f(member, policy);
        UpRequest request{"db", std::nullopt, std::string("db-1")};
        request.reason = "debug a failing migration";
        auto record = f.lifecycle.up(request);
        REQUIRE(record.ok());

        CHECK(f.lifecycle.authorize_exec(*record, "exec").ok());
    }
}

// The duration after "--by " in a denial message, or nullopt when there is none.
std::optional<Seconds> suggested_by(const std::string& message) {
    const auto start = message.find("--by ");
    if (start == std::string::npos) {
        return std::nullopt;
    }
    const auto value = message.substr(start + 5, message.find(' ', start + 5) - start - 5);
    auto parsed = parse_duration(value);
    return parsed.ok() ? std::optional<Seconds>(*parsed) : std::nullopt;
}

TEST_SUITE("lifecycle extend denial") {
    TEST_CASE("denied extend suggests an accepted --by") {
        struct Case {
            std::string label;
            Seconds elapsed;                    // since up
            std::optional<Seconds> new_max_ttl; // the template's max_ttl changed after up
            Seconds by;
            Seconds expected;
        };
        // up --ttl 30m of template db, whose max_ttl is 2h at creation.
        const std::vector<Case> cases{
            {"beyond the policy bound", Seconds(600), std::nullopt, Seconds(3 * 3600),
             Seconds(90 * 60)},
            {"beyond max_expires only", Seconds(600), std::nullopt, Seconds(95 * 60),
             Seconds(90 * 60)},
            {"max_ttl lowered since up", Seconds(600), Seconds(45 * 60), Seconds(3600),
             Seconds(25 * 60)},
            {"odd seconds elapsed", Seconds(617), std::nullopt, Seconds(4 * 3600),
             Seconds(90 * 60)},
        };
        for (const Case& c : cases) {
            CAPTURE(c.label);
            Fixture f;
            REQUIRE(f.lifecycle.up({"db", Seconds(1800), std::string("db-1")}).ok());
            f.clock.current += c.elapsed;
            if (c.new_max_ttl) {
                f.config.templates.at("db").max_ttl = *c.new_max_ttl;
            }

            auto denied = f.lifecycle.extend("db-1", c.by);
            REQUIRE(!denied.ok());
            CHECK(denied.error().code == ExitCode::denied);
            const auto suggestion = suggested_by(denied.error().message);
            REQUIRE_MESSAGE(suggestion, denied.error().message);
            CHECK(*suggestion == c.expected);

            auto accepted = f.lifecycle.extend("db-1", *suggestion);
            CHECK_MESSAGE(accepted.ok(), (accepted.ok() ? "" : accepted.error().message));
            auto one_more = f.lifecycle.extend("db-1", Seconds(1));
            CHECK(!one_more.ok());
        }
    }

    TEST_CASE("extend at the maximum says none is possible") {
        Fixture f;
        REQUIRE(f.lifecycle.up({"db", Seconds(2 * 3600), std::string("db-1")}).ok());
        auto denied = f.lifecycle.extend("db-1", Seconds(60));
        REQUIRE(!denied.ok());
        CHECK(denied.error().code == ExitCode::denied);
        CHECK(contains(denied.error().message, "cannot be extended any further"));
        CHECK(!suggested_by(denied.error().message));
    }

    TEST_CASE("removed template denial has no empty origin") {
        Fixture f;
        REQUIRE(f.lifecycle.up({"db", Seconds(1800), std::string("db-1")}).ok());
        f.config.templates.erase("db");
        auto denied = f.lifecycle.extend("db-1", Seconds(3 * 3600));
        REQUIRE(!denied.ok());
        CHECK(contains(denied.error().message, "template db"));
        CHECK(!contains(denied.error().message, "()"));
        CHECK(!contains(f.audit_lines().back(), "()"));
    }
}

TEST_SUITE("lifecycle") {
    TEST_CASE("up records the sandbox, labels it and arms its child") {
        Fixture f;
        auto record = f.lifecycle.up({"", Seconds(45 * 60), std::string("db-1")});
        REQUIRE(record.ok());
        CHECK(record->template_name == "db");
        CHECK(record->expires_at == f.clock.current + Seconds(45 * 60));
        CHECK(record->max_expires_at == f.clock.current + Seconds(2 * 3600));
        CHECK(record->child_pid == 1001);
        CHECK(record->endpoint == "fake://engine");
        REQUIRE(f.provider_log.plans.size() == 1);
        const auto& labels = f.provider_log.plans[0].labels;
        CHECK(labels.at("io.jitbox.sandbox") == record->id);
        CHECK(labels.at("io.jitbox.owner") == "alice");
        CHECK(labels.at("io.jitbox.template") == "db");
        CHECK(labels.at("io.jitbox.expires-at") == "2027-01-15T08:45:00Z");
        CHECK(labels.at("team") == "payments");

        auto stored = f.store.find("db-1").value();
        REQUIRE(stored.has_value());
        CHECK(stored->state == SandboxState::running);
        CHECK(stored->resources.items.size() == 2);
        CHECK(f.audit_lines().size() == 1);
    }

    TEST_CASE("up without a name generates a valid one from the template") {
        Fixture f;
        auto record = f.lifecycle.up({});
        REQUIRE(record.ok());
        CHECK(is_valid_sandbox_name(record->name));
        CHECK(record->name.rfind("db-", 0) == 0);
        CHECK(record->expires_at == f.clock.current + Seconds(30 * 60));
    }

    TEST_CASE("up rejects bad input before creating anything") {
        Fixture f;
        struct Case {
            UpRequest request;
            ExitCode code;
        };
        std::vector<Case> cases = {
            {{"nope", std::nullopt, std::nullopt}, ExitCode::usage},
            {{"db", std::nullopt, std::string("Bad_Name")}, ExitCode::usage},
            {{"db", Seconds(2 * 3600 + 1), std::nullopt}, ExitCode::denied},
            {{"db", Seconds(0), std::nullopt}, ExitCode::usage},
        };
        for (const auto& c : cases) {
            auto result = f.lifecycle.up(c.request);
            REQUIRE(!result.ok());
            CHECK(result.error().code == c.code);
        }
        CHECK(f.provider_log.plans.empty());
        CHECK(f.record_count() == 0);
        CHECK(f.children.starts == 0);
    }

    TEST_CASE("an unknown template suggests the closest known one") {
        Fixture f;
        auto result = f.lifecycle.up({"dbb", std::nullopt, std::nullopt});
        REQUIRE(!result.ok());
        CHECK(result.error().message.find("did you mean \"db\"") != std::string::npos);
    }

    TEST_CASE("a ttl equal to max_ttl is allowed") {
        Fixture f;
        CHECK(f.lifecycle.up({"db", Seconds(2 * 3600), std::nullopt}).ok());
    }

    TEST_CASE("a name in use is refused with its own code and nothing is created") {
        Fixture f;
        REQUIRE(f.lifecycle.up({"db", std::nullopt, std::string("db-1")}).ok());
        auto again = f.lifecycle.up({"db", std::nullopt, std::string("db-1")});
        REQUIRE(!again.ok());
        CHECK(again.error().code == ExitCode::name_in_use);
        CHECK(f.provider_log.plans.size() == 1);
    }

    TEST_CASE("a failure during create removes exactly what was created") {
        Fixture f;
        f.provider_log.fail_create_after = 1; // the network exists, the container fails
        auto result = f.lifecycle.up({"db", std::nullopt, std::string("db-1")});
        REQUIRE(!result.ok());
        CHECK(result.error().code == ExitCode::provider);
        REQUIRE(f.provider_log.destroyed.size() == 1);
        REQUIRE(f.provider_log.destroyed[0].items.size() == 1);
        CHECK(f.provider_log.destroyed[0].items[0].kind == "network");
        CHECK(f.record_count() == 0);
    }

    TEST_CASE("a child that cannot be armed fails up and removes the sandbox") {
        Fixture f;
        f.children.fail_start = true;
        auto result = f.lifecycle.up({"db", std::nullopt, std::string("db-1")});
        REQUIRE(!result.ok());
        CHECK(f.provider_log.destroyed.size() == 1);
        CHECK(f.record_count() == 0);
    }

    TEST_CASE("extend may reach max_ttl exactly but not pass it") {
        Fixture f;
        REQUIRE(f.lifecycle.up({"db", Seconds(3600), std::string("db-1")}).ok());
        auto extended = f.lifecycle.extend("db-1", Seconds(3600));
        REQUIRE(extended.ok());
        CHECK(extended->expires_at == f.clock.current + Seconds(2 * 3600));
        CHECK(f.children.notified == std::vector<std::string>{"db-1"});

        auto beyond = f.lifecycle.extend("db-1", Seconds(1));
        REQUIRE(!beyond.ok());
        CHECK(beyond.error().code == ExitCode::denied);
        CHECK(beyond.error().message.find("2h") != std::string::npos);
        CHECK(f.store.find("db-1").value()->expires_at == f.clock.current + Seconds(2 * 3600));
    }

    TEST_CASE("extend moves the provider's deadline first") {
        Fixture f;
        REQUIRE(f.lifecycle.up({"db", Seconds(1800), std::string("db-1")}).ok());

        auto extended = f.lifecycle.extend("db-1", Seconds(600));
        REQUIRE(extended.ok());
        REQUIRE(f.provider_log.extended.size() == 1);
        CHECK(f.provider_log.extended[0] == f.clock.current + Seconds(2400));

        f.provider_log.fail_extend = true;
        auto failed = f.lifecycle.extend("db-1", Seconds(600));
        REQUIRE(!failed.ok());
        CHECK(failed.error().code == ExitCode::provider);
        CHECK(f.store.find("db-1").value()->expires_at == f.clock.current + Seconds(2400));
        CHECK(f.audit_lines().back().find("cannot tag the instance") != std::string::npos);
    }

    TEST_CASE("up records the region and passes the MFA prompt") {
        Fixture f;
        f.provider_log.location =
            ProviderLocation{"https://ec2.eu-west-1.amazonaws.com", "eu-west-1"};
        UpRequest request{"db", Seconds(1800), std::string("db-1")};
        request.mfa_code = [] { return Result<std::string>(std::string("123456")); };

        auto record = f.lifecycle.up(request);

        REQUIRE(record.ok());
        CHECK(record->endpoint == "https://ec2.eu-west-1.amazonaws.com");
        CHECK(record->region == "eu-west-1");
        CHECK(f.store.find("db-1").value()->region == "eu-west-1");
        REQUIRE(f.provider_log.plans.size() == 1);
        REQUIRE(f.provider_log.plans[0].mfa_code);
        CHECK(f.provider_log.plans[0].mfa_code().value() == "123456");

        REQUIRE(f.lifecycle.down("db-1").ok());
        CHECK(f.provider_log.made_at.back() == f.provider_log.location);
    }

    TEST_CASE("find_live returns a running sandbox of the caller") {
        Fixture f;
        f.config.templates["db"].shell = "/bin/bash";
        REQUIRE(f.lifecycle.up({"db", std::nullopt, std::string("db-1")}).ok());

        const Result<SandboxRecord> live = f.lifecycle.find_live("db-1");

        REQUIRE(live.ok());
        CHECK(live->name == "db-1");
        CHECK(live->shell == "/bin/bash");
    }

    TEST_CASE("find_live rejects sandboxes that are not usable") {
        Fixture f;
        REQUIRE(f.lifecycle.up({"db", std::nullopt, std::string("db-1")}).ok());
        SandboxRecord record = f.store.find("db-1").value().value();

        SUBCASE("no such sandbox") {
            const auto live = f.lifecycle.find_live("ghost");
            REQUIRE_FALSE(live.ok());
            CHECK(live.error().code == ExitCode::not_found);
        }
        SUBCASE("expired") {
            f.clock.current = record.expires_at;
            const auto live = f.lifecycle.find_live("db-1");
            REQUIRE_FALSE(live.ok());
            CHECK(live.error().code == ExitCode::not_found);
            CHECK(contains(live.error().message, "expired at 2027-01-15T08:30:00Z"));
        }
        SUBCASE("being removed") {
            record.state = SandboxState::removing;
            REQUIRE(f.store.update(record).ok());
            const auto live = f.lifecycle.find_live("db-1");
            REQUIRE_FALSE(live.ok());
            CHECK(live.error().code == ExitCode::not_found);
            CHECK(contains(live.error().message, "is being removed"));
        }
        SUBCASE("being created") {
            record.state = SandboxState::creating;
            REQUIRE(f.store.update(record).ok());
            const auto live = f.lifecycle.find_live("db-1");
            REQUIRE_FALSE(live.ok());
            CHECK(contains(live.error().message, "is still being created"));
        }
        SUBCASE("another user's") {
            record.owner = "mallory";
            REQUIRE(f.store.update(record).ok());
            const auto live = f.lifecycle.find_live("db-1");
            REQUIRE_FALSE(live.ok());
            CHECK(live.error().code == ExitCode::denied);
            CHECK(contains(live.error().message, "belongs to mallory"));
        }
    }

    TEST_CASE("another user's sandbox is denied") {
        Fixture f;
        REQUIRE(f.lifecycle.up({"db", std::nullopt, std::string("db-1")}).ok());
        auto record = f.store.find("db-1");
        REQUIRE(record.ok());
        REQUIRE(record->has_value());
        (*record)->owner = "mallory";
        REQUIRE(f.store.update(**record).ok());

        const auto down = f.lifecycle.down("db-1");
        REQUIRE_FALSE(down.ok());
        CHECK(down.error().code == ExitCode::denied);
        CHECK(contains(down.error().message, "belongs to mallory"));
        CHECK(f.provider_log.destroyed.empty());

        const auto extended = f.lifecycle.extend("db-1", Seconds(60));
        REQUIRE_FALSE(extended.ok());
        CHECK(extended.error().code == ExitCode::denied);
        CHECK(f.provider_log.extended.empty());

        const auto status = f.lifecycle.status_of("db-1");
        REQUIRE_FALSE(status.ok());
        CHECK(status.error().code == ExitCode::denied);

        auto kept = f.store.find("db-1");
        REQUIRE(kept.ok());
        CHECK(kept->has_value());
    }

    TEST_CASE("audit_use records the action and detail") {
        Fixture f;
        REQUIRE(f.lifecycle.up({"db", std::nullopt, std::string("db-1")}).ok());
        const SandboxRecord record = f.store.find("db-1").value().value();
        const Failure failure{ExitCode::provider, "engine down"};

        f.lifecycle.audit_use("exec", record, "command psql with 2 arguments");
        f.lifecycle.audit_use("shell", record, "shell /bin/sh", &failure);

        const auto lines = f.audit_lines();
        REQUIRE(lines.size() == 3);
        CHECK(contains(lines[1], R"("action":"exec")"));
        CHECK(contains(lines[1], R"("detail":"command psql with 2 arguments")"));
        CHECK(contains(lines[1], R"("result":"ok")"));
        CHECK(contains(lines[2], R"("action":"shell")"));
        CHECK(contains(lines[2], R"("result":"error")"));
        CHECK(contains(lines[2], R"("error":"engine down")"));
    }

    TEST_CASE("extend and down of an unknown name report not found") {
        Fixture f;
        CHECK(f.lifecycle.extend("ghost", Seconds(60)).error().code == ExitCode::not_found);
        CHECK(f.lifecycle.down("ghost").error().code == ExitCode::not_found);
    }

    TEST_CASE("down stops the child, destroys the resources and forgets the record") {
        Fixture f;
        REQUIRE(f.lifecycle.up({"db", std::nullopt, std::string("db-1")}).ok());
        REQUIRE(f.lifecycle.down("db-1").ok());
        CHECK(f.children.alive.empty());
        CHECK(f.provider_log.destroyed.size() == 1);
        CHECK(f.record_count() == 0);
        CHECK(f.audit_lines().size() == 2);
    }

    TEST_CASE("a partial teardown keeps the record") {
        Fixture f;
        REQUIRE(f.lifecycle.up({"db", std::nullopt, std::string("db-1")}).ok());
        f.provider_log.destroy_leaves_container = true;
        auto result = f.lifecycle.down("db-1");
        REQUIRE(!result.ok());
        CHECK(result.error().code == ExitCode::partial_teardown);
        CHECK(result.error().message.find("removed only in part") != std::string::npos);
        auto kept = f.store.find("db-1").value();
        REQUIRE(kept.has_value());
        CHECK(kept->state == SandboxState::removing);
        CHECK(f.audit_lines().back().find("\"result\":\"error\"") != std::string::npos);

        f.provider_log.destroy_leaves_container = false;
        REQUIRE(f.lifecycle.down("db-1").ok());
        CHECK(f.record_count() == 0);
    }

    TEST_CASE("a failed teardown keeps the record for a later attempt") {
        Fixture f;
        REQUIRE(f.lifecycle.up({"db", std::nullopt, std::string("db-1")}).ok());
        f.provider_log.fail_destroy = true;
        auto result = f.lifecycle.down("db-1");
        REQUIRE(!result.ok());
        CHECK(result.error().code == ExitCode::provider);
        auto kept = f.store.find("db-1").value();
        REQUIRE(kept.has_value());
        CHECK(kept->state == SandboxState::removing);
        CHECK(kept->removal_action == "down");
        CHECK(f.children.alive.count("db-1") == 1); // a child to retry the removal

        f.provider_log.fail_destroy = false;
        f.children.alive.clear(); // that child died too
        f.lifecycle.reconcile();  // no child, state removing: retried
        CHECK(f.record_count() == 0);
        CHECK(f.audit_lines().back().find("\"action\":\"down\"") != std::string::npos);
    }

    TEST_CASE("expire acts only once the deadline has passed") {
        Fixture f;
        REQUIRE(f.lifecycle.up({"db", Seconds(60), std::string("db-1")}).ok());
        REQUIRE(f.lifecycle.expire("db-1").ok());
        CHECK(f.record_count() == 1);
        f.clock.current += Seconds(60);
        REQUIRE(f.lifecycle.expire("db-1").ok());
        CHECK(f.record_count() == 0);
        CHECK(f.audit_lines().back().find("\"action\":\"expire\"") != std::string::npos);
    }

    TEST_CASE("reconcile removes expired sandboxes without a child and rearms live ones") {
        Fixture f;
        REQUIRE(f.lifecycle.up({"db", Seconds(60), std::string("short")}).ok());
        REQUIRE(f.lifecycle.up({"db", Seconds(3600), std::string("long")}).ok());
        f.children.alive.clear(); // both children died
        f.clock.current += Seconds(120);
        f.lifecycle.reconcile();
        CHECK(!f.store.find("short").value().has_value());
        REQUIRE(f.store.find("long").value().has_value());
        CHECK(f.children.alive.count("long") == 1);
        CHECK(f.store.find("long").value()->child_pid == 1003);
    }

    TEST_CASE("status asks the engine once and reports its state") {
        Fixture f;
        REQUIRE(f.lifecycle.up({"db", Seconds(60), std::string("a")}).ok());
        REQUIRE(f.lifecycle.up({"db", Seconds(600), std::string("b")}).ok());
        auto b_id = f.store.find("b").value()->id;
        f.provider_log.engine_states[b_id] = "exited";
        REQUIRE(f.lifecycle.up({"db", Seconds(600), std::string("c")}).ok());
        f.provider_log.engine_states.erase(f.store.find("c").value()->id);
        f.clock.current += Seconds(61);

        auto statuses = f.lifecycle.status();
        REQUIRE(statuses.ok());
        REQUIRE(statuses->size() == 3);
        CHECK((*statuses)[0].state == "expired");
        CHECK((*statuses)[1].state == "exited");
        CHECK((*statuses)[2].state == "missing");
        CHECK(f.provider_log.list_calls == 1);
    }

    TEST_CASE("reconcile_and_status with live children") {
        Fixture f;
        REQUIRE(f.lifecycle.up({"db", Seconds(600), std::string("a")}).ok());
        REQUIRE(f.lifecycle.up({"db", Seconds(600), std::string("b")}).ok());

        auto statuses = f.lifecycle.reconcile_and_status();
        REQUIRE(statuses.ok());
        REQUIRE(statuses->size() == 2);
        CHECK((*statuses)[0].child_alive);
        CHECK((*statuses)[1].child_alive);
        CHECK((*statuses)[0].state == "running");
        CHECK(f.children.starts == 2); // no child restarted
        CHECK(f.provider_log.list_calls == 1);
    }

    TEST_CASE("reconcile_and_status after reconciling") {
        Fixture f;
        REQUIRE(f.lifecycle.up({"db", Seconds(60), std::string("short")}).ok());
        REQUIRE(f.lifecycle.up({"db", Seconds(3600), std::string("long")}).ok());
        f.children.alive.clear(); // both children died
        f.clock.current += Seconds(120);

        auto statuses = f.lifecycle.reconcile_and_status();
        REQUIRE(statuses.ok());
        REQUIRE(statuses->size() == 1); // short was removed, and the list was read again
        CHECK((*statuses)[0].record.name == "long");
        CHECK((*statuses)[0].child_alive);
        CHECK((*statuses)[0].record.child_pid == 1003);
    }

    TEST_CASE("status shows the provider's detail") {
        Fixture f;
        f.provider_log.detail = "i-1 private 10.0.1.5";
        REQUIRE(f.lifecycle.up({"db", Seconds(600), std::string("a")}).ok());

        auto statuses = f.lifecycle.status();

        REQUIRE(statuses.ok());
        REQUIRE(statuses->size() == 1);
        CHECK((*statuses)[0].state == "running");
        CHECK((*statuses)[0].detail == "i-1 private 10.0.1.5");
    }

    TEST_CASE("status_of asks about one sandbox") {
        Fixture f;
        REQUIRE(f.lifecycle.up({"db", Seconds(600), std::string("a")}).ok());
        REQUIRE(f.lifecycle.up({"db", Seconds(60), std::string("b")}).ok());
        f.provider_log.engine_states[f.store.find("a").value()->id] = "exited";

        auto exited = f.lifecycle.status_of("a");
        f.clock.current += Seconds(61);
        const int calls_before = f.provider_log.list_calls;
        auto expired = f.lifecycle.status_of("b");
        auto absent = f.lifecycle.status_of("c");

        REQUIRE(exited.ok());
        CHECK(exited->state == "exited");
        REQUIRE(expired.ok());
        CHECK(expired->state == "expired");
        CHECK(f.provider_log.list_calls == calls_before); // the record alone decides
        REQUIRE_FALSE(absent.ok());
        CHECK(absent.error().code == ExitCode::not_found);
    }

    TEST_CASE("status_of reports a creating record without asking") {
        Fixture f;
        SandboxRecord record;
        record.name = "half";
        record.id = "0123456789abcdef";
        record.owner = "alice";
        record.template_name = "db";
        record.provider = "docker";
        record.created_at = f.clock.current;
        record.expires_at = f.clock.current + Seconds(600);
        record.max_expires_at = record.expires_at;
        REQUIRE(f.store.insert(record).ok());

        auto status = f.lifecycle.status_of("half");

        REQUIRE(status.ok());
        CHECK(status->state == "creating");
        CHECK(f.provider_log.list_calls == 0);
    }

    TEST_CASE("up passes the wait timeout and interrupt check to the plan") {
        Fixture f;
        UpRequest request{"db", Seconds(600), std::string("a")};
        request.wait_timeout = Seconds(90);

        REQUIRE(f.lifecycle.up(request).ok());

        REQUIRE(f.provider_log.plans.size() == 1);
        CHECK(f.provider_log.plans[0].wait_timeout == Seconds(90));
        REQUIRE(f.provider_log.plans[0].interrupted);
        CHECK_FALSE(f.provider_log.plans[0].interrupted());
    }

    TEST_CASE("a provider that lists nothing keeps its sandboxes") {
        Fixture f;
        f.provider_log.lists_resources = false;
        REQUIRE(f.lifecycle.up({"db", Seconds(600), std::string("a")}).ok());
        f.provider_log.engine_states.clear();

        auto statuses = f.lifecycle.status();
        REQUIRE(statuses.ok());
        REQUIRE(statuses->size() == 1);
        CHECK((*statuses)[0].state == "running");

        auto actions = f.lifecycle.gc(GcScope::own, GcMode::remove);
        REQUIRE(actions.ok());
        CHECK(actions->empty());
        CHECK(f.record_count() == 1);
    }
}

// The keyrings are shared by every state folder of a user, and a sandbox of another folder
// may have the same name. Its items carry that name but another id.
constexpr const char* k_other_folder_id = "ffffffffffffffff";

// Adds a generated PASSWORD to template db.
void add_password_secret(Fixture& f) {
    f.config.templates.at("db").secrets = {GeneratedSecret{"PASSWORD", 32}};
}

TEST_SUITE("lifecycle keyring items") {
    TEST_CASE("generated secrets are keyed by sandbox id") {
        Fixture f;
        add_password_secret(f);
        auto record = f.lifecycle.up({"db", std::nullopt, std::string("db-1")});
        REQUIRE(record.ok());

        REQUIRE(f.secrets.items.size() == 1);
        const SecretItem& item = f.secrets.items.begin()->second;
        CHECK(item.sandbox_id == record->id);
        CHECK(item.sandbox_name == "db-1");
        CHECK(item.key == "PASSWORD");
        CHECK(item.expires_at == record->expires_at);
    }

    TEST_CASE("down leaves another folder's items") {
        Fixture f;
        add_password_secret(f);
        const TimePoint other_expiry = f.clock.current + Seconds(600);
        REQUIRE(
            f.secrets.put({k_other_folder_id, "PASSWORD", "theirs", other_expiry, "db-1"}).ok());
        auto record = f.lifecycle.up({"db", std::nullopt, std::string("db-1")});
        REQUIRE(record.ok());
        REQUIRE(f.secrets.items.size() == 2);

        REQUIRE(f.lifecycle.extend("db-1", Seconds(600)).ok());
        const SecretItem& theirs = f.secrets.items.at({k_other_folder_id, "PASSWORD"});
        CHECK(theirs.expires_at == other_expiry);
        CHECK(theirs.value == "theirs");
        CHECK(f.secrets.items.at({record->id, "PASSWORD"}).expires_at ==
              record->expires_at + Seconds(600));

        REQUIRE(f.lifecycle.down("db-1").ok());
        CHECK(f.secrets.items.count({record->id, "PASSWORD"}) == 0);
        CHECK(f.secrets.items.count({k_other_folder_id, "PASSWORD"}) == 1);
    }

    TEST_CASE("aws session ignores another folder's session") {
        Fixture f;
        start_sts_sandbox(f, Seconds(3600));
        const AwsSession theirs{
            {"ASIATHEIRS", "their-secret", "their-token", f.clock.current + Seconds(3000)},
            "us-east-1"};
        REQUIRE(f.secrets.put(make_aws_session_item(k_other_folder_id, "deploy-1", theirs)).ok());

        auto session = f.lifecycle.aws_session("deploy-1", nullptr);

        REQUIRE(session.ok());
        CHECK(session->credentials.access_key_id == "ASIARENEWED");
        CHECK(f.provider_log.renewals.size() == 1);
        CHECK(f.secrets.items.at({k_other_folder_id, "aws-session"}).value ==
              encode_aws_session(theirs));
    }
}

TEST_SUITE("lifecycle aws session") {
    TEST_CASE("aws session reuses fresh cache") {
        // k_aws_session_renewal_margin is 300 s, and a session with exactly that left is kept.
        for (Seconds left : {Seconds(3600), Seconds(301), Seconds(300)}) {
            CAPTURE(left.count());
            Fixture f;
            start_sts_sandbox(f, Seconds(3600));
            put_cached_session(f, left);
            const std::string stored = session_item(f).value;

            auto session = f.lifecycle.aws_session("deploy-1", nullptr);

            REQUIRE(session.ok());
            CHECK(session->credentials.access_key_id == "ASIACACHED");
            CHECK(session->credentials.secret_access_key == "cached-secret");
            CHECK(session->credentials.expiration == f.clock.current + left);
            CHECK(session->region == "us-east-1");
            CHECK(f.opened_backends.back() == "memory");
            CHECK(f.provider_log.renewals.empty());
            CHECK(f.secrets.put_count == 1);
            CHECK(session_item(f).value == stored);
            CHECK(count_renew_records(f) == 0);
        }
    }

    TEST_CASE("aws session renews missing or stale") {
        struct Case {
            std::string label;
            std::optional<Seconds> left; // unset: no item in the keyring
            bool unreadable;
            std::string detail;
        };
        const std::vector<Case> cases{
            {"missing", std::nullopt, false, "no session in the keyring"},
            {"unreadable", Seconds(3000), true, "no session in the keyring"},
            {"within margin", Seconds(299), false, "session near its expiry"},
            {"already expired", Seconds(-60), false, "session near its expiry"},
        };
        for (const Case& c : cases) {
            CAPTURE(c.label);
            Fixture f;
            const SandboxRecord record = start_sts_sandbox(f, Seconds(3600));
            if (c.unreadable) {
                REQUIRE(
                    f.secrets.put({record.id, "aws-session", "{}", record.expires_at, ""}).ok());
            } else if (c.left) {
                put_cached_session(f, *c.left);
            }

            auto session = f.lifecycle.aws_session("deploy-1", mfa_654321);

            REQUIRE(session.ok());
            CHECK(session->credentials.access_key_id == "ASIARENEWED");
            CHECK(session->credentials.session_token == "renewed-token");
            CHECK(session->credentials.expiration == record.expires_at);
            CHECK(session->region == "eu-west-1");
            REQUIRE(f.provider_log.renewals.size() == 1);
            const SandboxPlan& plan = f.provider_log.renewals[0];
            CHECK(plan.id == record.id);
            CHECK(plan.name == "deploy-1");
            CHECK(plan.owner == "alice");
            CHECK(plan.spec.name == "deploy");
            CHECK(plan.spec.aws.role_arn == k_deploy_role);
            CHECK(plan.expires_at == record.expires_at);
            CHECK(plan.secrets == &f.secrets);
            REQUIRE(plan.mfa_code);
            CHECK(plan.mfa_code().value() == "654321");
            CHECK(f.provider_log.made_at.back() == f.provider_log.location);
            const std::string line = f.audit_lines().back();
            CHECK(contains(line, "\"action\":\"renew\""));
            CHECK(contains(line, "\"sandbox\":\"deploy-1\""));
            CHECK(contains(line, "\"result\":\"ok\""));
            CHECK(contains(line, "\"detail\":\"" + c.detail + "\""));
        }
    }

    TEST_CASE("aws session near grant end") {
        Fixture f;
        const SandboxRecord record = start_sts_sandbox(f, Seconds(3600));
        f.clock.current = record.expires_at - Seconds(200);

        SUBCASE("cache outlasting the grant is kept") {
            put_cached_session(f, Seconds(240));
            auto session = f.lifecycle.aws_session("deploy-1", nullptr);
            REQUIRE(session.ok());
            CHECK(session->credentials.access_key_id == "ASIACACHED");
            CHECK(f.provider_log.renewals.empty());
        }
        SUBCASE("cache ending first is renewed") {
            put_cached_session(f, Seconds(100));
            auto session = f.lifecycle.aws_session("deploy-1", nullptr);
            REQUIRE(session.ok());
            CHECK(session->credentials.access_key_id == "ASIARENEWED");
            REQUIRE(f.provider_log.renewals.size() == 1);
            CHECK(f.provider_log.renewals[0].expires_at == record.expires_at);
        }
    }

    TEST_CASE("aws session rejects unusable sandboxes") {
        struct Case {
            std::string label;
            std::string name;
            std::function<void(Fixture&, SandboxRecord&)> change;
            ExitCode code;
            std::string message;
        };
        const std::vector<Case> cases{
            {"unknown name", "ghost", [](Fixture&, SandboxRecord&) {}, ExitCode::not_found,
             "no sandbox named \"ghost\""},
            {"expired grant", "deploy-1",
             [](Fixture& f, SandboxRecord& r) { f.clock.current = r.expires_at; },
             ExitCode::not_found, "is expired"},
            {"being removed", "deploy-1",
             [](Fixture& f, SandboxRecord& r) {
                 r.state = SandboxState::removing;
                 REQUIRE(f.store.update(r).ok());
             },
             ExitCode::not_found, "is removing"},
            {"docker sandbox", "db-1",
             [](Fixture& f, SandboxRecord&) {
                 REQUIRE(f.lifecycle.up({"db", std::nullopt, std::string("db-1")}).ok());
             },
             ExitCode::usage, "not aws-sts"},
        };
        for (const Case& c : cases) {
            CAPTURE(c.label);
            Fixture f;
            SandboxRecord record = start_sts_sandbox(f, Seconds(3600));
            put_cached_session(f, Seconds(60));
            c.change(f, record);
            const std::size_t factory_calls = f.provider_log.made_at.size();

            auto session = f.lifecycle.aws_session(c.name, mfa_654321);

            REQUIRE_FALSE(session.ok());
            CHECK(session.error().code == c.code);
            CHECK(contains(session.error().message, c.message));
            CHECK(f.provider_log.made_at.size() == factory_calls);
            CHECK(f.provider_log.renewals.empty());
            CHECK(count_renew_records(f) == 0);
        }
    }

    TEST_CASE("aws session keeps the granted role") {
        const std::vector<std::pair<std::string, std::function<void(Config&)>>> changes{
            {"template removed", [](Config& c) { c.templates.erase("deploy"); }},
            {"role changed",
             [](Config& c) {
                 c.templates.at("deploy").aws.role_arn = "arn:aws:iam::123456789012:role/Admin";
                 c.templates.at("deploy").aws.session_policy = "";
             }},
        };
        for (const auto& [label, change] : changes) {
            CAPTURE(label);
            Fixture f;
            start_sts_sandbox(f, Seconds(3600));
            change(f.config);

            auto session = f.lifecycle.aws_session("deploy-1", nullptr);

            REQUIRE(session.ok());
            REQUIRE(f.provider_log.renewals.size() == 1);
            const Template& spec = f.provider_log.renewals[0].spec;
            CHECK(spec.name == "deploy");
            CHECK(spec.provider == "aws-sts");
            CHECK(spec.aws.role_arn == k_deploy_role);
        }
    }

    TEST_CASE("aws session locked keyring") {
        Fixture f;
        start_sts_sandbox(f, Seconds(3600));
        put_cached_session(f, Seconds(3600));
        f.secrets.locked = true;

        auto session = f.lifecycle.aws_session("deploy-1", nullptr);

        REQUIRE_FALSE(session.ok());
        CHECK(session.error().code == ExitCode::locked);
        CHECK(contains(session.error().message, "keyring memory is locked"));
        CHECK(f.provider_log.renewals.empty());
        CHECK(count_renew_records(f) == 0);
    }

    TEST_CASE("aws session renewal failure") {
        Fixture f;
        start_sts_sandbox(f, Seconds(3600));
        put_cached_session(f, Seconds(120));
        const SecretItem before = session_item(f);
        f.provider_log.fail_renew = Failure{ExitCode::provider, "AccessDenied: not authorized"};

        auto session = f.lifecycle.aws_session("deploy-1", nullptr);

        REQUIRE_FALSE(session.ok());
        CHECK(session.error().code == ExitCode::provider);
        CHECK(session.error().message == "AccessDenied: not authorized");
        CHECK(f.provider_log.renewals.size() == 1);
        CHECK(f.secrets.put_count == 1);
        const SecretItem& after = session_item(f);
        CHECK(after.value == before.value);
        CHECK(after.expires_at == before.expires_at);
        const std::string line = f.audit_lines().back();
        CHECK(contains(line, "\"action\":\"renew\""));
        CHECK(contains(line, "\"result\":\"error\""));
        CHECK(contains(line, "\"error\":\"AccessDenied: not authorized\""));
    }
}
