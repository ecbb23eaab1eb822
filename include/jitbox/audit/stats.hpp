#pragma once

// Usage counters computed from the records of the audit log, for `jitbox audit stats` and
// `jitbox metrics`. The functions are pure, so the caller reads the log and passes the clock's
// "now".

#include "jitbox/util/time.hpp"

#include <nlohmann/json.hpp>

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jitbox {

/// The start of an audit record's `rule` that marks an attempted violation: a `[[deny]]` rule
/// ("deny rule NAME (ORIGIN)") or a guardrail ("deny rule guardrails.KEY (ORIGIN)").
inline constexpr std::string_view k_deny_rule_prefix = "deny rule ";

/// The labels that the counters are grouped by.
struct UsageKey {
    std::string user;
    std::string template_name;

    auto operator<=>(const UsageKey&) const = default;
};

/// The counters of one user and template.
struct UsageCounters {
    std::uint64_t opened = 0;          // `up` records with result "ok"
    std::uint64_t sandbox_seconds = 0; // lifetime inside the window, up to now while open
    std::uint64_t extensions = 0;      // `extend` records with result "ok"
    std::uint64_t denials = 0;         // records of any action with result "denied"
    /// Denials from a `[[deny]]` rule or a guardrail: records whose rule starts with
    /// k_deny_rule_prefix.
    std::uint64_t attempted_violations = 0;
    /// `up` and `extend` records with result "ok" that carry `break_glass: true`.
    std::uint64_t break_glass = 0;

    UsageCounters& operator+=(const UsageCounters& other);
    bool operator==(const UsageCounters&) const = default;
};

/// One sandbox from its `up` record to the record that removed it.
struct SandboxLifetime {
    std::string sandbox_id;
    std::string name;
    std::string user;
    std::string template_name;
    TimePoint opened_at;
    std::optional<TimePoint> closed_at; // unset while the log shows no removal
    std::string closed_by;              // the removing action: down, expire, rollback or gc
    Seconds duration{0};                // opened_at to closed_at, or to now while open
};

/// The counters per user and template, and the sandboxes by lifetime, longest first.
struct AuditStats {
    std::map<UsageKey, UsageCounters> usage;
    std::vector<SandboxLifetime> sandboxes;
    std::size_t skipped = 0; // records without a readable time, action or result

    UsageCounters totals() const;
};

/// Counts `records`, the parsed lines of the audit log in order. With `since`, events before
/// it are not counted, and each lifetime counts only its part after `since`. `sandboxes` then
/// lists only sandboxes that were alive at or after `since`. A sandbox opens with an `up`
/// record whose result is "ok" and closes with the first later `down`, `expire`, `rollback` or
/// `gc` record of the same sandbox_id whose result is "ok".
AuditStats compute_audit_stats(const std::vector<nlohmann::json>& records,
                               std::optional<TimePoint> since, TimePoint now);

} // namespace jitbox
