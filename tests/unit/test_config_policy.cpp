#include "jitbox/config/config.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

using namespace std::chrono_literals;

namespace jitbox {
namespace {

Config parse_valid(std::string_view text) {
    auto config = parse_config(text, "jitbox.toml");
    INFO((config.ok() ? "" : config.error().message));
    REQUIRE(config.ok());
    return std::move(config).value();
}

bool starts_with(const std::string& text, std::string_view prefix) {
    return text.rfind(prefix, 0) == 0;
}

bool contains(const std::string& text, std::string_view fragment) {
    return text.find(fragment) != std::string::npos;
}

constexpr std::string_view k_full_policy = R"([policy]
max_ttl = "8h"
attributes_from_env = ["CI"]
require_signed = false

[templates.db-main]
image = "postgres:16"
labels = { data = "pii" }

[templates.scratch]
image = "busybox:1.36"

[templates.prod-db]
image = "postgres:16"

[[roles]]
name = "dev"
members = ["group:dev", "user:alice", "uid:1001"]
templates = ["db-*", "scratch"]
actions = ["up", "down", "extend", "exec"]
ttl = "30m"
max_ttl = "2h"
max_active = 3
require_reason = false
break_glass = true
break_glass_max_ttl = "30m"
when = { days = ["mon","tue","wed","thu","fri"], hours = "08:00-19:00", timezone = "Europe/Berlin" }
template_labels = { data = "pii" }
max_requested_ttl = "1h"
attributes = { CI = "true" }

[[deny]]
name = "prod-only-sre"
templates = ["prod-*"]
members = []
unless_members = ["group:sre"]
actions = ["up"]
reason = "production sandboxes are for SRE only"
when = { days = ["sat", "sun"] }
)";

// A valid file with one role, for error cases that add a key to it.
const std::string k_role_head =
    "[templates.db]\nimage = \"postgres:16\"\n\n"
    "[[roles]]\nname = \"dev\"\nmembers = [\"group:dev\"]\ntemplates = [\"db\"]\n";

} // namespace

TEST_SUITE("config policy") {

TEST_CASE("parse_config loads the full policy example") {
    const Config config = parse_valid(k_full_policy);
    const Policy& policy = config.policy;
    CHECK(policy.max_ttl == 8h);
    CHECK(policy.max_ttl_origin == "jitbox.toml:2:11");
    CHECK(policy.attribute_env == std::vector<std::string>{"CI"});
    CHECK_FALSE(policy.require_signed);

    REQUIRE(policy.roles.size() == 1);
    const Role& dev = policy.roles[0];
    CHECK(dev.name == "dev");
    CHECK(dev.origin == "jitbox.toml:16:1");
    REQUIRE(dev.members.size() == 3);
    CHECK(dev.members[0].kind == Member::Kind::group);
    CHECK(dev.members[0].value == "dev");
    CHECK(dev.members[1].kind == Member::Kind::user);
    CHECK(dev.members[1].value == "alice");
    CHECK(dev.members[2].kind == Member::Kind::uid);
    CHECK(dev.members[2].value == "1001");
    CHECK(dev.templates == std::vector<std::string>{"db-*", "scratch"});
    CHECK(dev.actions ==
          std::set<Action>{Action::up, Action::down, Action::extend, Action::exec});
    CHECK(dev.ttl == 30min);
    CHECK(dev.max_ttl == 2h);
    CHECK(dev.max_active == 3);
    CHECK_FALSE(dev.require_reason);
    CHECK(dev.break_glass);
    CHECK(dev.break_glass_max_ttl == 30min);
    REQUIRE(dev.conditions.when.has_value());
    CHECK(dev.conditions.when->days == std::set<int>{1, 2, 3, 4, 5});
    CHECK(dev.conditions.when->start_minute == 8 * 60);
    CHECK(dev.conditions.when->end_minute == 19 * 60);
    CHECK(dev.conditions.when->timezone == "Europe/Berlin");
    CHECK(to_string(*dev.conditions.when) == "mon-fri 08:00-19:00 Europe/Berlin");
    CHECK(dev.conditions.template_labels ==
          std::map<std::string, std::string>{{"data", "pii"}});
    CHECK(dev.conditions.max_requested_ttl == 1h);
    CHECK(dev.conditions.attributes == std::map<std::string, std::string>{{"CI", "true"}});

    REQUIRE(policy.denies.size() == 1);
    const DenyRule& deny = policy.denies[0];
    CHECK(deny.name == "prod-only-sre");
    CHECK(deny.origin == "jitbox.toml:32:1");
    CHECK(deny.templates == std::vector<std::string>{"prod-*"});
    CHECK(deny.members.empty());
    REQUIRE(deny.unless_members.size() == 1);
    CHECK(to_string(deny.unless_members[0]) == "group:sre");
    CHECK(deny.actions == std::set<Action>{Action::up});
    CHECK(deny.reason == "production sandboxes are for SRE only");
    REQUIRE(deny.conditions.when.has_value());
    CHECK(deny.conditions.when->days == std::set<int>{0, 6});
    CHECK_FALSE(deny.conditions.when->start_minute.has_value());
    CHECK(deny.conditions.when->timezone == "UTC");
}

TEST_CASE("parse_config fills policy defaults") {
    const Config config = parse_valid(k_role_head + "\n[[deny]]\nname = \"nobody\"\n");
    CHECK_FALSE(config.policy.max_ttl.has_value());
    CHECK(config.policy.attribute_env.empty());
    CHECK_FALSE(config.policy.require_signed);

    const Role& role = config.policy.roles.at(0);
    CHECK(role.actions.empty());
    CHECK_FALSE(role.ttl.has_value());
    CHECK_FALSE(role.max_ttl.has_value());
    CHECK_FALSE(role.max_active.has_value());
    CHECK_FALSE(role.require_reason);
    CHECK_FALSE(role.break_glass);
    CHECK_FALSE(role.conditions.when.has_value());

    const DenyRule& deny = config.policy.denies.at(0);
    CHECK(deny.members.empty());
    CHECK(deny.unless_members.empty());
    CHECK(deny.templates.empty());
    CHECK(deny.actions.empty());
    CHECK(deny.reason.empty());
}

TEST_CASE("parse_config without policy keys has an empty policy") {
    const Config config = parse_valid("[templates.db]\nimage = \"a\"\n");
    CHECK(config.policy.roles.empty());
    CHECK(config.policy.denies.empty());
    CHECK(default_config().policy.roles.empty());
}

TEST_CASE("parse_config accepts any glob in a file without templates") {
    const Config config =
        parse_valid("[policy]\nmax_ttl = \"8h\"\nrequire_signed = true\n\n"
                    "[[roles]]\nname = \"dev\"\nmembers = [\"group:dev\"]\n"
                    "templates = [\"db-*\", \"web\"]\n\n"
                    "[[deny]]\nname = \"no-prod\"\ntemplates = [\"prod-*\"]\n");
    CHECK(config.templates.empty());
    CHECK(config.policy.require_signed);
    CHECK(config.policy.roles.at(0).templates == std::vector<std::string>{"db-*", "web"});
    CHECK(config.policy.denies.at(0).templates == std::vector<std::string>{"prod-*"});
}

TEST_CASE("parse_config resolves role globs") {
    const std::string templates = "[templates.db]\nimage = \"a\"\n[templates.db-main]\n"
                                  "image = \"a\"\n[templates.db-test]\nimage = \"a\"\n"
                                  "[templates.web]\nimage = \"a\"\n";
    const auto role_text = [&](std::string_view glob) {
        return templates + "[[roles]]\nname = \"x\"\nmembers = [\"user:a\"]\ntemplates = [\"" +
               std::string(glob) + "\"]\n";
    };
    // Exact names, globs with a literal prefix, and globs without one ("[dw]*", "*-main"), which
    // match names at the start, in the middle and at the end of the sorted names.
    for (const std::string_view glob :
         {"db", "web", "db-t*", "db-test", "d?", "db?main", "[dw]*", "*-main", "db-[mt]*", "w*",
          "*"}) {
        CAPTURE(glob);
        const auto config = parse_config(role_text(glob), "jitbox.toml");
        CHECK(config.ok());
    }
    for (const std::string_view glob : {"db-x*", "dbz*", "a*", "z*", "web?", "db-main2"}) {
        CAPTURE(glob);
        const auto config = parse_config(role_text(glob), "jitbox.toml");
        REQUIRE_FALSE(config.ok());
        CHECK(contains(config.error().message, "roles[0].templates[0]: template"));
    }
}

TEST_CASE("parse_config reads policy hours") {
    struct Case {
        std::string hours;
        int start;
        int end;
    };
    const std::vector<Case> cases{
        {"08:00-19:00", 8 * 60, 19 * 60}, {"22:00-06:00", 22 * 60, 6 * 60},
        {"00:00-24:00", 0, 24 * 60},      {"18:30-24:00", 18 * 60 + 30, 24 * 60},
        {"23:59-00:00", 23 * 60 + 59, 0},
    };
    for (const Case& c : cases) {
        CAPTURE(c.hours);
        const Config config =
            parse_valid(k_role_head + "when = { hours = \"" + c.hours + "\" }\n");
        const TimeWindow& window = *config.policy.roles.at(0).conditions.when;
        CHECK(window.start_minute == c.start);
        CHECK(window.end_minute == c.end);
        CHECK(window.days.empty());
    }
}

TEST_CASE("parse_config policy error messages") {
    struct Case {
        std::string name;
        std::string text;
        std::string prefix;   // FILE:LINE:COLUMN: KEY:
        std::string fragment; // part of the message after the prefix
    };
    const std::string templates = "[templates.db]\nimage = \"postgres:16\"\n";
    const std::string& head = k_role_head; // the role table starts on line 4, keys from line 5
    const std::vector<Case> cases{
        // Unknown keys and types.
        {"unknown role key", head + "max_tll = \"1h\"\n", "jitbox.toml:8:1: roles[0].max_tll: ",
         "unknown key \"max_tll\" (did you mean \"max_ttl\"?)"},
        {"unknown deny key", templates + "[[deny]]\nname = \"x\"\nunless = []\n",
         "jitbox.toml:5:1: deny[0].unless: ", "unknown key \"unless\""},
        {"unknown policy key", "[policy]\nmax_tl = \"1h\"\n",
         "jitbox.toml:2:1: policy.max_tl: ", "did you mean \"max_ttl\"?"},
        {"unknown when key", head + "when = { days = [\"mon\"], zone = \"UTC\" }\n",
         "jitbox.toml:8:26: roles[0].when.zone: ", "unknown key \"zone\""},
        {"roles as a table", "[roles]\nname = \"x\"\n",
         "jitbox.toml:1:1: roles: ", "expected an array of tables ([[roles]]), found table"},
        {"max_active as a string", head + "max_active = \"3\"\n",
         "jitbox.toml:8:14: roles[0].max_active: ", "expected an integer, found string"},

        // Names.
        {"duplicate role name",
         head + "\n[[roles]]\nname = \"dev\"\nmembers = [\"user:a\"]\ntemplates = [\"db\"]\n",
         "jitbox.toml:10:8: roles[1].name: ",
         "duplicate name \"dev\": the [[roles]] at jitbox.toml:4:1 has it already"},
        {"duplicate deny name", templates + "[[deny]]\nname = \"x\"\n[[deny]]\nname = \"x\"\n",
         "jitbox.toml:6:8: deny[1].name: ",
         "duplicate name \"x\": the [[deny]] at jitbox.toml:3:1"},
        {"missing role name",
         templates + "[[roles]]\nmembers = [\"user:a\"]\ntemplates = [\"db\"]\n",
         "jitbox.toml:3:1: roles[0]: ", "missing required key \"name\""},
        {"missing deny name", templates + "[[deny]]\nreason = \"no\"\n",
         "jitbox.toml:3:1: deny[0]: ", "missing required key \"name\""},
        {"invalid role name", templates + "[[roles]]\nname = \"my role\"\n",
         "jitbox.toml:4:8: roles[0].name: ", "invalid name \"my role\""},

        // Members.
        {"empty members",
         templates + "[[roles]]\nname = \"x\"\nmembers = []\ntemplates = [\"db\"]\n",
         "jitbox.toml:5:11: roles[0].members: ", "a role with no members applies to nobody"},
        {"missing members", templates + "[[roles]]\nname = \"x\"\ntemplates = [\"db\"]\n",
         "jitbox.toml:3:1: roles[0]: ", "missing required key \"members\""},
        {"member without kind", head + "\n[[deny]]\nname = \"d\"\nmembers = [\"alice\"]\n",
         "jitbox.toml:11:12: deny[0].members[0]: ",
         "invalid member \"alice\": use user:NAME, group:NAME or uid:NUMBER"},
        {"member of unknown kind",
         head + "\n[[deny]]\nname = \"d\"\nunless_members = [\"team:x\"]\n",
         "jitbox.toml:11:19: deny[0].unless_members[0]: ", "invalid member \"team:x\""},
        {"uid not a number",
         templates + "[[roles]]\nname = \"x\"\nmembers = [\"uid:12a\"]\ntemplates = [\"db\"]\n",
         "jitbox.toml:5:12: roles[0].members[0]: ", "a uid is a decimal number"},
        {"uid out of range",
         templates +
             "[[roles]]\nname = \"x\"\nmembers = [\"uid:4294967295\"]\ntemplates = [\"db\"]\n",
         "jitbox.toml:5:12: roles[0].members[0]: ", "a uid is at most 4294967294"},
        {"empty group name",
         templates + "[[roles]]\nname = \"x\"\nmembers = [\"group:\"]\ntemplates = [\"db\"]\n",
         "jitbox.toml:5:12: roles[0].members[0]: ", "the group name must be non-empty"},

        // Templates and globs.
        {"glob with an unclosed set",
         templates +
             "[[roles]]\nname = \"x\"\nmembers = [\"user:a\"]\ntemplates = [\"db[0-9\"]\n",
         "jitbox.toml:6:14: roles[0].templates[0]: ", "the '[' at offset 2 has no closing ']'"},
        {"glob with an upper-case letter",
         templates +
             "[[roles]]\nname = \"x\"\nmembers = [\"user:a\"]\ntemplates = [\"DB-*\"]\n",
         "jitbox.toml:6:14: roles[0].templates[0]: ", "'D' cannot occur in a template name"},
        {"glob with a reversed range",
         templates + "[[deny]]\nname = \"x\"\ntemplates = [\"db[9-0]\"]\n",
         "jitbox.toml:5:14: deny[0].templates[0]: ", "the range 9-0 is reversed"},
        {"empty role templates",
         templates + "[[roles]]\nname = \"x\"\nmembers = [\"user:a\"]\ntemplates = []\n",
         "jitbox.toml:6:13: roles[0].templates: ", "a role with no templates allows nothing"},
        {"missing role templates",
         templates + "[[roles]]\nname = \"x\"\nmembers = [\"user:a\"]\n",
         "jitbox.toml:3:1: roles[0]: ", "missing required key \"templates\""},
        {"role glob matching no template",
         templates + "[[roles]]\nname = \"x\"\nmembers = [\"user:a\"]\ntemplates = [\"db\", "
                     "\"web-*\"]\n",
         "jitbox.toml:6:20: roles[0].templates[1]: ",
         "template glob \"web-*\" matches no template defined in this file (templates: db)"},
        {"role name of an undefined template",
         templates + "[[roles]]\nname = \"x\"\nmembers = [\"user:a\"]\ntemplates = [\"dbb\"]\n",
         "jitbox.toml:6:14: roles[0].templates[0]: ",
         "template \"dbb\" is not defined in this file (did you mean \"db\"?)"},
        {"deny glob matching no template, templates after the rule",
         "[[deny]]\nname = \"x\"\ntemplates = [\"prod-*\"]\n" + templates,
         "jitbox.toml:3:14: deny[0].templates[0]: ",
         "template glob \"prod-*\" matches no template"},

        // Actions.
        {"unknown action", head + "actions = [\"up\", \"start\"]\n",
         "jitbox.toml:8:18: roles[0].actions[1]: ",
         "unknown action \"start\": use up, down, extend, exec, status-all or down-others"},
        {"empty role actions", head + "actions = []\n",
         "jitbox.toml:8:11: roles[0].actions: ", "a role with no actions allows nothing"},

        // Integers and durations.
        {"max_active zero", head + "max_active = 0\n",
         "jitbox.toml:8:14: roles[0].max_active: ",
         "invalid max_active 0: use an integer from 1 to 10000"},
        {"max_active too large", head + "max_active = 10001\n",
         "jitbox.toml:8:14: roles[0].max_active: ", "invalid max_active 10001"},
        {"bad role ttl", head + "ttl = \"30\"\n",
         "jitbox.toml:8:7: roles[0].ttl: ", "invalid duration \"30\": add a unit"},
        {"zero role max_ttl", head + "max_ttl = \"0s\"\n",
         "jitbox.toml:8:11: roles[0].max_ttl: ", "use a duration greater than zero"},
        {"role ttl above its max_ttl", head + "ttl = \"3h\"\nmax_ttl = \"2h\"\n",
         "jitbox.toml:8:7: roles[0].ttl: ", "ttl 3h is longer than max_ttl 2h"},
        {"bad policy max_ttl", "[policy]\nmax_ttl = \"8 hours\"\n",
         "jitbox.toml:2:11: policy.max_ttl: ", "invalid duration \"8 hours\""},
        {"bad max_requested_ttl", head + "max_requested_ttl = \"1x\"\n",
         "jitbox.toml:8:21: roles[0].max_requested_ttl: ", "invalid duration \"1x\""},
        {"break_glass_max_ttl without break_glass", head + "break_glass_max_ttl = \"30m\"\n",
         "jitbox.toml:8:23: roles[0].break_glass_max_ttl: ",
         "break_glass_max_ttl only applies with break_glass = true"},
        {"require_reason not a boolean", head + "require_reason = \"yes\"\n",
         "jitbox.toml:8:18: roles[0].require_reason: ", "expected a boolean (true or false)"},

        // Windows.
        {"hours without minutes", head + "when = { hours = \"8-19\" }\n",
         "jitbox.toml:8:18: roles[0].when.hours: ",
         "invalid hours \"8-19\": use HH:MM-HH:MM with times from 00:00 to 24:00"},
        {"hours past 24:00", head + "when = { hours = \"08:00-24:30\" }\n",
         "jitbox.toml:8:18: roles[0].when.hours: ", "invalid hours \"08:00-24:30\": use HH:MM"},
        {"hours with 60 minutes", head + "when = { hours = \"08:60-10:00\" }\n",
         "jitbox.toml:8:18: roles[0].when.hours: ", "use HH:MM-HH:MM"},
        {"hours with seconds", head + "when = { hours = \"08:00:00-10:00:00\" }\n",
         "jitbox.toml:8:18: roles[0].when.hours: ", "use HH:MM-HH:MM"},
        {"hours starting at 24:00", head + "when = { hours = \"24:00-06:00\" }\n",
         "jitbox.toml:8:18: roles[0].when.hours: ", "a window cannot start at 24:00"},
        {"hours with start equal to end", head + "when = { hours = \"08:00-08:00\" }\n",
         "jitbox.toml:8:18: roles[0].when.hours: ", "the start equals the end"},
        {"hours with an offset", head + "when = { hours = \"08:00+01:00-19:00+01:00\" }\n",
         "jitbox.toml:8:18: roles[0].when.hours: ",
         "hours are local times without a UTC offset"},
        {"hours with a negative offset",
         head + "when = { hours = \"08:00-05:00-19:00-05:00\" }\n",
         "jitbox.toml:8:18: roles[0].when.hours: ", "without a UTC offset"},
        {"hours in UTC", head + "when = { hours = \"08:00Z-19:00Z\" }\n",
         "jitbox.toml:8:18: roles[0].when.hours: ", "without a UTC offset"},
        {"hours with a date", head + "when = { hours = \"2026-03-29 08:00-19:00\" }\n",
         "jitbox.toml:8:18: roles[0].when.hours: ",
         "hours are times of day without a date, choose days with days"},
        {"hours with a date and time", head + "when = { hours = \"2026-03-29T08:00-19:00\" }\n",
         "jitbox.toml:8:18: roles[0].when.hours: ", "without a date"},
        {"hours as a TOML time", head + "when = { hours = 08:00:00 }\n",
         "jitbox.toml:8:18: roles[0].when.hours: ",
         "expected a string such as \"08:00-19:00\""},
        {"unknown time zone",
         head + "when = { days = [\"mon\"], timezone = \"Europe/Berln\" }\n",
         "jitbox.toml:8:37: roles[0].when.timezone: ", "unknown time zone \"Europe/Berln\""},
        {"empty time zone", head + "when = { days = [\"mon\"], timezone = \"\" }\n",
         "jitbox.toml:8:37: roles[0].when.timezone: ", "unknown time zone \"\""},
        {"unknown day", head + "when = { days = [\"mon\", \"monday\"] }\n",
         "jitbox.toml:8:25: roles[0].when.days[1]: ",
         "unknown day \"monday\": use mon, tue, wed, thu, fri, sat or sun"},
        {"upper-case day", head + "when = { days = [\"Mon\"] }\n",
         "jitbox.toml:8:18: roles[0].when.days[0]: ", "unknown day \"Mon\""},
        {"empty days", head + "when = { days = [] }\n",
         "jitbox.toml:8:17: roles[0].when.days: ", "an empty days list matches no day"},
        {"window without days or hours", head + "when = { timezone = \"UTC\" }\n",
         "jitbox.toml:8:8: roles[0].when: ", "a window needs days, hours or both"},

        // Attributes and labels.
        {"attribute name with equals sign", head + "attributes = { \"A=B\" = \"1\" }\n",
         "jitbox.toml:8:16: roles[0].attributes.\"A=B\": ",
         "invalid environment variable name"},
        {"attribute value not a string", head + "attributes = { CI = true }\n",
         "jitbox.toml:8:21: roles[0].attributes.CI: ", "expected a string, found boolean"},
        {"attributes_from_env with an empty name",
         "[policy]\nattributes_from_env = [\"CI\", \"\"]\n",
         "jitbox.toml:2:30: policy.attributes_from_env[1]: ",
         "invalid environment variable name"},
        {"template_labels with an empty key", head + "template_labels = { \"\" = \"x\" }\n",
         "jitbox.toml:8:21: roles[0].template_labels.\"\": ", "a label key must not be empty"},

        // Tables defined twice; toml++ reports these as parse errors with their position.
        {"when table defined twice", head + "when = { days = [\"mon\"] }\n[roles.when]\n",
         "jitbox.toml:9:1: ", "invalid TOML: "},
        {"when defined by dotted keys and a table",
         head + "when.days = [\"mon\"]\n[roles.when]\nhours = \"08:00-09:00\"\n",
         "jitbox.toml:9:1: ", "invalid TOML: "},
        {"policy table defined twice", "[policy]\nmax_ttl = \"1h\"\n[policy]\n",
         "jitbox.toml:3:1: ", "invalid TOML: "},
        {"policy defined by a dotted key and a table", "policy.max_ttl = \"1h\"\n[policy]\n",
         "jitbox.toml:2:1: ", "invalid TOML: "},
        {"dotted key redefined", head + "when.hours = \"08:00-09:00\"\nwhen.hours = \"x\"\n",
         "jitbox.toml:9:", "invalid TOML: "},
    };
    for (const Case& c : cases) {
        CAPTURE(c.name);
        const auto config = parse_config(c.text, "jitbox.toml");
        REQUIRE_FALSE(config.ok());
        const std::string& message = config.error().message;
        CAPTURE(message);
        CHECK(config.error().code == ExitCode::usage);
        CHECK(starts_with(message, c.prefix));
        CHECK(contains(message, c.fragment));
        CHECK_FALSE(contains(message, "\n"));
    }
}

} // TEST_SUITE("config policy")

} // namespace jitbox
