#include "jitbox/lifecycle/identity.hpp"

#include <doctest/doctest.h>

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace jitbox {
namespace {

// The name of the passwd entry's primary group for `uid`, as the test computes it itself.
std::optional<std::string> primary_group_name(uid_t uid) {
    const passwd* entry = ::getpwuid(uid);
    if (entry == nullptr) {
        return std::nullopt;
    }
    const group* primary = ::getgrgid(entry->pw_gid);
    return primary == nullptr ? "gid-" + std::to_string(entry->pw_gid) : primary->gr_name;
}

std::string host_name() {
    std::vector<char> buffer(HOST_NAME_MAX + 1, '\0');
    REQUIRE(::gethostname(buffer.data(), buffer.size() - 1) == 0);
    return buffer.data();
}

bool has_no_repeats(const std::vector<std::string>& names) {
    return std::set<std::string>(names.begin(), names.end()).size() == names.size();
}

// Sets an environment variable for one scope and restores the old value after.
class ScopedEnv {
public:
    ScopedEnv(const char* name, const char* value) : m_name(name) {
        if (const char* old = std::getenv(name)) {
            m_old = old;
        }
        ::setenv(name, value, 1);
    }
    ~ScopedEnv() {
        if (m_old) {
            ::setenv(m_name, m_old->c_str(), 1);
        } else {
            ::unsetenv(m_name);
        }
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
    const char* m_name;
    std::optional<std::string> m_old;
};

} // namespace

TEST_SUITE("lifecycle identity") {
    TEST_CASE("current identity is the real uid") {
        const auto identity = current_identity();
        REQUIRE(identity.ok());
        CHECK(identity->uid == ::getuid());
        CHECK_FALSE(identity->user.empty());
    }

    TEST_CASE("current identity lists the primary group first") {
        const auto identity = current_identity();
        REQUIRE(identity.ok());
        REQUIRE_FALSE(identity->groups.empty());
        const auto expected = primary_group_name(::getuid());
        if (expected) {
            CHECK(identity->groups.front() == *expected);
        }
        CHECK(has_no_repeats(identity->groups));
    }

    TEST_CASE("current identity includes the process groups") {
        const auto identity = current_identity();
        REQUIRE(identity.ok());
        const int count = ::getgroups(0, nullptr);
        REQUIRE(count >= 0);
        std::vector<gid_t> gids(static_cast<std::size_t>(count));
        REQUIRE(::getgroups(count, gids.data()) == count);
        gids.push_back(::getgid());
        for (const gid_t gid : gids) {
            const group* entry = ::getgrgid(gid);
            const std::string name =
                entry == nullptr ? "gid-" + std::to_string(gid) : entry->gr_name;
            INFO("gid ", gid, " as ", name);
            CHECK(std::find(identity->groups.begin(), identity->groups.end(), name) !=
                  identity->groups.end());
        }
    }

    TEST_CASE("current identity has the host name") {
        const auto identity = current_identity();
        REQUIRE(identity.ok());
        CHECK(identity->host == host_name());
    }

    TEST_CASE("current identity ignores USER and LOGNAME") {
        const auto before = current_identity();
        REQUIRE(before.ok());
        const ScopedEnv user("USER", "jitbox-someone-else");
        const ScopedEnv logname("LOGNAME", "jitbox-someone-else");
        const auto after = current_identity();
        REQUIRE(after.ok());
        CHECK(after->user == before->user);
        CHECK(after->groups == before->groups);
    }

    TEST_CASE("identity for root") {
        const auto identity = identity_for_user("root");
        REQUIRE(identity.ok());
        CHECK(identity->uid == 0);
        CHECK(identity->user == "root");
        REQUIRE_FALSE(identity->groups.empty());
        CHECK(identity->groups.front() == *primary_group_name(0));
        CHECK(has_no_repeats(identity->groups));
        CHECK(identity->host == host_name());
    }

    TEST_CASE("identity for the current user") {
        const auto current = current_identity();
        REQUIRE(current.ok());
        if (current->user.rfind("uid-", 0) == 0) {
            return; // no passwd entry to look up by name
        }
        const auto named = identity_for_user(current->user);
        REQUIRE(named.ok());
        CHECK(named->uid == current->uid);
        CHECK(named->groups.front() == current->groups.front());
        for (const std::string& name : named->groups) {
            INFO("group ", name);
            CHECK(std::find(current->groups.begin(), current->groups.end(), name) !=
                  current->groups.end());
        }
    }

    TEST_CASE("identity for an unknown user fails") {
        const auto identity = identity_for_user("jitbox-no-such-user-4f1c");
        REQUIRE_FALSE(identity.ok());
        CHECK(identity.error().code == ExitCode::usage);
        CHECK(identity.error().message.find("\"jitbox-no-such-user-4f1c\" not found") !=
              std::string::npos);
    }

    TEST_CASE("identity for an empty name fails") {
        const auto identity = identity_for_user("");
        REQUIRE_FALSE(identity.ok());
        CHECK(identity.error().code == ExitCode::usage);
    }
}

} // namespace jitbox
