// Deciding a request against the policy layers. The steps run in a fixed order (deny rules,
// break-glass reason, the roles of each layer, ttl bounds) and each appends to the explanation,
// so `jitbox policy explain` can show why a request was allowed or denied. Matching formats no
// text. Words are formatted only for the rules that the explanation or a message reports, and
// those are capped per layer, so the cost of a decision grows linearly with the number of rules
// (bench/run_policy.sh measures it).

#include "jitbox/policy/policy.hpp"

#include "evaluation.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <span>
#include <utility>

namespace jitbox {
namespace {

using namespace policy_detail;

constexpr std::size_t k_max_near_misses = 3;

// Per layer, the explanation lists this many matching roles, and this many deny rules that cover
// the request but do not apply to it, and only counts the rest.
constexpr std::size_t k_max_listed_rules = 20;

// A role whose members, templates, actions and conditions all match the request.
struct RoleMatch {
    const Role* role = nullptr;
    const Member* member = nullptr;
    const std::string* glob = nullptr;
    const WindowStatus* window = nullptr; // set when the role has a window that was evaluated
    std::optional<Seconds> limit;         // role_limit() of the role
    bool listed = false;                  // the explanation has its line already
};

// The role that grants a request in a layer that has roles.
struct Grant {
    const PolicyLayer* layer = nullptr;
    RoleMatch match;
};

// One upper limit on the ttl and where it comes from.
struct Bound {
    Seconds limit;
    std::string source; // for messages: "role dev (jitbox.toml:12:1)"
    std::string detail; // for the explanation: "role dev max_ttl 2h"
};

// ---- words ----

std::string describe_request(const Evaluation& eval) {
    const Requester& requester = eval.requester;
    const AccessRequest& request = eval.request;
    std::string text = fmt::format("request: {} {}", to_string(request.action), eval.spec.name);
    if (has_ttl(request.action)) {
        text += request.ttl ? fmt::format(" for {}", format_duration(*request.ttl))
                            : std::string(" with the default ttl");
    }
    text += fmt::format(" by {} (uid {}", requester.user, requester.uid);
    if (!requester.groups.empty()) {
        text += fmt::format(", groups {}", join_lines(requester.groups, ", "));
    }
    text += ")";
    if (!request.reason.empty()) {
        text += fmt::format(", reason \"{}\"", request.reason);
    }
    if (request.break_glass) {
        text += ", break-glass";
    }
    return text;
}

// "1 more role matches" or "3 more roles match", given the singular and plural wording.
std::string count_more(std::size_t count, std::string_view singular, std::string_view plural) {
    return fmt::format("{} more {}", count, count == 1 ? singular : plural);
}

// ---- outcomes ----

bool deny(Evaluation& eval, std::string rule, std::string message) {
    eval.decision.allowed = false;
    eval.decision.rule = std::move(rule);
    eval.decision.explanation.push_back("denied: " + message);
    eval.decision.message = std::move(message);
    return false;
}

void explain(Evaluation& eval, std::string line) {
    eval.decision.explanation.push_back(std::move(line));
}

// ---- deny rules ----

std::string deny_message(const DenyRule& rule, const Evaluation& eval) {
    std::string message = fmt::format("{} denies {} {}", describe(rule),
                                      to_string(eval.request.action), eval.spec.name);
    if (!rule.reason.empty()) {
        message += ": " + rule.reason;
    }
    if (!rule.unless_members.empty()) {
        message += fmt::format(" (ask a member of {})", join_members(rule.unless_members, " or "));
    }
    return message;
}

// Counts the deny rules of one layer that cover the request but do not apply to it.
struct SkippedDenies {
    std::size_t listed = 0;   // explained, up to k_max_listed_rules
    std::size_t unlisted = 0; // only counted
};

// Adds the line that `make_line` formats, unless the layer's list of skipped deny rules is full.
template <typename MakeLine>
void explain_skipped(Evaluation& eval, SkippedDenies& skipped, MakeLine make_line) {
    if (skipped.listed == k_max_listed_rules) {
        ++skipped.unlisted;
        return;
    }
    ++skipped.listed;
    explain(eval, make_line());
}

// Returns false, with the decision filled in, when a deny rule matches the request.
bool passes_deny_rule(const DenyRule& rule, Evaluation& eval, SkippedDenies& skipped) {
    if ((!rule.templates.empty() && find_glob(rule.templates, eval.spec.name) == nullptr) ||
        !allows_action(rule.actions, eval.request.action) ||
        (!rule.members.empty() && find_member(rule.members, eval) == nullptr)) {
        return true;
    }
    if (const Member* exempt = find_member(rule.unless_members, eval)) {
        explain_skipped(eval, skipped, [&] {
            return fmt::format("{} does not apply: {} is exempt as {}", describe(rule),
                               eval.requester.user, to_string(*exempt));
        });
        return true;
    }
    const auto check = [&](Notes notes) {
        return check_conditions(rule.conditions, eval, ttl_under(nullptr, eval),
                                OnWindowError::match, notes);
    };
    if (check(Notes::skip).missed_count > 0) {
        explain_skipped(eval, skipped, [&] {
            return fmt::format("{} does not apply: {}", describe(rule),
                               join_lines(check(Notes::format).missed, ", "));
        });
        return true;
    }
    for (const std::string& note : check(Notes::format).matched) {
        explain(eval, fmt::format("{} matches: {}", describe(rule), note));
    }
    return deny(eval, describe(rule), deny_message(rule, eval));
}

bool passes_deny_rules(const std::vector<PolicyLayer>& layers, Evaluation& eval) {
    for (const PolicyLayer& layer : layers) {
        SkippedDenies skipped;
        for (const DenyRule& rule : layer.policy.denies) {
            if (!passes_deny_rule(rule, eval, skipped)) {
                return false;
            }
        }
        if (skipped.unlisted > 0) {
            explain(eval, fmt::format("{}: and {}", layer.source,
                                      count_more(skipped.unlisted, "deny rule does not apply",
                                                 "deny rules do not apply")));
        }
    }
    return true;
}

// ---- roles ----

// The largest ttl a matching role can grant this request: its max_ttl, its
// break_glass_max_ttl for a break-glass request and the time left in its window. Unset when
// the role sets no bound.
std::optional<Seconds> role_limit(const Role& role, const WindowStatus* window,
                                  const AccessRequest& request) {
    std::optional<Seconds> limit = role.max_ttl;
    const auto lower_to = [&limit](Seconds bound) {
        limit = limit ? std::min(*limit, bound) : bound;
    };
    if (request.break_glass && role.break_glass_max_ttl) {
        lower_to(*role.break_glass_max_ttl);
    }
    if (window != nullptr && window->end) {
        lower_to(*window->end - request.now);
    }
    return limit;
}

std::optional<RoleMatch> match_role(const Role& role, Evaluation& eval) {
    const Member* member = find_member(role.members, eval);
    if (member == nullptr) {
        return std::nullopt;
    }
    const std::string* glob = find_glob(role.templates, eval.spec.name);
    if (glob == nullptr || !role_allows_action(role, eval.request.action)) {
        return std::nullopt;
    }
    const ConditionCheck check = check_conditions(role.conditions, eval, ttl_under(&role, eval),
                                                  OnWindowError::miss, Notes::skip);
    if (check.missed_count > 0) {
        return std::nullopt;
    }
    // The limit is computed while matching, so choosing among thousands of matches does not
    // read every role a second time.
    return RoleMatch{&role, member, glob, check.window,
                     role_limit(role, check.window, eval.request), false};
}

std::string describe_match(const RoleMatch& match, Evaluation& eval) {
    const Role& role = *match.role;
    std::string text = fmt::format("{} matches: member {}, template {}", describe(role),
                                   to_string(*match.member), *match.glob);
    if (!role.actions.empty()) {
        text += fmt::format(", action {}", to_string(eval.request.action));
    }
    const ConditionCheck check = check_conditions(role.conditions, eval, ttl_under(&role, eval),
                                                  OnWindowError::miss, Notes::format);
    for (const std::string& note : check.matched) {
        text += ", " + note;
    }
    return text;
}

// The misses that keep a role that the requester is a member of from matching: the number of
// its templates, actions and conditions that miss, and with Notes::format each one in words.
struct RoleMisses {
    std::size_t count = 0;
    std::vector<std::string> notes;
};

RoleMisses role_misses(const Role& role, Evaluation& eval, Notes notes) {
    RoleMisses misses;
    if (find_glob(role.templates, eval.spec.name) == nullptr) {
        ++misses.count;
        if (notes == Notes::format) {
            misses.notes.push_back(fmt::format("its templates {} do not include {}",
                                               join_lines(role.templates, ", "), eval.spec.name));
        }
    }
    if (!role_allows_action(role, eval.request.action)) {
        ++misses.count;
        if (notes == Notes::format) {
            misses.notes.push_back(
                role.actions.empty()
                    ? fmt::format("it names no actions, which grants only up, down, extend and "
                                  "exec, not {}",
                                  to_string(eval.request.action))
                    : fmt::format(
                          "its actions {} do not include {}",
                          join(role.actions, ", ", [](Action action) { return to_string(action); }),
                          to_string(eval.request.action)));
        }
    }
    ConditionCheck check = check_conditions(role.conditions, eval, ttl_under(&role, eval),
                                            OnWindowError::miss, notes);
    misses.count += check.missed_count;
    misses.notes.insert(misses.notes.end(), std::make_move_iterator(check.missed.begin()),
                        std::make_move_iterator(check.missed.end()));
    return misses;
}

// The roles that the requester is a member of with the fewest misses, at most
// k_max_near_misses of them, in file order among equals.
std::vector<const Role*> closest_member_roles(const PolicyLayer& layer, Evaluation& eval) {
    const std::vector<Role>& roles = layer.policy.roles;
    std::vector<std::pair<std::size_t, std::size_t>> ranked; // (misses, index in the file)
    for (std::size_t i = 0; i < roles.size(); ++i) {
        if (find_member(roles[i].members, eval) != nullptr) {
            ranked.emplace_back(role_misses(roles[i], eval, Notes::skip).count, i);
        }
    }
    const std::size_t count = std::min(ranked.size(), k_max_near_misses);
    std::partial_sort(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(count),
                      ranked.end());
    std::vector<const Role*> closest;
    for (std::size_t i = 0; i < count; ++i) {
        closest.push_back(&roles[ranked[i].second]);
    }
    return closest;
}

// The roles that came closest to matching, for the message of a layer that denies.
std::string closest_roles(const PolicyLayer& layer, Evaluation& eval) {
    const std::vector<const Role*> near_misses = closest_member_roles(layer, eval);
    if (!near_misses.empty()) {
        return "Closest: " + join(near_misses, "; ", [&eval](const Role* role) {
                   return fmt::format("{}, because {}", describe(*role),
                                      join_lines(role_misses(*role, eval, Notes::format).notes,
                                                 " and "));
               });
    }

    // The requester is in no role: name the roles that would cover the request.
    std::vector<const Role*> covering;
    for (const Role& role : layer.policy.roles) {
        if (covering.size() < k_max_near_misses &&
            find_glob(role.templates, eval.spec.name) != nullptr &&
            role_allows_action(role, eval.request.action)) {
            covering.push_back(&role);
        }
    }
    if (covering.empty()) {
        return fmt::format("No role there allows {} {} for anyone", to_string(eval.request.action),
                           eval.spec.name);
    }
    return fmt::format("{} is in none of the roles that allow it: {}", eval.requester.user,
                       join(covering, "; ", [](const Role* role) {
                           return fmt::format("{} with members {}", describe(*role),
                                              join_members(role->members, ", "));
                       }));
}

// True when `left` grants a longer maximum ttl than `right`; no bound is the longest.
bool grants_longer(const RoleMatch& left, const RoleMatch& right) {
    if (!right.limit) {
        return false;
    }
    return !left.limit || *left.limit > *right.limit;
}

std::string describe_limit(const RoleMatch& match) {
    return match.limit ? format_duration(*match.limit) : std::string("no bound");
}

// The first k_max_listed_rules of `matches`, such as "role a (jitbox.toml:3:1), role b
// (jitbox.toml:8:1)", then how many more there are.
std::string list_roles(const std::vector<RoleMatch>& matches) {
    const std::size_t listed = std::min(matches.size(), k_max_listed_rules);
    std::string text = join(std::span(matches).first(listed), ", ",
                            [](const RoleMatch& match) { return describe(*match.role); });
    if (matches.size() > listed) {
        text += " and " + count_more(matches.size() - listed, "role", "roles");
    }
    return text;
}

// Chooses the role that grants the longest maximum ttl (see role_limit), and the first in the
// file on a tie. A break-glass request considers only roles that allow break-glass.
std::optional<RoleMatch> choose_role(const PolicyLayer& layer, std::vector<RoleMatch> matches,
                                     Evaluation& eval) {
    if (eval.request.break_glass) {
        const auto allows_break_glass = [](const RoleMatch& match) {
            return match.role->break_glass;
        };
        if (std::none_of(matches.begin(), matches.end(), allows_break_glass)) {
            deny(eval, describe(*matches.front().role),
                 fmt::format("no matching role in {} allows break-glass: {} without break_glass "
                             "= true. Ask for a role that allows it, or leave out --break-glass",
                             layer.source, list_roles(matches)));
            return std::nullopt;
        }
        matches.erase(
            std::remove_if(matches.begin(), matches.end(), std::not_fn(allows_break_glass)),
            matches.end());
    }
    std::size_t best = 0;
    for (std::size_t i = 1; i < matches.size(); ++i) {
        if (grants_longer(matches[i], matches[best])) {
            best = i;
        }
    }
    // The role that decides is always explained, even when the list of matches was full.
    if (!matches[best].listed) {
        explain(eval, fmt::format("{}: {}", layer.source, describe_match(matches[best], eval)));
    }
    if (matches.size() > 1) {
        explain(eval, fmt::format("{}: {} wins because it grants the longest maximum ttl ({})",
                                  layer.source, describe(*matches[best].role),
                                  describe_limit(matches[best])));
    }
    return matches[best];
}

// Returns false, with the decision filled in, when the role's own requirements fail.
bool passes_role_requirements(const Role& role, Evaluation& eval) {
    const AccessRequest& request = eval.request;
    // The reason given for `up` covers the sandbox's whole life, so only actions that grant
    // time or create something need one of their own.
    const bool needs_reason = request.action == Action::up || request.action == Action::extend;
    if (role.require_reason && request.reason.empty() && needs_reason) {
        return deny(eval, describe(role),
                    fmt::format("{} requires a reason for {}, pass --reason", describe(role),
                                to_string(request.action)));
    }
    if (role.max_active && request.action == Action::up &&
        request.active_sandboxes >= *role.max_active) {
        return deny(eval, describe(role),
                    fmt::format("{} allows at most {} active sandboxes and {} has {}, remove one "
                                "with jitbox down first",
                                describe(role), *role.max_active, eval.requester.user,
                                request.active_sandboxes));
    }
    return true;
}

// Decides one layer. Returns false, with the decision filled in, when it denies.
bool passes_layer(const PolicyLayer& layer, Evaluation& eval, std::vector<Grant>& grants) {
    if (layer.policy.roles.empty()) {
        explain(eval, fmt::format("no roles in {}: every template is allowed within its own ttl "
                                  "bounds",
                                  layer.source));
        return true;
    }
    std::vector<RoleMatch> matches;
    for (const Role& role : layer.policy.roles) {
        auto match = match_role(role, eval);
        if (!match) {
            continue;
        }
        if (matches.size() < k_max_listed_rules) {
            match->listed = true;
            explain(eval, fmt::format("{}: {}", layer.source, describe_match(*match, eval)));
        }
        matches.push_back(*match);
    }
    if (matches.size() > k_max_listed_rules) {
        explain(eval, fmt::format("{}: and {}", layer.source,
                                  count_more(matches.size() - k_max_listed_rules, "role matches",
                                             "roles match")));
    }
    if (matches.empty()) {
        return deny(eval, "",
                    fmt::format("no role in {} allows {} to {} {}. {}", layer.source,
                                eval.requester.user, to_string(eval.request.action), eval.spec.name,
                                closest_roles(layer, eval)));
    }
    auto chosen = choose_role(layer, std::move(matches), eval);
    if (!chosen || !passes_role_requirements(*chosen->role, eval)) {
        return false;
    }
    grants.push_back(Grant{&layer, *chosen});
    return true;
}

// ---- ttl ----

std::vector<Bound> collect_bounds(const std::vector<PolicyLayer>& layers,
                                  const std::vector<Grant>& grants, const Evaluation& eval) {
    std::vector<Bound> bounds;
    bounds.push_back({eval.spec.max_ttl,
                      with_origin(fmt::format("template {}", eval.spec.name), eval.spec.origin),
                      fmt::format("template {} max_ttl {}", eval.spec.name,
                                  format_duration(eval.spec.max_ttl))});
    for (const PolicyLayer& layer : layers) {
        if (layer.policy.max_ttl) {
            bounds.push_back({*layer.policy.max_ttl,
                              with_origin("[policy] max_ttl", layer.policy.max_ttl_origin),
                              fmt::format("[policy] max_ttl {} in {}",
                                          format_duration(*layer.policy.max_ttl), layer.source)});
        }
    }
    for (const Grant& grant : grants) {
        const Role& role = *grant.match.role;
        if (role.max_ttl) {
            bounds.push_back(
                {*role.max_ttl, describe(role),
                 fmt::format("role {} max_ttl {}", role.name, format_duration(*role.max_ttl))});
        }
        if (eval.request.break_glass && role.break_glass_max_ttl) {
            bounds.push_back({*role.break_glass_max_ttl,
                              fmt::format("{} for break-glass", describe(role)),
                              fmt::format("role {} break_glass_max_ttl {}", role.name,
                                          format_duration(*role.break_glass_max_ttl))});
        }
        const WindowStatus* window = grant.match.window;
        if (window != nullptr && window->end) {
            const Seconds left = *window->end - eval.request.now;
            bounds.push_back(
                {left,
                 fmt::format("the window of {}, which ends {}", describe(role), window->end_text),
                 fmt::format("window of role {} ends {}: {} left", role.name, window->end_text,
                             format_duration(left))});
        }
    }
    return bounds;
}

// The default ttl: that of the last layer's role that sets one, else the template's.
std::pair<Seconds, std::string> default_ttl(const std::vector<Grant>& grants,
                                            const Evaluation& eval) {
    for (auto grant = grants.rbegin(); grant != grants.rend(); ++grant) {
        const Role& role = *grant->match.role;
        if (role.ttl) {
            return {*role.ttl, fmt::format("role {}", role.name)};
        }
    }
    return {eval.spec.ttl, fmt::format("template {}", eval.spec.name)};
}

// Sets the effective ttl. Returns false, with the decision filled in, when the requested ttl
// is above the lowest bound.
bool apply_ttl_bounds(const std::vector<PolicyLayer>& layers, const std::vector<Grant>& grants,
                      Evaluation& eval) {
    const std::vector<Bound> bounds = collect_bounds(layers, grants, eval);
    const auto lowest =
        std::min_element(bounds.begin(), bounds.end(), [](const Bound& left, const Bound& right) {
            return left.limit < right.limit;
        });
    for (const Bound& bound : bounds) {
        explain(eval, "bound: " + bound.detail);
    }
    eval.decision.max_ttl = lowest->limit;

    const std::string maximum = format_duration(lowest->limit);
    if (const auto requested = eval.request.ttl) {
        if (*requested <= Seconds::zero()) {
            return deny(eval, "",
                        fmt::format("ttl {} is not positive, ask for a ttl such as 30m",
                                    format_duration(*requested)));
        }
        if (*requested > lowest->limit) {
            return deny(eval, lowest->source,
                        fmt::format("ttl {} is above the {} allowed by {}; ask for at most {}",
                                    format_duration(*requested), maximum, lowest->source, maximum));
        }
        eval.decision.ttl = *requested;
        explain(eval, fmt::format("ttl {} as requested, within the maximum {}",
                                  format_duration(*requested), maximum));
        return true;
    }
    const auto [ttl, ttl_source] = default_ttl(grants, eval);
    eval.decision.ttl = std::min(ttl, lowest->limit);
    if (ttl > lowest->limit) {
        explain(eval, fmt::format("default ttl {} of {} lowered to the maximum {} set by {}",
                                  format_duration(ttl), ttl_source, maximum, lowest->source));
    } else {
        explain(eval, fmt::format("default ttl {} of {}, within the maximum {}",
                                  format_duration(ttl), ttl_source, maximum));
    }
    return true;
}

// ---- the whole decision ----

bool has_any_rule(const std::vector<PolicyLayer>& layers) {
    return std::any_of(layers.begin(), layers.end(), [](const PolicyLayer& layer) {
        return !layer.policy.roles.empty() || !layer.policy.denies.empty();
    });
}

bool passes_layers(const std::vector<PolicyLayer>& layers, Evaluation& eval,
                   std::vector<Grant>& grants) {
    if (!has_any_rule(layers)) {
        explain(eval, "no roles and no deny rules in any file: every template is allowed within "
                      "its own ttl bounds");
    } else {
        for (const PolicyLayer& layer : layers) {
            if (!passes_layer(layer, eval, grants)) {
                return false;
            }
        }
    }
    if (eval.request.break_glass && grants.empty()) {
        return deny(eval, "",
                    "break-glass needs a role with break_glass = true, and no file defines "
                    "roles, so leave out --break-glass");
    }
    return true;
}

std::string allow_message(const std::vector<Grant>& grants, const Evaluation& eval) {
    std::string message = grants.empty() ? std::string("allowed: no role restricts it")
                                         : "allowed by " + eval.decision.rule;
    if (has_ttl(eval.request.action)) {
        message += fmt::format(", ttl {}", format_duration(eval.decision.ttl));
    }
    if (eval.request.break_glass) {
        message += " (break-glass)";
    }
    return message;
}

} // namespace

Decision evaluate(const std::vector<PolicyLayer>& layers, const Requester& requester,
                  const AccessRequest& request) {
    if (request.spec == nullptr) {
        Decision decision;
        decision.message = "no template given: name the template of the request";
        decision.explanation.push_back("denied: " + decision.message);
        return decision;
    }
    Evaluation eval{layers, requester, request, *request.spec, std::to_string(requester.uid),
                    {},     {}};
    explain(eval, describe_request(eval));

    if (!passes_deny_rules(layers, eval)) {
        return eval.decision;
    }
    if (request.break_glass && request.reason.empty()) {
        deny(eval, "", "break-glass requests need a reason, pass --reason");
        return eval.decision;
    }
    std::vector<Grant> grants;
    if (!passes_layers(layers, eval, grants)) {
        return eval.decision;
    }
    eval.decision.rule =
        join(grants, ", ", [](const Grant& grant) { return describe(*grant.match.role); });
    if (has_ttl(request.action) && !apply_ttl_bounds(layers, grants, eval)) {
        return eval.decision;
    }
    eval.decision.allowed = true;
    eval.decision.break_glass = request.break_glass;
    eval.decision.message = allow_message(grants, eval);
    return std::move(eval.decision);
}

} // namespace jitbox
