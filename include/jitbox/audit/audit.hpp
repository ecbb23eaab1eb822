#pragma once

#include "jitbox/util/result.hpp"
#include "jitbox/util/time.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

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

/// The `prev` of the first record: 64 zeros.
inline constexpr std::string_view k_audit_first_prev =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// The position of a record in the log's hash chain.
struct AuditLink {
    std::uint64_t seq = 1;                // 1-based, one more than the previous record
    std::string prev{k_audit_first_prev}; // SHA-256 hex of the previous line's bytes
};

/// Append-only JSON-lines audit log with a hash chain. Each record carries `seq` and `prev`, the
/// SHA-256 of the previous line without its newline, so a changed, removed, inserted or
/// reordered record breaks the chain. The seq and hash of the last record are also kept in
/// audit_head_path(), so that cutting records from the end of the log shows as well.
///
/// Each record is written with a single write(2) to a file opened O_APPEND, then fsync'ed. An
/// exclusive flock is held from reading the last line until the head file is replaced, so
/// parallel writers never interleave or lose lines, and the head file follows the log.
class AuditLog {
public:
    explicit AuditLog(std::filesystem::path path) : m_path(std::move(path)) {}

    Result<void> append(const AuditEvent& event) const;
    const std::filesystem::path& path() const { return m_path; }

private:
    std::filesystem::path m_path;
};

/// Formats a record as one JSON line with its trailing newline.
std::string audit_event_to_json(const AuditEvent& event, const AuditLink& link);

/// Returns the SHA-256 of `bytes` as 64 lower-case hex digits.
std::string sha256_hex(std::string_view bytes);

/// The file beside the log that stores `SEQ HASH\n` of its last record: `audit.head` for
/// `audit.log`.
std::filesystem::path audit_head_path(const std::filesystem::path& log_path);

/// One line of the log. `terminated` is false only for a last line that has no newline.
struct AuditLine {
    std::size_t number = 0; // 1-based
    std::string_view text;  // without the newline
    bool terminated = true;
};

/// Calls `visit` with each line of the log in order, under a shared flock so that no append is
/// seen half-written, until `visit` returns false. A missing log has no lines.
Result<void> read_audit_log(const std::filesystem::path& path,
                            const std::function<bool(const AuditLine&)>& visit);

/// The first line at which the chain is broken, and why.
struct AuditProblem {
    std::size_t line = 0; // 1-based, or one past the last line for records cut from the end
    std::string reason;
};

struct VerifyReport {
    std::uint64_t records = 0; // lines read before the first problem, or all of them
    std::optional<AuditProblem> problem;

    bool intact() const { return !problem; }
};

/// Checks the hash chain of the log at `path` and its head file, and names the first bad line.
/// That is a malformed line, or a line whose seq does not follow the previous seq (a record was
/// removed, inserted or reordered). It may also be a line whose SHA-256 does not match the next
/// record's `prev` or the head file's hash (a changed record), or the position of records cut
/// from the end. A missing or empty log without a head file is intact. Fails only when a file
/// cannot be read.
Result<VerifyReport> verify_audit_log(const std::filesystem::path& path);

} // namespace jitbox
