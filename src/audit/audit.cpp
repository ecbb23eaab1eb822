#include "jitbox/audit/audit.hpp"

#include "jitbox/enforced/mode.hpp"

#include "chain.hpp"

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace jitbox {

namespace fs = std::filesystem;

namespace audit_chain {

FileDescriptor::~FileDescriptor() {
    if (m_fd >= 0) {
        ::close(m_fd);
    }
}

int lock_file(int fd, int operation) {
    while (::flock(fd, operation) != 0) {
        if (errno != EINTR) {
            return errno;
        }
    }
    return 0;
}

namespace {

bool is_lower_hex(std::string_view text) {
    return std::all_of(text.begin(), text.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    });
}

} // namespace

std::optional<AuditHead> parse_audit_head(std::string_view text) {
    std::size_t space = text.find(' ');
    if (text.empty() || text.back() != '\n' || space == 0 || space == std::string_view::npos) {
        return std::nullopt;
    }
    std::string_view digits = text.substr(0, space);
    std::string_view hash = text.substr(space + 1, text.size() - space - 2);
    if (digits.size() > 19 || !std::all_of(digits.begin(), digits.end(), [](char c) {
            return c >= '0' && c <= '9';
        })) {
        return std::nullopt;
    }
    if (hash.size() != k_audit_first_prev.size() || !is_lower_hex(hash)) {
        return std::nullopt;
    }
    AuditHead head{std::stoull(std::string(digits)), std::string(hash)};
    if (head.seq == 0) {
        return std::nullopt;
    }
    return head;
}

Result<std::optional<std::string>> read_head_file(const fs::path& path) {
    FileDescriptor file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (file.get() < 0 && errno == ENOENT) {
        return std::optional<std::string>();
    }
    if (file.get() < 0) {
        return make_failure(ExitCode::internal, "cannot read {}: {}; check its owner and mode",
                            path.string(), std::strerror(errno));
    }
    // A valid head file is about 85 bytes, so the first 4 KiB are enough to judge it.
    std::string text(4096, '\0');
    std::size_t size = 0;
    while (size < text.size()) {
        ssize_t got = ::read(file.get(), text.data() + size, text.size() - size);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            return make_failure(ExitCode::internal, "cannot read {}: {}", path.string(),
                                std::strerror(errno));
        }
        if (got == 0) {
            break;
        }
        size += static_cast<std::size_t>(got);
    }
    text.resize(size);
    return std::optional<std::string>(std::move(text));
}

Result<AuditLink> parse_chain_fields(std::string_view line) {
    if (line.empty()) {
        return make_failure(ExitCode::internal, "empty line");
    }
    auto object = nlohmann::json::parse(line.begin(), line.end(), nullptr,
                                        /*allow_exceptions=*/false);
    if (object.is_discarded() || !object.is_object()) {
        return make_failure(ExitCode::internal, "not a JSON object");
    }
    auto seq = object.find("seq");
    if (seq == object.end() || !seq->is_number_unsigned() || seq->get<std::uint64_t>() == 0) {
        return make_failure(ExitCode::internal, "\"seq\" is missing or not a positive integer");
    }
    auto prev = object.find("prev");
    if (prev == object.end() || !prev->is_string() ||
        prev->get_ref<const std::string&>().size() != k_audit_first_prev.size() ||
        !is_lower_hex(prev->get_ref<const std::string&>())) {
        return make_failure(ExitCode::internal,
                            "\"prev\" is missing or not 64 lower-case hex digits");
    }
    return AuditLink{seq->get<std::uint64_t>(), prev->get<std::string>()};
}

} // namespace audit_chain

using audit_chain::AuditHead;
using audit_chain::FileDescriptor;

namespace {

Failure audit_failure(const fs::path& path, int error) {
    return make_failure(ExitCode::internal, "cannot append to the audit log {}: {}; check its "
                        "owner, mode and free space", path.string(), std::strerror(error));
}

Failure head_failure(const fs::path& path, int error) {
    return make_failure(ExitCode::internal, "appended to the audit log but cannot replace {}: "
                        "{}; check the folder's owner, mode and free space", path.string(),
                        std::strerror(error));
}

// Returns 0 or the errno of the failed write.
int write_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        ssize_t written = ::write(fd, bytes.data(), bytes.size());
        if (written < 0 && errno == EINTR) {
            continue;
        }
        if (written < 0) {
            return errno;
        }
        bytes.remove_prefix(static_cast<std::size_t>(written));
    }
    return 0;
}

// Reads `size` bytes at `offset` and returns 0 or the errno. A file that shrank under the lock
// is reported as EIO, because no jitbox writer shortens the log.
int read_exactly(int fd, char* buffer, std::size_t size, off_t offset) {
    while (size > 0) {
        ssize_t got = ::pread(fd, buffer, size, offset);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            return errno;
        }
        if (got == 0) {
            return EIO;
        }
        buffer += got;
        size -= static_cast<std::size_t>(got);
        offset += got;
    }
    return 0;
}

struct LastLine {
    bool exists = false;
    std::string text; // without the newline
    bool terminated = true;
};

// Reads the log's last line backwards from the end in 4 KiB steps, so that an append costs the
// same however long the log is.
Result<LastLine> read_last_line(int fd, const fs::path& path) {
    struct stat info {};
    if (::fstat(fd, &info) != 0) {
        return audit_failure(path, errno);
    }
    if (info.st_size == 0) {
        return LastLine{};
    }

    constexpr off_t k_step = 4096;
    std::string tail; // the bytes from `start` to the end of the file
    off_t start = info.st_size;
    while (true) {
        off_t chunk_start = std::max<off_t>(0, start - k_step);
        std::string chunk(static_cast<std::size_t>(start - chunk_start), '\0');
        if (int error = read_exactly(fd, chunk.data(), chunk.size(), chunk_start); error != 0) {
            return audit_failure(path, error);
        }
        tail.insert(0, chunk);
        start = chunk_start;

        bool terminated = tail.back() == '\n';
        std::size_t body_end = tail.size() - (terminated ? 1 : 0);
        std::size_t newline = body_end == 0 ? std::string::npos : tail.rfind('\n', body_end - 1);
        if (newline != std::string::npos) {
            return LastLine{true, tail.substr(newline + 1, body_end - newline - 1), terminated};
        }
        if (start == 0) {
            return LastLine{true, tail.substr(0, body_end), terminated};
        }
    }
}

// A missing, unreadable or malformed head file only weakens what a later verify can detect, so
// the append goes on without it and replaces it.
std::optional<AuditHead> read_head_if_valid(const fs::path& path) {
    auto text = audit_chain::read_head_file(path);
    if (!text || !text->has_value()) {
        return std::nullopt;
    }
    return audit_chain::parse_audit_head(**text);
}

// Chooses seq and prev of the next record. Normally they follow the last line. When the head
// file disagrees with the last line, the choice keeps that disagreement visible to verify
// instead of letting the new record and head file hide it.
AuditLink next_link(const LastLine& last, const std::optional<AuditHead>& head) {
    if (!last.exists) {
        // A head file beside an empty log means that every record was cut, and a seq gap shows it.
        return {head ? head->seq + 1 : 1, std::string(k_audit_first_prev)};
    }
    std::string last_hash = sha256_hex(last.text);
    std::uint64_t last_seq = 0;
    if (auto fields = audit_chain::parse_chain_fields(last.text); fields && last.terminated) {
        last_seq = fields->seq;
    }

    if (!head || head->seq < last_seq) {
        // A head file behind the log is left by a writer that stopped between its two writes.
        return {last_seq + 1, last_hash};
    }
    if (head->seq > last_seq) {
        // Records were cut from the end, and continuing from the head's seq leaves a gap.
        return {head->seq + 1, last_hash};
    }
    if (head->hash != last_hash) {
        // The last record was changed. Linking to the hash it was written with breaks the chain.
        return {last_seq + 1, head->hash};
    }
    return {last_seq + 1, last_hash};
}

Result<void> sync_folder(const fs::path& folder, const fs::path& head_path) {
    FileDescriptor dir(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.get() < 0 || ::fsync(dir.get()) != 0) {
        return head_failure(head_path, errno);
    }
    return {};
}

// Writes the head file's next content to a synced temp file beside it and returns the temp
// file's name. The append renames it over the head file once the log line is on disk, so a
// full disk fails the append before the log changes.
Result<std::string> stage_head(const fs::path& path, const AuditHead& head,
                               const fs::path& log_path) {
    std::string temp_name = path.string() + ".XXXXXX";
    int fd = ::mkostemp(temp_name.data(), O_CLOEXEC);
    if (fd < 0) {
        return audit_failure(log_path, errno);
    }
    FileDescriptor temp(fd);
    auto discard = [&](int error) {
        ::unlink(temp_name.c_str());
        return audit_failure(log_path, error);
    };
    if (::fchmod(temp.get(), 0600) != 0) {
        return discard(errno);
    }
    if (int error = write_all(temp.get(), fmt::format("{} {}\n", head.seq, head.hash));
        error != 0) {
        return discard(error);
    }
    if (::fsync(temp.get()) != 0) {
        return discard(errno);
    }
    return temp_name;
}

// Cuts the log back to the size it had before a failed append, so that a full disk leaves no
// partial line behind. The caller holds the log's lock.
void undo_append(int log_fd, off_t size) {
    if (::ftruncate(log_fd, size) == 0) {
        (void)::fsync(log_fd);
    }
}

} // namespace

std::string sha256_hex(std::string_view bytes) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int size = 0;
    if (EVP_Digest(bytes.data(), bytes.size(), digest.data(), &size, EVP_sha256(), nullptr) !=
        1) {
        throw Error(ExitCode::internal, "SHA-256 of an audit record failed in OpenSSL");
    }
    std::string hex;
    hex.reserve(size * 2);
    for (unsigned int i = 0; i < size; ++i) {
        hex += fmt::format("{:02x}", digest[i]);
    }
    return hex;
}

fs::path audit_head_path(const fs::path& log_path) {
    fs::path head = log_path;
    head.replace_extension(".head");
    return head;
}

std::string audit_event_to_json(const AuditEvent& event, const AuditLink& link) {
    nlohmann::json object = {
        {"seq", link.seq},
        {"prev", link.prev},
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
    const enforced::ElevatedScope elevated;
    FileDescriptor log(::open(m_path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
    if (log.get() < 0) {
        return audit_failure(m_path, errno);
    }
    // The lock spans reading the last line, the append and the head file, so the next writer
    // links to this record and the head file never goes back to an older one. O_APPEND makes
    // each write land at the end, and the lock also keeps a partial write of one writer (a full
    // disk, a signal) from being followed by another writer's line.
    if (int error = audit_chain::lock_file(log.get(), LOCK_EX); error != 0) {
        return audit_failure(m_path, error);
    }

    auto last = read_last_line(log.get(), m_path);
    if (!last) {
        return last.error();
    }
    const fs::path head_path = audit_head_path(m_path);
    const AuditLink link = next_link(*last, read_head_if_valid(head_path));
    std::string record = audit_event_to_json(event, link);
    std::string_view line = std::string_view(record).substr(0, record.size() - 1);
    auto staged_head = stage_head(head_path, AuditHead{link.seq, sha256_hex(line)}, m_path);
    if (!staged_head) {
        return staged_head.error();
    }
    auto discard_head = [&] { ::unlink(staged_head->c_str()); };
    struct stat before {};
    if (::fstat(log.get(), &before) != 0) {
        discard_head();
        return audit_failure(m_path, errno);
    }

    // A last line without a newline is a write cut short by a writer that could not undo it.
    // Ending it keeps the new record on a line of its own, and verify reports the fragment as
    // malformed.
    std::string bytes = last->exists && !last->terminated ? "\n" + record : record;
    int error = write_all(log.get(), bytes);
    if (error == 0 && ::fsync(log.get()) != 0) {
        error = errno;
    }
    if (error == 0 && ::rename(staged_head->c_str(), head_path.c_str()) != 0) {
        error = errno;
    }
    if (error != 0) {
        discard_head();
        undo_append(log.get(), before.st_size);
        return audit_failure(m_path, error);
    }
    fs::path folder = head_path.parent_path();
    return sync_folder(folder.empty() ? fs::path(".") : folder, head_path);
}

} // namespace jitbox
