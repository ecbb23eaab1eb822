#include "jitbox/state/store.hpp"

#include "jitbox/enforced/mode.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <regex>
#include <sstream>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace jitbox {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* k_records_dir = "sandboxes";
constexpr const char* k_locks_dir = "locks";
constexpr const char* k_owners_dir = "users"; // in a shared state folder
constexpr std::size_t k_max_owner_length = 64;

bool is_valid_owner_folder(std::string_view owner) {
    const auto allowed = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '.' || c == '-';
    };
    return !owner.empty() && owner.size() <= k_max_owner_length && owner.front() != '.' &&
           owner.front() != '-' && std::all_of(owner.begin(), owner.end(), allowed);
}

std::string errno_text(int error) { return std::strerror(error); }

Failure state_failure(const fs::path& path, const std::string& what, int error) {
    return make_failure(ExitCode::internal, "state {} {}: {}; check the folder's owner, mode and "
                        "free space", what, path.string(), errno_text(error));
}

Result<void> make_private_dir(const fs::path& dir) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
        return state_failure(dir, "folder", errno);
    }
    struct stat info {};
    if (::stat(dir.c_str(), &info) != 0) {
        return state_failure(dir, "folder", errno);
    }
    if ((info.st_mode & 077) != 0 && ::chmod(dir.c_str(), 0700) != 0) {
        return state_failure(dir, "folder", errno);
    }
    return {};
}

Result<void> fsync_path(const fs::path& path, int flags) {
    int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0) {
        return state_failure(path, "sync of", errno);
    }
    int rc = ::fsync(fd);
    int error = errno;
    ::close(fd);
    if (rc != 0) {
        return state_failure(path, "sync of", error);
    }
    return {};
}

// Writes `text` to `path` so that a reader sees either the old or the new file, never a mix,
// and the new one survives a crash once this returns.
Result<void> write_atomically(const fs::path& path, const std::string& text) {
    std::string temp_template = path.string() + ".XXXXXX";
    int fd = ::mkostemp(temp_template.data(), O_CLOEXEC);
    if (fd < 0) {
        return state_failure(path, "record", errno);
    }
    fs::path temp = temp_template;
    auto discard = [&](int error) {
        ::close(fd);
        ::unlink(temp.c_str());
        return state_failure(path, "record", error);
    };
    if (::fchmod(fd, 0600) != 0) {
        return discard(errno);
    }
    std::string_view rest = text;
    while (!rest.empty()) {
        ssize_t written = ::write(fd, rest.data(), rest.size());
        if (written < 0 && errno == EINTR) {
            continue;
        }
        if (written < 0) {
            return discard(errno);
        }
        rest.remove_prefix(static_cast<std::size_t>(written));
    }
    if (::fsync(fd) != 0) {
        return discard(errno);
    }
    ::close(fd);
    if (::rename(temp.c_str(), path.c_str()) != 0) {
        int error = errno;
        ::unlink(temp.c_str());
        return state_failure(path, "record", error);
    }
    return fsync_path(path.parent_path(), O_RDONLY | O_DIRECTORY);
}

std::optional<std::string> optional_string(const json& object, const char* key) {
    auto found = object.find(key);
    if (found == object.end() || found->is_null()) {
        return std::nullopt;
    }
    return found->get<std::string>();
}

Result<TimePoint> time_field(const json& object, const char* key) {
    auto text = optional_string(object, key);
    if (!text) {
        return make_failure(ExitCode::internal, "missing {}", key);
    }
    return parse_rfc3339(*text);
}

json resources_to_json(const ResourceSet& resources) {
    json items = json::array();
    for (const auto& item : resources.items) {
        items.push_back({{"kind", item.kind}, {"id", item.id}, {"name", item.name}});
    }
    json ports = json::array();
    for (const auto& port : resources.ports) {
        ports.push_back({{"container_port", port.container_port},
                         {"host_ip", port.host_ip},
                         {"host_port", port.host_port}});
    }
    return {{"items", items}, {"ports", ports}};
}

ResourceSet resources_from_json(const json& object) {
    ResourceSet resources;
    for (const auto& item : object.value("items", json::array())) {
        resources.items.push_back({item.at("kind").get<std::string>(),
                                   item.at("id").get<std::string>(),
                                   item.value("name", std::string())});
    }
    for (const auto& port : object.value("ports", json::array())) {
        resources.ports.push_back({port.at("container_port").get<std::string>(),
                                   port.value("host_ip", std::string()),
                                   port.value("host_port", 0)});
    }
    return resources;
}

Result<SandboxState> parse_state(const std::string& text) {
    for (auto state : {SandboxState::creating, SandboxState::running, SandboxState::removing}) {
        if (to_string(state) == text) {
            return state;
        }
    }
    return make_failure(ExitCode::internal, "unknown state \"{}\"", text);
}

} // namespace

std::string_view to_string(SandboxState state) {
    switch (state) {
    case SandboxState::creating:
        return "creating";
    case SandboxState::running:
        return "running";
    case SandboxState::removing:
        return "removing";
    }
    return "unknown";
}

bool is_valid_sandbox_name(std::string_view name) {
    static const std::regex pattern("[a-z0-9][a-z0-9-]{0,62}");
    return std::regex_match(name.begin(), name.end(), pattern);
}

Result<fs::path> default_state_dir() {
    if (enforced::is_enforced()) {
        return fs::path(enforced::k_state_dir);
    }
    const char* state_home = std::getenv("XDG_STATE_HOME");
    // The XDG base directory specification ignores relative values.
    if (state_home != nullptr && state_home[0] == '/') {
        return fs::path(state_home) / "jitbox";
    }
    const char* home = std::getenv("HOME");
    if (home == nullptr || home[0] != '/') {
        return make_failure(ExitCode::usage,
                            "cannot find the state folder: neither XDG_STATE_HOME nor HOME is an "
                            "absolute path; set one of them");
    }
    return fs::path(home) / ".local" / "state" / "jitbox";
}

Result<FileLock> FileLock::acquire(const fs::path& path) {
    const enforced::ElevatedScope elevated;
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        return state_failure(path, "lock", errno);
    }
    while (::flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            int error = errno;
            ::close(fd);
            return state_failure(path, "lock", error);
        }
    }
    return FileLock(fd);
}

Result<std::optional<FileLock>> FileLock::try_acquire(const fs::path& path) {
    const enforced::ElevatedScope elevated;
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        return state_failure(path, "lock", errno);
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int error = errno;
        ::close(fd);
        if (error == EWOULDBLOCK) {
            return std::optional<FileLock>();
        }
        return state_failure(path, "lock", error);
    }
    return std::optional<FileLock>(FileLock(fd));
}

Result<FileLock> FileLock::adopt(int fd, const fs::path& path) {
    struct stat held {};
    struct stat named {};
    if (::fstat(fd, &held) != 0) {
        return state_failure(path, "lock", errno);
    }
    if (::stat(path.c_str(), &named) != 0) {
        return state_failure(path, "lock", errno);
    }
    if (held.st_dev != named.st_dev || held.st_ino != named.st_ino) {
        return make_failure(ExitCode::internal, "descriptor {} is not open on {}", fd,
                            path.string());
    }
    // Locking again through the descriptor that holds the lock succeeds at once.
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        return state_failure(path, "lock", errno);
    }
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    return FileLock(fd);
}

FileLock::FileLock(FileLock&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
    if (this != &other) {
        if (m_fd >= 0) {
            ::close(m_fd);
        }
        m_fd = std::exchange(other.m_fd, -1);
    }
    return *this;
}

FileLock::~FileLock() {
    if (m_fd >= 0) {
        ::close(m_fd);
    }
}

Result<fs::path> owner_state_dir(const fs::path& root, StateLayout layout, std::string_view owner) {
    if (layout == StateLayout::per_user) {
        return root;
    }
    if (!is_valid_owner_folder(owner)) {
        return make_failure(ExitCode::usage,
                            "user name \"{}\" cannot name a folder in the shared state folder {}; "
                            "use 1 to 64 letters, digits, '_', '.' or '-'",
                            owner, root.string());
    }
    return root / k_owners_dir / std::string(owner);
}

Result<std::vector<std::string>> state_owners(const fs::path& root, StateLayout layout) {
    std::vector<std::string> owners;
    if (layout == StateLayout::per_user) {
        return owners;
    }
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(root / k_owners_dir, error)) {
        const std::string name = entry.path().filename().string();
        if (entry.is_directory(error) && is_valid_owner_folder(name)) {
            owners.push_back(name);
        }
    }
    if (error && error != std::errc::no_such_file_or_directory) {
        return state_failure(root / k_owners_dir, "folder", error.value());
    }
    std::sort(owners.begin(), owners.end());
    return owners;
}

Result<StateStore> StateStore::open(const fs::path& dir) {
    const enforced::ElevatedScope elevated;
    // Create the parents the way mkdir -p would, then tighten only jitbox's own folders.
    std::error_code error;
    fs::create_directories(dir.parent_path(), error);
    if (error) {
        return state_failure(dir.parent_path(), "folder", error.value());
    }
    for (const auto& folder : {dir, dir / k_records_dir, dir / k_locks_dir}) {
        if (auto made = make_private_dir(folder); !made) {
            return made.error();
        }
    }
    return StateStore(dir);
}

fs::path StateStore::record_path(std::string_view name) const {
    return m_dir / k_records_dir / (std::string(name) + ".json");
}

Result<FileLock> StateStore::lock_sandbox(std::string_view name) const {
    return FileLock::acquire(m_dir / k_locks_dir / (std::string(name) + ".lock"));
}

Result<std::optional<FileLock>> StateStore::try_lock_sandbox(std::string_view name) const {
    return FileLock::try_acquire(m_dir / k_locks_dir / (std::string(name) + ".lock"));
}

fs::path StateStore::child_lock_path(std::string_view name) const {
    return m_dir / k_locks_dir / (std::string(name) + ".child");
}

Result<void> StateStore::insert(const SandboxRecord& record) const {
    const enforced::ElevatedScope elevated;
    std::error_code error;
    if (fs::exists(record_path(record.name), error)) {
        return make_failure(ExitCode::name_in_use,
                            "a sandbox named \"{}\" already exists; choose another --name or run "
                            "`jitbox down {}` first",
                            record.name, record.name);
    }
    return write_atomically(record_path(record.name), record_to_json(record));
}

Result<void> StateStore::update(const SandboxRecord& record) const {
    const enforced::ElevatedScope elevated;
    return write_atomically(record_path(record.name), record_to_json(record));
}

Result<std::optional<SandboxRecord>> StateStore::find(std::string_view name) const {
    const enforced::ElevatedScope elevated;
    if (!is_valid_sandbox_name(name)) {
        return std::optional<SandboxRecord>();
    }
    int fd = ::open(record_path(name).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT) {
            return std::optional<SandboxRecord>();
        }
        return state_failure(record_path(name), "record", errno);
    }
    std::string text;
    char buffer[4096];
    ssize_t got = 0;
    while ((got = ::read(fd, buffer, sizeof buffer)) > 0 || (got < 0 && errno == EINTR)) {
        if (got > 0) {
            text.append(buffer, static_cast<std::size_t>(got));
        }
    }
    int read_error = got < 0 ? errno : 0;
    ::close(fd);
    if (read_error != 0) {
        return state_failure(record_path(name), "record", read_error);
    }
    auto record = record_from_json(text);
    if (!record) {
        return make_failure(ExitCode::internal, "state record {} is damaged: {}; remove it after "
                            "checking `docker ps --filter label=io.jitbox.name={}`",
                            record_path(name).string(), record.error().message, name);
    }
    return std::optional<SandboxRecord>(std::move(record).value());
}

namespace {

// A record write lasts milliseconds, so a temp file this old belongs to a writer that was
// killed between creating and renaming it.
constexpr auto k_stale_temp_age = std::chrono::hours(1);

// Removes `path` when it is the temp file of a record write, named NAME.json.XXXXXX by mkostemp,
// that is older than k_stale_temp_age. Failures are ignored: the next list tries again.
void remove_if_stale_temp(const fs::path& path) {
    if (path.stem().extension() != ".json" || path.extension().string().size() != 7) {
        return;
    }
    std::error_code error;
    const auto written = fs::last_write_time(path, error);
    if (!error && fs::file_time_type::clock::now() - written > k_stale_temp_age) {
        fs::remove(path, error);
    }
}

} // namespace

Result<std::vector<std::string>> StateStore::names() const {
    const enforced::ElevatedScope elevated;
    std::vector<std::string> names;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(m_dir / k_records_dir, error)) {
        const auto& path = entry.path();
        if (path.extension() != ".json") {
            remove_if_stale_temp(path); // or a write in progress, left alone
            continue;
        }
        names.push_back(path.stem().string());
    }
    if (error) {
        return state_failure(m_dir / k_records_dir, "folder", error.value());
    }
    return names;
}

Result<std::vector<SandboxRecord>> StateStore::list() const {
    const enforced::ElevatedScope elevated;
    auto names = this->names();
    if (!names) {
        return names.error();
    }
    std::vector<SandboxRecord> records;
    records.reserve(names->size());
    for (const auto& name : *names) {
        auto record = find(name);
        if (!record) {
            fmt::print(stderr, "jitbox: warning: {}\n", record.error().message);
            continue;
        }
        if (record->has_value()) {
            records.push_back(std::move(**record));
        }
    }
    std::sort(records.begin(), records.end(),
              [](const auto& left, const auto& right) { return left.name < right.name; });
    return records;
}

std::vector<SandboxRecord> StateStore::read_quietly(const fs::path& dir) {
    const enforced::ElevatedScope elevated;
    const StateStore store(dir);
    std::vector<SandboxRecord> records;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(dir / k_records_dir, error)) {
        if (entry.path().extension() != ".json") {
            continue;
        }
        auto record = store.find(entry.path().stem().string());
        if (record && record->has_value()) {
            records.push_back(std::move(**record));
        }
    }
    return records;
}

Result<void> StateStore::remove(std::string_view name) const {
    const enforced::ElevatedScope elevated;
    if (::unlink(record_path(name).c_str()) != 0 && errno != ENOENT) {
        return state_failure(record_path(name), "record", errno);
    }
    return fsync_path(m_dir / k_records_dir, O_RDONLY | O_DIRECTORY);
}

std::string record_to_json(const SandboxRecord& record) {
    json object = {
        {"name", record.name},
        {"id", record.id},
        {"template", record.template_name},
        {"provider", record.provider},
        {"state", to_string(record.state)},
        {"owner", record.owner},
        {"created_at", format_rfc3339(record.created_at)},
        {"expires_at", format_rfc3339(record.expires_at)},
        {"max_expires_at", format_rfc3339(record.max_expires_at)},
        {"endpoint", record.endpoint},
        {"region", record.region},
        {"removal_action", record.removal_action},
        {"reason", record.reason},
        {"break_glass", record.break_glass},
        {"secret_backend", record.secret_backend},
        {"role_arn", record.role_arn},
        {"session_policy", record.session_policy},
        {"mfa_serial", record.mfa_serial},
        {"shell", record.shell},
        {"stop_timeout", nullptr},
        {"child_pid", nullptr},
        {"child_start_time", nullptr},
        {"resources", resources_to_json(record.resources)},
    };
    if (record.stop_timeout) {
        object["stop_timeout"] = record.stop_timeout->count();
    }
    if (record.child_pid) {
        object["child_pid"] = *record.child_pid;
    }
    if (record.child_start_time) {
        object["child_start_time"] = *record.child_start_time;
    }
    return object.dump(2) + "\n";
}

Result<SandboxRecord> record_from_json(std::string_view text) {
    try {
        json object = json::parse(text);
        SandboxRecord record;
        record.name = object.at("name").get<std::string>();
        record.id = object.at("id").get<std::string>();
        record.template_name = object.at("template").get<std::string>();
        record.provider = object.at("provider").get<std::string>();
        record.owner = object.value("owner", std::string());
        record.endpoint = object.value("endpoint", std::string());
        record.region = object.value("region", std::string());
        record.removal_action = object.value("removal_action", std::string());
        record.reason = object.value("reason", std::string());
        record.break_glass = object.value("break_glass", false);
        record.secret_backend = object.value("secret_backend", std::string());
        record.role_arn = object.value("role_arn", std::string());
        record.session_policy = object.value("session_policy", std::string());
        record.mfa_serial = object.value("mfa_serial", std::string());
        record.shell = object.value("shell", std::string());
        auto state = parse_state(object.at("state").get<std::string>());
        if (!state) {
            return state.error();
        }
        record.state = *state;
        for (auto [field, key] : {std::pair{&record.created_at, "created_at"},
                                  std::pair{&record.expires_at, "expires_at"},
                                  std::pair{&record.max_expires_at, "max_expires_at"}}) {
            auto time = time_field(object, key);
            if (!time) {
                return make_failure(ExitCode::internal, "{}: {}", key, time.error().message);
            }
            *field = *time;
        }
        if (object.contains("stop_timeout") && !object["stop_timeout"].is_null()) {
            record.stop_timeout = Seconds(object["stop_timeout"].get<long long>());
        }
        if (object.contains("child_pid") && !object["child_pid"].is_null()) {
            record.child_pid = object["child_pid"].get<int>();
        }
        if (object.contains("child_start_time") && !object["child_start_time"].is_null()) {
            record.child_start_time = object["child_start_time"].get<unsigned long long>();
        }
        record.resources = resources_from_json(object.value("resources", json::object()));
        return record;
    } catch (const json::exception& error) {
        return make_failure(ExitCode::internal, "{}", error.what());
    }
}

} // namespace jitbox
