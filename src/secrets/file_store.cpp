#include "jitbox/secrets/store.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <tuple>
#include <unistd.h>
#include <utility>

namespace jitbox {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int k_file_format_version = 1;
constexpr const char* k_lock_name = "secrets.lock";
// A file far larger than any set of short-lived credentials is not read into memory.
constexpr off_t k_max_file_bytes = 16 * 1024 * 1024;

// Closes a file descriptor when it goes out of scope.
class UniqueFd {
public:
    explicit UniqueFd(int fd = -1) : m_fd(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        std::swap(m_fd, other.m_fd);
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() {
        if (m_fd >= 0) {
            ::close(m_fd);
        }
    }

    int get() const { return m_fd; }
    bool valid() const { return m_fd >= 0; }

private:
    int m_fd;
};

Failure io_failure(const fs::path& path, std::string_view action, int error) {
    return make_failure(ExitCode::internal, "secret store: {} {} failed: {}", action,
                        path.string(), std::strerror(error));
}

// Rejects anything but a `kind` (S_IFDIR or S_IFREG) of the effective user that group and
// others cannot access. The check runs on an open descriptor, so a path swapped after the
// check cannot slip through.
Result<void> check_private(int fd, const fs::path& path, mode_t kind) {
    struct stat info {};
    if (::fstat(fd, &info) != 0) {
        return io_failure(path, "stat of", errno);
    }
    const char* expected = kind == S_IFDIR ? "folder" : "file";
    const int required_mode = kind == S_IFDIR ? 0700 : 0600;
    if ((info.st_mode & S_IFMT) != kind) {
        return make_failure(ExitCode::internal, "secret store: {} is not a {}; remove it",
                            path.string(), expected);
    }
    if (info.st_uid != ::geteuid()) {
        return make_failure(ExitCode::internal,
                            "secret store: {} belongs to uid {}, not to uid {}; remove it",
                            path.string(), info.st_uid, ::geteuid());
    }
    if ((info.st_mode & 077) != 0) {
        return make_failure(ExitCode::internal,
                            "secret store: {} has mode {:04o}, which lets other users in; "
                            "run `chmod {:04o} {}`",
                            path.string(), info.st_mode & 07777, required_mode, path.string());
    }
    return {};
}

// Opens the folder of the store, creating it 0700 when `create` and it is missing. Returns an
// invalid descriptor when it is missing and not created.
enum class CreateFolder { yes, no };

Result<UniqueFd> open_folder(const fs::path& dir, CreateFolder create) {
    if (create == CreateFolder::yes && ::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
        return io_failure(dir, "creating the folder", errno);
    }
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) {
        if (errno == ENOENT && create == CreateFolder::no) {
            return UniqueFd();
        }
        if (errno == ENOTDIR || errno == ELOOP) {
            return make_failure(ExitCode::internal,
                                "secret store: {} is not a folder (or is a symbolic link); "
                                "remove it",
                                dir.string());
        }
        return io_failure(dir, "opening", errno);
    }
    if (auto checked = check_private(fd.get(), dir, S_IFDIR); !checked) {
        return checked.error();
    }
    return fd;
}

Result<std::string> read_all(int fd, const fs::path& path) {
    struct stat info {};
    if (::fstat(fd, &info) != 0) {
        return io_failure(path, "stat of", errno);
    }
    if (info.st_size > k_max_file_bytes) {
        return make_failure(ExitCode::internal,
                            "secret store: {} is larger than {} bytes; remove it",
                            path.string(), k_max_file_bytes);
    }
    std::string text(static_cast<std::size_t>(info.st_size), '\0');
    std::size_t done = 0;
    while (done < text.size()) {
        ssize_t count = ::read(fd, text.data() + done, text.size() - done);
        if (count < 0 && errno == EINTR) {
            continue;
        }
        if (count < 0) {
            return io_failure(path, "reading", errno);
        }
        if (count == 0) {
            break;
        }
        done += static_cast<std::size_t>(count);
    }
    text.resize(done);
    return text;
}

Result<void> write_all(int fd, std::string_view text, const fs::path& path) {
    while (!text.empty()) {
        ssize_t count = ::write(fd, text.data(), text.size());
        if (count < 0 && errno == EINTR) {
            continue;
        }
        if (count < 0) {
            return io_failure(path, "writing", errno);
        }
        text.remove_prefix(static_cast<std::size_t>(count));
    }
    return {};
}

// The messages never include what the parser saw, because that could be part of a value.
Failure invalid_file(const fs::path& path) {
    return make_failure(ExitCode::internal,
                        "secret store: {} is not a valid jitbox secrets file (format version "
                        "{}); remove it, which drops the secrets stored in it",
                        path.string(), k_file_format_version);
}

Result<std::vector<SecretItem>> parse_items(const std::string& text, const fs::path& path) {
    json document = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!document.is_object() || document.value("version", 0) != k_file_format_version ||
        !document.contains("items") || !document["items"].is_array()) {
        return invalid_file(path);
    }
    std::vector<SecretItem> items;
    for (const auto& entry : document["items"]) {
        if (!entry.is_object()) {
            return invalid_file(path);
        }
        auto sandbox = entry.find("sandbox");
        auto key = entry.find("key");
        auto value = entry.find("value");
        auto expires_at = entry.find("expires_at");
        for (const auto& field : {sandbox, key, value, expires_at}) {
            if (field == entry.end() || !field->is_string()) {
                return invalid_file(path);
            }
        }
        auto expiry = parse_rfc3339(expires_at->get<std::string>());
        if (!expiry) {
            return invalid_file(path);
        }
        // The display name is optional, so files written before it existed stay valid.
        auto sandbox_name = entry.find("sandbox_name");
        if (sandbox_name != entry.end() && !sandbox_name->is_string()) {
            return invalid_file(path);
        }
        items.push_back({sandbox->get<std::string>(), key->get<std::string>(),
                         value->get<std::string>(), *expiry,
                         sandbox_name == entry.end() ? "" : sandbox_name->get<std::string>()});
    }
    return items;
}

std::string serialize_items(const std::vector<SecretItem>& items) {
    json entries = json::array();
    for (const auto& item : items) {
        entries.push_back({{"sandbox", item.sandbox_id},
                           {"sandbox_name", item.sandbox_name},
                           {"key", item.key},
                           {"expires_at", format_rfc3339(item.expires_at)},
                           {"value", item.value}});
    }
    json document = {{"version", k_file_format_version}, {"items", std::move(entries)}};
    return document.dump(2) + "\n";
}

bool same_item(const SecretItem& item, std::string_view sandbox_id, std::string_view key) {
    return item.sandbox_id == sandbox_id && item.key == key;
}

class FileSecretStore final : public SecretStore {
public:
    FileSecretStore(fs::path file, const Clock& clock)
        : m_file(std::move(file)), m_dir(m_file.parent_path()), m_clock(clock) {}

    std::string_view name() const override { return "file"; }

    Result<void> put(const SecretItem& item) override {
        if (auto valid = validate_secret_item(item, m_clock.now()); !valid) {
            return valid;
        }
        auto stored = modify([&](std::vector<SecretItem>& items) {
            std::erase_if(
                items, [&](const auto& old) { return same_item(old, item.sandbox_id, item.key); });
            items.push_back(item);
            return std::size_t{1};
        });
        if (!stored) {
            return stored.error();
        }
        return {};
    }

    Result<SecretLookup> get(std::string_view sandbox_id, std::string_view key) override {
        if (auto valid = validate_secret_name(sandbox_id, key); !valid) {
            return valid.error();
        }
        auto items = load(CreateFolder::no);
        if (!items) {
            return items.error();
        }
        const TimePoint now = m_clock.now();
        for (auto& item : *items) {
            if (same_item(item, sandbox_id, key) && item.expires_at > now) {
                return SecretLookup{LookupStatus::found, std::move(item.value)};
            }
        }
        return SecretLookup{};
    }

    Result<std::vector<SecretInfo>> list() override {
        auto items = load(CreateFolder::no);
        if (!items) {
            return items.error();
        }
        const TimePoint now = m_clock.now();
        std::vector<SecretInfo> infos;
        for (const auto& item : *items) {
            if (item.expires_at > now) {
                infos.push_back({item.sandbox_id, item.key, item.expires_at, item.sandbox_name});
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
        auto removed = modify([&](std::vector<SecretItem>& items) {
            return std::erase_if(
                items, [&](const auto& item) { return same_item(item, sandbox_id, key); });
        });
        if (!removed) {
            return removed.error();
        }
        return *removed > 0;
    }

    Result<std::size_t> remove_sandbox(std::string_view sandbox_id) override {
        if (auto valid = validate_secret_sandbox(sandbox_id); !valid) {
            return valid.error();
        }
        return modify([&](std::vector<SecretItem>& items) {
            return std::erase_if(items,
                                 [&](const auto& item) { return item.sandbox_id == sandbox_id; });
        });
    }

    Result<std::size_t> purge_expired(TimePoint now) override {
        return modify([&](std::vector<SecretItem>& items) {
            return std::erase_if(items, [&](const auto& item) { return item.expires_at <= now; });
        });
    }

private:
    // Reads the items. A missing folder or file is an empty store.
    Result<std::vector<SecretItem>> load(CreateFolder create) const {
        auto dir = open_folder(m_dir, create);
        if (!dir) {
            return dir.error();
        }
        if (!dir->valid()) {
            return std::vector<SecretItem>();
        }
        UniqueFd fd(::open(m_file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        if (!fd.valid()) {
            if (errno == ENOENT) {
                return std::vector<SecretItem>();
            }
            return io_failure(m_file, "opening", errno);
        }
        if (auto checked = check_private(fd.get(), m_file, S_IFREG); !checked) {
            return checked.error();
        }
        auto text = read_all(fd.get(), m_file);
        if (!text) {
            return text.error();
        }
        return parse_items(*text, m_file);
    }

    Result<UniqueFd> lock() const {
        const fs::path path = m_dir / k_lock_name;
        UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!fd.valid()) {
            return io_failure(path, "opening the lock file", errno);
        }
        if (auto checked = check_private(fd.get(), path, S_IFREG); !checked) {
            return checked.error();
        }
        while (::flock(fd.get(), LOCK_EX) != 0) {
            if (errno != EINTR) {
                return io_failure(path, "locking", errno);
            }
        }
        return fd;
    }

    // Replaces the file so that a reader sees the old or the new content, never a mix, and the
    // new content survives a crash once this returns.
    Result<void> save(const std::vector<SecretItem>& items) const {
        std::string temp = m_file.string() + ".XXXXXX";
        UniqueFd fd(::mkostemp(temp.data(), O_CLOEXEC));
        if (!fd.valid()) {
            return io_failure(m_file, "creating a temp file for", errno);
        }
        auto written = [&]() -> Result<void> {
            if (::fchmod(fd.get(), 0600) != 0) {
                return io_failure(temp, "chmod of", errno);
            }
            if (auto done = write_all(fd.get(), serialize_items(items), temp); !done) {
                return done;
            }
            if (::fsync(fd.get()) != 0) {
                return io_failure(temp, "fsync of", errno);
            }
            if (::rename(temp.c_str(), m_file.c_str()) != 0) {
                return io_failure(m_file, "replacing", errno);
            }
            return {};
        }();
        if (!written) {
            ::unlink(temp.c_str());
            return written;
        }
        UniqueFd dir(::open(m_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!dir.valid() || ::fsync(dir.get()) != 0) {
            return io_failure(m_dir, "fsync of", errno);
        }
        return {};
    }

    // Runs `change` on the items under the lock and writes them back when it changed any.
    // Returns what `change` returned: the number of items it changed.
    template <typename Change>
    Result<std::size_t> modify(Change&& change) {
        auto dir = open_folder(m_dir, CreateFolder::yes);
        if (!dir) {
            return dir.error();
        }
        auto lock_file = lock();
        if (!lock_file) {
            return lock_file.error();
        }
        auto items = load(CreateFolder::no);
        if (!items) {
            return items.error();
        }
        const std::size_t changed = change(*items);
        if (changed > 0) {
            if (auto saved = save(*items); !saved) {
                return saved.error();
            }
        }
        return changed;
    }

    fs::path m_file;
    fs::path m_dir;
    const Clock& m_clock;
};

} // namespace

Result<fs::path> default_secrets_file(const EnvLookup& env) {
    auto runtime_dir = env("XDG_RUNTIME_DIR");
    if (!runtime_dir || runtime_dir->empty()) {
        return make_failure(ExitCode::internal,
                            "XDG_RUNTIME_DIR is unset, so the file store has no private folder");
    }
    fs::path dir(*runtime_dir);
    if (!dir.is_absolute()) {
        return make_failure(ExitCode::internal,
                            "XDG_RUNTIME_DIR=\"{}\" is not an absolute path", *runtime_dir);
    }
    return dir / "jitbox" / "secrets.json";
}

Result<std::unique_ptr<SecretStore>> open_file_secret_store(const fs::path& file,
                                                            const Clock& clock) {
    // The probe: the folder above the store's folder must exist and be writable, and what the
    // store already has must pass the ownership and mode checks. Nothing is created yet.
    const fs::path dir = file.parent_path();
    const fs::path parent = dir.parent_path();
    if (::access(parent.c_str(), W_OK | X_OK) != 0) {
        return io_failure(parent, "access to", errno);
    }
    auto folder = open_folder(dir, CreateFolder::no);
    if (!folder) {
        return folder.error();
    }
    if (folder->valid()) {
        UniqueFd fd(::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        if (fd.valid()) {
            if (auto checked = check_private(fd.get(), file, S_IFREG); !checked) {
                return checked.error();
            }
        } else if (errno != ENOENT) {
            return io_failure(file, "opening", errno);
        }
    }
    return std::unique_ptr<SecretStore>(std::make_unique<FileSecretStore>(file, clock));
}

} // namespace jitbox
