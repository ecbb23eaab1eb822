// Time windows of policy rules, evaluated in their own time zone through the system tz database
// (Howard Hinnant's date library, which GCC 12's <chrono> lacks).

#include "jitbox/policy/window.hpp"

#include <date/tz.h>
#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace jitbox {
namespace {

using LocalSeconds = date::local_seconds;
using LocalDays = date::local_days;

constexpr int k_minutes_per_day = 24 * 60;

// A window's start day is the day before "today" when it crosses midnight, and merging the
// following days looks one week ahead, so this many days always cover a whole week's openings.
constexpr int k_days_to_search = 8;

struct Interval {
    TimePoint start;
    TimePoint end;
};

Result<const date::time_zone*> find_zone(const std::string& name) {
    try {
        return date::locate_zone(name);
    } catch (const std::runtime_error& error) {
        return make_failure(ExitCode::usage, "unknown time zone \"{}\": {}", name, error.what());
    }
}

bool is_listed_day(const TimeWindow& window, LocalDays day) {
    if (window.days.empty()) {
        return true;
    }
    const auto weekday = static_cast<int>(date::weekday(day).c_encoding());
    return window.days.count(weekday) != 0;
}

// The window that starts on local day `day`, as instants. A start that DST makes ambiguous
// takes its earlier instant and an end its later one, the widest reading. For a local time
// that DST skips, both choices return the instant of the change.
Interval interval_on(const TimeWindow& window, const date::time_zone& zone, LocalDays day) {
    const int start_minute = window.start_minute.value_or(0);
    int end_minute = window.end_minute.value_or(k_minutes_per_day);
    if (end_minute <= start_minute) {
        end_minute += k_minutes_per_day;
    }
    const LocalSeconds local_start = day + std::chrono::minutes(start_minute);
    const LocalSeconds local_end = day + std::chrono::minutes(end_minute);
    return Interval{zone.to_sys(local_start, date::choose::earliest),
                    zone.to_sys(local_end, date::choose::latest)};
}

std::string format_local(const date::time_zone& zone, TimePoint time) {
    const date::zoned_seconds local{&zone, time};
    std::string text = date::format("%a %Y-%m-%d %H:%M", local);
    const std::string abbreviation = local.get_info().abbrev;
    if (abbreviation != zone.name()) {
        text += " " + abbreviation;
    }
    return fmt::format("{} {}", text, zone.name());
}

// Extends the open interval that started on `day` through the windows of the following days
// that start before it ends. Returns false when it never ends, because a window on every one of
// the following days continues it.
bool merge_following_days(const TimeWindow& window, const date::time_zone& zone, LocalDays day,
                          TimePoint& end) {
    for (int k = 1; k < k_days_to_search; ++k) {
        const LocalDays next = day + date::days(k);
        if (!is_listed_day(window, next)) {
            return true;
        }
        const Interval following = interval_on(window, zone, next);
        if (following.start > end) {
            return true;
        }
        end = std::max(end, following.end);
    }
    return false;
}

WindowStatus open_status(const TimeWindow& window, const date::time_zone& zone, LocalDays day,
                         TimePoint end) {
    WindowStatus status;
    status.open = true;
    if (merge_following_days(window, zone, day, end)) {
        status.end = end;
        status.end_text = format_local(zone, end);
    }
    return status;
}

} // namespace

Result<WindowStatus> window_status(const TimeWindow& window, TimePoint now) {
    const auto zone = find_zone(window.timezone);
    if (!zone) {
        return zone.error();
    }
    const date::time_zone& tz = **zone;
    const LocalDays today = date::floor<date::days>(tz.to_local(now));

    // A window that started yesterday may cross midnight into today.
    for (const LocalDays day : {today - date::days(1), today}) {
        if (!is_listed_day(window, day)) {
            continue;
        }
        const Interval interval = interval_on(window, tz, day);
        if (interval.start <= now && now < interval.end) {
            return open_status(window, tz, day, interval.end);
        }
    }

    WindowStatus status;
    for (int k = 0; k < k_days_to_search; ++k) {
        const LocalDays day = today + date::days(k);
        if (!is_listed_day(window, day)) {
            continue;
        }
        const Interval interval = interval_on(window, tz, day);
        if (interval.start > now && interval.start < interval.end) {
            status.next_start = interval.start;
            status.next_start_text = format_local(tz, interval.start);
            break;
        }
    }
    return status;
}

bool is_known_time_zone(std::string_view name) {
    return find_zone(std::string(name)).ok();
}

} // namespace jitbox
