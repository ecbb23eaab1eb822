#pragma once

#include "jitbox/policy/rules.hpp"
#include "jitbox/util/result.hpp"
#include "jitbox/util/time.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace jitbox {

/// The state of a TimeWindow at one moment.
struct WindowStatus {
    bool open = false;
    /// When open: the end of the window. Windows of the following days that start before it
    /// ends extend it. Unset when the window never closes (every day, all day).
    std::optional<TimePoint> end;
    /// When closed: the next opening within the coming 8 days, if there is one.
    std::optional<TimePoint> next_start;
    std::string end_text;        // `end` as local time, such as "Mon 2026-03-30 19:00 CEST"
    std::string next_start_text; // `next_start` in the same form
};

/// Computes whether `window` is open at `now`, converting through the window's time zone.
/// Local window bounds that do not exist (skipped by a DST change) map to the moment of the
/// change. Ambiguous ones (repeated by a DST change) resolve to the earlier instant for a
/// start and the later one for an end, so the window covers every instant whose local time
/// reads inside it. Fails with ExitCode::usage when the time zone is unknown.
Result<WindowStatus> window_status(const TimeWindow& window, TimePoint now);

/// True when `name` is a time zone of the system tz database, such as "Europe/Berlin".
bool is_known_time_zone(std::string_view name);

} // namespace jitbox
