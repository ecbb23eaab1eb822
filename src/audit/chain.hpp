#pragma once

// Helpers shared by the writer (audit.cpp) and the checker (verify.cpp) of the audit log.

#include "jitbox/audit/audit.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace jitbox::audit_chain {

/// An open file descriptor, closed by the destructor.
class FileDescriptor {
public:
    explicit FileDescriptor(int fd) : m_fd(fd) {}
    FileDescriptor(FileDescriptor&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}
    FileDescriptor& operator=(FileDescriptor&&) = delete;
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    ~FileDescriptor();

    int get() const { return m_fd; }

private:
    int m_fd;
};

/// Locks `fd` with flock(2) and `operation`, retrying on EINTR, and returns 0 or the errno.
int lock_file(int fd, int operation);

/// The seq and hash of the last record, as stored in the head file.
struct AuditHead {
    std::uint64_t seq = 0;
    std::string hash;
};

/// Parses `SEQ HASH\n`: a positive decimal seq, one space, 64 lower-case hex digits, a newline.
std::optional<AuditHead> parse_audit_head(std::string_view text);

/// Reads the head file, or returns nullopt when it does not exist.
Result<std::optional<std::string>> read_head_file(const std::filesystem::path& path);

/// Reads `seq` and `prev` of one record line. The failure's message names what is wrong with
/// the line, such as "not a JSON object".
Result<AuditLink> parse_chain_fields(std::string_view line);

} // namespace jitbox::audit_chain
