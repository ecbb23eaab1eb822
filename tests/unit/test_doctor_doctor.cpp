#include "jitbox/audit/audit.hpp"
#include "jitbox/doctor/doctor.hpp"

#include "memory_secret_store.hpp"
#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <deque>
#include <sys/stat.h>
#include <unistd.h>

using namespace jitbox;
namespace fs = std::filesystem;

namespace {

const TimePoint k_now = *parse_rfc3339("2026-03-01T12:00:00Z");

class FixedClock final : public Clock {
public:
    TimePoint now() const override { return k_now; }
};

// Serves scripted replies in order and records each request's target.
class ScriptedClient final : public HttpClient {
public:
    Result<HttpResponse> send(const HttpRequest& request) override {
        targets.push_back(request.target);
        if (replies.empty()) {
            return make_failure(ExitCode::provider, "cannot reach test: no reply scripted");
        }
        auto reply = std::move(replies.front());
        replies.pop_front();
        return reply;
    }

    std::deque<Result<HttpResponse>> replies;
    std::vector<std::string> targets;
};

HttpResponse ping_reply(const std::string& api_version) {
    HttpResponse response;
    response.status = 200;
    response.body = "OK";
    response.headers["api-version"] = api_version;
    response.headers["date"] = "Sun, 01 Mar 2026 12:00:00 GMT";
    return response;
}

HttpResponse json_reply(const std::string& body) {
    HttpResponse response;
    response.status = 200;
    response.body = body;
    return response;
}

EngineInfo engine_at(std::optional<TimePoint> engine_time) {
    EngineInfo info;
    info.endpoint = "unix:///test.sock";
    info.engine_time = engine_time;
    info.local_before = k_now;
    info.local_after = k_now;
    return info;
}

std::vector<Finding> with_severity(const std::vector<Finding>& findings, Severity severity) {
    std::vector<Finding> matching;
    for (const auto& candidate : findings) {
        if (candidate.severity == severity) {
            matching.push_back(candidate);
        }
    }
    return matching;
}

// A state folder as StateStore::open leaves it.
fs::path make_state_dir(const fs::path& root) {
    fs::path dir = root / "jitbox";
    for (const auto& folder : {dir, dir / "sandboxes", dir / "locks"}) {
        REQUIRE(::mkdir(folder.c_str(), 0700) == 0);
    }
    return dir;
}

SecretBackendOpener backend(const std::string& name, bool works) {
    return {name, [name, works](WhenLocked) -> Result<std::unique_ptr<SecretStore>> {
                if (!works) {
                    return make_failure(ExitCode::internal, "{} is down", name);
                }
                struct Named final : public SecretStore {
                    explicit Named(std::string backend_name) : backend(std::move(backend_name)) {}
                    std::string_view name() const override { return backend; }
                    Result<void> put(const SecretItem&) override { return {}; }
                    Result<SecretLookup> get(std::string_view, std::string_view) override {
                        return SecretLookup{};
                    }
                    Result<std::vector<SecretInfo>> list() override {
                        return std::vector<SecretInfo>{};
                    }
                    Result<bool> remove(std::string_view, std::string_view) override {
                        return false;
                    }
                    Result<std::size_t> remove_sandbox(std::string_view) override {
                        return std::size_t{0};
                    }
                    Result<std::size_t> purge_expired(TimePoint) override { return std::size_t{0}; }
                    std::string backend;
                };
                return std::unique_ptr<SecretStore>(std::make_unique<Named>(name));
            }};
}

SandboxRecord running_record() {
    SandboxRecord record;
    record.name = "db-1";
    record.id = "0123456789abcdef";
    record.template_name = "db";
    record.provider = "docker";
    record.state = SandboxState::running;
    record.created_at = k_now - Seconds(600);
    record.expires_at = k_now + Seconds(600);
    return record;
}

} // namespace

TEST_SUITE("doctor report") {
    TEST_CASE("json shape") {
        DoctorReport report;
        report.findings = {make_finding("engine", Severity::ok, "fine"),
                           make_finding("install", Severity::warning, "no man page", "install it"),
                           make_finding("state", Severity::error, "unwritable", "fix it")};
        nlohmann::json json = report_to_json(report);
        CHECK(json["errors"] == 1);
        CHECK(json["warnings"] == 1);
        REQUIRE(json["findings"].size() == 3);
        CHECK(json["findings"][0]["check"] == "engine");
        CHECK(json["findings"][0]["status"] == "ok");
        CHECK(json["findings"][0]["fix"].is_null());
        CHECK(json["findings"][0]["details"].is_object());
        CHECK(json["findings"][1]["status"] == "warning");
        CHECK(json["findings"][2]["fix"] == "fix it");
    }

    TEST_CASE("plain lines") {
        DoctorReport report;
        report.findings = {make_finding("engine", Severity::ok, "fine"),
                           make_finding("state", Severity::error, "unwritable", "chmod it")};
        CHECK(format_plain(report) == "ok engine: fine\nerror state: unwritable (fix: chmod it)\n");
    }

    TEST_CASE("table with and without colour") {
        DoctorReport report;
        report.findings = {make_finding("engine", Severity::ok, "fine"),
                           make_finding("keyring", Severity::warning, "file backend", "start one")};
        std::string plain = format_table(report, false);
        CHECK(plain == "✓ engine   fine\n! keyring  file backend\n           fix: start one\n"
                       "0 errors, 1 warning\n");
        CHECK(plain.find('\x1b') == std::string::npos);
        std::string coloured = format_table(report, true);
        CHECK(coloured.find("\x1b[33m!\x1b[0m") != std::string::npos);
    }
}

TEST_SUITE("doctor engine") {
    TEST_CASE("probe negotiates and reads versions and clock") {
        ScriptedClient client;
        client.replies.push_back(ping_reply("1.43"));
        client.replies.push_back(json_reply(R"({"Version":"24.0.5","MinAPIVersion":"1.12"})"));
        client.replies.push_back(json_reply(R"({"SystemTime":"2026-03-01T12:00:30.5Z"})"));
        EngineProbe probe =
            probe_docker_engine(client, "unix:///test.sock", std::chrono::seconds(1), FixedClock());
        REQUIRE(probe.info.has_value());
        CHECK(probe.info->api_version == "1.43");
        CHECK(probe.info->negotiated == "1.41");
        CHECK(probe.info->engine_version == "24.0.5");
        CHECK(probe.info->min_api_version == "1.12");
        CHECK(probe.info->engine_time == k_now + Seconds(30));
        CHECK(client.targets ==
              std::vector<std::string>{"/_ping", "/v1.41/version", "/v1.41/info"});
        Finding found = engine_finding(probe);
        CHECK(found.severity == Severity::ok);
        CHECK(found.details["negotiated_api_version"] == "1.41");
    }

    TEST_CASE("probe keeps the Date header when info fails") {
        ScriptedClient client;
        client.replies.push_back(ping_reply("1.41"));
        client.replies.push_back(json_reply("not json"));
        HttpResponse failed;
        failed.status = 500;
        client.replies.push_back(failed);
        EngineProbe probe =
            probe_docker_engine(client, "unix:///test.sock", std::chrono::seconds(1), FixedClock());
        REQUIRE(probe.info.has_value());
        CHECK(probe.info->engine_version.empty());
        CHECK(probe.info->engine_time == k_now);
    }

    TEST_CASE("probe problems") {
        ScriptedClient client;
        SUBCASE("unreachable") {
            client.replies.push_back(
                Failure{ExitCode::provider, "cannot reach unix:///x: Permission denied"});
            EngineProbe probe =
                probe_docker_engine(client, "unix:///x", std::chrono::seconds(1), FixedClock());
            CHECK_FALSE(probe.info.has_value());
            CHECK(probe.problem ==
                  "cannot reach the Docker engine at unix:///x: Permission denied");
            CHECK(probe.fix.find("docker group") != std::string::npos);
            CHECK(engine_finding(probe).severity == Severity::error);
        }
        SUBCASE("not a docker engine") {
            HttpResponse response;
            response.status = 200;
            client.replies.push_back(response);
            EngineProbe probe =
                probe_docker_engine(client, "tcp://h:1", std::chrono::seconds(1), FixedClock());
            CHECK(probe.problem.find("no valid Api-Version") != std::string::npos);
        }
        SUBCASE("too old") {
            client.replies.push_back(ping_reply("1.39"));
            EngineProbe probe =
                probe_docker_engine(client, "tcp://h:1", std::chrono::seconds(1), FixedClock());
            CHECK(probe.problem.find("older than") != std::string::npos);
            CHECK(client.targets.size() == 1);
        }
    }

    TEST_CASE("http dates") {
        CHECK(parse_http_date("Sun, 01 Mar 2026 12:00:00 GMT") == k_now);
        CHECK(parse_http_date("Tue, 29 Feb 2028 23:59:59 GMT").has_value());
        CHECK_FALSE(parse_http_date("Tue, 30 Feb 2027 00:00:00 GMT").has_value());
        CHECK_FALSE(parse_http_date("Sun, 01 Foo 2026 12:00:00 GMT").has_value());
        CHECK_FALSE(parse_http_date("Sunday, 01-Mar-26 12:00:00 GMT").has_value());
        CHECK_FALSE(parse_http_date("Sun, 01 Mar 2026 25:00:00 GMT").has_value());
        CHECK_FALSE(parse_http_date("").has_value());
    }

    TEST_CASE("clock skew") {
        CHECK(clock_finding(engine_at(k_now + Seconds(3))).severity == Severity::ok);
        Finding ahead = clock_finding(engine_at(k_now + Seconds(90)));
        CHECK(ahead.severity == Severity::warning);
        CHECK(ahead.message.find("1m30s ahead of") != std::string::npos);
        CHECK(ahead.details["skew_seconds"] == 90);
        Finding behind = clock_finding(engine_at(k_now - k_clock_skew_limit - Seconds(1)));
        CHECK(behind.severity == Severity::warning);
        CHECK(behind.message.find("behind") != std::string::npos);
        CHECK(clock_finding(engine_at(k_now - k_clock_skew_limit)).severity == Severity::ok);
        CHECK(clock_finding(engine_at(std::nullopt)).severity == Severity::warning);
    }
}

TEST_SUITE("doctor keyring") {
    const EnvLookup no_env = [](const std::string&) { return std::optional<std::string>(); };

    TEST_CASE("first backend works") {
        auto opened = choose_secret_store(
            "", no_env, {backend("secret-service", true), backend("kernel", true)});
        Finding found = keyring_finding(opened, true);
        CHECK(found.severity == Severity::ok);
        CHECK(found.details["backend"] == "secret-service");
    }

    TEST_CASE("file fallback is a warning") {
        auto opened = choose_secret_store(
            "", no_env,
            {backend("secret-service", false), backend("kernel", false), backend("file", true)});
        Finding found = keyring_finding(opened, true);
        CHECK(found.severity == Severity::warning);
        CHECK(found.message.find("secret-service is down") != std::string::npos);
        CHECK(found.details["probes"].size() == 3);
    }

    TEST_CASE("file chosen by name is fine") {
        auto opened = choose_secret_store(
            "file", no_env, {backend("secret-service", false), backend("file", true)});
        CHECK(keyring_finding(opened, true).severity == Severity::ok);
    }

    TEST_CASE("no backend is an error only when a template needs one") {
        auto opened = choose_secret_store(
            "", no_env, {backend("secret-service", false), backend("file", false)});
        CHECK(keyring_finding(opened, true).severity == Severity::error);
        CHECK(keyring_finding(opened, false).severity == Severity::warning);
    }
}

TEST_SUITE("doctor files") {
    TEST_CASE("healthy state folder") {
        test::TempDir temp;
        fs::path dir = make_state_dir(temp.path());
        auto findings = check_state_folder(dir, ::getuid(), fs::file_time_type::clock::now());
        REQUIRE(findings.size() == 1);
        CHECK(findings[0].severity == Severity::ok);
        CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 2);
    }

    TEST_CASE("missing state folder is fine") {
        test::TempDir temp;
        auto findings =
            check_state_folder(temp.path() / "none", ::getuid(), fs::file_time_type::clock::now());
        REQUIRE(findings.size() == 1);
        CHECK(findings[0].severity == Severity::ok);
        CHECK_FALSE(fs::exists(temp.path() / "none"));
    }

    TEST_CASE("open modes are warnings and stay as they are") {
        test::TempDir temp;
        fs::path dir = make_state_dir(temp.path());
        REQUIRE(::chmod(dir.c_str(), 0755) == 0);
        test::write_file(dir / "sandboxes" / "db-1.json", "{}");
        REQUIRE(::chmod((dir / "sandboxes" / "db-1.json").c_str(), 0644) == 0);
        auto findings = check_state_folder(dir, ::getuid(), fs::file_time_type::clock::now());
        auto warnings = with_severity(findings, Severity::warning);
        REQUIRE(warnings.size() == 2);
        CHECK(warnings[0].message.find("mode 0755") != std::string::npos);
        CHECK(warnings[0].fix == "chmod 0700 " + dir.string());
        CHECK(warnings[1].fix == "chmod 0600 " + (dir / "sandboxes" / "db-1.json").string());
        struct stat info {};
        REQUIRE(::stat(dir.c_str(), &info) == 0);
        CHECK((info.st_mode & 0777) == 0755);
    }

    TEST_CASE("another owner is an error") {
        test::TempDir temp;
        fs::path dir = make_state_dir(temp.path());
        auto findings = check_state_folder(dir, ::getuid() + 1, fs::file_time_type::clock::now());
        CHECK(with_severity(findings, Severity::error).size() == 3);
    }

    TEST_CASE("a file in place of the folder is an error") {
        test::TempDir temp;
        test::write_file(temp.path() / "jitbox", "");
        auto findings = check_state_folder(temp.path() / "jitbox", ::getuid(),
                                           fs::file_time_type::clock::now());
        REQUIRE(findings.size() == 1);
        CHECK(findings[0].severity == Severity::error);
    }

    TEST_CASE("stale temp files") {
        test::TempDir temp;
        fs::path dir = make_state_dir(temp.path());
        test::write_file(dir / "sandboxes" / "db-1.json.Ab12Cd", "{");
        test::write_file(dir / "audit.head.Xy34Zw", "1 ");
        test::write_file(dir / "sandboxes" / "db-2.json.Ef56Gh", "{"); // fresh
        auto old = fs::file_time_type::clock::now() - std::chrono::hours(2);
        fs::last_write_time(dir / "sandboxes" / "db-1.json.Ab12Cd", old);
        fs::last_write_time(dir / "audit.head.Xy34Zw", old);
        auto findings = check_state_folder(dir, ::getuid(), fs::file_time_type::clock::now());
        auto warnings = with_severity(findings, Severity::warning);
        REQUIRE(warnings.size() == 1);
        CHECK(warnings[0].message.find("2 temp file(s)") != std::string::npos);
        CHECK(warnings[0].message.find("db-2") == std::string::npos);
    }

    TEST_CASE("audit log") {
        test::TempDir temp;
        fs::path log = temp.path() / "audit.log";
        SUBCASE("missing") {
            auto findings = check_audit_log(log, ::getuid());
            REQUIRE(findings.size() == 1);
            CHECK(findings[0].severity == Severity::ok);
        }
        SUBCASE("intact") {
            AuditLog audit(log);
            AuditEvent event;
            event.time = k_now;
            event.action = "up";
            event.result = "ok";
            REQUIRE(audit.append(event));
            auto findings = check_audit_log(log, ::getuid());
            REQUIRE(findings.size() == 1);
            CHECK(findings[0].severity == Severity::ok);
            CHECK(findings[0].details["records"] == 1);
        }
        SUBCASE("broken chain and open mode") {
            test::write_file(log, "not a record\n");
            REQUIRE(::chmod(log.c_str(), 0644) == 0);
            auto findings = check_audit_log(log, ::getuid());
            auto warnings = with_severity(findings, Severity::warning);
            REQUIRE(warnings.size() == 2);
            CHECK(warnings[0].fix == "chmod 0600 " + log.string());
            CHECK(warnings[1].message.find("broken at line 1") != std::string::npos);
        }
    }

    TEST_CASE("share folders") {
        auto dirs = install_share_dirs("/opt/jitbox/bin/jitbox");
        CHECK(dirs == std::vector<fs::path>{"/opt/jitbox/share", "/usr/local/share", "/usr/share"});
        CHECK(install_share_dirs("/usr/bin/jitbox") ==
              std::vector<fs::path>{"/usr/share", "/usr/local/share"});
    }

    TEST_CASE("installed and missing files") {
        test::TempDir temp;
        test::write_file(temp.path() / "man/man1/jitbox.1.gz", "x");
        test::write_file(temp.path() / "zsh/vendor-completions/_jitbox", "x");
        auto findings = check_install({temp.path()});
        REQUIRE(findings.size() == 5);
        CHECK(findings[0].severity == Severity::ok);
        CHECK(findings[0].details["path"] == (temp.path() / "man/man1/jitbox.1.gz").string());
        CHECK(findings[1].severity == Severity::warning);
        CHECK(findings[2].severity == Severity::warning);
        CHECK(findings[3].severity == Severity::ok);
        CHECK(findings[4].severity == Severity::warning);
        CHECK_FALSE(findings[4].fix.empty());
    }
}

TEST_SUITE("doctor sandboxes") {
    TEST_CASE("live sandbox with its child") {
        SandboxObservation observed{running_record(), {}, true};
        observed.child.child_lock_held = true;
        observed.child.holder = ChildProcess{4242, 1};
        Finding found = sandbox_finding(observed, k_now);
        CHECK(found.severity == Severity::ok);
        CHECK(found.message.find("pid 4242") != std::string::npos);
        CHECK(found.details["child_pid"] == 4242);
    }

    TEST_CASE("live sandbox without a child is an error") {
        SandboxObservation observed{running_record(), {}, true};
        Finding found = sandbox_finding(observed, k_now);
        CHECK(found.severity == Severity::error);
        CHECK(found.message.find("no background child") != std::string::npos);
        CHECK(found.fix.find("jitbox gc") != std::string::npos);
    }

    TEST_CASE("expired sandbox without a child") {
        SandboxObservation observed{running_record(), {}, std::nullopt};
        Finding found = sandbox_finding(observed, k_now + Seconds(3600));
        CHECK(found.severity == Severity::error);
        CHECK(found.message.find("expired") != std::string::npos);
    }

    TEST_CASE("missing from the engine") {
        SandboxObservation observed{running_record(), {}, false};
        observed.child.child_lock_held = true;
        Finding found = sandbox_finding(observed, k_now);
        CHECK(found.severity == Severity::warning);
        CHECK(found.details["on_engine"] == false);
    }

    TEST_CASE("creating") {
        SandboxRecord record = running_record();
        record.state = SandboxState::creating;
        SandboxObservation observed{record, {}, std::nullopt};
        CHECK(sandbox_finding(observed, k_now).severity == Severity::warning);
        observed.child.sandbox_lock_held = true;
        CHECK(sandbox_finding(observed, k_now).severity == Severity::ok);
    }

    TEST_CASE("observe locks without creating files") {
        test::TempDir temp;
        fs::path dir = make_state_dir(temp.path());
        ChildObservation observed = observe_child(dir, "db-1");
        CHECK_FALSE(observed.child_lock_held);
        CHECK_FALSE(observed.sandbox_lock_held);
        CHECK(fs::is_empty(dir / "locks"));

        auto lock = FileLock::acquire(dir / "locks" / "db-1.child");
        REQUIRE(lock);
        test::write_file(dir / "locks" / "db-1.child",
                         fmt::format("{} {}\n", ::getpid(), *process_start_time(::getpid())));
        // flock belongs to the open file description, so another open of the file finds it held.
        observed = observe_child(dir, "db-1");
        CHECK(observed.child_lock_held);
        REQUIRE(observed.holder.has_value());
        CHECK(observed.holder->pid == ::getpid());
    }
}
