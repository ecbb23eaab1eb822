#pragma once

#include "jitbox/util/result.hpp"
#include "jitbox/util/time.hpp"

#include <filesystem>
#include <string>

namespace jitbox {

/// One line of the audit log.
struct AuditEvent {
    TimePoint time;
    std::string user;
    std::string action;   // "up", "extend", "down", "expire", "rollback"
    std::string sandbox;  // name
    std::string sandbox_id;
    std::string template_name;
    std::string result;   // "ok", "error", "denied"
    std::string error;    // the failure's message, empty on success
    std::string detail;   // extra context, such as how long teardown waited for the engine
    std::string rule;     // the policy rule that decided, such as "role dev (jitbox.toml:4:1)"
    std::string reason;   // --reason
    bool break_glass = false;
    std::string policy_digest; // SHA-256 of the effective policy files
};

/// Append-only JSON-lines audit log. Each record is written with a single write(2) to a file
/// opened O_APPEND, under an exclusive flock, then fsync'ed, so parallel writers never
/// interleave or lose lines.
class AuditLog {
public:
    explicit AuditLog(std::filesystem::path path) : m_path(std::move(path)) {}

    Result<void> append(const AuditEvent& event) const;
    const std::filesystem::path& path() const { return m_path; }

private:
    std::filesystem::path m_path;
};

std::string audit_event_to_json(const AuditEvent& event);

} // namespace jitbox
