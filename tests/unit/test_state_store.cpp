#include "jitbox/state/store.hpp"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace jitbox;

namespace {

// A fresh folder per test, removed by the destructor.
struct TempDir {
    fs::path path;
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "jitbox-test-XXXXXX").string();
        path = ::mkdtemp(pattern.data());
    }
    ~TempDir() { fs::remove_all(path); }
};

SandboxRecord sample_record(const std::string& name) {
    SandboxRecord record;
    record.name = name;
    record.id = "0123456789abcdef";
    record.template_name = "db";
    record.provider = "docker";
    record.state = SandboxState::running;
    record.owner = "alice";
    record.created_at = TimePoint(Seconds(1'800'000'000));
    record.expires_at = record.created_at + Seconds(1800);
    record.max_expires_at = record.created_at + Seconds(4 * 3600);
    record.stop_timeout = Seconds(0);
    record.endpoint = "unix:///var/run/docker.sock";
    record.child_pid = 4242;
    record.child_start_time = 987654321ULL;
    record.resources.items = {{"network", "n1", "jitbox-db-01234567"},
                              {"container", "c1", "jitbox-db-01234567"}};
    record.resources.ports = {{"5432/tcp", "127.0.0.1", 49153}};
    return record;
}

mode_t mode_of(const fs::path& path) {
    struct stat info {};
    REQUIRE(::stat(path.c_str(), &info) == 0);
    return info.st_mode & 07777;
}

} // namespace

TEST_SUITE("state") {
    TEST_CASE("sandbox names follow the documented pattern") {
        for (const char* good : {"a", "db", "db-1", "0abc", "status", "x-y-z"}) {
            CHECK_MESSAGE(is_valid_sandbox_name(good), good);
        }
        for (const char* bad : {"", "-db", "Db", "db_1", "db.1", "db/1", "../x", "a b"}) {
            CHECK_MESSAGE(!is_valid_sandbox_name(bad), bad);
        }
        CHECK(is_valid_sandbox_name(std::string(63, 'a')));
        CHECK(!is_valid_sandbox_name(std::string(64, 'a')));
    }

    TEST_CASE("a record survives the round trip through JSON") {
        SandboxRecord record = sample_record("db-1");
        auto parsed = record_from_json(record_to_json(record));
        REQUIRE(parsed.ok());
        CHECK(parsed->name == "db-1");
        CHECK(parsed->expires_at == record.expires_at);
        CHECK(parsed->max_expires_at == record.max_expires_at);
        CHECK(parsed->child_pid == 4242);
        CHECK(parsed->child_start_time == 987654321ULL);
        CHECK(parsed->stop_timeout == Seconds(0));
        REQUIRE(parsed->resources.items.size() == 2);
        CHECK(parsed->resources.items[1].kind == "container");
        CHECK(parsed->resources.ports.at(0).host_port == 49153);
    }

    TEST_CASE("the AWS region round trip and old records") {
        SandboxRecord record = sample_record("box-1");
        record.provider = "aws-ec2";
        record.endpoint = "https://ec2.eu-west-1.amazonaws.com";
        record.region = "eu-west-1";
        auto parsed = record_from_json(record_to_json(record));
        REQUIRE(parsed.ok());
        CHECK(parsed->endpoint == "https://ec2.eu-west-1.amazonaws.com");
        CHECK(parsed->region == "eu-west-1");

        auto old = nlohmann::json::parse(record_to_json(sample_record("db-1")));
        old.erase("region");
        auto loaded = record_from_json(old.dump());
        REQUIRE(loaded.ok());
        CHECK(loaded->region.empty());
    }

    TEST_CASE("a damaged record is reported, not taken as empty") {
        CHECK(!record_from_json("{").ok());
        CHECK(!record_from_json(R"({"name": "x"})").ok());
    }

    TEST_CASE("the store creates private folders and files") {
        TempDir temp;
        auto store = StateStore::open(temp.path / "state" / "jitbox");
        REQUIRE(store.ok());
        CHECK(mode_of(store->dir()) == 0700);
        REQUIRE(store->insert(sample_record("db-1")).ok());
        CHECK(mode_of(store->dir() / "sandboxes" / "db-1.json") == 0600);
    }

    TEST_CASE("insert refuses a name in use and update replaces") {
        TempDir temp;
        auto store = StateStore::open(temp.path);
        REQUIRE(store.ok());
        REQUIRE(store->insert(sample_record("db-1")).ok());
        auto again = store->insert(sample_record("db-1"));
        REQUIRE(!again.ok());
        CHECK(again.error().code == ExitCode::name_in_use);

        SandboxRecord changed = sample_record("db-1");
        changed.expires_at += Seconds(600);
        REQUIRE(store->update(changed).ok());
        auto found = store->find("db-1");
        REQUIRE(found.ok());
        REQUIRE(found->has_value());
        CHECK((**found).expires_at == changed.expires_at);
    }

    TEST_CASE("list is sorted and remove forgets") {
        TempDir temp;
        auto store = StateStore::open(temp.path);
        REQUIRE(store.ok());
        for (const char* name : {"zeta", "alpha", "mid"}) {
            REQUIRE(store->insert(sample_record(name)).ok());
        }
        auto listed = store->list();
        REQUIRE(listed.ok());
        REQUIRE(listed->size() == 3);
        CHECK(listed->front().name == "alpha");
        CHECK(listed->back().name == "zeta");

        REQUIRE(store->remove("mid").ok());
        REQUIRE(store->remove("mid").ok()); // removing twice is fine
        auto found = store->find("mid");
        REQUIRE(found.ok());
        CHECK(!found->has_value());
    }

    TEST_CASE("list removes stale temp files only") {
        TempDir dir;
        auto store = StateStore::open(dir.path).value();
        const fs::path folder = dir.path / "sandboxes";
        const fs::path stale = folder / "db.json.AbC123";
        const fs::path fresh = folder / "db.json.XyZ789";
        const fs::path other = folder / "notes.txt";
        for (const auto& path : {stale, fresh, other}) {
            std::ofstream(path) << "{}";
        }
        fs::last_write_time(stale, fs::file_time_type::clock::now() - std::chrono::hours(2));
        fs::last_write_time(other, fs::file_time_type::clock::now() - std::chrono::hours(2));

        REQUIRE(store.list().ok());
        CHECK_FALSE(fs::exists(stale));
        CHECK(fs::exists(fresh));
        CHECK(fs::exists(other));
    }

    TEST_CASE("find never reads outside the store for an invalid name") {
        TempDir temp;
        auto store = StateStore::open(temp.path);
        REQUIRE(store.ok());
        auto found = store->find("../../etc/passwd");
        REQUIRE(found.ok());
        CHECK(!found->has_value());
    }

    TEST_CASE("parallel writers never lose a record") {
        TempDir temp;
        auto store = StateStore::open(temp.path);
        REQUIRE(store.ok());
        constexpr int k_writers = 8;
        constexpr int k_records_each = 25;
        std::vector<pid_t> children;
        for (int writer = 0; writer < k_writers; ++writer) {
            pid_t pid = ::fork();
            REQUIRE(pid >= 0);
            if (pid == 0) {
                for (int i = 0; i < k_records_each; ++i) {
                    std::string name = "w" + std::to_string(writer) + "-" + std::to_string(i);
                    auto lock = store->lock_sandbox("shared");
                    bool ok = lock.ok() && store->insert(sample_record(name)).ok() &&
                              store->update(sample_record(name)).ok();
                    if (!ok) {
                        ::_exit(1);
                    }
                }
                ::_exit(0);
            }
            children.push_back(pid);
        }
        for (pid_t pid : children) {
            int status = 0;
            ::waitpid(pid, &status, 0);
            CHECK(WIFEXITED(status));
            CHECK(WEXITSTATUS(status) == 0);
        }
        auto listed = store->list();
        REQUIRE(listed.ok());
        CHECK(listed->size() == k_writers * k_records_each);
    }

    TEST_CASE("try_lock_sandbox reports a lock held elsewhere") {
        TempDir temp;
        auto store = StateStore::open(temp.path);
        REQUIRE(store.ok());
        auto held = store->lock_sandbox("db");
        REQUIRE(held.ok());
        // flock locks belong to the open file description, so a second open conflicts even in
        // the same process.
        auto second = store->try_lock_sandbox("db");
        REQUIRE(second.ok());
        CHECK(!second->has_value());
    }

    TEST_CASE("owner_state_dir per layout") {
        TempDir dir;
        CHECK(owner_state_dir(dir.path, StateLayout::per_user, "alice").value() == dir.path);
        CHECK(owner_state_dir(dir.path, StateLayout::shared, "alice").value() ==
              dir.path / "users" / "alice");
        for (const char* bad : {"", ".hidden", "-x", "a/b", "..", "a b"}) {
            CAPTURE(bad);
            const auto rejected = owner_state_dir(dir.path, StateLayout::shared, bad);
            REQUIRE(!rejected.ok());
            CHECK(rejected.error().code == ExitCode::usage);
        }
    }

    TEST_CASE("shared folder keeps owners apart") {
        TempDir dir;
        auto alice =
            StateStore::open(owner_state_dir(dir.path, StateLayout::shared, "alice").value());
        auto bob = StateStore::open(owner_state_dir(dir.path, StateLayout::shared, "bob").value());
        REQUIRE(alice.ok());
        REQUIRE(bob.ok());
        SandboxRecord theirs = sample_record("db");
        theirs.owner = "bob";
        REQUIRE(alice->insert(sample_record("db")).ok());
        REQUIRE(bob->insert(theirs).ok());

        CHECK(alice->find("db").value()->owner == "alice");
        CHECK(bob->find("db").value()->owner == "bob");
        CHECK(alice->list().value().size() == 1);
        CHECK(state_owners(dir.path, StateLayout::shared).value() ==
              std::vector<std::string>{"alice", "bob"});
        CHECK(state_owners(dir.path, StateLayout::per_user).value().empty());
    }

    TEST_CASE("state_owners of a new shared folder") {
        TempDir dir;
        const auto owners = state_owners(dir.path, StateLayout::shared);
        REQUIRE(owners.ok());
        CHECK(owners->empty());
    }
}
