#include "jitbox/audit/metrics.hpp"
#include "jitbox/audit/stats.hpp"

#include <doctest/doctest.h>

using namespace jitbox;
using nlohmann::json;

namespace {

// 2026-01-01T00:00:00Z and offsets from it in minutes.
const TimePoint k_start = *parse_rfc3339("2026-01-01T00:00:00Z");

TimePoint at(int minutes) {
    return k_start + std::chrono::minutes(minutes);
}

json record(int minutes, const std::string& action, const std::string& result,
            const std::string& sandbox, const std::string& user = "alice",
            const std::string& template_name = "db") {
    return {{"time", format_rfc3339(at(minutes))},
            {"user", user},
            {"action", action},
            {"sandbox", sandbox},
            {"sandbox_id", "id-" + sandbox},
            {"template", template_name},
            {"result", result}};
}

const UsageCounters& usage_of(const AuditStats& stats, const std::string& user,
                              const std::string& template_name) {
    auto found = stats.usage.find({user, template_name});
    REQUIRE(found != stats.usage.end());
    return found->second;
}

} // namespace

TEST_SUITE("audit stats") {
    TEST_CASE("counts opened, extended and closed sandboxes") {
        std::vector<json> records = {
            record(0, "up", "ok", "a"),         record(10, "extend", "ok", "a"),
            record(20, "up", "ok", "b"),        record(30, "down", "ok", "a"),
            record(40, "extend", "error", "b"), record(50, "expire", "ok", "b"),
        };
        AuditStats stats = compute_audit_stats(records, std::nullopt, at(100));
        const UsageCounters& alice = usage_of(stats, "alice", "db");
        CHECK(alice.opened == 2);
        CHECK(alice.extensions == 1);
        CHECK(alice.sandbox_seconds == (30 + 30) * 60);
        CHECK(alice.denials == 0);
        REQUIRE(stats.sandboxes.size() == 2);
        CHECK(stats.sandboxes[0].name == "a");
        CHECK(stats.sandboxes[0].closed_by == "down");
        CHECK(stats.sandboxes[1].closed_by == "expire");
        CHECK(stats.skipped == 0);
    }

    TEST_CASE("counts an open sandbox up to now") {
        AuditStats stats = compute_audit_stats({record(0, "up", "ok", "a")}, std::nullopt, at(90));
        CHECK(usage_of(stats, "alice", "db").sandbox_seconds == 90 * 60);
        REQUIRE(stats.sandboxes.size() == 1);
        CHECK_FALSE(stats.sandboxes[0].closed_at.has_value());
        CHECK(stats.sandboxes[0].duration == std::chrono::minutes(90));
    }

    TEST_CASE("separates denials from attempted violations") {
        json by_deny_rule = record(5, "up", "denied", "a");
        by_deny_rule["rule"] = "deny rule prod-only (jitbox.toml:20:1)";
        json by_role = record(6, "extend", "denied", "a");
        by_role["rule"] = "role dev (jitbox.toml:4:1)";
        json without_rule = record(7, "down", "denied", "a");
        AuditStats stats =
            compute_audit_stats({by_deny_rule, by_role, without_rule}, std::nullopt, at(10));
        const UsageCounters& alice = usage_of(stats, "alice", "db");
        CHECK(alice.denials == 3);
        CHECK(alice.attempted_violations == 1);
        CHECK(alice.opened == 0);
    }

    TEST_CASE("counts granted break-glass requests") {
        json up = record(0, "up", "ok", "a");
        up["break_glass"] = true;
        json extend = record(5, "extend", "ok", "a");
        extend["break_glass"] = true;
        json denied = record(6, "extend", "denied", "a");
        denied["break_glass"] = true;
        AuditStats stats = compute_audit_stats({up, extend, denied}, std::nullopt, at(10));
        CHECK(usage_of(stats, "alice", "db").break_glass == 2);
    }

    TEST_CASE("groups by user and template") {
        std::vector<json> records = {record(0, "up", "ok", "a", "alice", "db"),
                                     record(0, "up", "ok", "b", "bob", "db"),
                                     record(0, "up", "ok", "c", "bob", "cache")};
        AuditStats stats = compute_audit_stats(records, std::nullopt, at(60));
        CHECK(stats.usage.size() == 3);
        CHECK(usage_of(stats, "bob", "cache").opened == 1);
        UsageCounters totals = stats.totals();
        CHECK(totals.opened == 3);
        CHECK(totals.sandbox_seconds == 3 * 3600);
    }

    TEST_CASE("since clips lifetimes and skips earlier events") {
        std::vector<json> records = {
            record(0, "up", "ok", "old"),    record(10, "down", "ok", "old"),
            record(20, "up", "ok", "a"),     record(25, "extend", "ok", "a"),
            record(40, "extend", "ok", "a"), record(60, "down", "ok", "a"),
        };
        AuditStats stats = compute_audit_stats(records, at(30), at(100));
        const UsageCounters& alice = usage_of(stats, "alice", "db");
        CHECK(alice.opened == 0);
        CHECK(alice.extensions == 1);
        CHECK(alice.sandbox_seconds == 30 * 60);
        REQUIRE(stats.sandboxes.size() == 1);
        CHECK(stats.sandboxes[0].name == "a");
        CHECK(stats.sandboxes[0].duration == std::chrono::minutes(40));
    }

    TEST_CASE("ignores a removal of an unknown sandbox and a failed up") {
        std::vector<json> records = {record(0, "up", "error", "a"),
                                     record(1, "rollback", "ok", "a"),
                                     record(2, "gc", "ok", "stranger")};
        AuditStats stats = compute_audit_stats(records, std::nullopt, at(10));
        CHECK(stats.sandboxes.empty());
        CHECK(stats.usage.empty());
    }

    TEST_CASE("skips records without time, action or result") {
        json no_time = record(0, "up", "ok", "a");
        no_time.erase("time");
        json bad_time = record(0, "up", "ok", "b");
        bad_time["time"] = "yesterday";
        json no_action = record(0, "up", "ok", "c");
        no_action.erase("action");
        AuditStats stats = compute_audit_stats({no_time, bad_time, no_action, json::array()},
                                               std::nullopt, at(10));
        CHECK(stats.skipped == 4);
        CHECK(stats.usage.empty());
    }

    TEST_CASE("sorts lifetimes longest first") {
        std::vector<json> records = {record(0, "up", "ok", "short"), record(0, "up", "ok", "long"),
                                     record(5, "down", "ok", "short")};
        AuditStats stats = compute_audit_stats(records, std::nullopt, at(60));
        REQUIRE(stats.sandboxes.size() == 2);
        CHECK(stats.sandboxes[0].name == "long");
        CHECK(stats.sandboxes[1].name == "short");
    }
}

TEST_SUITE("audit metrics") {
    TEST_CASE("escapes label values") {
        CHECK(escape_label_value("plain") == "plain");
        CHECK(escape_label_value("a\\b") == "a\\\\b");
        CHECK(escape_label_value("say \"hi\"") == "say \\\"hi\\\"");
        CHECK(escape_label_value("two\nlines") == "two\\nlines");
    }

    TEST_CASE("escapes help text but not quotes") {
        CHECK(escape_help_text("a\\b \"c\"\nd") == "a\\\\b \"c\"\\nd");
    }

    TEST_CASE("formats every family with help and type") {
        AuditStats stats;
        UsageCounters counters;
        counters.opened = 2;
        counters.sandbox_seconds = 5400;
        counters.denials = 1;
        stats.usage[{"al\"ice", "db"}] = counters;
        std::string text = format_metrics(stats, {{{"al\"ice", "db"}, 1}});

        for (const char* family :
             {"jitbox_sandboxes_opened_total", "jitbox_sandbox_seconds_total",
              "jitbox_extensions_total", "jitbox_denials_total",
              "jitbox_attempted_violations_total", "jitbox_break_glass_total"}) {
            CAPTURE(family);
            CHECK(text.find(fmt::format("# HELP {} ", family)) != std::string::npos);
            CHECK(text.find(fmt::format("# TYPE {} counter\n", family)) != std::string::npos);
        }
        CHECK(text.find("# TYPE jitbox_sandboxes_live gauge\n") != std::string::npos);
        CHECK(text.find("jitbox_sandboxes_opened_total{user=\"al\\\"ice\",template=\"db\"} 2\n") !=
              std::string::npos);
        CHECK(
            text.find("jitbox_sandbox_seconds_total{user=\"al\\\"ice\",template=\"db\"} 5400\n") !=
            std::string::npos);
        CHECK(text.find("jitbox_sandboxes_live{user=\"al\\\"ice\",template=\"db\"} 1\n") !=
              std::string::npos);
        CHECK(text.back() == '\n');
    }

    TEST_CASE("prints headers without samples") {
        std::string text = format_metrics(AuditStats{}, {});
        CHECK(text.find("# TYPE jitbox_denials_total counter\n") != std::string::npos);
        CHECK(text.find("{") == std::string::npos);
    }
}
