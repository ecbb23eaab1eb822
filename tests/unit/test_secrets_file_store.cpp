#include "jitbox/secrets/store.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace jitbox;

namespace {

class MovableClock final : public Clock {
public:
    TimePoint time{Seconds(1'800'000'000)};
    TimePoint now() const override { return time; }
};

// A runtime folder of mode 0700 per test, removed by the destructor.
struct RuntimeDir {
    fs::path path;
    fs::path file;
    RuntimeDir() {
        std::string pattern = (fs::temp_directory_path() / "jitbox-test-XXXXXX").string();
        path = ::mkdtemp(pattern.data());
        file = path / "jitbox" / "secrets.json";
    }
    ~RuntimeDir() { fs::remove_all(path); }
};

mode_t mode_of(const fs::path& path) {
    struct stat info {};
    REQUIRE(::lstat(path.c_str(), &info) == 0);
    return info.st_mode & 07777;
}

std::string read_text(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

std::unique_ptr<SecretStore> open_store(const fs::path& file, const Clock& clock) {
    auto store = open_file_secret_store(file, clock);
    REQUIRE_MESSAGE(store.ok(), (store.ok() ? "" : store.error().message));
    return std::move(*store);
}

SecretItem item(std::string sandbox_id, std::string key, std::string value, TimePoint expires_at,
                std::string sandbox_name = "") {
    return {std::move(sandbox_id), std::move(key), std::move(value), expires_at,
            std::move(sandbox_name)};
}

} // namespace

TEST_SUITE("secrets file store") {
    TEST_CASE("file store round trip") {
        RuntimeDir runtime;
        MovableClock clock;
        auto store = open_store(runtime.file, clock);
        CHECK(store->name() == "file");

        const TimePoint later = clock.time + Seconds(600);
        REQUIRE(store->put(item("db", "PASSWORD", "hunter2", later, "orders-db")).ok());
        REQUIRE(store->put(item("db", "USER", "admin", later)).ok());
        REQUIRE(store->put(item("web", "TOKEN", "t0ken", later + Seconds(60))).ok());

        auto found = store->get("db", "PASSWORD");
        REQUIRE(found.ok());
        CHECK(found->status == LookupStatus::found);
        CHECK(found->value == "hunter2");

        auto missing = store->get("db", "OTHER");
        REQUIRE(missing.ok());
        CHECK(missing->status == LookupStatus::not_found);
        CHECK(missing->value.empty());

        auto listed = store->list();
        REQUIRE(listed.ok());
        REQUIRE(listed->size() == 3);
        CHECK((*listed)[0].sandbox_id == "db");
        CHECK((*listed)[0].key == "PASSWORD");
        CHECK((*listed)[0].expires_at == later);
        CHECK((*listed)[0].sandbox_name == "orders-db");
        CHECK((*listed)[1].sandbox_name.empty());
        CHECK((*listed)[2].key == "TOKEN");

        auto removed = store->remove("db", "PASSWORD");
        REQUIRE(removed.ok());
        CHECK(*removed);
        auto removed_again = store->remove("db", "PASSWORD");
        REQUIRE(removed_again.ok());
        CHECK(!*removed_again);

        auto sandbox_removed = store->remove_sandbox("db");
        REQUIRE(sandbox_removed.ok());
        CHECK(*sandbox_removed == 1);
        CHECK(store->list()->size() == 1);
    }

    TEST_CASE("file store put replaces same key") {
        RuntimeDir runtime;
        MovableClock clock;
        auto store = open_store(runtime.file, clock);
        REQUIRE(store->put(item("db", "PASSWORD", "first", clock.time + Seconds(60))).ok());
        REQUIRE(store->put(item("db", "PASSWORD", "second", clock.time + Seconds(120))).ok());
        CHECK(store->get("db", "PASSWORD")->value == "second");
        auto listed = store->list();
        REQUIRE(listed->size() == 1);
        CHECK((*listed)[0].expires_at == clock.time + Seconds(120));
    }

    TEST_CASE("file store creates 0700 folder, 0600 file") {
        RuntimeDir runtime;
        MovableClock clock;
        auto store = open_store(runtime.file, clock);
        CHECK(!fs::exists(runtime.file.parent_path()));

        const mode_t old_umask = ::umask(0);
        auto stored = store->put(item("db", "PASSWORD", "hunter2", clock.time + Seconds(60)));
        ::umask(old_umask);
        REQUIRE(stored.ok());
        CHECK(mode_of(runtime.file.parent_path()) == 0700);
        CHECK(mode_of(runtime.file) == 0600);
        CHECK(mode_of(runtime.file.parent_path() / "secrets.lock") == 0600);
    }

    TEST_CASE("file store rejects loose permissions") {
        RuntimeDir runtime;
        MovableClock clock;
        auto store = open_store(runtime.file, clock);
        REQUIRE(store->put(item("db", "PASSWORD", "hunter2", clock.time + Seconds(60))).ok());

        SUBCASE("folder 0755") {
            REQUIRE(::chmod(runtime.file.parent_path().c_str(), 0755) == 0);
            auto found = store->get("db", "PASSWORD");
            REQUIRE(!found.ok());
            CHECK(found.error().message.find("has mode 0755") != std::string::npos);
            CHECK(!open_file_secret_store(runtime.file, clock).ok());
            CHECK(!store->put(item("db", "X", "v", clock.time + Seconds(60))).ok());
            // Rejected, not repaired.
            CHECK(mode_of(runtime.file.parent_path()) == 0755);
        }
        SUBCASE("file 0644") {
            REQUIRE(::chmod(runtime.file.c_str(), 0644) == 0);
            auto found = store->get("db", "PASSWORD");
            REQUIRE(!found.ok());
            CHECK(found.error().message.find("has mode 0644") != std::string::npos);
            CHECK(!store->remove("db", "PASSWORD").ok());
            CHECK(!open_file_secret_store(runtime.file, clock).ok());
            CHECK(mode_of(runtime.file) == 0644);
        }
        SUBCASE("file is a symbolic link") {
            const fs::path target = runtime.path / "elsewhere.json";
            fs::rename(runtime.file, target);
            fs::create_symlink(target, runtime.file);
            CHECK(!store->get("db", "PASSWORD").ok());
            CHECK(!open_file_secret_store(runtime.file, clock).ok());
        }
        SUBCASE("folder is a symbolic link") {
            const fs::path real = runtime.path / "real";
            fs::rename(runtime.file.parent_path(), real);
            fs::create_directory_symlink(real, runtime.file.parent_path());
            auto found = store->get("db", "PASSWORD");
            REQUIRE(!found.ok());
            CHECK(found.error().message.find("symbolic link") != std::string::npos);
        }
        SUBCASE("file of another user") {
            if (::geteuid() != 0) {
                MESSAGE("skipped: changing a file's owner needs root");
                return;
            }
            REQUIRE(::chown(runtime.file.c_str(), 65534, 65534) == 0);
            auto found = store->get("db", "PASSWORD");
            REQUIRE(!found.ok());
            CHECK(found.error().message.find("belongs to uid 65534") != std::string::npos);
        }
    }

    TEST_CASE("file store probe needs runtime folder") {
        MovableClock clock;
        auto store = open_file_secret_store("/nonexistent-jitbox-test/jitbox/secrets.json", clock);
        REQUIRE(!store.ok());
        CHECK(store.error().message.find("/nonexistent-jitbox-test") != std::string::npos);
    }

    TEST_CASE("file store hides and purges expired items") {
        RuntimeDir runtime;
        MovableClock clock;
        auto store = open_store(runtime.file, clock);
        const TimePoint start = clock.time;
        REQUIRE(store->put(item("db", "SHORT", "short-lived", start + Seconds(60))).ok());
        REQUIRE(store->put(item("db", "LONG", "long-lived", start + Seconds(3600))).ok());

        clock.time = start + Seconds(60);
        CHECK(store->get("db", "SHORT")->status == LookupStatus::not_found);
        CHECK(store->get("db", "LONG")->status == LookupStatus::found);
        CHECK(store->list()->size() == 1);
        // Hidden, but still in the file until purged.
        CHECK(read_text(runtime.file).find("SHORT") != std::string::npos);

        auto purged = store->purge_expired(clock.time);
        REQUIRE(purged.ok());
        CHECK(*purged == 1);
        CHECK(read_text(runtime.file).find("SHORT") == std::string::npos);
        CHECK(*store->purge_expired(clock.time) == 0);

        auto all = store->purge_expired(start + Seconds(3600));
        REQUIRE(all.ok());
        CHECK(*all == 1);
        CHECK(store->list()->empty());
    }

    TEST_CASE("file store writes the documented JSON format") {
        RuntimeDir runtime;
        MovableClock clock;
        auto store = open_store(runtime.file, clock);
        REQUIRE(store->put(item("db", "PASSWORD", "hunter2", clock.time + Seconds(60))).ok());
        auto document = nlohmann::json::parse(read_text(runtime.file));
        CHECK(document["version"] == 1);
        REQUIRE(document["items"].size() == 1);
        CHECK(document["items"][0]["sandbox"] == "db");
        CHECK(document["items"][0]["key"] == "PASSWORD");
        CHECK(document["items"][0]["value"] == "hunter2");
        CHECK(document["items"][0]["expires_at"] == format_rfc3339(clock.time + Seconds(60)));
    }

    TEST_CASE("file store errors never show file content") {
        RuntimeDir runtime;
        MovableClock clock;
        fs::create_directory(runtime.file.parent_path());
        ::chmod(runtime.file.parent_path().c_str(), 0700);
        {
            std::ofstream out(runtime.file);
            out << R"({"version": 1, "items": [{"value": "s3cr3t-in-file)";
        }
        ::chmod(runtime.file.c_str(), 0600);
        auto store = open_store(runtime.file, clock);
        auto found = store->get("db", "PASSWORD");
        REQUIRE(!found.ok());
        CHECK(found.error().message.find("not a valid jitbox secrets file") != std::string::npos);
        CHECK(found.error().message.find("s3cr3t") == std::string::npos);
        auto stored = store->put(item("db", "PASSWORD", "hunter2", clock.time + Seconds(60)));
        REQUIRE(!stored.ok());
        CHECK(stored.error().message.find("s3cr3t") == std::string::npos);
        CHECK(stored.error().message.find("hunter2") == std::string::npos);
    }

    TEST_CASE("file store rejects invalid names") {
        RuntimeDir runtime;
        MovableClock clock;
        auto store = open_store(runtime.file, clock);
        CHECK(store->get("", "KEY").error().code == ExitCode::usage);
        CHECK(store->get("db", "").error().code == ExitCode::usage);
        CHECK(store->remove("db", "a:b").error().code == ExitCode::usage);
        CHECK(store->remove_sandbox("").error().code == ExitCode::usage);
    }

    TEST_CASE("file store survives concurrent writers") {
        RuntimeDir runtime;
        SystemClock clock;
        constexpr int k_writers = 6;
        constexpr int k_items_each = 15;
        const TimePoint expires_at = clock.now() + Seconds(3600);

        std::vector<pid_t> children;
        for (int writer = 0; writer < k_writers; ++writer) {
            pid_t pid = ::fork();
            REQUIRE(pid >= 0);
            if (pid == 0) {
                auto store = open_file_secret_store(runtime.file, clock);
                int failures = store.ok() ? 0 : 1;
                for (int i = 0; store.ok() && i < k_items_each; ++i) {
                    const std::string key = "K" + std::to_string(writer) + "_" + std::to_string(i);
                    failures +=
                        (*store)->put(item("db", key, "value-" + key, expires_at)).ok() ? 0 : 1;
                }
                ::_exit(failures == 0 ? 0 : 1);
            }
            children.push_back(pid);
        }

        // A reader between the writes gets a complete file each time, never a partial one.
        auto reader = open_store(runtime.file, clock);
        int reads = 0;
        int failed_reads = 0;
        for (; reads < 200; ++reads) {
            failed_reads += reader->list().ok() ? 0 : 1;
        }
        CHECK(failed_reads == 0);

        for (pid_t pid : children) {
            int status = 0;
            REQUIRE(::waitpid(pid, &status, 0) == pid);
            CHECK(WIFEXITED(status));
            CHECK(WEXITSTATUS(status) == 0);
        }
        auto listed = reader->list();
        REQUIRE(listed.ok());
        CHECK(listed->size() == static_cast<std::size_t>(k_writers * k_items_each));
        CHECK(reader->get("db", "K3_7")->value == "value-K3_7");

        // No temp file is left behind.
        int entries = 0;
        for (const auto& entry : fs::directory_iterator(runtime.file.parent_path())) {
            CAPTURE(entry.path().string());
            ++entries;
        }
        CHECK(entries == 2); // secrets.json and secrets.lock
    }
}
