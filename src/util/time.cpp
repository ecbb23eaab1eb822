#include "jitbox/util/time.hpp"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <cstdint>
#include <optional>

namespace jitbox {
namespace {

struct DurationUnit {
    char symbol;
    std::int64_t seconds;
};

// Largest first: parse_duration requires this order and format_duration emits it.
constexpr std::array<DurationUnit, 4> k_duration_units{{
    {'d', 24 * 60 * 60},
    {'h', 60 * 60},
    {'m', 60},
    {'s', 1},
}};

// About 100 years. A longer duration is almost certainly a typo, and the bound keeps every sum
// far from overflowing std::int64_t.
constexpr std::int64_t k_max_duration_days = 36500;
constexpr std::int64_t k_max_duration_seconds = k_max_duration_days * 24 * 60 * 60;

constexpr std::string_view k_duration_hint =
    "use a number with a unit (d, h, m, s), such as 30m or 1h30m";

constexpr std::string_view k_time_hint = "use RFC 3339, such as 2026-12-04T16:40:28Z";

Failure duration_failure(std::string_view text, std::string_view reason) {
    return make_failure(ExitCode::usage, "invalid duration \"{}\": {}", text, reason);
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

std::optional<std::size_t> find_duration_unit(char symbol) {
    for (std::size_t i = 0; i < k_duration_units.size(); ++i) {
        if (k_duration_units[i].symbol == symbol) {
            return i;
        }
    }
    return std::nullopt;
}

// Parses one `<number><unit>` part at `position`, advancing `position` past it and
// `next_unit` past its unit, and returns its length in seconds.
Result<std::int64_t> parse_duration_part(std::string_view text, std::size_t& position,
                                         std::size_t& next_unit) {
    std::size_t end = position;
    while (end < text.size() && is_digit(text[end])) {
        ++end;
    }
    const std::string_view digits = text.substr(position, end - position);
    if (digits.empty()) {
        return duration_failure(text, k_duration_hint);
    }
    if (end == text.size()) {
        return duration_failure(
            text, fmt::format("add a unit (d, h, m, s) after {0}, such as {0}m", digits));
    }
    if (text[end] == '.' || text[end] == ',') {
        return duration_failure(text, "use whole numbers, such as 1h30m instead of 1.5h");
    }

    const auto unit = find_duration_unit(text[end]);
    if (!unit) {
        return duration_failure(text, k_duration_hint);
    }
    if (*unit < next_unit) {
        return duration_failure(
            text, "write the units in the order d, h, m, s with each at most once, such as 1h30m");
    }

    std::uint64_t count = 0;
    const auto [parsed_end, error] = std::from_chars(digits.data(), digits.data() + digits.size(),
                                                     count);
    const auto unit_seconds = static_cast<std::uint64_t>(k_duration_units[*unit].seconds);
    const auto max_count = static_cast<std::uint64_t>(k_max_duration_seconds) / unit_seconds;
    if (error != std::errc{} || count > max_count) {
        return duration_failure(
            text, fmt::format("the maximum is {}d (about 100 years)", k_max_duration_days));
    }

    position = end + 1;
    next_unit = *unit + 1;
    return static_cast<std::int64_t>(count * unit_seconds);
}

// A cursor over an RFC 3339 text that reads fixed-width fields.
class TimeReader {
public:
    explicit TimeReader(std::string_view text) : m_text(text) {}

    bool at_end() const { return m_position == m_text.size(); }

    bool read_number(std::size_t width, int& out) {
        if (m_text.size() - m_position < width) {
            return false;
        }
        out = 0;
        for (std::size_t i = 0; i < width; ++i) {
            const char c = m_text[m_position + i];
            if (!is_digit(c)) {
                return false;
            }
            out = out * 10 + (c - '0');
        }
        m_position += width;
        return true;
    }

    // Reads one character if it is one of `expected`, and returns it ('\0' when not).
    char read_one_of(std::string_view expected) {
        if (at_end() || expected.find(m_text[m_position]) == std::string_view::npos) {
            return '\0';
        }
        return m_text[m_position++];
    }

    void skip_fraction() {
        if (at_end() || m_text[m_position] != '.') {
            return;
        }
        std::size_t end = m_position + 1;
        while (end < m_text.size() && is_digit(m_text[end])) {
            ++end;
        }
        // A lone '.' is not a fraction, so it stays and the offset check rejects it.
        if (end > m_position + 1) {
            m_position = end;
        }
    }

private:
    std::string_view m_text;
    std::size_t m_position = 0;
};

struct CivilTime {
    int year = 0;
    int month = 0;
    int day = 0;
    int hour = 0;
    int minute = 0;
    int second = 0;
};

bool read_civil_time(TimeReader& reader, CivilTime& time) {
    return reader.read_number(4, time.year) && reader.read_one_of("-") &&
           reader.read_number(2, time.month) && reader.read_one_of("-") &&
           reader.read_number(2, time.day) && reader.read_one_of("Tt ") &&
           reader.read_number(2, time.hour) && reader.read_one_of(":") &&
           reader.read_number(2, time.minute) && reader.read_one_of(":") &&
           reader.read_number(2, time.second);
}

// Reads `Z` or `+hh:mm` / `-hh:mm` and returns the offset east of UTC.
std::optional<Seconds> read_utc_offset(TimeReader& reader) {
    const char sign = reader.read_one_of("Zz+-");
    if (sign == 'Z' || sign == 'z') {
        return Seconds::zero();
    }
    int hours = 0;
    int minutes = 0;
    const bool complete = sign != '\0' && reader.read_number(2, hours) &&
                          reader.read_one_of(":") && reader.read_number(2, minutes);
    if (!complete || hours > 23 || minutes > 59) {
        return std::nullopt;
    }
    const Seconds offset = std::chrono::hours{hours} + std::chrono::minutes{minutes};
    return sign == '-' ? -offset : offset;
}

} // namespace

Result<Seconds> parse_duration(std::string_view text) {
    if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
        return duration_failure(text, "remove the sign, a duration is never negative");
    }
    if (text.empty()) {
        return duration_failure(text, k_duration_hint);
    }

    std::int64_t total = 0;
    std::size_t position = 0;
    std::size_t next_unit = 0;
    while (position < text.size()) {
        const auto part = parse_duration_part(text, position, next_unit);
        if (!part) {
            return part.error();
        }
        total += *part;
    }
    if (total > k_max_duration_seconds) {
        return duration_failure(
            text, fmt::format("the maximum is {}d (about 100 years)", k_max_duration_days));
    }
    return Seconds{total};
}

std::string format_duration(Seconds duration) {
    if (duration == Seconds::zero()) {
        return "0s";
    }

    std::string text;
    const std::int64_t count = duration.count();
    // Unsigned negation, so the most negative count does not overflow.
    std::uint64_t remaining = static_cast<std::uint64_t>(count);
    if (count < 0) {
        text = "-";
        remaining = 0 - remaining;
    }
    for (const DurationUnit& unit : k_duration_units) {
        const auto unit_seconds = static_cast<std::uint64_t>(unit.seconds);
        if (remaining >= unit_seconds) {
            text += fmt::format("{}{}", remaining / unit_seconds, unit.symbol);
            remaining %= unit_seconds;
        }
    }
    return text;
}

std::string format_rfc3339(TimePoint time) {
    const auto day = std::chrono::floor<std::chrono::days>(time);
    const std::chrono::year_month_day date{day};
    const std::chrono::hh_mm_ss clock{time - day};
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", static_cast<int>(date.year()),
                       static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                       clock.hours().count(), clock.minutes().count(), clock.seconds().count());
}

Result<TimePoint> parse_rfc3339(std::string_view text) {
    TimeReader reader(text);
    CivilTime civil;
    if (!read_civil_time(reader, civil)) {
        return make_failure(ExitCode::usage, "invalid time \"{}\": {}", text, k_time_hint);
    }
    reader.skip_fraction();
    const auto offset = read_utc_offset(reader);
    if (!offset || !reader.at_end()) {
        return make_failure(ExitCode::usage, "invalid time \"{}\": {}", text, k_time_hint);
    }

    const std::chrono::year_month_day date{std::chrono::year{civil.year},
                                           std::chrono::month{static_cast<unsigned>(civil.month)},
                                           std::chrono::day{static_cast<unsigned>(civil.day)}};
    if (!date.ok() || civil.hour > 23 || civil.minute > 59 || civil.second > 60) {
        return make_failure(ExitCode::usage, "invalid time \"{}\": a field is out of range, {}",
                            text, k_time_hint);
    }
    const TimePoint local = std::chrono::sys_days{date} + std::chrono::hours{civil.hour} +
                            std::chrono::minutes{civil.minute} + Seconds{civil.second};
    return local - *offset;
}

TimePoint SystemClock::now() const {
    return std::chrono::floor<Seconds>(std::chrono::system_clock::now());
}

} // namespace jitbox
