#pragma once

#include "jitbox/providers/provider.hpp"
#include "jitbox/util/result.hpp"
#include "jitbox/util/time.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jitbox {

/// Lifecycle of a record: `creating` is written before the first provider call, `running` once
/// the sandbox and its background child are up, `removing` while teardown is under way.
enum class SandboxState { creating, running, removing };

std::string_view to_string(SandboxState state);

/// The record of one sandbox, stored as one JSON file.
struct SandboxRecord {
    std::string name;
    std::string id;
    std::string template_name;
    std::string provider;
    SandboxState state = SandboxState::creating;
    std::string owner;
    TimePoint created_at;
    TimePoint expires_at;
    TimePoint max_expires_at; // created_at + the template's max_ttl: extend stops here
    std::optional<Seconds> stop_timeout;
    std::string endpoint; // the engine or API it was created on, such as
                          // "unix:///var/run/docker.sock" or "https://ec2.eu-west-1.amazonaws.com"
    std::string region;   // the AWS region; empty for docker and in records older than AWS
    /// For aws-sts: the role, session policy and MFA device granted at `up`, so a renewed
    /// session has the same permissions even when the template has changed since.
    std::string role_arn;
    std::string session_policy;
    std::string mfa_serial;
    /// For docker: the template's `shell` at `up`, which `jitbox shell` runs; empty means
    /// /bin/sh, and so do records older than the key.
    std::string shell;
    std::string removal_action; // while `removing`: the action that started it, for the audit
    std::string reason;         // --reason given to `up`
    bool break_glass = false;   // granted as a break-glass request
    std::string secret_backend; // the keyring backend that holds this sandbox's items, such as
                                // "kernel"; empty when it has none
    std::optional<int> child_pid;
    std::optional<unsigned long long> child_start_time; // /proc/PID/stat field 22, in ticks
    ResourceSet resources;
};

/// True when `name` matches [a-z0-9][a-z0-9-]{0,62}.
bool is_valid_sandbox_name(std::string_view name);

/// The state folder: $XDG_STATE_HOME/jitbox, else ~/.local/state/jitbox.
Result<std::filesystem::path> default_state_dir();

/// The owners of a state folder: one user (their own folder), or every user (enforced mode's
/// /var/lib/jitbox). A shared folder keeps each owner's records and locks in `users/OWNER/`,
/// so alice's `db` and bob's `db` are two sandboxes and each user's lookups see only their
/// own. The audit log stays in the shared folder itself, one hash chain for everyone.
enum class StateLayout { per_user, shared };

/// The folder that contains `owner`'s records: `root` itself when per_user, `root/users/OWNER`
/// when shared. Fails with ExitCode::usage for an owner name that is not 1 to 64 letters,
/// digits, '_', '.' or '-', starting with a letter, digit or '_'.
Result<std::filesystem::path> owner_state_dir(const std::filesystem::path& root, StateLayout layout,
                                              std::string_view owner);

/// The owners that have a folder in a shared state folder, sorted. Empty when per_user or when
/// no owner has a folder yet.
Result<std::vector<std::string>> state_owners(const std::filesystem::path& root,
                                              StateLayout layout);

/// An exclusive advisory lock (flock) on a file, released by the destructor.
class FileLock {
public:
    /// Blocks until the lock is held. The file is created 0600 when missing.
    static Result<FileLock> acquire(const std::filesystem::path& path);
    /// Returns nullopt at once when another process holds the lock.
    static Result<std::optional<FileLock>> try_acquire(const std::filesystem::path& path);
    /// Takes over descriptor `fd`, inherited across exec, that already holds the lock on `path`.
    /// Fails when `fd` is open on another file or another descriptor holds the lock.
    static Result<FileLock> adopt(int fd, const std::filesystem::path& path);

    FileLock(FileLock&& other) noexcept;
    FileLock& operator=(FileLock&& other) noexcept;
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;
    ~FileLock();

    int fd() const { return m_fd; }

private:
    explicit FileLock(int fd) : m_fd(fd) {}
    int m_fd = -1;
};

/// The on-disk records: one `sandboxes/NAME.json` each, written atomically (temp file, fsync,
/// rename, fsync of the folder), folder 0700 and files 0600.
class StateStore {
public:
    /// Opens the store at `dir`, creating the folders 0700 when missing.
    static Result<StateStore> open(const std::filesystem::path& dir);
    /// Reads every record of the store at `dir` without creating, locking or changing anything,
    /// and skips records that cannot be read without a word, because the commands that act on
    /// them report them. For output that must stay cheap and quiet, such as a shell prompt.
    static std::vector<SandboxRecord> read_quietly(const std::filesystem::path& dir);

    const std::filesystem::path& dir() const { return m_dir; }

    /// Takes the lock that serialises changes to one sandbox (reserve, update, remove).
    Result<FileLock> lock_sandbox(std::string_view name) const;
    /// As lock_sandbox, but returns nullopt at once when another process holds the lock.
    Result<std::optional<FileLock>> try_lock_sandbox(std::string_view name) const;

    /// The lock the background child holds for its whole life; while held, a child is armed.
    std::filesystem::path child_lock_path(std::string_view name) const;

    /// Writes a new record; fails with ExitCode::name_in_use when one exists. The caller holds
    /// the sandbox lock.
    Result<void> insert(const SandboxRecord& record) const;
    /// Replaces an existing record. The caller holds the sandbox lock.
    Result<void> update(const SandboxRecord& record) const;
    /// Reads one record; nullopt when there is none.
    Result<std::optional<SandboxRecord>> find(std::string_view name) const;
    /// Reads every record, sorted by name. Unreadable records are skipped with a warning.
    Result<std::vector<SandboxRecord>> list() const;
    /// The names of every record, in no order, without reading the records.
    Result<std::vector<std::string>> names() const;
    /// Deletes a record; a missing record is not an error. The caller holds the sandbox lock.
    Result<void> remove(std::string_view name) const;

private:
    explicit StateStore(std::filesystem::path dir) : m_dir(std::move(dir)) {}
    std::filesystem::path record_path(std::string_view name) const;

    std::filesystem::path m_dir;
};

/// Serialises a record to JSON and back; exposed for tests and `status --json`.
std::string record_to_json(const SandboxRecord& record);
Result<SandboxRecord> record_from_json(std::string_view text);

} // namespace jitbox
