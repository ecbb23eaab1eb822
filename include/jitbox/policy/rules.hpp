#pragma once

// The access-policy rules as jitbox.toml states them: `[policy]`, `[[roles]]` and `[[deny]]`.
// config.hpp includes this header for Config::policy, and policy.hpp adds the evaluation.

#include "jitbox/util/result.hpp"
#include "jitbox/util/time.hpp"

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace jitbox {

/// The operation a request performs on a sandbox. `status_all` (`status --all-users`) and
/// `down_others` (`down --user NAME`) reach other users' sandboxes, so a role grants them only
/// when its `actions` name them.
enum class Action { up, down, extend, exec, status_all, down_others };

inline constexpr std::array<Action, 6> k_actions{Action::up,         Action::down,
                                                 Action::extend,     Action::exec,
                                                 Action::status_all, Action::down_others};

/// True for the actions on one's own sandboxes, which a role without `actions` grants.
bool is_own_sandbox_action(Action action);

/// The configuration spelling of `action`: "up", "down", "extend", "exec", "status-all" or
/// "down-others".
std::string_view to_string(Action action);

/// The action spelled `name`, or nothing when no action has that spelling.
std::optional<Action> parse_action(std::string_view name);

/// One entry of a `members` list: `user:NAME`, `group:NAME` or `uid:N`.
struct Member {
    enum class Kind { user, group, uid };
    Kind kind = Kind::user;
    std::string value; // the user or group name, or the uid in decimal without leading zeros
};

/// Parses `user:NAME`, `group:NAME` or `uid:N` (N from 0 to 4294967294). A name must not be
/// empty or contain white space. Failures are ExitCode::usage.
Result<Member> parse_member(std::string_view text);

/// The configuration spelling of `member`, such as "group:dev".
std::string to_string(const Member& member);

/// The lower-case three-letter day names, indexed like TimeWindow::days (0 = Sunday).
inline constexpr std::array<std::string_view, 7> k_day_names{"sun", "mon", "tue", "wed",
                                                             "thu", "fri", "sat"};

/// `when = { days = [...], hours = "08:00-19:00", timezone = "Europe/Berlin" }`. A window whose
/// end is not after its start crosses midnight, and days name the day on which it starts, so
/// `days = ["fri"], hours = "22:00-06:00"` includes Saturday 03:00.
struct TimeWindow {
    std::set<int> days;              // 0 = Sunday ... 6 = Saturday; empty: every day
    std::optional<int> start_minute; // minutes after local midnight, 0 to 1439; unset: all day
    std::optional<int> end_minute;   // 0 to 1440, set exactly when start_minute is
    std::string timezone = "UTC";    // an IANA name, resolved through the system tzdata
};

/// A one-line description such as "mon-fri 08:00-19:00 Europe/Berlin".
std::string to_string(const TimeWindow& window);

/// Conditions a role or deny rule adds beyond who and which template.
struct Conditions {
    std::optional<TimeWindow> when;
    std::map<std::string, std::string> template_labels; // the template must carry all of these
    std::optional<Seconds> max_requested_ttl;           // matches only requests up to this ttl
    std::map<std::string, std::string> attributes;      // request attributes and their values
};

/// `[[roles]]`: who may do what with which templates, and within which bounds.
struct Role {
    std::string name;
    std::vector<Member> members;        // never empty
    std::vector<std::string> templates; // exact names or globs (*, ?, [...]); never empty
    std::set<Action> actions; // empty: every action for which is_own_sandbox_action is true
    std::optional<Seconds> ttl;         // default ttl for requests without --ttl
    std::optional<Seconds> max_ttl;
    std::optional<int> max_active; // the requester's live sandboxes, checked on `up`
    bool require_reason = false;                // for `up` and `extend`
    bool break_glass = false;                   // allows --break-glass requests
    std::optional<Seconds> break_glass_max_ttl; // shorter bound for break-glass grants
    Conditions conditions;
    std::string origin; // FILE:LINE:COLUMN of the `[[roles]]` table
};

/// `[[deny]]`: beats any role. Matches requesters in `members` (everyone when empty) who are
/// not in `unless_members`.
struct DenyRule {
    std::string name;
    std::vector<Member> members;
    std::vector<Member> unless_members;
    std::vector<std::string> templates; // exact names or globs; empty: every template
    std::set<Action> actions;           // empty: every action
    Conditions conditions;
    std::string reason; // shown to the denied user; may be empty
    std::string origin; // FILE:LINE:COLUMN of the `[[deny]]` table
};

/// `[guardrails]` of the system file: bounds on what any template may ask of the engine,
/// whoever wrote the template. Unset keys impose nothing, except in enforced mode, where each
/// unset key takes its strict default (see policy/guardrails.hpp).
struct Guardrails {
    std::string origin; // FILE:LINE:COLUMN of the `[guardrails]` table; empty when absent
    std::optional<std::vector<std::string>> images;        // globs over normalised references
    std::optional<std::vector<std::string>> mount_sources; // absolute folders
    std::optional<bool> privileged;
    std::optional<bool> host_namespaces; // network, pid or ipc = "host"
    std::optional<bool> devices;
    std::optional<std::vector<std::string>> capabilities; // the allow-list for cap_add
    std::optional<std::int64_t> max_memory;               // bytes
    std::optional<double> max_cpus;
    std::optional<std::int64_t> max_pids;
    std::optional<Seconds> max_ttl;
    std::optional<int> max_live_per_user;
    std::map<std::string, std::string> origins; // key -> FILE:LINE:COLUMN of its value

    bool present() const { return !origin.empty(); }
};

/// The access policy of one configuration file.
struct Policy {
    std::vector<Role> roles;
    std::vector<DenyRule> denies;
    std::optional<Seconds> max_ttl;         // `[policy] max_ttl`: a bound for every grant
    std::string max_ttl_origin;             // FILE:LINE:COLUMN of that value
    std::vector<std::string> attribute_env; // `[policy] attributes_from_env`: spoofable inputs
    bool require_signed = false;            // `[policy] require_signed`, system file only
    std::optional<bool> allow_sensitive_mounts; // `[policy] allow_sensitive_mounts`, when set
    std::string allow_sensitive_mounts_origin;  // FILE:LINE:COLUMN of that value
};

} // namespace jitbox
