#include "jitbox/audit/audit.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace jitbox {

namespace {

Failure audit_failure(const std::filesystem::path& path, int error) {
    return make_failure(ExitCode::internal, "cannot append to the audit log {}: {}; check its "
                        "owner, mode and free space", path.string(), std::strerror(error));
}

} // namespace

std::string audit_event_to_json(const AuditEvent& event) {
    nlohmann::json object = {
        {"time", format_rfc3339(event.time)},
        {"user", event.user},
        {"action", event.action},
        {"sandbox", event.sandbox},
        {"sandbox_id", event.sandbox_id},
        {"template", event.template_name},
        {"result", event.result},
        {"error", event.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(event.error)},
    };
    // Optional fields appear only when set, so the common line stays short.
    for (auto [key, value] : {std::pair{"detail", &event.detail}, std::pair{"rule", &event.rule},
                              std::pair{"reason", &event.reason}}) {
        if (!value->empty()) {
            object[key] = *value;
        }
    }
    if (event.break_glass) {
        object["break_glass"] = true;
    }
    if (!event.policy_digest.empty()) {
        object["policy_digest"] = event.policy_digest;
    }
    // Replacement of invalid UTF-8 keeps one bad byte in a message from losing the record.
    return object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

Result<void> AuditLog::append(const AuditEvent& event) const {
    const std::string line = audit_event_to_json(event);
    int fd = ::open(m_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        return audit_failure(m_path, errno);
    }
    // O_APPEND makes each write land at the end; the lock also keeps a partial write of one
    // writer (a full disk, a signal) from being followed by another writer's line.
    while (::flock(fd, LOCK_EX) != 0 && errno == EINTR) {
    }
    std::string_view rest = line;
    int error = 0;
    while (!rest.empty()) {
        ssize_t written = ::write(fd, rest.data(), rest.size());
        if (written < 0 && errno == EINTR) {
            continue;
        }
        if (written < 0) {
            error = errno;
            break;
        }
        rest.remove_prefix(static_cast<std::size_t>(written));
    }
    if (error == 0 && ::fsync(fd) != 0) {
        error = errno;
    }
    ::close(fd);
    if (error != 0) {
        return audit_failure(m_path, error);
    }
    return {};
}

} // namespace jitbox
