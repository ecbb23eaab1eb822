#pragma once

#include "jitbox/util/result.hpp"

#include <chrono>
#include <string>
#include <string_view>

namespace jitbox {

using Seconds = std::chrono::seconds;
using TimePoint = std::chrono::sys_seconds; // wall-clock time, whole seconds, UTC

/// Parses a duration such as `90s`, `30m`, `1h30m` or `2d`: one or more whole numbers, each
/// followed by a unit (d, h, m, s) in that order, each unit at most once. A sign, a bare
/// number, fractions and values above 36500 days (about 100 years) are rejected with
/// ExitCode::usage. `0s` parses to zero, so callers that need a positive duration check that.
Result<Seconds> parse_duration(std::string_view text);

/// Formats a duration compactly (`1h30m`, `2d3h`, `45s`, `0s`), the inverse of parse_duration.
/// A negative duration gets a leading `-`, which parse_duration rejects.
std::string format_duration(Seconds duration);

/// Formats a time as RFC 3339 in UTC with a `Z` suffix, for labels, state and JSON.
std::string format_rfc3339(TimePoint time);

/// Parses an RFC 3339 time with a `Z` or numeric offset. Fractional seconds are truncated, and
/// a leap second (`:60`) becomes the first second of the next minute. Failures are
/// ExitCode::usage.
Result<TimePoint> parse_rfc3339(std::string_view text);

/// The source of "now", so tests can fix it.
class Clock {
public:
    virtual ~Clock() = default;
    virtual TimePoint now() const = 0;
};

class SystemClock final : public Clock {
public:
    TimePoint now() const override;
};

} // namespace jitbox
