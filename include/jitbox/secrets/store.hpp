#pragma once

#include "jitbox/util/result.hpp"
#include "jitbox/util/time.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jitbox {

/// A short-lived credential of one sandbox. The value is never written to an error message, a
/// log line or a listing.
///
/// Items are keyed by the sandbox's id, never by its name, because every state folder of a user
/// shares the user's keyrings and two folders may each have a sandbox of the same name.
struct SecretItem {
    std::string sandbox_id;
    std::string key;
    std::string value;
    TimePoint expires_at;
    std::string sandbox_name; // for display only, may be empty
};

/// The key of the item that holds an aws-sts sandbox's session credentials as JSON. Its expiry
/// is the one STS set, so `extend` leaves it as it is.
inline constexpr std::string_view k_aws_session_key = "aws-session";

/// The names and expiry of a stored item, without its value.
struct SecretInfo {
    std::string sandbox_id;
    std::string key;
    TimePoint expires_at;
    std::string sandbox_name; // empty when the item carries none
};

enum class LookupStatus {
    found,
    not_found, // no such item, or only an expired one
    locked,    // the keyring holds the item, or may hold it, but is locked
};

/// The outcome of SecretStore::get. `value` is empty unless the status is `found`.
struct SecretLookup {
    LookupStatus status = LookupStatus::not_found;
    std::string value;
};

std::string_view to_string(LookupStatus status);

/// Keeps short-lived credentials, keyed by sandbox id and key, until their expiry. Every backend
/// treats an item whose expiry has passed as missing, and `put` replaces an item with the same
/// sandbox id and key. While a keyring is locked, `get` reports `locked` and the other calls
/// fail. Failures use ExitCode::usage for an invalid sandbox id, key or item, ExitCode::locked
/// for a locked keyring, and ExitCode::internal for a keyring that fails or times out.
class SecretStore {
public:
    virtual ~SecretStore() = default;

    /// The backend name, as JITBOX_KEYRING takes it: "secret-service", "kernel" or "file".
    virtual std::string_view name() const = 0;

    /// Stores `item`. Rejects an invalid sandbox id, sandbox name or key, an empty value, a
    /// value that is not UTF-8 text or is longer than k_max_secret_bytes, and an expiry that is
    /// not in the future.
    virtual Result<void> put(const SecretItem& item) = 0;

    virtual Result<SecretLookup> get(std::string_view sandbox_id, std::string_view key) = 0;

    /// Lists the items that have not expired, sorted by sandbox id and key.
    virtual Result<std::vector<SecretInfo>> list() = 0;

    /// Removes one item and returns false when there was none.
    virtual Result<bool> remove(std::string_view sandbox_id, std::string_view key) = 0;

    /// Removes every item of the sandbox and returns how many there were.
    virtual Result<std::size_t> remove_sandbox(std::string_view sandbox_id) = 0;

    /// Removes every item whose expiry is at or before `now` and returns how many there were.
    virtual Result<std::size_t> purge_expired(TimePoint now) = 0;
};

/// The maximum length of a secret value in bytes. The kernel backend sets the limit: the payload
/// of a "user" key is at most 32767 bytes, and an unprivileged user's keys share a quota of
/// 20000 bytes by default (/proc/sys/kernel/keys/maxbytes).
inline constexpr std::size_t k_max_secret_bytes = 16 * 1024;

/// The maximum length of a secret key in bytes.
inline constexpr std::size_t k_max_secret_key_bytes = 128;

/// True when `key` matches [A-Za-z0-9._-]{1,128}. It is defined in secret_key.cpp, apart from
/// the backends, so the configuration reader links without them.
bool is_valid_secret_key(std::string_view key);

/// Checks the sandbox id of a secret, which has the form of a sandbox name (see
/// is_valid_sandbox_name). Fails with ExitCode::usage.
Result<void> validate_secret_sandbox(std::string_view sandbox_id);

/// Checks the sandbox id and the key of a secret. Fails with ExitCode::usage.
Result<void> validate_secret_name(std::string_view sandbox_id, std::string_view key);

/// Checks what every backend requires of an item before it stores it (see SecretStore::put).
Result<void> validate_secret_item(const SecretItem& item, TimePoint now);

/// Reads an environment variable and returns nullopt when it is unset. The alias is the same as
/// the one in providers/docker.hpp, so one lookup serves both.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

/// The secret-service backend's treatment of a locked default collection. `open_anyway` is for
/// a backend the user named, whose lookups then report `locked`. `fail` is for the automatic
/// choice, which then moves on to the next backend.
enum class WhenLocked { open_anyway, fail };

/// The upper bound for one Secret Service operation, including connecting to the bus.
inline constexpr std::chrono::milliseconds k_secret_service_timeout{1500};

/// The Secret Service (GNOME Keyring, KeePassXC and others) over the D-Bus session bus,
/// through libsecret. Items carry the schema "io.jitbox.Secret" with the attributes sandbox (the
/// sandbox id), sandbox-name, key and expires-at, and go into the default collection. jitbox
/// creates no collection and never shows an unlock prompt.
///
/// The bus address comes from DBUS_SESSION_BUS_ADDRESS in `env`, which must equal the process
/// environment because GIO reads the latter. No bus is started: when the variable is unset or
/// names the autolaunch: transport, this fails before any GIO call. Fails when the service
/// does not reply within k_secret_service_timeout or has no default collection.
Result<std::unique_ptr<SecretStore>> open_secret_service_store(const EnvLookup& env,
                                                               const Clock& clock,
                                                               WhenLocked when_locked);

/// KEY_SPEC_USER_KEYRING of <keyutils.h>: the keyring that all processes of a user share.
inline constexpr std::int32_t k_user_keyring = -4;

/// The Linux kernel key retention service: one key of type "user" per item, described as
/// "jitbox:SANDBOX_ID:KEY" and linked into `keyring`. The kernel removes a key at its expiry
/// (keyctl_set_timeout), and the payload starts with a header line carrying the expiry and the
/// sandbox name, so that `list` can show them. Keys are readable by every process of the owning
/// user. Fails when the kernel or a seccomp filter rejects the keyctl system call, or when
/// `keyring` is not reachable from the process's session keyring, because keys added to it
/// could not be read back.
Result<std::unique_ptr<SecretStore>>
open_kernel_secret_store(const Clock& clock, std::int32_t keyring = k_user_keyring);

/// $XDG_RUNTIME_DIR/jitbox/secrets.json, or a failure when XDG_RUNTIME_DIR is unset or not an
/// absolute path.
Result<std::filesystem::path> default_secrets_file(const EnvLookup& env);

/// A JSON file, mode 0600, in a folder of mode 0700 that is created when missing. A folder or
/// file that another user owns, that is a symbolic link or that group or others may access is
/// rejected, not repaired. Writers take an flock on a lock file next to it and replace the file
/// atomically (temp file, fsync, rename). The values are stored in plain text, so this is the
/// last choice of `auto`: XDG_RUNTIME_DIR is normally a tmpfs that is emptied at logout.
Result<std::unique_ptr<SecretStore>> open_file_secret_store(const std::filesystem::path& file,
                                                            const Clock& clock);

/// The result of one backend's probe, for `jitbox doctor` and `-v`.
struct SecretBackendProbe {
    std::string backend;
    bool usable = false;
    std::string detail; // why it is not usable, empty when it is
};

/// The open store, and how and why it was chosen.
struct OpenedSecretStore {
    std::unique_ptr<SecretStore> store;
    std::string reason; // one line, such as "auto: secret-service: ...; chose kernel"
    std::vector<SecretBackendProbe> probes; // the backends tried, in order
};

/// One backend that the chooser may open: its name and the function that opens it.
struct SecretBackendOpener {
    std::string name;
    std::function<Result<std::unique_ptr<SecretStore>>(WhenLocked)> open;
};

/// The origin of a backend name passed as `choice`: the configuration's keyring.backend, or the
/// record of a sandbox whose items are in that backend.
enum class ChoiceSource { configuration, record };

/// Picks a backend. A non-empty JITBOX_KEYRING in `env` wins over `choice` (the configured
/// name, empty when none). "auto", or no name at all, opens the first backend of `backends`
/// that works now, in their order. A named backend that does not work is an error and never
/// falls back to another. An unknown name is ExitCode::usage, and so is a backend that
/// JITBOX_KEYRING or the configuration names and that does not work.
Result<OpenedSecretStore> choose_secret_store(std::string_view choice, const EnvLookup& env,
                                              const std::vector<SecretBackendOpener>& backends,
                                              ChoiceSource from = ChoiceSource::configuration);

/// Runs choose_secret_store over the real backends in the order secret-service, kernel, file,
/// with the system clock.
Result<OpenedSecretStore> open_secret_store(std::string_view choice, const EnvLookup& env,
                                            ChoiceSource from = ChoiceSource::configuration);

} // namespace jitbox
