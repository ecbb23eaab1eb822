// Matching a rule against a request: members, templates, actions and the conditions of
// `when`, `template_labels`, `max_requested_ttl` and `attributes`.

#include "evaluation.hpp"

#include "jitbox/policy/glob.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace jitbox::policy_detail {
namespace {

std::string spoofable_attribute(std::string_view name, std::string_view value) {
    return fmt::format("attribute {}={} (from the environment, spoofable)", name, value);
}

bool member_matches(const Member& member, const Evaluation& eval) {
    switch (member.kind) {
    case Member::Kind::user:
        return member.value == eval.requester.user;
    case Member::Kind::uid:
        return member.value == eval.uid_text;
    case Member::Kind::group:
        return std::find(eval.requester.groups.begin(), eval.requester.groups.end(),
                         member.value) != eval.requester.groups.end();
    }
    return false;
}

// Counts the outcome of one condition and, with Notes::format, adds the note that `describe`
// returns to the matched or missed ones.
template <typename Describe>
void record(ConditionCheck& check, Notes notes, bool matched, Describe describe) {
    if (!matched) {
        ++check.missed_count;
    }
    if (notes == Notes::format) {
        (matched ? check.matched : check.missed).push_back(describe());
    }
}

WindowCheck make_window_check(const TimeWindow& window, TimePoint now) {
    const auto status = window_status(window, now);
    const std::string name = to_string(window);
    WindowCheck check;
    if (!status) {
        check.note = fmt::format("window {} cannot be evaluated: {}", name, status.error().message);
        return check;
    }
    check.status = *status;
    check.open = status->open;
    if (status->open) {
        check.note = status->end ? fmt::format("window {} is open until {}", name, status->end_text)
                                 : fmt::format("window {} is always open", name);
    } else if (status->next_start) {
        check.note =
            fmt::format("window {} is closed and opens next {}", name, status->next_start_text);
    } else {
        check.note = fmt::format("window {} is closed", name);
    }
    return check;
}

void check_window(const TimeWindow& window, Evaluation& eval, OnWindowError on_error,
                  Notes notes, ConditionCheck& check) {
    WindowKey key{window.timezone, 0, window.start_minute.value_or(-1),
                  window.end_minute.value_or(-1)};
    for (const int day : window.days) {
        key.days |= 1U << day;
    }
    auto found = eval.windows.find(key);
    if (found == eval.windows.end()) {
        found =
            eval.windows.emplace(std::move(key), make_window_check(window, eval.request.now)).first;
    }

    const WindowCheck& window_check = found->second;
    const auto note = [&window_check] { return window_check.note; };
    if (!window_check.status) {
        record(check, notes, on_error == OnWindowError::match, note);
        return;
    }
    check.window = &*window_check.status;
    record(check, notes, window_check.open, note);
}

// The note for the label `key` that a rule expects to be `value` on `spec`.
std::string describe_label(const Template& spec, const std::string& key,
                           const std::string& value) {
    const auto label = spec.labels.find(key);
    if (label == spec.labels.end()) {
        return fmt::format("template {} has no label {}={}", spec.name, key, value);
    }
    if (label->second != value) {
        return fmt::format("template {} has label {}={}, not {}={}", spec.name, key,
                           label->second, key, value);
    }
    return fmt::format("template label {}={}", key, value);
}

void check_labels(const Conditions& conditions, const Template& spec, Notes notes,
                  ConditionCheck& check) {
    for (const auto& expected : conditions.template_labels) {
        const auto label = spec.labels.find(expected.first);
        const bool matched = label != spec.labels.end() && label->second == expected.second;
        record(check, notes, matched,
               [&] { return describe_label(spec, expected.first, expected.second); });
    }
}

bool is_read_from_env(const std::string& name, const Evaluation& eval) {
    return std::any_of(eval.layers.begin(), eval.layers.end(), [&](const PolicyLayer& layer) {
        const auto& names = layer.policy.attribute_env;
        return std::find(names.begin(), names.end(), name) != names.end();
    });
}

// The note for attribute `name` that the rule expects to be `value`. `actual` is the request's
// value, or null when the request does not set it.
std::string describe_attribute(const std::string& name, const std::string& value,
                               const std::string* actual, const Evaluation& eval) {
    if (actual == nullptr) {
        return is_read_from_env(name, eval)
                   ? fmt::format("attribute {} is not set, {}={} is expected", name, name, value)
                   : fmt::format("attribute {} is not set because no [policy] "
                                 "attributes_from_env lists it, {}={} is expected",
                                 name, name, value);
    }
    if (*actual != value) {
        return fmt::format("{}, {}={} is expected", spoofable_attribute(name, *actual), name,
                           value);
    }
    return spoofable_attribute(name, value);
}

void check_attributes(const Conditions& conditions, const Evaluation& eval, Notes notes,
                      ConditionCheck& check) {
    for (const auto& expected : conditions.attributes) {
        const auto attribute = eval.requester.attributes.find(expected.first);
        const std::string* actual =
            attribute == eval.requester.attributes.end() ? nullptr : &attribute->second;
        record(check, notes, actual != nullptr && *actual == expected.second,
               [&] { return describe_attribute(expected.first, expected.second, actual, eval); });
    }
}

} // namespace

std::string with_origin(std::string text, const std::string& origin) {
    if (!origin.empty()) {
        text += fmt::format(" ({})", origin);
    }
    return text;
}

std::string describe(const Role& role) {
    return with_origin(fmt::format("role {}", role.name), role.origin);
}

std::string describe(const DenyRule& rule) {
    return with_origin(fmt::format("deny rule {}", rule.name), rule.origin);
}

std::string join_members(const std::vector<Member>& members, std::string_view separator) {
    return join(members, separator, [](const Member& member) { return to_string(member); });
}

std::string join_lines(const std::vector<std::string>& lines, std::string_view separator) {
    return join(lines, separator, [](const std::string& line) { return line; });
}

bool has_ttl(Action action) {
    return action == Action::up || action == Action::extend;
}

const Member* find_member(const std::vector<Member>& members, const Evaluation& eval) {
    const auto found = std::find_if(members.begin(), members.end(), [&](const Member& member) {
        return member_matches(member, eval);
    });
    return found == members.end() ? nullptr : &*found;
}

const std::string* find_glob(const std::vector<std::string>& globs, std::string_view name) {
    const auto found = std::find_if(globs.begin(), globs.end(), [&](const std::string& glob) {
        return glob_matches(glob, name);
    });
    return found == globs.end() ? nullptr : &*found;
}

bool allows_action(const std::set<Action>& actions, Action action) {
    return actions.empty() || actions.count(action) != 0;
}

bool role_allows_action(const Role& role, Action action) {
    if (role.actions.empty()) {
        return is_own_sandbox_action(action);
    }
    return role.actions.count(action) != 0;
}

ConditionCheck check_conditions(const Conditions& conditions, Evaluation& eval,
                                std::optional<Seconds> requested_ttl, OnWindowError on_error,
                                Notes notes) {
    ConditionCheck check;
    if (conditions.when) {
        check_window(*conditions.when, eval, on_error, notes, check);
    }
    check_labels(conditions, eval.spec, notes, check);
    if (const auto limit = conditions.max_requested_ttl; limit && requested_ttl) {
        const bool within = *requested_ttl <= *limit;
        record(check, notes, within, [&] {
            return fmt::format("ttl {} is {} its max_requested_ttl {}",
                               format_duration(*requested_ttl), within ? "within" : "above",
                               format_duration(*limit));
        });
    }
    check_attributes(conditions, eval, notes, check);
    return check;
}

std::optional<Seconds> ttl_under(const Role* role, const Evaluation& eval) {
    if (!has_ttl(eval.request.action)) {
        return std::nullopt;
    }
    if (eval.request.ttl) {
        return eval.request.ttl;
    }
    if (role != nullptr && role->ttl) {
        return role->ttl;
    }
    return eval.spec.ttl;
}

} // namespace jitbox::policy_detail
