#include "jitbox/audit/stats.hpp"

#include <algorithm>
#include <array>

namespace jitbox {

namespace {

// The actions whose "ok" record means that the sandbox no longer exists.
constexpr std::array<std::string_view, 4> k_removing_actions = {"down", "expire", "rollback", "gc"};

std::string string_field(const nlohmann::json& record, const char* key) {
    auto found = record.find(key);
    return found != record.end() && found->is_string() ? found->get<std::string>() : "";
}

bool bool_field(const nlohmann::json& record, const char* key) {
    auto found = record.find(key);
    return found != record.end() && found->is_boolean() && found->get<bool>();
}

// The fields of one record that the counters read.
struct Event {
    TimePoint time;
    std::string user;
    std::string action;
    std::string result;
    std::string sandbox_id; // the sandbox's name when the record has no id
    std::string name;
    std::string template_name;
    std::string rule;
    bool break_glass = false;
};

std::optional<Event> read_event(const nlohmann::json& record) {
    if (!record.is_object()) {
        return std::nullopt;
    }
    auto time = parse_rfc3339(string_field(record, "time"));
    Event event;
    event.action = string_field(record, "action");
    event.result = string_field(record, "result");
    if (!time || event.action.empty() || event.result.empty()) {
        return std::nullopt;
    }
    event.time = *time;
    event.user = string_field(record, "user");
    event.name = string_field(record, "sandbox");
    event.sandbox_id = string_field(record, "sandbox_id");
    if (event.sandbox_id.empty()) {
        event.sandbox_id = event.name;
    }
    event.template_name = string_field(record, "template");
    event.rule = string_field(record, "rule");
    event.break_glass = bool_field(record, "break_glass");
    return event;
}

bool is_removal(const Event& event) {
    return event.result == "ok" && std::find(k_removing_actions.begin(), k_removing_actions.end(),
                                             event.action) != k_removing_actions.end();
}

// Adds the counters of one event that happened inside the window.
void count_event(const Event& event, UsageCounters& counters) {
    const bool granted = event.result == "ok";
    if (event.action == "up" && granted) {
        ++counters.opened;
    }
    if (event.action == "extend" && granted) {
        ++counters.extensions;
    }
    if ((event.action == "up" || event.action == "extend") && granted && event.break_glass) {
        ++counters.break_glass;
    }
    if (event.result == "denied") {
        ++counters.denials;
        if (event.rule.rfind(k_deny_rule_prefix, 0) == 0) {
            ++counters.attempted_violations;
        }
    }
}

// The seconds of [from, to] that fall at or after `since`.
std::uint64_t seconds_inside(TimePoint from, TimePoint to, std::optional<TimePoint> since) {
    if (since && from < *since) {
        from = *since;
    }
    return to > from ? static_cast<std::uint64_t>((to - from).count()) : 0;
}

} // namespace

UsageCounters& UsageCounters::operator+=(const UsageCounters& other) {
    opened += other.opened;
    sandbox_seconds += other.sandbox_seconds;
    extensions += other.extensions;
    denials += other.denials;
    attempted_violations += other.attempted_violations;
    break_glass += other.break_glass;
    return *this;
}

UsageCounters AuditStats::totals() const {
    UsageCounters sum;
    for (const auto& [key, counters] : usage) {
        sum += counters;
    }
    return sum;
}

AuditStats compute_audit_stats(const std::vector<nlohmann::json>& records,
                               std::optional<TimePoint> since, TimePoint now) {
    AuditStats stats;
    std::map<std::string, SandboxLifetime> open; // by sandbox id
    std::vector<SandboxLifetime> closed;
    for (const auto& record : records) {
        auto event = read_event(record);
        if (!event) {
            ++stats.skipped;
            continue;
        }
        UsageCounters counted;
        if (!since || event->time >= *since) {
            count_event(*event, counted);
        }
        if (counted != UsageCounters{}) {
            stats.usage[{event->user, event->template_name}] += counted;
        }
        if (event->action == "up" && event->result == "ok") {
            SandboxLifetime lifetime;
            lifetime.sandbox_id = event->sandbox_id;
            lifetime.name = event->name;
            lifetime.user = event->user;
            lifetime.template_name = event->template_name;
            lifetime.opened_at = event->time;
            open[event->sandbox_id] = std::move(lifetime);
            continue;
        }
        auto found = open.find(event->sandbox_id);
        if (found != open.end() && is_removal(*event)) {
            found->second.closed_at = event->time;
            found->second.closed_by = event->action;
            closed.push_back(std::move(found->second));
            open.erase(found);
        }
    }
    for (auto& [id, lifetime] : open) {
        closed.push_back(std::move(lifetime));
    }

    for (auto& lifetime : closed) {
        TimePoint end = lifetime.closed_at.value_or(std::max(now, lifetime.opened_at));
        lifetime.duration = end - lifetime.opened_at;
        if (since && end < *since) {
            continue; // gone before the window
        }
        stats.usage[{lifetime.user, lifetime.template_name}].sandbox_seconds +=
            seconds_inside(lifetime.opened_at, end, since);
        stats.sandboxes.push_back(std::move(lifetime));
    }
    std::stable_sort(
        stats.sandboxes.begin(), stats.sandboxes.end(),
        [](const auto& left, const auto& right) { return left.duration > right.duration; });
    return stats;
}

} // namespace jitbox
