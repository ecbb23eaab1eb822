#include "jitbox/config/config.hpp"
#include "jitbox/enforced/setup.hpp"

#include <doctest/doctest.h>
#include <string>
#include <unistd.h>
#include <vector>

namespace jitbox::enforced {
namespace {

TEST_SUITE("enforced setup") {
    TEST_CASE("manifest round trip") {
        const std::vector<ManifestEntry> entries = {
            {"account", "jitbox"},
            {"dir", "/etc/jitbox"},
            {"owner", "0:0:0755 /usr/local/my prefix"},
            {"data", "/var/lib/jitbox"},
            {"file", "/opt/with space/bin/jitbox"},
        };
        const std::string text = format_manifest(entries);
        CHECK(text.starts_with("# "));
        CHECK(parse_manifest(text) == entries);
    }

    TEST_CASE("manifest skips comments and blank lines") {
        const auto entries = parse_manifest("# comment\n\nfile /usr/local/bin/jitbox\nnospace\n"
                                            "config /etc/jitbox/jitbox.toml");
        REQUIRE(entries.size() == 2);
        CHECK(entries[0] == ManifestEntry{"file", "/usr/local/bin/jitbox"});
        CHECK(entries[1] == ManifestEntry{"config", "/etc/jitbox/jitbox.toml"});
    }

    TEST_CASE("manifest of empty text") {
        CHECK(parse_manifest("").empty());
        CHECK(parse_manifest(format_manifest({})).empty());
    }

    TEST_CASE("starter config parses and allows nothing") {
        const auto config = parse_config(starter_config(), "/etc/jitbox/jitbox.toml");
        INFO((config ? std::string() : config.error().message));
        REQUIRE(static_cast<bool>(config));
        CHECK(starter_config().find("[[roles]]") != std::string::npos);
        // Every role and template line is a comment.
        CHECK(starter_config().find("\n[[roles]]") == std::string::npos);
        CHECK(starter_config().find("\n[templates.") == std::string::npos);
    }

    TEST_CASE("setup needs root") {
        if (::geteuid() == 0) {
            return;
        }
        std::vector<std::string> lines;
        const auto result = setup_enforced(SetupRequest{"docker"},
                                           [&](const std::string& line) { lines.push_back(line); });
        REQUIRE_FALSE(result);
        CHECK(result.error().code == ExitCode::usage);
        CHECK(result.error().message.find("sudo jitbox setup enforced") != std::string::npos);
        CHECK(lines.empty());
    }
}

} // namespace
} // namespace jitbox::enforced
