// Spellings of the policy rule values: actions, members and time windows.

#include "jitbox/policy/rules.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>

namespace jitbox {
namespace {

constexpr std::string_view k_member_hint = "use user:NAME, group:NAME or uid:NUMBER";

// uid_t is 32 bits on Linux, and (uid_t)-1 means "no uid" to setreuid() and chown().
constexpr std::uint64_t k_max_uid = std::numeric_limits<std::uint32_t>::max() - 1;

Failure member_failure(std::string_view text, std::string_view reason) {
    return make_failure(ExitCode::usage, "invalid member \"{}\": {}", text, reason);
}

bool has_space(std::string_view text) {
    return std::any_of(text.begin(), text.end(),
                       [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; });
}

Result<Member> parse_uid_member(std::string_view text, std::string_view digits) {
    std::uint64_t uid = 0;
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), uid);
    const bool all_digits =
        !digits.empty() && end == digits.data() + digits.size() &&
        std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!all_digits) {
        return member_failure(text, "a uid is a decimal number, such as uid:1001");
    }
    if (error == std::errc::result_out_of_range || uid > k_max_uid) {
        return member_failure(text, fmt::format("a uid is at most {}", k_max_uid));
    }
    return Member{Member::Kind::uid, std::to_string(uid)};
}

std::string format_minute(int minute) {
    return fmt::format("{:02}:{:02}", minute / 60, minute % 60);
}

// Days in week order from Monday, with runs of three or more written as "mon-fri".
std::string format_days(const std::set<int>& days) {
    constexpr std::array<int, 7> k_week_from_monday{1, 2, 3, 4, 5, 6, 0};
    std::string text;
    std::size_t i = 0;
    while (i < k_week_from_monday.size()) {
        if (days.count(k_week_from_monday[i]) == 0) {
            ++i;
            continue;
        }
        std::size_t run_end = i;
        while (run_end + 1 < k_week_from_monday.size() &&
               days.count(k_week_from_monday[run_end + 1]) != 0) {
            ++run_end;
        }
        text += text.empty() ? "" : ",";
        text += k_day_names[static_cast<std::size_t>(k_week_from_monday[i])];
        if (run_end - i >= 2) {
            text += "-";
            text += k_day_names[static_cast<std::size_t>(k_week_from_monday[run_end])];
            i = run_end + 1;
        } else {
            ++i;
        }
    }
    return text;
}

} // namespace

std::string_view to_string(Action action) {
    switch (action) {
    case Action::up:
        return "up";
    case Action::down:
        return "down";
    case Action::extend:
        return "extend";
    case Action::exec:
        return "exec";
    case Action::status_all:
        return "status-all";
    case Action::down_others:
        return "down-others";
    }
    return "unknown";
}

bool is_own_sandbox_action(Action action) {
    return action != Action::status_all && action != Action::down_others;
}

std::optional<Action> parse_action(std::string_view name) {
    for (const Action action : k_actions) {
        if (to_string(action) == name) {
            return action;
        }
    }
    return std::nullopt;
}

Result<Member> parse_member(std::string_view text) {
    const std::size_t colon = text.find(':');
    if (colon == std::string_view::npos) {
        return member_failure(text, k_member_hint);
    }
    const std::string_view kind = text.substr(0, colon);
    const std::string_view value = text.substr(colon + 1);
    if (kind == "uid") {
        return parse_uid_member(text, value);
    }
    if (kind != "user" && kind != "group") {
        return member_failure(text, k_member_hint);
    }
    if (value.empty() || has_space(value)) {
        return member_failure(
            text, fmt::format("the {} name must be non-empty and without spaces", kind));
    }
    return Member{kind == "user" ? Member::Kind::user : Member::Kind::group, std::string(value)};
}

std::string to_string(const Member& member) {
    switch (member.kind) {
    case Member::Kind::user:
        return "user:" + member.value;
    case Member::Kind::group:
        return "group:" + member.value;
    case Member::Kind::uid:
        return "uid:" + member.value;
    }
    return member.value;
}

std::string to_string(const TimeWindow& window) {
    std::string text = window.days.empty() ? "every day" : format_days(window.days);
    if (window.start_minute && window.end_minute) {
        text += fmt::format(" {}-{}", format_minute(*window.start_minute),
                            format_minute(*window.end_minute));
    } else {
        text += " all day";
    }
    return fmt::format("{} {}", text, window.timezone);
}

} // namespace jitbox
