#include "jitbox/enforced/mode.hpp"
#include "temp_dir.hpp"

#include <algorithm>
#include <doctest/doctest.h>
#include <pwd.h>
#include <string>
#include <unistd.h>
#include <vector>

namespace jitbox::enforced {
namespace {

bool has(const std::vector<std::string>& entries, std::string_view entry) {
    return std::find(entries.begin(), entries.end(), entry) != entries.end();
}

// Returns the value of NAME in `entries`, or "<unset>".
std::string value_of(const std::vector<std::string>& entries, std::string_view name) {
    const std::string prefix = std::string(name) + "=";
    for (const auto& entry : entries) {
        if (entry.starts_with(prefix)) {
            return entry.substr(prefix.size());
        }
    }
    return "<unset>";
}

TEST_SUITE("enforced mode") {
    TEST_CASE("safe environment sets fixed and passwd values") {
        const passwd* entry = ::getpwuid(::getuid());
        REQUIRE(entry != nullptr);
        std::vector<std::string> ignored;
        const auto safe = safe_environment(
            {"PATH=/home/mallory/bin", "HOME=/tmp/elsewhere", "USER=mallory", "LOGNAME=mallory"},
            ::getuid(), ignored);
        CHECK(value_of(safe, "PATH") == k_fixed_path);
        CHECK(value_of(safe, "USER") == entry->pw_name);
        CHECK(value_of(safe, "LOGNAME") == entry->pw_name);
        CHECK(value_of(safe, "HOME") == entry->pw_dir);
        CHECK(has(ignored, "HOME"));
        CHECK_FALSE(has(safe, "USER=mallory"));
        CHECK_FALSE(has(safe, "PATH=/home/mallory/bin"));
    }

    TEST_CASE("safe environment keeps terminal and locale variables") {
        std::vector<std::string> ignored;
        const auto safe = safe_environment({"TERM=xterm-256color", "LANG=de_DE.UTF-8",
                                            "LC_TIME=en_GB.UTF-8", "NO_COLOR=1", "COLUMNS=120",
                                            "LINES=40", "TZ=Europe/Berlin", "TZ2=UTC"},
                                           ::getuid(), ignored);
        CHECK(has(safe, "TERM=xterm-256color"));
        CHECK(has(safe, "LANG=de_DE.UTF-8"));
        CHECK(has(safe, "LC_TIME=en_GB.UTF-8"));
        CHECK(has(safe, "NO_COLOR=1"));
        CHECK(has(safe, "COLUMNS=120"));
        CHECK(has(safe, "LINES=40"));
        CHECK(has(safe, "TZ=Europe/Berlin"));
        CHECK_FALSE(has(safe, "TZ2=UTC"));
        CHECK(ignored.empty());
    }

    TEST_CASE("safe environment drops values that name a file") {
        struct Case {
            const char* entry;
        };
        const Case cases[] = {
            {"TZ=:/etc/localtime"},    {"TZ=/home/mallory/zone"},  {"TZ=../../home/mallory/z"},
            {"TZ=Europe/../../x"},     {"LANG=/home/mallory/loc"}, {"LC_ALL=../x"},
            {"TERM=/home/mallory/ti"},
        };
        for (const auto& item : cases) {
            CAPTURE(item.entry);
            std::vector<std::string> ignored;
            const auto safe = safe_environment({item.entry}, ::getuid(), ignored);
            CHECK_FALSE(has(safe, item.entry));
        }
    }

    TEST_CASE("safe environment names redirecting variables") {
        std::vector<std::string> ignored;
        const auto safe = safe_environment(
            {"JITBOX_CONFIG=/tmp/x.toml", "DOCKER_HOST=unix:///tmp/d.sock", "AWS_PROFILE=admin",
             "XDG_STATE_HOME=/tmp/state", "DBUS_SESSION_BUS_ADDRESS=unix:path=/tmp/bus",
             "LD_PRELOAD=/tmp/x.so", "EDITOR=vi"},
            ::getuid(), ignored);
        for (const char* name : {"JITBOX_CONFIG", "DOCKER_HOST", "AWS_PROFILE", "XDG_STATE_HOME",
                                 "DBUS_SESSION_BUS_ADDRESS"}) {
            CAPTURE(name);
            CHECK(has(ignored, name));
            CHECK(value_of(safe, name) == "<unset>");
        }
        // Dropped without a mention, because they redirect no part of jitbox.
        CHECK_FALSE(has(ignored, "LD_PRELOAD"));
        CHECK_FALSE(has(ignored, "EDITOR"));
        CHECK(value_of(safe, "LD_PRELOAD") == "<unset>");
        CHECK(value_of(safe, "EDITOR") == "<unset>");
    }

    TEST_CASE("safe environment does not name HOME equal to passwd") {
        std::vector<std::string> first;
        const auto safe = safe_environment({}, ::getuid(), first);
        const std::string home = value_of(safe, "HOME");
        std::vector<std::string> ignored;
        safe_environment({"HOME=" + home}, ::getuid(), ignored);
        CHECK_FALSE(has(ignored, "HOME"));
    }

    TEST_CASE("user runtime dir needs the owner") {
        // The folder of this uid is used only when it exists and belongs to it, and the folder
        // of a uid with no login session does not exist.
        const auto own = user_runtime_dir(::getuid());
        if (!own.empty()) {
            CHECK(own == "/run/user/" + std::to_string(::getuid()));
        }
        CHECK(user_runtime_dir(4000000000U).empty());
    }

    TEST_CASE("user mode changes nothing") {
        CHECK(run_mode() == RunMode::user);
        CHECK_FALSE(is_enforced());
        CHECK(std::string(run_mode_name()) == "user");
        CHECK(audit_log_path("/tmp/state") == "/tmp/state/audit.log");
        CHECK(drop_for_good());
        CHECK(become_service_account());
    }
}

} // namespace
} // namespace jitbox::enforced
