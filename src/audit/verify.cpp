#include "chain.hpp"
#include "jitbox/audit/audit.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace jitbox {

namespace fs = std::filesystem;

using audit_chain::AuditHead;
using audit_chain::FileDescriptor;

namespace {

Failure read_failure(const fs::path& path, int error) {
    return make_failure(ExitCode::internal,
                        "cannot read the audit log {}: {}; check its owner "
                        "and mode",
                        path.string(), std::strerror(error));
}

// Opens the log under a shared lock, which waits for a running append to finish. The
// descriptor is -1 when the log does not exist.
Result<FileDescriptor> open_locked(const fs::path& path) {
    FileDescriptor log(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (log.get() < 0) {
        if (errno == ENOENT) {
            return log;
        }
        return read_failure(path, errno);
    }
    if (int error = audit_chain::lock_file(log.get(), LOCK_SH); error != 0) {
        return read_failure(path, error);
    }
    return log;
}

// Splits the file into lines and calls `visit` on each until it returns false. Returns 0 or
// the errno of a failed read.
int scan_lines(int fd, const std::function<bool(const AuditLine&)>& visit) {
    std::array<char, 65536> buffer{};
    std::string pending;
    std::size_t number = 0;
    while (true) {
        ssize_t got = ::read(fd, buffer.data(), buffer.size());
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            return errno;
        }
        if (got == 0) {
            break;
        }
        pending.append(buffer.data(), static_cast<std::size_t>(got));
        std::size_t begin = 0;
        for (std::size_t newline = pending.find('\n'); newline != std::string::npos;
             newline = pending.find('\n', begin)) {
            std::string_view text = std::string_view(pending).substr(begin, newline - begin);
            if (!visit(AuditLine{++number, text, true})) {
                return 0;
            }
            begin = newline + 1;
        }
        pending.erase(0, begin);
    }
    if (!pending.empty()) {
        visit(AuditLine{++number, pending, false});
    }
    return 0;
}

std::string plural(std::uint64_t count, std::string_view noun) {
    return fmt::format("{} {}{}", count, noun, count == 1 ? "" : "s");
}

// Follows the chain line by line and records the first break. A valid chain starts at seq 1
// and adds one per line, so in a log that is intact up to line N, line N has seq N.
class ChainChecker {
public:
    ChainChecker(std::optional<AuditHead> head, std::string head_name)
        : m_head(std::move(head)), m_head_name(std::move(head_name)) {}

    /// Checks one line; returns false once a problem is found.
    bool check(const AuditLine& line);
    /// Compares the end of the log with the head file, after the last line.
    void finish(bool head_exists);

    VerifyReport report() const { return m_report; }

private:
    bool check_seq(std::size_t number, const AuditLink& link, const std::string& hash);
    void fail(std::size_t line, std::string reason) {
        m_report.problem = AuditProblem{line, std::move(reason)};
    }

    std::optional<AuditHead> m_head;
    std::string m_head_name;
    std::uint64_t m_last_seq = 0;
    // SHA-256 of the previous line, of the line before that, and of the line the head names.
    std::string m_last_hash{k_audit_first_prev};
    std::string m_before_last_hash{k_audit_first_prev};
    std::optional<std::string> m_hash_at_head_seq;
    VerifyReport m_report;
};

bool ChainChecker::check(const AuditLine& line) {
    if (!line.terminated) {
        fail(line.number, "no newline at the end, so the write of this record was cut short");
        return false;
    }
    auto link = audit_chain::parse_chain_fields(line.text);
    if (!link) {
        fail(line.number, link.error().message);
        return false;
    }
    std::string hash = sha256_hex(line.text);
    if (!check_seq(line.number, *link, hash)) {
        return false;
    }
    if (link->prev != m_last_hash) {
        if (line.number == 1) {
            fail(1, "\"prev\" of the first record is not 64 zeros, so this record was changed");
        } else {
            fail(line.number - 1, fmt::format("changed after it was written: its SHA-256 does "
                                              "not match \"prev\" of line {}",
                                              line.number));
        }
        return false;
    }

    m_before_last_hash = std::exchange(m_last_hash, hash);
    m_last_seq = link->seq;
    m_report.records = line.number;
    if (m_head && link->seq == m_head->seq) {
        m_hash_at_head_seq = hash;
    }
    return true;
}

bool ChainChecker::check_seq(std::size_t number, const AuditLink& link, const std::string& hash) {
    const std::uint64_t expected = m_last_seq + 1;
    if (link.seq == expected) {
        return true;
    }
    const std::string after = number == 1 ? std::string("at the start of the log")
                                          : fmt::format("after seq {}", m_last_seq);
    if (number > 1 && hash == m_last_hash) {
        fail(number, fmt::format("inserted: a copy of line {}", number - 1));
    } else if (number > 1 && link.seq == m_last_seq && link.prev == m_before_last_hash) {
        // This record is the one that used to follow the line before the previous one, so the
        // previous line was put in between.
        fail(number - 1, fmt::format("inserted: line {} repeats its seq {} and links to the "
                                     "record before it",
                                     number, link.seq));
    } else if (link.seq > expected) {
        fail(number, fmt::format("seq {} {}, so {} before this line {} removed or moved", link.seq,
                                 after, plural(link.seq - expected, "record"),
                                 link.seq - expected == 1 ? "was" : "were"));
    } else {
        fail(number,
             fmt::format("seq {} {}, so this record was moved or inserted", link.seq, after));
    }
    return false;
}

void ChainChecker::finish(bool head_exists) {
    if (m_report.problem) {
        return;
    }
    const std::size_t lines = m_report.records;
    const std::size_t last_line = std::max<std::size_t>(lines, 1);
    if (!m_head) {
        if (head_exists) {
            fail(last_line, fmt::format("{} is not `SEQ HASH`, so the end of the log cannot be "
                                        "confirmed",
                                        m_head_name));
        } else if (lines > 0) {
            fail(last_line, fmt::format("{} is missing, so records cut from the end of the log "
                                        "would go unnoticed",
                                        m_head_name));
        }
        return;
    }
    if (m_hash_at_head_seq && *m_hash_at_head_seq != m_head->hash) {
        fail(m_head->seq, fmt::format("changed after it was written: its SHA-256 does not "
                                      "match {}",
                                      m_head_name));
    } else if (m_head->seq < m_last_seq) {
        fail(m_head->seq + 1, fmt::format("not confirmed by {}, which names seq {}: written "
                                          "without replacing it, or jitbox stopped between "
                                          "the two writes",
                                          m_head_name, m_head->seq));
    } else if (m_head->seq > m_last_seq) {
        fail(lines + 1,
             fmt::format("{} cut from the end: {} names seq {} but the log ends {}",
                         plural(m_head->seq - m_last_seq, "record"), m_head_name, m_head->seq,
                         lines == 0 ? std::string("before its first record")
                                    : fmt::format("at seq {}", m_last_seq)));
    }
}

} // namespace

Result<void> read_audit_log(const fs::path& path,
                            const std::function<bool(const AuditLine&)>& visit) {
    auto log = open_locked(path);
    if (!log) {
        return log.error();
    }
    if (log->get() < 0) {
        return {};
    }
    if (int error = scan_lines(log->get(), visit); error != 0) {
        return read_failure(path, error);
    }
    return {};
}

Result<VerifyReport> verify_audit_log(const fs::path& path) {
    auto log = open_locked(path);
    if (!log) {
        return log.error();
    }

    // The head file is read under the log's lock, so it matches the lines that follow.
    const fs::path head_path = audit_head_path(path);
    auto head_text = audit_chain::read_head_file(head_path);
    if (!head_text) {
        return head_text.error();
    }
    std::optional<AuditHead> head;
    if (head_text->has_value()) {
        head = audit_chain::parse_audit_head(**head_text);
    }

    ChainChecker checker(head, head_path.filename().string());
    if (log->get() >= 0) {
        int error =
            scan_lines(log->get(), [&](const AuditLine& line) { return checker.check(line); });
        if (error != 0) {
            return read_failure(path, error);
        }
    }
    checker.finish(head_text->has_value());
    return checker.report();
}

} // namespace jitbox
