#include "jitbox/secrets/store.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace jitbox;

namespace {

const TimePoint k_now{Seconds(1'800'000'000)};

class FixedClock final : public Clock {
public:
    TimePoint now() const override { return k_now; }
};

// A store that does nothing, so the chooser tests can see which one was opened.
class NamedStore final : public SecretStore {
public:
    explicit NamedStore(std::string name) : m_name(std::move(name)) {}
    std::string_view name() const override { return m_name; }
    Result<void> put(const SecretItem&) override { return {}; }
    Result<SecretLookup> get(std::string_view, std::string_view) override {
        return SecretLookup{};
    }
    Result<std::vector<SecretInfo>> list() override { return std::vector<SecretInfo>(); }
    Result<bool> remove(std::string_view, std::string_view) override { return false; }
    Result<std::size_t> remove_sandbox(std::string_view) override { return std::size_t{0}; }
    Result<std::size_t> purge_expired(TimePoint) override { return std::size_t{0}; }

private:
    std::string m_name;
};

EnvLookup env_of(std::map<std::string, std::string> variables) {
    return [variables = std::move(variables)](const std::string& name) {
        auto found = variables.find(name);
        return found == variables.end() ? std::nullopt : std::optional(found->second);
    };
}

// A backend that opens or fails as configured, and records each WhenLocked it was given.
struct FakeBackend {
    std::string name;
    bool works = true;
    bool locked = false; // fails when asked with WhenLocked::fail
    std::vector<WhenLocked> calls;

    SecretBackendOpener opener() {
        return {name, [this](WhenLocked when_locked) -> Result<std::unique_ptr<SecretStore>> {
                    calls.push_back(when_locked);
                    if (!works) {
                        return make_failure(ExitCode::internal, "{} is down", name);
                    }
                    if (locked && when_locked == WhenLocked::fail) {
                        return make_failure(ExitCode::internal, "{} is locked", name);
                    }
                    return std::unique_ptr<SecretStore>(std::make_unique<NamedStore>(name));
                }};
    }
};

struct FakeBackends {
    FakeBackend service{"secret-service"};
    FakeBackend kernel{"kernel"};
    FakeBackend file{"file"};

    std::vector<SecretBackendOpener> openers() {
        return {service.opener(), kernel.opener(), file.opener()};
    }
};

SecretItem valid_item() {
    return {"db", "TOKEN", "s3cr3t-value", k_now + Seconds(60)};
}

struct TempDir {
    fs::path path;
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "jitbox-test-XXXXXX").string();
        path = ::mkdtemp(pattern.data());
    }
    ~TempDir() { fs::remove_all(path); }
};

} // namespace

TEST_SUITE("secrets store") {
    TEST_CASE("secret keys follow the documented pattern") {
        for (const char* good : {"a", "TOKEN", "aws.session_token", "db-password", "X9"}) {
            CHECK_MESSAGE(is_valid_secret_key(good), good);
        }
        for (const char* bad : {"", "a:b", "a b", "a/b", "ä", "a\n"}) {
            CHECK_MESSAGE(!is_valid_secret_key(bad), bad);
        }
        CHECK(is_valid_secret_key(std::string(128, 'k')));
        CHECK(!is_valid_secret_key(std::string(129, 'k')));
    }

    TEST_CASE("validation rejects invalid items") {
        struct Case {
            const char* name;
            SecretItem item;
            const char* expected;
        };
        const std::string long_value(k_max_secret_bytes + 1, 'v');
        const Case cases[] = {
            {"bad sandbox id",
             {"Bad_Name", "TOKEN", "s3cr3t-value", k_now + Seconds(60)},
             "invalid sandbox id"},
            {"bad sandbox name",
             {"0123456789abcdef", "TOKEN", "s3cr3t-value", k_now + Seconds(60), "db\nx"},
             "invalid sandbox name"},
            {"bad key", {"db", "a:b", "s3cr3t-value", k_now + Seconds(60)}, "invalid secret key"},
            {"empty value", {"db", "TOKEN", "", k_now + Seconds(60)}, "is empty"},
            {"long value", {"db", "TOKEN", long_value, k_now + Seconds(60)}, "bytes long"},
            {"NUL byte",
             {"db", "TOKEN", std::string("s3cr3t\0x", 8), k_now + Seconds(60)},
             "not UTF-8 text"},
            {"invalid UTF-8",
             {"db", "TOKEN", "s3cr3t\xC3(", k_now + Seconds(60)},
             "not UTF-8 text"},
            {"overlong UTF-8",
             {"db", "TOKEN", "s3cr3t\xC0\xAF", k_now + Seconds(60)},
             "not UTF-8 text"},
            {"expired", {"db", "TOKEN", "s3cr3t-value", k_now}, "not in the future"},
        };
        for (const auto& test : cases) {
            CAPTURE(test.name);
            auto valid = validate_secret_item(test.item, k_now);
            REQUIRE(!valid.ok());
            CHECK(valid.error().code == ExitCode::usage);
            CHECK(valid.error().message.find(test.expected) != std::string::npos);
            CHECK(valid.error().message.find("s3cr3t") == std::string::npos);
        }
    }

    TEST_CASE("item validation accepts UTF-8 text") {
        CHECK(validate_secret_item(valid_item(), k_now).ok());
        SecretItem item = valid_item();
        item.value = "p\xC3\xA4ss \xE2\x82\xAC \xF0\x9F\x94\x91";
        CHECK(validate_secret_item(item, k_now).ok());
        item.value = std::string(k_max_secret_bytes, 'v');
        CHECK(validate_secret_item(item, k_now).ok());
    }

    TEST_CASE("auto opens first working backend") {
        FakeBackends backends;
        auto opened = choose_secret_store("", env_of({}), backends.openers());
        REQUIRE(opened.ok());
        CHECK(opened->store->name() == "secret-service");
        CHECK(backends.kernel.calls.empty());
        REQUIRE(opened->probes.size() == 1);
        CHECK(opened->probes[0].usable);
        CHECK(opened->reason.find("auto") != std::string::npos);
    }

    TEST_CASE("auto skips broken and locked backends") {
        FakeBackends backends;
        backends.service.locked = true;
        backends.kernel.works = false;
        auto opened = choose_secret_store("auto", env_of({}), backends.openers());
        REQUIRE(opened.ok());
        CHECK(opened->store->name() == "file");
        CHECK(backends.service.calls == std::vector{WhenLocked::fail});
        REQUIRE(opened->probes.size() == 3);
        CHECK(!opened->probes[0].usable);
        CHECK(opened->probes[0].detail == "secret-service is locked");
        CHECK(!opened->probes[1].usable);
        CHECK(opened->probes[2].usable);
        CHECK(opened->reason.find("secret-service is locked") != std::string::npos);
        CHECK(opened->reason.find("kernel is down") != std::string::npos);
    }

    TEST_CASE("auto fails when no backend works") {
        FakeBackends backends;
        backends.service.works = false;
        backends.kernel.works = false;
        backends.file.works = false;
        auto opened = choose_secret_store("", env_of({}), backends.openers());
        REQUIRE(!opened.ok());
        CHECK(opened.error().message.find("no secret store works") != std::string::npos);
        CHECK(opened.error().message.find("file is down") != std::string::npos);
    }

    TEST_CASE("named backend opens when locked") {
        FakeBackends backends;
        backends.service.locked = true;
        auto opened =
            choose_secret_store("", env_of({{"JITBOX_KEYRING", "secret-service"}}),
                                backends.openers());
        REQUIRE(opened.ok());
        CHECK(opened->store->name() == "secret-service");
        CHECK(backends.service.calls == std::vector{WhenLocked::open_anyway});
        CHECK(opened->reason == "secret-service, chosen by JITBOX_KEYRING");
    }

    TEST_CASE("broken named backend never falls back") {
        FakeBackends backends;
        backends.kernel.works = false;
        auto opened = choose_secret_store("kernel", env_of({}), backends.openers());
        REQUIRE(!opened.ok());
        CHECK(opened.error().code == ExitCode::usage);
        CHECK(opened.error().message.find("\"kernel\" (chosen by the configuration)") !=
              std::string::npos);
        CHECK(opened.error().message.find("kernel is down") != std::string::npos);
        CHECK(opened.error().message.find("JITBOX_KEYRING=auto") != std::string::npos);
        CHECK(backends.file.calls.empty());
    }

    TEST_CASE("broken backend exit code by its source") {
        SUBCASE("JITBOX_KEYRING") {
            FakeBackends backends;
            backends.kernel.works = false;
            auto opened =
                choose_secret_store("", env_of({{"JITBOX_KEYRING", "kernel"}}), backends.openers());
            REQUIRE(!opened.ok());
            CHECK(opened.error().code == ExitCode::usage);
            CHECK(opened.error().message.find("chosen by JITBOX_KEYRING") != std::string::npos);
        }
        SUBCASE("a sandbox's record") {
            FakeBackends backends;
            backends.kernel.works = false;
            auto opened =
                choose_secret_store("kernel", env_of({}), backends.openers(), ChoiceSource::record);
            REQUIRE(!opened.ok());
            CHECK(opened.error().code == ExitCode::internal);
            CHECK(opened.error().message.find("chosen by the sandbox's record") !=
                  std::string::npos);
        }
    }

    TEST_CASE("JITBOX_KEYRING overrides configured choice") {
        SUBCASE("a name") {
            FakeBackends backends;
            auto opened = choose_secret_store(
                "kernel", env_of({{"JITBOX_KEYRING", "file"}}), backends.openers());
            REQUIRE(opened.ok());
            CHECK(opened->store->name() == "file");
        }
        SUBCASE("auto") {
            FakeBackends backends;
            auto opened = choose_secret_store(
                "file", env_of({{"JITBOX_KEYRING", "auto"}}), backends.openers());
            REQUIRE(opened.ok());
            CHECK(opened->store->name() == "secret-service");
        }
        SUBCASE("empty means unset") {
            FakeBackends backends;
            auto opened = choose_secret_store("kernel", env_of({{"JITBOX_KEYRING", ""}}),
                                              backends.openers());
            REQUIRE(opened.ok());
            CHECK(opened->store->name() == "kernel");
        }
    }

    TEST_CASE("unknown backend name is usage error") {
        FakeBackends backends;
        auto opened = choose_secret_store("", env_of({{"JITBOX_KEYRING", "kwallet"}}),
                                          backends.openers());
        REQUIRE(!opened.ok());
        CHECK(opened.error().code == ExitCode::usage);
        CHECK(opened.error().message.find("auto, secret-service, kernel, file") !=
              std::string::npos);
    }

    TEST_CASE("secret-service without bus fails fast") {
        FixedClock clock;
        const auto started = std::chrono::steady_clock::now();
        auto store = open_secret_service_store(env_of({}), clock, WhenLocked::open_anyway);
        REQUIRE(!store.ok());
        CHECK(store.error().message.find("DBUS_SESSION_BUS_ADDRESS is unset") !=
              std::string::npos);
        CHECK(std::chrono::steady_clock::now() - started < std::chrono::milliseconds(100));
    }

    TEST_CASE("secret-service rejects autolaunch address") {
        FixedClock clock;
        for (const char* address : {"autolaunch:", "unix:path=/nonexistent;autolaunch:"}) {
            CAPTURE(address);
            auto store = open_secret_service_store(
                env_of({{"DBUS_SESSION_BUS_ADDRESS", address}}), clock, WhenLocked::fail);
            REQUIRE(!store.ok());
            CHECK(store.error().message.find("autolaunch") != std::string::npos);
        }
    }

    TEST_CASE("secret-service rejects address GIO ignores") {
        // GIO reads the process environment, so an injected address that differs from it is
        // refused before any GIO call.
        FixedClock clock;
        const char* process_address = std::getenv("DBUS_SESSION_BUS_ADDRESS");
        const std::string other = std::string(process_address ? process_address : "") + "-other";
        auto store = open_secret_service_store(
            env_of({{"DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent" + other}}), clock,
            WhenLocked::fail);
        REQUIRE(!store.ok());
        CHECK(store.error().message.find("differs from the process environment") !=
              std::string::npos);
    }

    TEST_CASE("open_secret_store without bus falls back") {
        TempDir runtime;
        ::chmod(runtime.path.c_str(), 0700);
        auto opened = open_secret_store("", env_of({{"XDG_RUNTIME_DIR", runtime.path.string()}}));
        REQUIRE(opened.ok());
        CHECK(opened->store->name() != "secret-service");
        REQUIRE(!opened->probes.empty());
        CHECK(opened->probes[0].backend == "secret-service");
        CHECK(!opened->probes[0].usable);
        CHECK(opened->reason.find("DBUS_SESSION_BUS_ADDRESS is unset") != std::string::npos);
    }

    TEST_CASE("named secret-service without bus fails") {
        auto opened = open_secret_store("", env_of({{"JITBOX_KEYRING", "secret-service"}}));
        REQUIRE(!opened.ok());
        CHECK(opened.error().message.find("DBUS_SESSION_BUS_ADDRESS is unset") !=
              std::string::npos);
    }

    TEST_CASE("open_secret_store opens file by name") {
        TempDir runtime;
        auto opened = open_secret_store(
            "file", env_of({{"XDG_RUNTIME_DIR", runtime.path.string()}}));
        REQUIRE(opened.ok());
        CHECK(opened->store->name() == "file");
    }

    TEST_CASE("file path needs XDG_RUNTIME_DIR") {
        auto missing = default_secrets_file(env_of({}));
        REQUIRE(!missing.ok());
        CHECK(missing.error().message.find("XDG_RUNTIME_DIR is unset") != std::string::npos);

        auto relative = default_secrets_file(env_of({{"XDG_RUNTIME_DIR", "run/user"}}));
        REQUIRE(!relative.ok());
        CHECK(relative.error().message.find("not an absolute path") != std::string::npos);

        auto file = default_secrets_file(env_of({{"XDG_RUNTIME_DIR", "/run/user/1000"}}));
        REQUIRE(file.ok());
        CHECK(*file == fs::path("/run/user/1000/jitbox/secrets.json"));
    }

    TEST_CASE("lookup statuses have stable names") {
        CHECK(to_string(LookupStatus::found) == "found");
        CHECK(to_string(LookupStatus::not_found) == "not_found");
        CHECK(to_string(LookupStatus::locked) == "locked");
    }
}
