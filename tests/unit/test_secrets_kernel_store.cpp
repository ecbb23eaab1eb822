#include "jitbox/secrets/store.hpp"

#include <doctest/doctest.h>

#include <keyutils.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <unistd.h>

using namespace jitbox;

namespace {

class MovableClock final : public Clock {
public:
    TimePoint time = SystemClock().now();
    TimePoint now() const override { return time; }
};

// A keyring of the test's own, named jitbox-test-kernel-PID and linked into the user keyring,
// so the tests never touch other keys. The destructor destroys it with every key in it.
struct TestKeyring {
    key_serial_t id = -1;
    std::string skip_reason;

    TestKeyring() {
        const std::string name = "jitbox-test-kernel-" + std::to_string(::getpid());
        id = add_key("keyring", name.c_str(), nullptr, 0, KEY_SPEC_USER_KEYRING);
        if (id < 0) {
            skip_reason = std::string("the kernel keyring is not available here: ") +
                          std::strerror(errno);
        }
    }
    ~TestKeyring() {
        if (id >= 0) {
            keyctl_clear(id);
            keyctl_unlink(id, KEY_SPEC_USER_KEYRING);
            keyctl_invalidate(id);
        }
    }

    bool available() const {
        if (id < 0) {
            MESSAGE("skipped: " << skip_reason);
        }
        return id >= 0;
    }
};

std::unique_ptr<SecretStore> open_store(const Clock& clock, key_serial_t keyring) {
    auto store = open_kernel_secret_store(clock, keyring);
    REQUIRE_MESSAGE(store.ok(), (store.ok() ? "" : store.error().message));
    return std::move(*store);
}

key_serial_t find_key(key_serial_t keyring, const std::string& description) {
    return static_cast<key_serial_t>(keyctl_search(keyring, "user", description.c_str(), 0));
}

std::string payload_of(key_serial_t key) {
    void* buffer = nullptr;
    const long size = keyctl_read_alloc(key, &buffer);
    REQUIRE(size >= 0);
    std::string payload(static_cast<const char*>(buffer), static_cast<std::size_t>(size));
    std::free(buffer);
    return payload;
}

// The timeout column of /proc/keys for `key`, such as "59s" or "perm".
std::string proc_keys_timeout(key_serial_t key) {
    std::ifstream in("/proc/keys");
    std::string line;
    char id[16];
    std::snprintf(id, sizeof(id), "%08x", static_cast<unsigned>(key));
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string serial, flags, usage, timeout;
        fields >> serial >> flags >> usage >> timeout;
        if (serial == id) {
            return timeout;
        }
    }
    return "";
}

SecretItem item(std::string sandbox_id, std::string key, std::string value, TimePoint expires_at,
                std::string sandbox_name = "") {
    return {std::move(sandbox_id), std::move(key), std::move(value), expires_at,
            std::move(sandbox_name)};
}

} // namespace

TEST_SUITE("secrets kernel store") {
    TEST_CASE("kernel store round trip") {
        TestKeyring keyring;
        if (!keyring.available()) {
            return;
        }
        MovableClock clock;
        auto store = open_store(clock, keyring.id);
        CHECK(store->name() == "kernel");

        const TimePoint later = clock.time + Seconds(600);
        REQUIRE(store->put(item("jitbox-test-a", "PASSWORD", "hunter2", later, "orders-db")).ok());
        REQUIRE(store->put(item("jitbox-test-a", "USER", "admin", later)).ok());
        REQUIRE(store->put(item("jitbox-test-b", "TOKEN", "t0ken", later)).ok());

        auto found = store->get("jitbox-test-a", "PASSWORD");
        REQUIRE(found.ok());
        CHECK(found->status == LookupStatus::found);
        CHECK(found->value == "hunter2");
        CHECK(store->get("jitbox-test-a", "OTHER")->status == LookupStatus::not_found);

        auto listed = store->list();
        REQUIRE(listed.ok());
        REQUIRE(listed->size() == 3);
        CHECK((*listed)[0].sandbox_id == "jitbox-test-a");
        CHECK((*listed)[0].key == "PASSWORD");
        CHECK((*listed)[0].expires_at == later);
        CHECK((*listed)[0].sandbox_name == "orders-db");
        CHECK((*listed)[1].sandbox_name.empty());
        CHECK((*listed)[2].sandbox_id == "jitbox-test-b");

        CHECK(*store->remove("jitbox-test-a", "PASSWORD"));
        CHECK(!*store->remove("jitbox-test-a", "PASSWORD"));
        CHECK(store->get("jitbox-test-a", "PASSWORD")->status == LookupStatus::not_found);
        CHECK(*store->remove_sandbox("jitbox-test-a") == 1);
        CHECK(store->list()->size() == 1);
    }

    TEST_CASE("kernel key name, payload, timeout, permissions") {
        TestKeyring keyring;
        if (!keyring.available()) {
            return;
        }
        MovableClock clock;
        auto store = open_store(clock, keyring.id);
        const TimePoint expires_at = clock.time + Seconds(120);
        REQUIRE(store->put(item("jitbox-test-a", "PASSWORD", "hunter2", expires_at)).ok());

        const key_serial_t key = find_key(keyring.id, "jitbox:jitbox-test-a:PASSWORD");
        REQUIRE(key > 0);
        CHECK(payload_of(key) == "jitbox-secret 1 " +
                                     std::to_string(expires_at.time_since_epoch().count()) +
                                     "\nhunter2");

        const std::string timeout = proc_keys_timeout(key);
        CAPTURE(timeout);
        REQUIRE(!timeout.empty());
        CHECK(timeout != "perm");
        CHECK((timeout == "2m" || timeout == "119s" || timeout == "120s"));

        char* description = nullptr;
        REQUIRE(keyctl_describe_alloc(key, &description) >= 0);
        CHECK(std::string(description).find(";3f3f0000;") != std::string::npos);
        std::free(description);
    }

    TEST_CASE("kernel store put replaces value") {
        TestKeyring keyring;
        if (!keyring.available()) {
            return;
        }
        MovableClock clock;
        auto store = open_store(clock, keyring.id);
        REQUIRE(store->put(item("jitbox-test-a", "K", "first", clock.time + Seconds(60))).ok());
        REQUIRE(store->put(item("jitbox-test-a", "K", "second", clock.time + Seconds(90))).ok());
        CHECK(store->get("jitbox-test-a", "K")->value == "second");
        auto listed = store->list();
        REQUIRE(listed->size() == 1);
        CHECK((*listed)[0].expires_at == clock.time + Seconds(90));
    }

    TEST_CASE("kernel store key disappears at its timeout") {
        TestKeyring keyring;
        if (!keyring.available()) {
            return;
        }
        SystemClock clock;
        auto store = open_store(clock, keyring.id);
        REQUIRE(store->put(item("jitbox-test-a", "SHORT", "short-lived", clock.now() + Seconds(1)))
                    .ok());
        CHECK(store->get("jitbox-test-a", "SHORT")->status == LookupStatus::found);

        std::this_thread::sleep_for(std::chrono::milliseconds(2100));
        errno = 0;
        CHECK(find_key(keyring.id, "jitbox:jitbox-test-a:SHORT") < 0);
        CHECK((errno == EKEYEXPIRED || errno == ENOKEY));
        auto expired = store->get("jitbox-test-a", "SHORT");
        REQUIRE(expired.ok());
        CHECK(expired->status == LookupStatus::not_found);
        CHECK(store->list()->empty());
    }

    TEST_CASE("kernel store purges by header expiry") {
        TestKeyring keyring;
        if (!keyring.available()) {
            return;
        }
        MovableClock clock;
        auto store = open_store(clock, keyring.id);
        const TimePoint start = clock.time;
        REQUIRE(store->put(item("jitbox-test-a", "SHORT", "v1", start + Seconds(60))).ok());
        REQUIRE(store->put(item("jitbox-test-a", "LONG", "v2", start + Seconds(3600))).ok());

        // The kernel timeout has not fired, but by the clock the first item has expired.
        clock.time = start + Seconds(60);
        CHECK(store->get("jitbox-test-a", "SHORT")->status == LookupStatus::not_found);
        CHECK(store->list()->size() == 1);

        auto purged = store->purge_expired(clock.time);
        REQUIRE(purged.ok());
        CHECK(*purged == 1);
        CHECK(find_key(keyring.id, "jitbox:jitbox-test-a:SHORT") < 0);
        CHECK(find_key(keyring.id, "jitbox:jitbox-test-a:LONG") > 0);
    }

    TEST_CASE("kernel store ignores foreign keys") {
        TestKeyring keyring;
        if (!keyring.available()) {
            return;
        }
        MovableClock clock;
        auto store = open_store(clock, keyring.id);
        const std::string foreign = "no header";
        REQUIRE(add_key("user", "jitbox:jitbox-test-a:FOREIGN", foreign.data(), foreign.size(),
                        keyring.id) > 0);
        REQUIRE(add_key("user", "other:thing", foreign.data(), foreign.size(), keyring.id) > 0);
        CHECK(store->get("jitbox-test-a", "FOREIGN")->status == LookupStatus::not_found);
        CHECK(store->list()->empty());
        CHECK(*store->purge_expired(clock.time + Seconds(365 * 24 * 3600)) == 0);
    }

    TEST_CASE("kernel store rejects invalid items") {
        TestKeyring keyring;
        if (!keyring.available()) {
            return;
        }
        MovableClock clock;
        auto store = open_store(clock, keyring.id);
        auto stored = store->put(item("jitbox-test-a", "K", "s3cr3t", clock.time));
        REQUIRE(!stored.ok());
        CHECK(stored.error().code == ExitCode::usage);
        CHECK(stored.error().message.find("s3cr3t") == std::string::npos);
        CHECK(find_key(keyring.id, "jitbox:jitbox-test-a:K") < 0);
    }

    TEST_CASE("kernel store open fails for missing keyring") {
        key_serial_t removed_keyring = -1;
        {
            TestKeyring keyring;
            if (!keyring.available()) {
                return;
            }
            removed_keyring = keyring.id;
        }
        MovableClock clock;
        auto store = open_kernel_secret_store(clock, removed_keyring);
        REQUIRE(!store.ok());
        CHECK(store.error().message.find("kernel keyring") != std::string::npos);
    }
}
