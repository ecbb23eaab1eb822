#pragma once

// The audit counters in the Prometheus text exposition format, version 0.0.4, as a
// node_exporter textfile collector reads it.

#include "jitbox/audit/stats.hpp"

#include <map>
#include <string>
#include <string_view>

namespace jitbox {

/// A label value with `\`, `"` and line feed escaped as `\\`, `\"` and `\n`.
std::string escape_label_value(std::string_view value);

/// A `# HELP` text with `\` and line feed escaped as `\\` and `\n`.
std::string escape_help_text(std::string_view text);

/// Formats every counter of `stats` as a metric family with the labels `user` and `template`,
/// and `live` (sandboxes in state `running`, by owner and template) as the gauge
/// jitbox_sandboxes_live. Each family has its `# HELP` and `# TYPE` lines even without samples,
/// and the text ends with a line feed.
std::string format_metrics(const AuditStats& stats, const std::map<UsageKey, int>& live);

} // namespace jitbox
