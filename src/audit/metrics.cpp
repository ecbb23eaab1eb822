#include "jitbox/audit/metrics.hpp"

#include <fmt/format.h>

#include <functional>

namespace jitbox {

namespace {

// One metric family whose samples are read from the counters of each user and template.
struct CounterFamily {
    const char* name;
    const char* help;
    std::function<std::string(const UsageCounters&)> value;
};

std::string labels(const UsageKey& key) {
    return fmt::format("{{user=\"{}\",template=\"{}\"}}", escape_label_value(key.user),
                       escape_label_value(key.template_name));
}

void append_header(std::string& text, const char* name, const char* help, const char* type) {
    text += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escape_help_text(help), name, type);
}

std::string whole(std::uint64_t count) {
    return std::to_string(count);
}

enum class Quotes { keep, escape };

// Escapes `\` and line feed, which both HELP text and label values need, and `"` for labels.
std::string escape(std::string_view text, Quotes quotes) {
    std::string escaped;
    escaped.reserve(text.size());
    for (char c : text) {
        if (c == '\\') {
            escaped += "\\\\";
        } else if (c == '\n') {
            escaped += "\\n";
        } else if (c == '"' && quotes == Quotes::escape) {
            escaped += "\\\"";
        } else {
            escaped += c;
        }
    }
    return escaped;
}

} // namespace

std::string escape_label_value(std::string_view value) {
    return escape(value, Quotes::escape);
}

std::string escape_help_text(std::string_view text) {
    return escape(text, Quotes::keep);
}

std::string format_metrics(const AuditStats& stats, const std::map<UsageKey, int>& live) {
    const CounterFamily families[] = {
        {"jitbox_sandboxes_opened_total", "Sandboxes created: up records with result ok.",
         [](const UsageCounters& c) { return whole(c.opened); }},
        {"jitbox_sandbox_seconds_total",
         "Seconds that sandboxes existed, from up to their removal; open ones count up to now.",
         [](const UsageCounters& c) { return whole(c.sandbox_seconds); }},
        {"jitbox_extensions_total", "Granted extensions: extend records with result ok.",
         [](const UsageCounters& c) { return whole(c.extensions); }},
        {"jitbox_denials_total", "Requests that policy denied: records with result denied.",
         [](const UsageCounters& c) { return whole(c.denials); }},
        {"jitbox_attempted_violations_total",
         "Denied requests that a [[deny]] rule or a guardrail decided.",
         [](const UsageCounters& c) { return whole(c.attempted_violations); }},
        {"jitbox_break_glass_total", "Break-glass requests that policy granted (up or extend).",
         [](const UsageCounters& c) { return whole(c.break_glass); }},
    };

    std::string text;
    for (const auto& family : families) {
        append_header(text, family.name, family.help, "counter");
        for (const auto& [key, counters] : stats.usage) {
            text += fmt::format("{}{} {}\n", family.name, labels(key), family.value(counters));
        }
    }
    append_header(text, "jitbox_sandboxes_live",
                  "Sandboxes whose record in the state folder is in state running.", "gauge");
    for (const auto& [key, count] : live) {
        text += fmt::format("jitbox_sandboxes_live{} {}\n", labels(key), count);
    }
    return text;
}

} // namespace jitbox
