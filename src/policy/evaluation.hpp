#pragma once

// The state of one evaluate() call and the checks that match a rule against a request, private
// to src/policy. conditions.cpp defines the checks and evaluate.cpp decides with them.

#include "jitbox/policy/policy.hpp"
#include "jitbox/policy/window.hpp"

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jitbox::policy_detail {

// A time window by value. Rules often repeat the same window, and converting through a time
// zone and formatting the result costs microseconds, so each distinct window is evaluated once.
struct WindowKey {
    std::string timezone;
    unsigned days = 0; // bit d set: day d (0 = Sunday) is listed
    int start_minute = -1;
    int end_minute = -1;

    auto operator<=>(const WindowKey&) const = default;
};

// A window evaluated at the request's `now`, with its words for the explanation.
struct WindowCheck {
    std::optional<WindowStatus> status; // unset when the time zone cannot be loaded
    bool open = false;
    std::string note; // "window mon-fri 08:00-19:00 UTC is open until ..."
};

// The inputs of one evaluate() call, the decision it builds and the windows evaluated so far.
struct Evaluation {
    const std::vector<PolicyLayer>& layers;
    const Requester& requester;
    const AccessRequest& request;
    const Template& spec;
    std::string uid_text;
    Decision decision;
    std::map<WindowKey, WindowCheck> windows;
};

// Whether a check formats a note for each condition. Deciding needs only the outcome, so notes
// are formatted only for the rules that the explanation or a message reports.
enum class Notes { skip, format };

// The outcome of the conditions of a rule, and with Notes::format the conditions that matched
// and that missed, in words for the explanation.
struct ConditionCheck {
    std::size_t missed_count = 0; // counted with either Notes value
    std::vector<std::string> matched;
    std::vector<std::string> missed;
    const WindowStatus* window = nullptr; // set when the rule has a window that was evaluated
};

// The outcome of a window that cannot be evaluated. A deny rule fails closed, so for it the
// window matches.
enum class OnWindowError { match, miss };

// ---- words ----

std::string describe(const Role& role);     // "role dev (jitbox.toml:12:1)"
std::string describe(const DenyRule& rule); // "deny rule x (jitbox.toml:20:1)"
// "TEXT (ORIGIN)", or TEXT alone when the origin is unknown, such as for a template that the
// configuration no longer defines.
std::string with_origin(std::string text, const std::string& origin);

template <typename Items, typename Format>
std::string join(const Items& items, std::string_view separator, Format format) {
    std::string text;
    for (const auto& item : items) {
        text += text.empty() ? "" : separator;
        text += format(item);
    }
    return text;
}

std::string join_members(const std::vector<Member>& members, std::string_view separator);
std::string join_lines(const std::vector<std::string>& lines, std::string_view separator);

// True for the actions that set a deadline (up, extend) and so have ttl bounds.
bool has_ttl(Action action);

// ---- matching ----

// The first of `members` that the requester is, or null.
const Member* find_member(const std::vector<Member>& members, const Evaluation& eval);

// The first of `globs` that matches `name`, or null.
const std::string* find_glob(const std::vector<std::string>& globs, std::string_view name);

// True when `actions` is empty (every action) or contains `action`. Deny rules use it.
bool allows_action(const std::set<Action>& actions, Action action);

// True when the role names `action`, or names no actions and `action` is one on the
// requester's own sandboxes.
bool role_allows_action(const Role& role, Action action);

// Checks the conditions of a rule. `requested_ttl` is the ttl the request would get under that
// rule, unset for actions without a ttl.
ConditionCheck check_conditions(const Conditions& conditions, Evaluation& eval,
                                std::optional<Seconds> requested_ttl, OnWindowError on_error,
                                Notes notes);

// The ttl a request gets under `role` (null: no role) before bounds: requested, else the
// role's default, else the template's. Unset for actions without a ttl.
std::optional<Seconds> ttl_under(const Role* role, const Evaluation& eval);

} // namespace jitbox::policy_detail
