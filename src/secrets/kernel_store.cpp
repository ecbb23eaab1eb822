#include "jitbox/secrets/store.hpp"

#include "jitbox/state/store.hpp"
#include "jitbox/util/log.hpp"

#include <keyutils.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string.h> // explicit_bzero
#include <tuple>
#include <unistd.h>

namespace jitbox {

namespace {

static_assert(k_user_keyring == KEY_SPEC_USER_KEYRING);

constexpr std::string_view k_key_type = "user";
constexpr std::string_view k_name_prefix = "jitbox:";
// The payload starts with this, the expiry in seconds since the epoch, optionally a space and
// the sandbox name, and a newline. The value follows.
constexpr std::string_view k_payload_header = "jitbox-secret 1 ";
// The owner's processes may read, update and remove a key even when they do not possess it,
// for example when they run in another session. Group and others get nothing.
constexpr key_perm_t k_key_permissions = KEY_POS_ALL | KEY_USR_ALL;

Failure keyctl_failure(std::string_view action, int error) {
    std::string hint;
    if (error == EDQUOT) {
        hint = "; the user's key quota is full (see /proc/sys/kernel/keys/maxkeys and maxbytes)";
    } else if (error == ENOSYS || error == EPERM) {
        hint = "; the kernel or a seccomp filter, such as Docker's default one, blocks keyctl";
    }
    return make_failure(ExitCode::internal, "kernel keyring: {} failed: {}{}", action,
                        std::strerror(error), hint);
}

std::string key_description(std::string_view sandbox_id, std::string_view key) {
    return fmt::format("{}{}:{}", k_name_prefix, sandbox_id, key);
}

// A buffer that keyutils allocated, wiped and freed when it goes out of scope.
class KeyBuffer {
public:
    KeyBuffer() = default;
    KeyBuffer(const KeyBuffer&) = delete;
    KeyBuffer& operator=(const KeyBuffer&) = delete;
    ~KeyBuffer() {
        if (m_data != nullptr) {
            explicit_bzero(m_data, m_size);
            std::free(m_data);
        }
    }

    void** out() { return &m_data; }
    void set_size(long size) { m_size = static_cast<std::size_t>(size); }
    std::string_view view() const { return {static_cast<const char*>(m_data), m_size}; }

private:
    void* m_data = nullptr;
    std::size_t m_size = 0;
};

struct Payload {
    TimePoint expires_at;
    std::string_view sandbox_name;
    std::string_view value;
};

std::optional<Payload> parse_payload(std::string_view payload) {
    if (payload.substr(0, k_payload_header.size()) != k_payload_header) {
        return std::nullopt;
    }
    payload.remove_prefix(k_payload_header.size());
    const auto newline = payload.find('\n');
    if (newline == std::string_view::npos) {
        return std::nullopt;
    }
    std::int64_t seconds = 0;
    const char* end = payload.data() + newline;
    auto [next, error] = std::from_chars(payload.data(), end, seconds);
    if (error != std::errc() || (next != end && *next != ' ')) {
        return std::nullopt;
    }
    std::string_view sandbox_name;
    if (next != end) {
        sandbox_name = std::string_view(next + 1, static_cast<std::size_t>(end - next - 1));
    }
    return Payload{TimePoint(Seconds(seconds)), sandbox_name, payload.substr(newline + 1)};
}

// A key of ours found in the keyring.
struct KeyEntry {
    key_serial_t id = 0;
    SecretInfo info;
};

// Splits "jitbox:SANDBOX_ID:KEY" into sandbox id and key, or returns nullopt for other
// descriptions.
std::optional<std::pair<std::string, std::string>> parse_description(std::string_view text) {
    if (text.substr(0, k_name_prefix.size()) != k_name_prefix) {
        return std::nullopt;
    }
    text.remove_prefix(k_name_prefix.size());
    const auto colon = text.find(':');
    if (colon == std::string_view::npos) {
        return std::nullopt;
    }
    std::string sandbox(text.substr(0, colon));
    std::string key(text.substr(colon + 1));
    if (!is_valid_sandbox_name(sandbox) || !is_valid_secret_key(key)) {
        return std::nullopt;
    }
    return std::pair{std::move(sandbox), std::move(key)};
}

// NOTE: the user keyring is per uid and per user namespace, so in a container that shares the
// host's user namespace it is shared with every process of the same uid on the host and in the
// other containers. Docker's default seccomp profile blocks keyctl for that reason.
class KernelSecretStore final : public SecretStore {
public:
    KernelSecretStore(const Clock& clock, key_serial_t keyring)
        : m_clock(clock), m_keyring(keyring) {}

    std::string_view name() const override { return "kernel"; }

    Result<void> put(const SecretItem& item) override {
        const TimePoint now = m_clock.now();
        if (auto valid = validate_secret_item(item, now); !valid) {
            return valid;
        }
        std::string payload =
            fmt::format("{}{}", k_payload_header, item.expires_at.time_since_epoch().count());
        if (!item.sandbox_name.empty()) {
            payload += " " + item.sandbox_name;
        }
        payload += "\n" + item.value;
        const std::string description = key_description(item.sandbox_id, item.key);

        // add_key replaces the payload of a key with the same type and description.
        const key_serial_t id = add_key(std::string(k_key_type).c_str(), description.c_str(),
                                        payload.data(), payload.size(), m_keyring);
        const int add_error = errno;
        explicit_bzero(payload.data(), payload.size());
        if (id < 0) {
            return keyctl_failure(fmt::format("adding key {}", description), add_error);
        }

        // keyctl_set_timeout takes an unsigned int of seconds, about 136 years at most.
        const auto timeout = static_cast<unsigned>(std::min<std::int64_t>(
            (item.expires_at - now).count(), std::numeric_limits<unsigned>::max()));
        if (keyctl_set_timeout(id, timeout) != 0) {
            return discard(id, fmt::format("setting the timeout of key {}", description));
        }
        if (keyctl_setperm(id, k_key_permissions) != 0) {
            return discard(id, fmt::format("setting the permissions of key {}", description));
        }
        return {};
    }

    Result<SecretLookup> get(std::string_view sandbox_id, std::string_view key) override {
        if (auto valid = validate_secret_name(sandbox_id, key); !valid) {
            return valid.error();
        }
        auto id = find(sandbox_id, key);
        if (!id) {
            return id.error();
        }
        if (*id == 0) {
            return SecretLookup{};
        }

        KeyBuffer buffer;
        const long size = keyctl_read_alloc(*id, buffer.out());
        if (size < 0) {
            if (is_gone(errno)) {
                return SecretLookup{};
            }
            return keyctl_failure(fmt::format("reading key {}", key_description(sandbox_id, key)),
                                  errno);
        }
        buffer.set_size(size);

        auto payload = parse_payload(buffer.view());
        if (!payload) {
            log_debug(1, "kernel keyring: key {} has no jitbox payload header; ignored",
                      key_description(sandbox_id, key));
            return SecretLookup{};
        }
        if (payload->expires_at <= m_clock.now()) {
            return SecretLookup{};
        }
        return SecretLookup{LookupStatus::found, std::string(payload->value)};
    }

    Result<std::vector<SecretInfo>> list() override {
        auto entries = entries_of_keyring();
        if (!entries) {
            return entries.error();
        }
        const TimePoint now = m_clock.now();
        std::vector<SecretInfo> infos;
        for (auto& entry : *entries) {
            if (entry.info.expires_at > now) {
                infos.push_back(std::move(entry.info));
            }
        }
        std::sort(infos.begin(), infos.end(), [](const auto& a, const auto& b) {
            return std::tie(a.sandbox_id, a.key) < std::tie(b.sandbox_id, b.key);
        });
        return infos;
    }

    Result<bool> remove(std::string_view sandbox_id, std::string_view key) override {
        if (auto valid = validate_secret_name(sandbox_id, key); !valid) {
            return valid.error();
        }
        auto id = find(sandbox_id, key);
        if (!id) {
            return id.error();
        }
        if (*id == 0) {
            return false;
        }
        return destroy(*id, key_description(sandbox_id, key));
    }

    Result<std::size_t> remove_sandbox(std::string_view sandbox_id) override {
        if (auto valid = validate_secret_sandbox(sandbox_id); !valid) {
            return valid.error();
        }
        return destroy_matching(
            [&](const SecretInfo& info) { return info.sandbox_id == sandbox_id; });
    }

    Result<std::size_t> purge_expired(TimePoint now) override {
        return destroy_matching([&](const SecretInfo& info) { return info.expires_at <= now; });
    }

private:
    static bool is_gone(int error) {
        return error == ENOKEY || error == EKEYEXPIRED || error == EKEYREVOKED;
    }

    // The id of the key, or 0 when there is none (or it expired).
    Result<key_serial_t> find(std::string_view sandbox_id, std::string_view key) const {
        const std::string description = key_description(sandbox_id, key);
        const long id = keyctl_search(m_keyring, std::string(k_key_type).c_str(),
                                      description.c_str(), 0);
        if (id < 0) {
            if (is_gone(errno)) {
                return key_serial_t{0};
            }
            return keyctl_failure(fmt::format("searching for key {}", description), errno);
        }
        return static_cast<key_serial_t>(id);
    }

    // Removes a key at once: invalidation destroys it, wherever it is linked.
    Result<bool> destroy(key_serial_t id, const std::string& description) {
        if (keyctl_invalidate(id) == 0) {
            return true;
        }
        if (is_gone(errno)) {
            return false;
        }
        if (errno == EOPNOTSUPP && keyctl_unlink(id, m_keyring) == 0) {
            return true; // a kernel before 3.5, which has no invalidation
        }
        return keyctl_failure(fmt::format("removing key {}", description), errno);
    }

    // Undoes a put whose key could not get its timeout or permissions, and returns the failure.
    Failure discard(key_serial_t id, const std::string& action) {
        const int error = errno;
        if (keyctl_invalidate(id) != 0) {
            keyctl_unlink(id, m_keyring);
        }
        return keyctl_failure(action, error);
    }

    template <typename Predicate>
    Result<std::size_t> destroy_matching(Predicate&& matches) {
        auto entries = entries_of_keyring();
        if (!entries) {
            return entries.error();
        }
        std::size_t removed = 0;
        for (const auto& entry : *entries) {
            if (!matches(entry.info)) {
                continue;
            }
            auto done = destroy(entry.id, key_description(entry.info.sandbox_id, entry.info.key));
            if (!done) {
                return done.error();
            }
            removed += *done ? 1 : 0;
        }
        return removed;
    }

    // Every readable jitbox key that is linked directly into the keyring, including those
    // whose header expiry has passed but whose kernel timeout has not fired yet.
    Result<std::vector<KeyEntry>> entries_of_keyring() const {
        KeyBuffer ids;
        const long size = keyctl_read_alloc(m_keyring, ids.out());
        if (size < 0) {
            return keyctl_failure("listing the keyring", errno);
        }
        ids.set_size(size);
        std::vector<key_serial_t> serials(static_cast<std::size_t>(size) / sizeof(key_serial_t));
        std::memcpy(serials.data(), ids.view().data(), serials.size() * sizeof(key_serial_t));

        std::vector<KeyEntry> entries;
        for (key_serial_t id : serials) {
            if (auto entry = read_entry(id)) {
                entries.push_back(std::move(*entry));
            }
        }
        return entries;
    }

    // The key's names and expiry, or nullopt for a key that is not ours, is gone or unreadable.
    std::optional<KeyEntry> read_entry(key_serial_t id) const {
        char* raw_description = nullptr;
        if (keyctl_describe_alloc(id, &raw_description) < 0) {
            return std::nullopt;
        }
        // The format is "type;uid;gid;perm;description".
        std::string description_line(raw_description);
        std::free(raw_description);
        if (description_line.substr(0, k_key_type.size() + 1) != std::string(k_key_type) + ";") {
            return std::nullopt;
        }
        std::string_view description = description_line;
        for (int field = 0; field < 4; ++field) {
            const auto semicolon = description.find(';');
            if (semicolon == std::string_view::npos) {
                return std::nullopt;
            }
            description.remove_prefix(semicolon + 1);
        }
        auto names = parse_description(description);
        if (!names) {
            return std::nullopt;
        }

        KeyBuffer buffer;
        const long size = keyctl_read_alloc(id, buffer.out());
        if (size < 0) {
            return std::nullopt;
        }
        buffer.set_size(size);
        auto payload = parse_payload(buffer.view());
        if (!payload) {
            return std::nullopt;
        }
        return KeyEntry{id,
                        {std::move(names->first), std::move(names->second), payload->expires_at,
                         std::string(payload->sandbox_name)}};
    }

    const Clock& m_clock;
    key_serial_t m_keyring;
};

// The cheap probe: the keyring exists, can be listed, and is reachable from this process's
// session keyring, so that the keys added to it can be read back.
Result<void> probe_keyring(key_serial_t keyring) {
    const key_serial_t id = keyctl_get_keyring_ID(keyring, /*create=*/0);
    if (id < 0) {
        return keyctl_failure("finding the keyring", errno);
    }
    KeyBuffer ids;
    const long size = keyctl_read_alloc(id, ids.out());
    if (size < 0) {
        return keyctl_failure("listing the keyring", errno);
    }
    char* raw_description = nullptr;
    if (keyctl_describe_alloc(id, &raw_description) < 0) {
        return keyctl_failure("describing the keyring", errno);
    }
    std::string description(raw_description);
    std::free(raw_description);
    description = description.substr(description.rfind(';') + 1);
    if (keyctl_search(KEY_SPEC_SESSION_KEYRING, "keyring", description.c_str(), 0) != id) {
        return make_failure(ExitCode::internal,
                            "kernel keyring: the keyring {} is not linked from this process's "
                            "session keyring, so keys added to it could not be read back",
                            description);
    }
    return {};
}

} // namespace

Result<std::unique_ptr<SecretStore>> open_kernel_secret_store(const Clock& clock,
                                                              std::int32_t keyring) {
    if (auto usable = probe_keyring(keyring); !usable) {
        return usable.error();
    }
    return std::unique_ptr<SecretStore>(std::make_unique<KernelSecretStore>(clock, keyring));
}

} // namespace jitbox
