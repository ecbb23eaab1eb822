#include "jitbox/util/time.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace jitbox {

TEST_SUITE("time") {

TEST_CASE("parse_duration accepts valid durations") {
    struct Case {
        std::string text;
        Seconds expected;
    };
    const std::vector<Case> cases{
        {"0s", 0s},
        {"90s", 90s},
        {"30m", 30min},
        {"1h", 1h},
        {"1h30m", 90min},
        {"2d", 48h},
        {"1d2h3m4s", 24h + 2h + 3min + 4s},
        {"90m", 90min},
        {"007m", 7min},
        {"36500d", 36500 * 24h},
    };
    for (const Case& c : cases) {
        CAPTURE(c.text);
        const auto duration = parse_duration(c.text);
        REQUIRE(duration.ok());
        CHECK(*duration == c.expected);
    }
}

TEST_CASE("parse_duration rejects invalid durations") {
    struct Case {
        std::string text;
        std::string fragment;
    };
    const std::vector<Case> cases{
        {"", "use a number with a unit"},
        {"5x", "use a number with a unit (d, h, m, s), such as 30m or 1h30m"},
        {"90", "add a unit (d, h, m, s) after 90, such as 90m"},
        {"1h30", "after 30"},
        {"-5m", "remove the sign"},
        {"+5m", "remove the sign"},
        {"1.5h", "use whole numbers"},
        {"1,5h", "use whole numbers"},
        {"30m1h", "in the order d, h, m, s"},
        {"1h1h", "each at most once"},
        {"m", "use a number with a unit"},
        {"5 m", "use a number with a unit"},
        {" 5m", "use a number with a unit"},
        {"5M", "use a number with a unit"},
        {"36501d", "the maximum is 36500d"},
        {"36500d1s", "the maximum is 36500d"},
        {"99999999999999999999999s", "the maximum is 36500d"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.text);
        const auto duration = parse_duration(c.text);
        REQUIRE_FALSE(duration.ok());
        CHECK(duration.error().code == ExitCode::usage);
        CHECK(duration.error().message.find("invalid duration \"" + c.text + "\": ") == 0);
        CHECK(duration.error().message.find(c.fragment) != std::string::npos);
    }
}

TEST_CASE("format_duration output") {
    CHECK(format_duration(0s) == "0s");
    CHECK(format_duration(45s) == "45s");
    CHECK(format_duration(90min) == "1h30m");
    CHECK(format_duration(51h) == "2d3h");
    CHECK(format_duration(24h + 1s) == "1d1s");
    CHECK(format_duration(-90s) == "-1m30s");
}

TEST_CASE("format_duration round-trips through parse_duration") {
    for (const Seconds duration : {0s, 1s, 59s, 60s, 3599s, 3600s, 86399s, 86400s, 1234567s}) {
        CAPTURE(duration.count());
        const auto parsed = parse_duration(format_duration(duration));
        REQUIRE(parsed.ok());
        CHECK(*parsed == duration);
    }
}

TEST_CASE("format_rfc3339 output") {
    CHECK(format_rfc3339(TimePoint{}) == "1970-01-01T00:00:00Z");
    CHECK(format_rfc3339(TimePoint{1796402428s}) == "2026-12-04T16:40:28Z");
    const TimePoint leap_day = std::chrono::sys_days{std::chrono::year{2024} / 2 / 29} + 23h +
                               59min + 59s;
    CHECK(format_rfc3339(leap_day) == "2024-02-29T23:59:59Z");
}

TEST_CASE("parse_rfc3339 accepts valid times") {
    const TimePoint expected{1796402428s};
    struct Case {
        std::string text;
        TimePoint expected;
    };
    const std::vector<Case> cases{
        {"2026-12-04T16:40:28Z", expected},
        {"2026-12-04t16:40:28z", expected},
        {"2026-12-04 16:40:28Z", expected},
        {"2026-12-04T16:40:28.999999Z", expected},
        {"2026-12-04T18:40:28+02:00", expected},
        {"2026-12-04T11:10:28-05:30", expected},
        {"2026-12-04T16:40:28.5+00:00", expected},
        {"2026-12-04T16:40:60Z", expected + 32s},
        {"1970-01-01T00:00:00Z", TimePoint{}},
    };
    for (const Case& c : cases) {
        CAPTURE(c.text);
        const auto time = parse_rfc3339(c.text);
        REQUIRE(time.ok());
        CHECK(*time == c.expected);
    }
}

TEST_CASE("parse_rfc3339 rejects invalid times") {
    const std::vector<std::string> cases{
        "",
        "2026-12-04",
        "2026-12-04T16:40:28",
        "2026-12-04T16:40Z",
        "2026-12-04T16:40:28.Z",
        "2026-12-04T16:40:28+0200",
        "2026-12-04T16:40:28+02",
        "2026-12-04T16:40:28Zjunk",
        "2026-13-04T16:40:28Z",
        "2026-02-30T16:40:28Z",
        "2026-12-04T24:00:00Z",
        "2026-12-04T16:60:00Z",
        "2026-12-04T16:40:61Z",
        "2026-12-04T16:40:28+24:00",
        "26-12-04T16:40:28Z",
        "2026-12-04X16:40:28Z",
    };
    for (const std::string& text : cases) {
        CAPTURE(text);
        const auto time = parse_rfc3339(text);
        REQUIRE_FALSE(time.ok());
        CHECK(time.error().code == ExitCode::usage);
        CHECK(time.error().message.find("invalid time \"" + text + "\"") == 0);
        CHECK(time.error().message.find("2026-12-04T16:40:28Z") != std::string::npos);
    }
}

TEST_CASE("rfc3339 round-trip") {
    for (const TimePoint time :
         {TimePoint{}, TimePoint{1796402428s}, TimePoint{951782400s}, TimePoint{4102444799s}}) {
        const std::string text = format_rfc3339(time);
        CAPTURE(text);
        const auto parsed = parse_rfc3339(text);
        REQUIRE(parsed.ok());
        CHECK(*parsed == time);
    }
}

TEST_CASE("SystemClock now is close to system_clock") {
    const auto before = std::chrono::floor<Seconds>(std::chrono::system_clock::now());
    const TimePoint now = SystemClock{}.now();
    const auto after = std::chrono::floor<Seconds>(std::chrono::system_clock::now());
    CHECK(now >= before);
    CHECK(now <= after);
}

} // TEST_SUITE("time")

} // namespace jitbox
