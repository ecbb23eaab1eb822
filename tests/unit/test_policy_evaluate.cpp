#include "jitbox/policy/glob.hpp"
#include "jitbox/policy/policy.hpp"
#include "jitbox/policy/window.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace jitbox {
namespace {

constexpr std::string_view k_system_path = "/etc/jitbox/jitbox.toml";
constexpr std::string_view k_project_path = "jitbox.toml";

TimePoint at(std::string_view rfc3339) {
    return value_or_throw(parse_rfc3339(rfc3339));
}

// Monday 2026-03-30, 12:00 in Berlin (CEST, UTC+2).
const TimePoint k_monday_noon_berlin = at("2026-03-30T10:00:00Z");

Requester alice() {
    return Requester{1001, "alice", {"alice", "dev"}, "host", {}};
}

Requester bob() {
    return Requester{1002, "bob", {"bob", "sre"}, "host", {}};
}

bool contains(const std::string& text, std::string_view fragment) {
    return text.find(fragment) != std::string::npos;
}

bool explains(const Decision& decision, std::string_view fragment) {
    return std::any_of(decision.explanation.begin(), decision.explanation.end(),
                       [&](const std::string& line) { return contains(line, fragment); });
}

std::string explanation_text(const Decision& decision) {
    std::string text;
    for (const std::string& line : decision.explanation) {
        text += line + "\n";
    }
    return text;
}

Config parse_valid(std::string_view text, std::string_view path) {
    auto config = parse_config(text, path);
    INFO((config.ok() ? "" : config.error().message));
    REQUIRE(config.ok());
    return std::move(config).value();
}

// The project file jitbox.toml and an optional system file, parsed the way users write them.
class Policies {
public:
    explicit Policies(std::string_view project, std::string_view system = {}) {
        if (!system.empty()) {
            m_system = parse_valid(system, k_system_path);
            m_layers.push_back(PolicyLayer{std::string(k_system_path), m_system.policy});
        }
        m_project = parse_valid(project, k_project_path);
        m_layers.push_back(PolicyLayer{std::string(k_project_path), m_project.policy});
    }

    const Template& spec(const std::string& name) const { return m_project.templates.at(name); }
    const Role& role(std::size_t index) const { return m_project.policy.roles.at(index); }
    const Role& system_role(std::size_t index) const { return m_system.policy.roles.at(index); }

    // Decides `request` for template `name`; the request's `now` defaults to Monday noon.
    Decision decide(const Requester& requester, const std::string& name,
                    AccessRequest request = {}) const {
        request.spec = &spec(name);
        if (request.now == TimePoint{}) {
            request.now = k_monday_noon_berlin;
        }
        Decision decision = evaluate(m_layers, requester, request);
        INFO(explanation_text(decision));
        return decision;
    }

private:
    Config m_system;
    Config m_project;
    std::vector<PolicyLayer> m_layers;
};

AccessRequest request_for(std::optional<Seconds> ttl, TimePoint now = {}) {
    AccessRequest request;
    request.ttl = ttl;
    request.now = now;
    return request;
}

AccessRequest request_for(Action action) {
    AccessRequest request;
    request.action = action;
    return request;
}

// Template db (ttl 30m, max_ttl 4h) and a role for group dev.
const std::string k_db_template = "[templates.db]\nimage = \"postgres:16\"\n";
const std::string k_dev_role =
    "\n[[roles]]\nname = \"dev\"\nmembers = [\"group:dev\"]\ntemplates = [\"db\"]\n";

} // namespace

TEST_SUITE("policy") {

TEST_CASE("glob_matches patterns") {
    struct Case {
        std::string glob;
        std::string name;
        bool matches;
    };
    const std::vector<Case> cases{
        {"db", "db", true},          {"db", "db2", false},
        {"db-*", "db-main", true},   {"db-*", "db-", true},
        {"db-*", "db", false},       {"*", "anything.at_all", true},
        {"*-db", "orders-db", true}, {"*-db", "orders-db-2", false},
        {"a*b*c", "aXbYbZc", true},  {"a*b*c", "aXbYbZ", false},
        {"d?", "db", true},          {"d?", "d", false},
        {"db[0-9]", "db7", true},    {"db[0-9]", "dbx", false},
        {"db[!0-9]", "dbx", true},   {"db[!0-9]", "db7", false},
        {"db[ab-]", "db-", true},    {"db[-a]", "db-", true},
        {"x*[0-9]", "xyz9", true},   {"**", "", true},
        {"*?", "", false},
    };
    for (const Case& c : cases) {
        CAPTURE(c.glob);
        CAPTURE(c.name);
        CHECK(glob_problem(c.glob).empty());
        CHECK(glob_matches(c.glob, c.name) == c.matches);
    }
}

TEST_CASE("glob_problem rejects invalid globs") {
    struct Case {
        std::string glob;
        std::string fragment;
    };
    const std::vector<Case> cases{
        {"", "use a template name or a pattern"},
        {"db[0-9", "the '[' at offset 2 has no closing ']'"},
        {"db[]", "the set at offset 2 is empty"},
        {"db[!]", "the set at offset 2 is empty"},
        {"db[z-a]", "the range z-a is reversed"},
        {"DB", "'D' cannot occur in a template name"},
        {"db/x", "'/' cannot occur"},
        {"db\\*", "'\\' cannot occur"},
        {"db[A-Z]", "'A' cannot occur"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.glob);
        const std::string problem = glob_problem(c.glob);
        CAPTURE(problem);
        CHECK(contains(problem, c.fragment));
    }
}

TEST_CASE("role matches by user, group and uid") {
    struct Case {
        std::string member;
        Requester requester;
        bool allowed;
        std::string shown; // the member as the explanation spells it
    };
    const std::vector<Case> cases{
        {"user:alice", alice(), true, "user:alice"}, {"user:alice", bob(), false, ""},
        {"group:dev", alice(), true, "group:dev"},   {"group:dev", bob(), false, ""},
        {"uid:1001", alice(), true, "uid:1001"},     {"uid:1001", bob(), false, ""},
        {"uid:01002", bob(), true, "uid:1002"},      {"group:sre", bob(), true, "group:sre"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.member);
        CAPTURE(c.requester.user);
        const Policies policies(k_db_template + "[[roles]]\nname = \"r\"\nmembers = [\"" +
                                c.member + "\"]\ntemplates = [\"db\"]\n");
        const Decision decision = policies.decide(c.requester, "db");
        CHECK(decision.allowed == c.allowed);
        if (c.allowed) {
            CHECK(explains(decision, "role r (jitbox.toml:3:1) matches: member " + c.shown));
        } else {
            CHECK(contains(decision.message,
                           "no role in jitbox.toml allows " + c.requester.user + " to up db"));
        }
    }
}

TEST_CASE("role matches templates by glob") {
    const Policies policies("[templates.db-main]\nimage = \"a\"\n[templates.db-test]\nimage = "
                            "\"a\"\n[templates.web]\nimage = \"a\"\n"
                            "[[roles]]\nname = \"dev\"\nmembers = [\"group:dev\"]\n"
                            "templates = [\"db-*\"]\n");
    CHECK(policies.decide(alice(), "db-main").allowed);
    CHECK(policies.decide(alice(), "db-test").allowed);
    const Decision web = policies.decide(alice(), "web");
    CHECK_FALSE(web.allowed);
    CHECK(contains(web.message,
                   "Closest: role dev (jitbox.toml:7:1), because its templates db-* do not "
                   "include web"));
}

TEST_CASE("no roles and no deny rules allow within template bounds") {
    const Policies policies(k_db_template);
    const Decision decision = policies.decide(alice(), "db");
    CHECK(decision.allowed);
    CHECK(decision.ttl == 30min);
    CHECK(decision.max_ttl == 4h);
    CHECK(decision.rule.empty());
    CHECK(decision.message == "allowed: no role restricts it, ttl 30m");
    CHECK(explains(decision,
                   "no roles and no deny rules in any file: every template is allowed "
                   "within its own ttl bounds"));

    const Decision too_long = policies.decide(alice(), "db", request_for(5h));
    CHECK_FALSE(too_long.allowed);
    CHECK(
        too_long.message ==
        "ttl 5h is above the 4h allowed by template db (jitbox.toml:1:1); ask for at most 4h");
}

TEST_CASE("deny beats allow") {
    const Policies policies(
        "[templates.prod-db]\nimage = \"a\"\n"
        "[[roles]]\nname = \"all\"\nmembers = [\"group:dev\", \"group:sre\"]\n"
        "templates = [\"*\"]\n"
        "[[deny]]\nname = \"prod-off\"\ntemplates = [\"prod-*\"]\n"
        "reason = \"production is closed\"\n");
    for (const Requester& requester : {alice(), bob()}) {
        CAPTURE(requester.user);
        const Decision decision = policies.decide(requester, "prod-db");
        CHECK_FALSE(decision.allowed);
        CHECK(decision.rule == "deny rule prod-off (jitbox.toml:7:1)");
        CHECK(decision.message ==
              "deny rule prod-off (jitbox.toml:7:1) denies up prod-db: production is closed");
    }
}

TEST_CASE("deny rule exempts unless_members") {
    const Policies policies(
        "[templates.prod-db]\nimage = \"a\"\n"
        "[[roles]]\nname = \"all\"\nmembers = [\"group:dev\", \"group:sre\"]\n"
        "templates = [\"*\"]\n"
        "[[deny]]\nname = \"prod-only-sre\"\ntemplates = [\"prod-*\"]\n"
        "unless_members = [\"group:sre\", \"user:carol\"]\nactions = [\"up\"]\n"
        "reason = \"production sandboxes are for SRE only\"\n");
    const Decision denied = policies.decide(alice(), "prod-db");
    CHECK_FALSE(denied.allowed);
    CHECK(denied.message ==
          "deny rule prod-only-sre (jitbox.toml:7:1) denies up prod-db: "
          "production sandboxes are for SRE only (ask a member of group:sre or "
          "user:carol)");

    const Decision exempt = policies.decide(bob(), "prod-db");
    CHECK(exempt.allowed);
    CHECK(explains(exempt, "deny rule prod-only-sre (jitbox.toml:7:1) does not apply: bob is "
                           "exempt as group:sre"));

    const Decision other_action =
        policies.decide(alice(), "prod-db", request_for(Action::down));
    CHECK(other_action.allowed);
}

TEST_CASE("deny rule members and window") {
    const Policies policies(
        k_db_template + k_dev_role +
        "[[deny]]\nname = \"weekend\"\nmembers = [\"user:alice\"]\n"
        "when = { days = [\"sat\", \"sun\"], timezone = \"Europe/Berlin\" }\n");
    CHECK(policies.decide(alice(), "db").allowed);
    const Decision saturday =
        policies.decide(alice(), "db", request_for(std::nullopt, at("2026-04-04T10:00:00Z")));
    CHECK_FALSE(saturday.allowed);
    CHECK(saturday.rule == "deny rule weekend (jitbox.toml:8:1)");
    const Decision other_user =
        policies.decide(Requester{1003, "dave", {"dev"}, "", {}}, "db",
                        request_for(std::nullopt, at("2026-04-04T10:00:00Z")));
    CHECK(other_user.allowed);
}

TEST_CASE("ttl above each bound is denied") {
    const std::string window =
        "when = { days = [\"mon\"], hours = \"08:00-13:00\", timezone = \"Europe/Berlin\" }\n";
    struct Case {
        std::string name;
        std::string text;
        bool break_glass;
        Seconds requested;
        Seconds maximum;
        std::string source; // what the message names as the lowest bound
    };
    const std::string role = "[[roles]]\nname = \"dev\"\nmembers = [\"group:dev\"]\n"
                             "templates = [\"db\"]\n";
    const std::vector<Case> cases{
        {"template max_ttl", "[templates.db]\nimage = \"a\"\nmax_ttl = \"90m\"\n" + role, false,
         2h, 90min, "template db (jitbox.toml:1:1)"},
        {"[policy] max_ttl", "[policy]\nmax_ttl = \"75m\"\n" + k_db_template + role, false, 2h,
         75min, "[policy] max_ttl (jitbox.toml:2:11)"},
        {"role max_ttl", k_db_template + role + "max_ttl = \"70m\"\n", false, 2h, 70min,
         "role dev (jitbox.toml:3:1)"},
        {"break_glass_max_ttl",
         k_db_template + role +
             "max_ttl = \"70m\"\nbreak_glass = true\n"
             "break_glass_max_ttl = \"20m\"\n",
         true, 30min, 20min, "role dev (jitbox.toml:3:1) for break-glass"},
        {"window end", k_db_template + role + window, false, 2h, 1h,
         "the window of role dev (jitbox.toml:3:1), which ends Mon 2026-03-30 13:00 CEST "
         "Europe/Berlin"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.name);
        const Policies policies(c.text);
        AccessRequest request = request_for(c.requested);
        request.break_glass = c.break_glass;
        request.reason = "incident 7";

        const Decision denied = policies.decide(alice(), "db", request);
        CHECK_FALSE(denied.allowed);
        CHECK(denied.rule == c.source);
        CHECK(denied.max_ttl == c.maximum);
        const std::string maximum = format_duration(c.maximum);
        CHECK(denied.message == "ttl " + format_duration(c.requested) + " is above the " +
                                    maximum + " allowed by " + c.source + "; ask for at most " +
                                    maximum);

        request.ttl = c.maximum;
        const Decision at_maximum = policies.decide(alice(), "db", request);
        CHECK(at_maximum.allowed);
        CHECK(at_maximum.ttl == c.maximum);
    }
}

TEST_CASE("explanation lists every ttl bound") {
    const Policies policies(
        "[policy]\nmax_ttl = \"8h\"\n" + k_db_template + k_dev_role +
        "max_ttl = \"2h\"\n"
        "when = { days = [\"mon\"], hours = \"08:00-19:00\", timezone = \"Europe/Berlin\" }\n");
    const Decision decision =
        policies.decide(alice(), "db", request_for(45min, at("2026-03-30T15:48:00Z")));
    CHECK(decision.allowed);
    CHECK(decision.ttl == 45min);
    CHECK(decision.max_ttl == 72min);
    CHECK(explains(decision, "bound: template db max_ttl 4h"));
    CHECK(explains(decision, "bound: [policy] max_ttl 8h in jitbox.toml"));
    CHECK(explains(decision, "bound: role dev max_ttl 2h"));
    CHECK(explains(decision,
                   "bound: window of role dev ends Mon 2026-03-30 19:00 CEST Europe/Berlin: "
                   "1h12m left"));
    CHECK(explains(decision, "ttl 45m as requested, within the maximum 1h12m"));
    CHECK(decision.message == "allowed by role dev (jitbox.toml:6:1), ttl 45m");
}

TEST_CASE("default ttl is lowered to the maximum") {
    SUBCASE("role ttl under a [policy] max_ttl") {
        const Policies policies("[policy]\nmax_ttl = \"1h\"\n" + k_db_template + k_dev_role +
                                "ttl = \"3h\"\n");
        const Decision decision = policies.decide(alice(), "db");
        CHECK(decision.allowed);
        CHECK(decision.ttl == 1h);
        CHECK(explains(decision, "default ttl 3h of role dev lowered to the maximum 1h set by "
                                 "[policy] max_ttl (jitbox.toml:2:11)"));
    }
    SUBCASE("template ttl near the end of a window") {
        const Policies policies(
            k_db_template + k_dev_role +
            "when = { hours = \"08:00-12:10\", timezone = \"Europe/Berlin\" }\n");
        const Decision decision = policies.decide(alice(), "db");
        CHECK(decision.allowed);
        CHECK(decision.ttl == 10min);
        CHECK(explains(decision, "default ttl 30m of template db lowered to the maximum 10m"));
    }
    SUBCASE("role ttl within bounds") {
        const Policies policies(k_db_template + k_dev_role + "ttl = \"45m\"\n");
        const Decision decision = policies.decide(alice(), "db");
        CHECK(decision.ttl == 45min);
        CHECK(explains(decision, "default ttl 45m of role dev, within the maximum 4h"));
    }
}

TEST_CASE("max_active limits live sandboxes") {
    const Policies policies(k_db_template + k_dev_role + "max_active = 3\n");
    AccessRequest request;
    request.active_sandboxes = 2;
    CHECK(policies.decide(alice(), "db", request).allowed);

    request.active_sandboxes = 3;
    const Decision denied = policies.decide(alice(), "db", request);
    CHECK_FALSE(denied.allowed);
    CHECK(denied.rule == "role dev (jitbox.toml:4:1)");
    CHECK(denied.message == "role dev (jitbox.toml:4:1) allows at most 3 active sandboxes and "
                            "alice has 3, remove one with jitbox down first");

    request.action = Action::down;
    CHECK(policies.decide(alice(), "db", request).allowed);
}

TEST_CASE("window inside and outside") {
    const Policies policies(
        k_db_template + k_dev_role +
        "when = { days = [\"mon\",\"tue\",\"wed\",\"thu\",\"fri\"], hours = \"08:00-19:00\", "
        "timezone = \"Europe/Berlin\" }\n");
    struct Case {
        std::string now;
        bool allowed;
        std::string fragment; // of the explanation, or of the message when denied
    };
    const std::vector<Case> cases{
        {"2026-03-30T10:00:00Z", true,
         "window mon-fri 08:00-19:00 Europe/Berlin is open until Mon 2026-03-30 19:00 CEST"},
        {"2026-03-30T06:00:00Z", true, "is open until Mon 2026-03-30 19:00 CEST"},
        {"2026-03-30T05:59:59Z", false, "is closed and opens next Mon 2026-03-30 08:00 CEST"},
        {"2026-03-30T17:00:00Z", false, "opens next Tue 2026-03-31 08:00 CEST Europe/Berlin"},
        {"2026-04-03T18:00:00Z", false, "opens next Mon 2026-04-06 08:00 CEST"},
        {"2026-04-04T10:00:00Z", false, "opens next Mon 2026-04-06 08:00 CEST"},
        {"2026-01-05T07:30:00Z", true, "is open until Mon 2026-01-05 19:00 CET"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.now);
        const Decision decision =
            policies.decide(alice(), "db", request_for(std::nullopt, at(c.now)));
        CHECK(decision.allowed == c.allowed);
        if (c.allowed) {
            CHECK(explains(decision, c.fragment));
        } else {
            CHECK(contains(decision.message, "no role in jitbox.toml allows alice to up db. "
                                             "Closest: role dev (jitbox.toml:4:1), because window "
                                             "mon-fri 08:00-19:00 Europe/Berlin"));
            CHECK(contains(decision.message, c.fragment));
        }
    }
}

TEST_CASE("window across midnight") {
    const Policies policies("[templates.db]\nimage = \"a\"\nmax_ttl = \"1d\"\n" + k_dev_role +
                            "when = { days = [\"fri\"], hours = \"22:00-06:00\" }\n");
    struct Case {
        std::string now;
        bool allowed;
        Seconds left; // the maximum ttl when allowed
    };
    const std::vector<Case> cases{
        {"2026-04-03T21:59:00Z", false, 0s}, // Friday before the start
        {"2026-04-03T22:00:00Z", true, 8h},  // Friday at the start
        {"2026-04-04T03:00:00Z", true, 3h},  // Saturday, in the window that started Friday
        {"2026-04-04T06:00:00Z", false, 0s}, // Saturday at the end
        {"2026-04-04T23:00:00Z", false, 0s}, // Saturday night: no window starts on Saturday
        {"2026-04-02T23:00:00Z", false, 0s}, // Thursday night
    };
    for (const Case& c : cases) {
        CAPTURE(c.now);
        const Decision decision =
            policies.decide(alice(), "db", request_for(std::nullopt, at(c.now)));
        CHECK(decision.allowed == c.allowed);
        if (c.allowed) {
            CHECK(decision.max_ttl == c.left);
        }
    }
}

TEST_CASE("window across a DST change in Europe/Berlin") {
    // 2026-03-29: clocks go from 02:00 CET to 03:00 CEST, so 01:00-04:00 lasts 2 hours.
    // 2026-10-25: clocks go from 03:00 CEST back to 02:00 CET, so 01:00-04:00 lasts 4 hours.
    const Policies policies("[templates.db]\nimage = \"a\"\nmax_ttl = \"1d\"\n" + k_dev_role +
                            "when = { days = [\"sun\"], hours = \"01:00-04:00\", "
                            "timezone = \"Europe/Berlin\" }\n");
    struct Case {
        std::string now;
        bool allowed;
        Seconds left;
    };
    const std::vector<Case> cases{
        {"2026-03-28T23:59:00Z", false, 0s},    // 00:59 CET
        {"2026-03-29T00:00:00Z", true, 2h},     // 01:00 CET
        {"2026-03-29T01:30:00Z", true, 30min},  // 03:30 CEST
        {"2026-03-29T02:00:00Z", false, 0s},    // 04:00 CEST
        {"2026-10-24T22:59:00Z", false, 0s},    // 00:59 CEST
        {"2026-10-24T23:00:00Z", true, 4h},     // 01:00 CEST
        {"2026-10-25T00:30:00Z", true, 150min}, // 02:30 CEST, the first 02:30
        {"2026-10-25T01:30:00Z", true, 90min},  // 02:30 CET, the second 02:30
        {"2026-10-25T03:00:00Z", false, 0s},    // 04:00 CET
    };
    for (const Case& c : cases) {
        CAPTURE(c.now);
        const Decision decision =
            policies.decide(alice(), "db", request_for(std::nullopt, at(c.now)));
        CHECK(decision.allowed == c.allowed);
        if (c.allowed) {
            CHECK(decision.max_ttl == c.left);
        }
    }

    // Above the real time left on the short day, although 3h would fit the local hours.
    const Decision spring =
        policies.decide(alice(), "db", request_for(150min, at("2026-03-29T00:00:00Z")));
    CHECK_FALSE(spring.allowed);
    CHECK(contains(spring.message, "is above the 2h allowed by the window of role dev"));
    CHECK(contains(spring.message, "which ends Sun 2026-03-29 04:00 CEST Europe/Berlin"));
    const Decision autumn =
        policies.decide(alice(), "db", request_for(4h, at("2026-10-24T23:00:00Z")));
    CHECK(autumn.allowed);
    CHECK(autumn.ttl == 4h);
}

TEST_CASE("window_status bounds that DST skips or repeats") {
    TimeWindow window;
    window.days = {0};
    window.start_minute = 2 * 60 + 30;
    window.end_minute = 5 * 60;
    window.timezone = "Europe/Berlin";

    SUBCASE("a start that does not exist opens at the change") {
        const auto before = window_status(window, at("2026-03-29T00:59:59Z"));
        REQUIRE(before.ok());
        CHECK_FALSE(before->open);
        REQUIRE(before->next_start.has_value());
        CHECK(*before->next_start == at("2026-03-29T01:00:00Z"));

        const auto status = window_status(window, at("2026-03-29T01:00:00Z"));
        REQUIRE(status.ok());
        CHECK(status->open);
        REQUIRE(status->end.has_value());
        CHECK(*status->end == at("2026-03-29T03:00:00Z"));
        CHECK(status->end_text == "Sun 2026-03-29 05:00 CEST Europe/Berlin");
    }
    SUBCASE("an ambiguous start takes the first of the two instants") {
        const auto status = window_status(window, at("2026-10-25T00:30:00Z"));
        REQUIRE(status.ok());
        CHECK(status->open);
        CHECK(*status->end == at("2026-10-25T04:00:00Z"));
    }
    SUBCASE("an ambiguous end takes the second of the two instants") {
        TimeWindow short_window = window;
        short_window.start_minute = 60;
        short_window.end_minute = 2 * 60 + 30;
        const auto status = window_status(short_window, at("2026-10-25T00:45:00Z"));
        REQUIRE(status.ok());
        CHECK(status->open);
        CHECK(*status->end == at("2026-10-25T01:30:00Z"));
    }
}

TEST_CASE("window_status merges windows of consecutive days") {
    TimeWindow window;
    window.days = {1, 2, 3, 4, 5};
    window.timezone = "UTC";
    const auto weekdays = window_status(window, at("2026-03-31T12:00:00Z"));
    REQUIRE(weekdays.ok());
    CHECK(weekdays->open);
    CHECK(*weekdays->end == at("2026-04-04T00:00:00Z"));
    CHECK(weekdays->end_text == "Sat 2026-04-04 00:00 UTC");

    window.days.clear();
    const auto always = window_status(window, at("2026-03-31T12:00:00Z"));
    REQUIRE(always.ok());
    CHECK(always->open);
    CHECK_FALSE(always->end.has_value());

    window.timezone = "Mars/Olympus";
    const auto unknown = window_status(window, at("2026-03-31T12:00:00Z"));
    REQUIRE_FALSE(unknown.ok());
    CHECK(contains(unknown.error().message, "unknown time zone \"Mars/Olympus\""));
}

TEST_CASE("require_reason needs a reason") {
    const Policies policies(k_db_template + k_dev_role + "require_reason = true\n");
    const Decision denied = policies.decide(alice(), "db");
    CHECK_FALSE(denied.allowed);
    CHECK(denied.rule == "role dev (jitbox.toml:4:1)");
    CHECK(denied.message ==
          "role dev (jitbox.toml:4:1) requires a reason for up, pass --reason");

    AccessRequest request;
    request.reason = "debug orders";
    CHECK(policies.decide(alice(), "db", request).allowed);
    CHECK(policies.decide(alice(), "db", request_for(Action::down)).allowed);
}

TEST_CASE("break-glass requests") {
    const Policies policies(k_db_template +
                            "[[roles]]\nname = \"dev\"\nmembers = [\"group:dev\"]\n"
                            "templates = [\"db\"]\nmax_ttl = \"8h\"\n"
                            "[[roles]]\nname = \"oncall\"\nmembers = [\"user:alice\"]\n"
                            "templates = [\"db\"]\nmax_ttl = \"2h\"\nbreak_glass = true\n"
                            "break_glass_max_ttl = \"30m\"\n");
    AccessRequest request;
    request.break_glass = true;
    request.reason = "incident 7";

    SUBCASE("allowed by a break-glass role and bounded by break_glass_max_ttl") {
        const Decision decision = policies.decide(alice(), "db", request);
        CHECK(decision.allowed);
        CHECK(decision.break_glass);
        CHECK(decision.ttl == 30min);
        CHECK(decision.rule == "role oncall (jitbox.toml:8:1)");
        CHECK(decision.message ==
              "allowed by role oncall (jitbox.toml:8:1), ttl 30m (break-glass)");
        CHECK(explains(decision, "bound: role oncall break_glass_max_ttl 30m"));

        request.ttl = 1h;
        const Decision above = policies.decide(alice(), "db", request);
        CHECK_FALSE(above.allowed);
        CHECK(above.message == "ttl 1h is above the 30m allowed by role oncall "
                               "(jitbox.toml:8:1) for break-glass; ask for at most 30m");
    }
    SUBCASE("a normal request takes the role with the longest max_ttl") {
        const Decision decision = policies.decide(alice(), "db", request_for(3h));
        CHECK(decision.allowed);
        CHECK_FALSE(decision.break_glass);
        CHECK(decision.rule == "role dev (jitbox.toml:3:1)");
        CHECK(explains(decision, "role dev (jitbox.toml:3:1) matches"));
        CHECK(explains(decision, "role oncall (jitbox.toml:8:1) matches"));
        CHECK(explains(decision, "jitbox.toml: role dev (jitbox.toml:3:1) wins because it grants the "
                                 "longest maximum ttl (8h)"));
    }
    SUBCASE("not allowed when no matching role allows it") {
        const Decision decision =
            policies.decide(Requester{1003, "dave", {"dev"}, "", {}}, "db", request);
        CHECK_FALSE(decision.allowed);
        CHECK(decision.message ==
              "no matching role in jitbox.toml allows break-glass: role dev "
              "(jitbox.toml:3:1) without break_glass = true. Ask for a role that "
              "allows it, or leave out --break-glass");
    }
    SUBCASE("needs a reason") {
        request.reason.clear();
        const Decision decision = policies.decide(alice(), "db", request);
        CHECK_FALSE(decision.allowed);
        CHECK(decision.message == "break-glass requests need a reason, pass --reason");
    }
    SUBCASE("needs a role") {
        const Policies open(k_db_template);
        const Decision decision = open.decide(alice(), "db", request);
        CHECK_FALSE(decision.allowed);
        CHECK(contains(decision.message, "break-glass needs a role with break_glass = true"));
    }
}

TEST_CASE("role granting the longest ttl wins") {
    const Policies policies(
        "[templates.db]\nimage = \"a\"\nmax_ttl = \"1d\"\n" + k_dev_role +
        "max_ttl = \"8h\"\nwhen = { hours = \"08:00-12:20\", timezone = \"Europe/Berlin\" }\n"
        "[[roles]]\nname = \"short\"\nmembers = [\"user:alice\"]\ntemplates = [\"db\"]\n"
        "max_ttl = \"1h\"\n"
        "[[roles]]\nname = \"open\"\nmembers = [\"user:alice\"]\ntemplates = [\"db\"]\n");

    // At 12:00 in Berlin, dev has 20 minutes of its window left, short 1h and open no bound.
    const Decision decision = policies.decide(alice(), "db", request_for(2h));
    CHECK(decision.allowed);
    CHECK(decision.rule == "role open (jitbox.toml:16:1)");
    CHECK(explains(decision, "role dev (jitbox.toml:5:1) matches"));
    CHECK(explains(decision, "role short (jitbox.toml:11:1) matches"));
    CHECK(explains(decision, "jitbox.toml: role open (jitbox.toml:16:1) wins because it grants "
                             "the longest maximum ttl (no bound)"));
    CHECK(decision.max_ttl == 24h);
}

TEST_CASE("project layer cannot widen the system layer") {
    const std::string system = "[policy]\nmax_ttl = \"3h\"\n"
                               "[[roles]]\nname = \"base\"\nmembers = [\"group:dev\"]\n"
                               "templates = [\"db*\"]\nmax_ttl = \"2h\"\n";
    const Policies policies("[templates.db]\nimage = \"a\"\nmax_ttl = \"8h\"\n"
                            "[templates.web]\nimage = \"a\"\n"
                            "[[roles]]\nname = \"dev\"\nmembers = [\"group:dev\"]\n"
                            "templates = [\"*\"]\nmax_ttl = \"8h\"\n",
                            system);
    SUBCASE("the system role's max_ttl wins") {
        const Decision denied = policies.decide(alice(), "db", request_for(3h));
        CHECK_FALSE(denied.allowed);
        CHECK(denied.max_ttl == 2h);
        CHECK(denied.message == "ttl 3h is above the 2h allowed by role base "
                                "(/etc/jitbox/jitbox.toml:3:1); ask for at most 2h");

        const Decision allowed = policies.decide(alice(), "db", request_for(2h));
        CHECK(allowed.allowed);
        CHECK(allowed.rule == "role base (/etc/jitbox/jitbox.toml:3:1), role dev "
                              "(jitbox.toml:6:1)");
        CHECK(explains(allowed, "bound: [policy] max_ttl 3h in /etc/jitbox/jitbox.toml"));
        CHECK(explains(allowed, "bound: role dev max_ttl 8h"));
    }
    SUBCASE("a template the system roles do not cover is denied") {
        const Decision denied = policies.decide(alice(), "web");
        CHECK_FALSE(denied.allowed);
        CHECK(contains(denied.message, "no role in /etc/jitbox/jitbox.toml allows alice to up "
                                       "web. Closest: role base (/etc/jitbox/jitbox.toml:3:1), "
                                       "because its templates db* do not include web"));
    }
    SUBCASE("a project without roles is bounded by the system") {
        const Policies open("[templates.db]\nimage = \"a\"\nmax_ttl = \"8h\"\n", system);
        const Decision decision = open.decide(alice(), "db", request_for(2h));
        CHECK(decision.allowed);
        CHECK(explains(decision,
                       "no roles in jitbox.toml: every template is allowed within its "
                       "own ttl bounds"));
        CHECK_FALSE(open.decide(alice(), "db", request_for(3h)).allowed);
    }
}

TEST_CASE("denial names the closest roles") {
    SUBCASE("a member of a role that misses on action") {
        const Policies policies(k_db_template + k_dev_role + "actions = [\"up\", \"down\"]\n");
        const Decision decision = policies.decide(alice(), "db", request_for(Action::exec));
        CHECK_FALSE(decision.allowed);
        CHECK(decision.message ==
              "no role in jitbox.toml allows alice to exec db. Closest: role "
              "dev (jitbox.toml:4:1), because its actions up, down do not "
              "include exec");
    }
    SUBCASE("a requester in no role") {
        const Policies policies(k_db_template + k_dev_role);
        const Decision decision = policies.decide(bob(), "db");
        CHECK_FALSE(decision.allowed);
        CHECK(decision.message ==
              "no role in jitbox.toml allows bob to up db. bob is in none of "
              "the roles that allow it: role dev (jitbox.toml:4:1) with "
              "members group:dev");
    }
    SUBCASE("no role covers the template") {
        const Policies policies(
            "[templates.db]\nimage = \"a\"\n[templates.web]\nimage = \"a\"\n" + k_dev_role);
        const Decision decision = policies.decide(bob(), "web");
        CHECK(contains(decision.message, "No role there allows up web for anyone"));
    }
}

TEST_CASE("conditions on labels, requested ttl and attributes") {
    const Policies policies("[templates.db]\nimage = \"a\"\nlabels = { data = \"pii\" }\n"
                            "[templates.web]\nimage = \"a\"\n"
                            "[[roles]]\nname = \"ci\"\nmembers = [\"group:dev\"]\n"
                            "templates = [\"*\"]\ntemplate_labels = { data = \"pii\" }\n"
                            "max_requested_ttl = \"1h\"\nattributes = { CI = \"true\" }\n");
    Requester requester = alice();
    requester.attributes["CI"] = "true";

    const Decision allowed = policies.decide(requester, "db");
    CHECK(allowed.allowed);
    CHECK(explains(allowed, "template label data=pii"));
    CHECK(explains(allowed, "ttl 30m is within its max_requested_ttl 1h"));
    CHECK(explains(allowed, "attribute CI=true (from the environment, spoofable)"));

    const Decision unlabelled = policies.decide(requester, "web");
    CHECK_FALSE(unlabelled.allowed);
    CHECK(contains(unlabelled.message, "template web has no label data=pii"));

    const Decision long_request = policies.decide(requester, "db", request_for(2h));
    CHECK_FALSE(long_request.allowed);
    CHECK(contains(long_request.message, "ttl 2h is above its max_requested_ttl 1h"));

    requester.attributes["CI"] = "false";
    const Decision wrong_value = policies.decide(requester, "db");
    CHECK_FALSE(wrong_value.allowed);
    CHECK(
        contains(wrong_value.message,
                 "attribute CI=false (from the environment, spoofable), CI=true is expected"));

    requester.attributes.clear();
    const Decision unlisted = policies.decide(requester, "db");
    CHECK_FALSE(unlisted.allowed);
    CHECK(contains(unlisted.message, "attribute CI is not set because no [policy] "
                                     "attributes_from_env lists it, CI=true is expected"));

    const Policies listed("[policy]\nattributes_from_env = [\"CI\"]\n"
                          "[templates.db]\nimage = \"a\"\n[[roles]]\nname = \"ci\"\n"
                          "members = [\"group:dev\"]\ntemplates = [\"db\"]\n"
                          "attributes = { CI = \"true\" }\n");
    const Decision unset = listed.decide(requester, "db");
    CHECK_FALSE(unset.allowed);
    CHECK(contains(unset.message, "attribute CI is not set, CI=true is expected"));
}

TEST_CASE("actions without a ttl skip the ttl bounds") {
    const Policies policies(k_db_template + k_dev_role + "max_ttl = \"1h\"\n");
    for (const Action action : {Action::down, Action::exec}) {
        CAPTURE(to_string(action));
        AccessRequest request = request_for(action);
        request.ttl = 5h;
        const Decision decision = policies.decide(alice(), "db", request);
        CHECK(decision.allowed);
        CHECK(decision.ttl == 0s);
        CHECK(decision.max_ttl == 0s);
    }
    const Decision extend = policies.decide(alice(), "db", [] {
        AccessRequest request = request_for(Action::extend);
        request.ttl = 2h;
        return request;
    }());
    CHECK_FALSE(extend.allowed);
    CHECK(contains(extend.message, "ttl 2h is above the 1h allowed by role dev"));
}

// `count` roles for group dev on template db, named r0, r1, ..., of 5 lines each. Role i has
// max_ttl i + 1 hours, so the last one grants the longest.
std::string numbered_roles(int count) {
    std::string text;
    for (int i = 0; i < count; ++i) {
        text += "[[roles]]\nname = \"r" + std::to_string(i) +
                "\"\nmembers = [\"group:dev\"]\ntemplates = [\"db\"]\nmax_ttl = \"" +
                std::to_string(i + 1) + "h\"\n";
    }
    return text;
}

std::size_t count_lines(const Decision& decision, std::string_view fragment) {
    return static_cast<std::size_t>(
        std::count_if(decision.explanation.begin(), decision.explanation.end(),
                      [&](const std::string& line) { return contains(line, fragment); }));
}

TEST_CASE("explanation caps matching roles") {
    // k_db_template takes lines 1 and 2, so role i starts on line 3 + 5 * i.
    const auto origin = [](int index) {
        return "(jitbox.toml:" + std::to_string(3 + 5 * index) + ":1)";
    };

    SUBCASE("the deciding role is listed after the count") {
        const Policies policies(k_db_template + numbered_roles(25));
        const Decision decision = policies.decide(alice(), "db");
        CHECK(decision.allowed);
        CHECK(decision.rule == "role r24 " + origin(24));
        CHECK(count_lines(decision, " matches: member group:dev") == 21);
        CHECK(explains(decision, "jitbox.toml: role r19 " + origin(19) + " matches"));
        CHECK_FALSE(explains(decision, "role r20 " + origin(20) + " matches"));
        CHECK(explains(decision, "jitbox.toml: and 5 more roles match"));
        CHECK(explains(decision, "jitbox.toml: role r24 " + origin(24) +
                                     " matches: member group:dev, template db"));
        CHECK(explains(decision, "jitbox.toml: role r24 " + origin(24) +
                                     " wins because it grants the longest maximum ttl (1d1h)"));
    }
    SUBCASE("one role past the list") {
        const Policies policies(k_db_template + numbered_roles(21));
        const Decision decision = policies.decide(alice(), "db");
        CHECK(decision.allowed);
        CHECK(explains(decision, "jitbox.toml: and 1 more role matches"));
    }
    SUBCASE("twenty roles are all listed") {
        const Policies policies(k_db_template + numbered_roles(20));
        const Decision decision = policies.decide(alice(), "db");
        CHECK(decision.allowed);
        CHECK(count_lines(decision, " matches: member group:dev") == 20);
        CHECK_FALSE(explains(decision, "more role"));
    }
}

TEST_CASE("explanation caps skipped deny rules") {
    std::string text = k_db_template + k_dev_role;
    for (int i = 0; i < 23; ++i) {
        text += "[[deny]]\nname = \"d" + std::to_string(i) +
                "\"\nunless_members = [\"group:dev\"]\n";
    }
    const Policies policies(text);
    const Decision decision = policies.decide(alice(), "db");
    CHECK(decision.allowed);
    CHECK(count_lines(decision, "does not apply: alice is exempt as group:dev") == 20);
    CHECK(explains(decision, "deny rule d19 (jitbox.toml:"));
    CHECK_FALSE(explains(decision, "deny rule d20 (jitbox.toml:"));
    CHECK(explains(decision, "jitbox.toml: and 3 more deny rules do not apply"));
}

TEST_CASE("break-glass denial caps listed roles") {
    const Policies policies(k_db_template + numbered_roles(22));
    AccessRequest request;
    request.break_glass = true;
    request.reason = "incident 7";
    const Decision decision = policies.decide(alice(), "db", request);
    CHECK_FALSE(decision.allowed);
    CHECK(contains(decision.message, "allows break-glass: role r0 (jitbox.toml:3:1), role r1 "));
    CHECK(contains(decision.message, "role r19 (jitbox.toml:98:1) and 2 more roles without "
                                     "break_glass = true"));
    CHECK_FALSE(contains(decision.message, "role r20"));
}

TEST_CASE("closest roles have fewest misses") {
    // Roles r0 to r9 miss on template and action, r10 to r29 on template only.
    std::string text = "[templates.db]\nimage = \"a\"\n[templates.web]\nimage = \"a\"\n";
    for (int i = 0; i < 30; ++i) {
        text += "[[roles]]\nname = \"r" + std::to_string(i) +
                "\"\nmembers = [\"group:dev\"]\ntemplates = [\"web\"]\n";
        if (i < 10) {
            text += "actions = [\"down\"]\n";
        }
    }
    const Policies policies(text);
    const Decision decision = policies.decide(alice(), "db");
    CHECK_FALSE(decision.allowed);
    CHECK(contains(decision.message,
                   "Closest: role r10 (jitbox.toml:55:1), because its templates web do not "
                   "include db; role r11 (jitbox.toml:59:1), because its templates web do not "
                   "include db; role r12 (jitbox.toml:63:1), because"));
    CHECK_FALSE(contains(decision.message, "role r13 "));
}

TEST_CASE("request without a template is denied") {
    const Decision decision = evaluate({}, alice(), AccessRequest{});
    CHECK_FALSE(decision.allowed);
    CHECK(contains(decision.message, "no template given"));
}

} // TEST_SUITE("policy")

} // namespace jitbox
