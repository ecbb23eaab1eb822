// The user's keyring in enforced mode, reached through a child process with the user's ids.

#include "jitbox/enforced/keyring.hpp"

#include "jitbox/enforced/mode.hpp"
#include "jitbox/util/log.hpp"

#include <cerrno>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <functional>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

namespace jitbox::enforced {

namespace {

using nlohmann::json;

const SystemClock k_clock;

json failure_to_json(const Failure& failure) {
    return {{"error", {{"code", static_cast<int>(failure.code)}, {"message", failure.message}}}};
}

void write_all(int fd, const std::string& text) {
    std::size_t written = 0;
    while (written < text.size()) {
        const ssize_t count = ::write(fd, text.data() + written, text.size() - written);
        if (count < 0 && errno == EINTR) {
            continue;
        }
        if (count <= 0) {
            return;
        }
        written += static_cast<std::size_t>(count);
    }
}

Result<std::string> read_all(int fd) {
    std::string text;
    char buffer[4096];
    for (;;) {
        const ssize_t count = ::read(fd, buffer, sizeof buffer);
        if (count < 0 && errno == EINTR) {
            continue;
        }
        if (count < 0) {
            return make_failure(ExitCode::internal, "reading from the keyring process failed: {}",
                                std::strerror(errno));
        }
        if (count == 0) {
            return text;
        }
        text.append(buffer, static_cast<std::size_t>(count));
    }
}

// The body of the child: drop the set-id ids, run `work`, send its result. Never returns.
[[noreturn]] void serve_in_child(int fd, const std::function<Result<json>()>& work) {
    json reply;
    try {
        auto dropped = drop_for_good();
        if (!dropped) {
            reply = failure_to_json(dropped.error());
        } else if (auto result = work(); result) {
            reply = {{"value", std::move(result).value()}};
        } else {
            reply = failure_to_json(result.error());
        }
    } catch (const std::exception& error) {
        reply = failure_to_json(Failure{ExitCode::internal, error.what()});
    }
    write_all(fd, reply.dump());
    ::close(fd);
    // _exit: the parent's atexit handlers and stdio buffers belong to the parent.
    ::_exit(0);
}

Result<json> decode_reply(const std::string& text) {
    const json reply = json::parse(text, nullptr, false);
    if (reply.is_object() && reply.contains("value")) {
        return reply.at("value");
    }
    if (reply.is_object() && reply.contains("error") && reply["error"].is_object()) {
        const json& error = reply["error"];
        return Failure{static_cast<ExitCode>(error.value("code", 1)),
                       error.value("message", std::string("the keyring failed"))};
    }
    return make_failure(ExitCode::internal, "the keyring process sent an invalid reply");
}

// Runs `work` in a forked child that has dropped the set-id ids for good, and returns its
// result. Arguments reach the child through the copied memory, and only results cross the
// pipe, so a secret value that `put` stores is never written to it.
Result<json> run_with_user_ids(const std::function<Result<json>()>& work) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        return make_failure(ExitCode::internal, "cannot create a pipe for the keyring process: {}",
                            std::strerror(errno));
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
        const int error = errno;
        ::close(fds[0]);
        ::close(fds[1]);
        return make_failure(ExitCode::internal, "cannot start the keyring process: {}",
                            std::strerror(error));
    }
    if (pid == 0) {
        ::close(fds[0]);
        serve_in_child(fds[1], work);
    }

    ::close(fds[1]);
    auto text = read_all(fds[0]);
    ::close(fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!text) {
        return text.error();
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || text->empty()) {
        return make_failure(ExitCode::internal,
                            "the keyring process (pid {}) ended without a reply, with wait "
                            "status {}",
                            pid, status);
    }
    return decode_reply(*text);
}

// The environment that the backends see in the child: only XDG_RUNTIME_DIR, set to the real
// user's runtime folder when it exists. JITBOX_KEYRING was removed at start.
std::optional<std::string> user_env(const std::string& name) {
    if (name != "XDG_RUNTIME_DIR") {
        return std::nullopt;
    }
    const auto dir = user_runtime_dir(process_ids().real_uid);
    if (dir.empty()) {
        return std::nullopt;
    }
    return dir.string();
}

std::vector<SecretBackendOpener> user_backends() {
    return {
        {"kernel", [](WhenLocked) { return open_kernel_secret_store(k_clock); }},
        {"file",
         [](WhenLocked) -> Result<std::unique_ptr<SecretStore>> {
             auto file = default_secrets_file(user_env);
             if (!file) {
                 return make_failure(file.error().code,
                                     "{}; enforced mode uses /run/user/{} when it exists",
                                     file.error().message, process_ids().real_uid);
             }
             return open_file_secret_store(*file, k_clock);
         }},
    };
}

// The Secret Service is not reachable, so a choice of it, like "auto", tries the others.
std::string_view enforced_choice(std::string_view choice) {
    return choice == "secret-service" || choice.empty() ? std::string_view("auto") : choice;
}

json probes_to_json(const std::vector<SecretBackendProbe>& probes) {
    json array = json::array();
    for (const auto& probe : probes) {
        array.push_back(
            {{"backend", probe.backend}, {"usable", probe.usable}, {"detail", probe.detail}});
    }
    return array;
}

std::vector<SecretBackendProbe> probes_from_json(const json& array) {
    std::vector<SecretBackendProbe> probes{
        {"secret-service", false, std::string(k_secret_service_skipped)}};
    for (const auto& probe : array) {
        probes.push_back({probe.value("backend", std::string()), probe.value("usable", false),
                          probe.value("detail", std::string())});
    }
    return probes;
}

json info_to_json(const SecretInfo& info) {
    return {{"sandbox_id", info.sandbox_id},
            {"key", info.key},
            {"expires_at", info.expires_at.time_since_epoch().count()},
            {"sandbox_name", info.sandbox_name}};
}

SecretInfo info_from_json(const json& object) {
    SecretInfo info;
    info.sandbox_id = object.value("sandbox_id", std::string());
    info.key = object.value("key", std::string());
    info.expires_at = TimePoint(Seconds(object.value("expires_at", std::int64_t{0})));
    info.sandbox_name = object.value("sandbox_name", std::string());
    return info;
}

LookupStatus lookup_status_from(std::string_view text) {
    if (text == to_string(LookupStatus::found)) {
        return LookupStatus::found;
    }
    if (text == to_string(LookupStatus::locked)) {
        return LookupStatus::locked;
    }
    return LookupStatus::not_found;
}

// A SecretStore whose every call runs in a child process with the user's ids, on the backend
// that open_user_keyring chose.
class UserKeyring final : public SecretStore {
public:
    explicit UserKeyring(std::string backend) : m_backend(std::move(backend)) {}

    std::string_view name() const override { return m_backend; }

    Result<void> put(const SecretItem& item) override {
        auto done = call([&item](SecretStore& store) -> Result<json> {
            if (auto stored = store.put(item); !stored) {
                return stored.error();
            }
            return json(nullptr);
        });
        if (!done) {
            return done.error();
        }
        return {};
    }

    Result<SecretLookup> get(std::string_view sandbox_id, std::string_view key) override {
        auto done = call([sandbox_id, key](SecretStore& store) -> Result<json> {
            auto found = store.get(sandbox_id, key);
            if (!found) {
                return found.error();
            }
            return json{{"status", to_string(found->status)}, {"value", found->value}};
        });
        if (!done) {
            return done.error();
        }
        return SecretLookup{lookup_status_from(done->value("status", std::string())),
                            done->value("value", std::string())};
    }

    Result<std::vector<SecretInfo>> list() override {
        auto done = call([](SecretStore& store) -> Result<json> {
            auto items = store.list();
            if (!items) {
                return items.error();
            }
            json array = json::array();
            for (const auto& item : *items) {
                array.push_back(info_to_json(item));
            }
            return array;
        });
        if (!done) {
            return done.error();
        }
        std::vector<SecretInfo> items;
        for (const auto& object : *done) {
            items.push_back(info_from_json(object));
        }
        return items;
    }

    Result<bool> remove(std::string_view sandbox_id, std::string_view key) override {
        auto done = call([sandbox_id, key](SecretStore& store) -> Result<json> {
            auto removed = store.remove(sandbox_id, key);
            if (!removed) {
                return removed.error();
            }
            return json(*removed);
        });
        if (!done) {
            return done.error();
        }
        return done->get<bool>();
    }

    Result<std::size_t> remove_sandbox(std::string_view sandbox_id) override {
        return count_of(
            [sandbox_id](SecretStore& store) { return store.remove_sandbox(sandbox_id); });
    }

    Result<std::size_t> purge_expired(TimePoint now) override {
        return count_of([now](SecretStore& store) { return store.purge_expired(now); });
    }

private:
    // Opens the backend in the child and runs `operation` on it there.
    Result<json> call(const std::function<Result<json>(SecretStore&)>& operation) const {
        return run_with_user_ids([this, &operation]() -> Result<json> {
            auto opened =
                choose_secret_store(m_backend, user_env, user_backends(), ChoiceSource::record);
            if (!opened) {
                return opened.error();
            }
            return operation(*opened->store);
        });
    }

    Result<std::size_t> count_of(const std::function<Result<std::size_t>(SecretStore&)>& count) {
        auto done = call([&count](SecretStore& store) -> Result<json> {
            auto counted = count(store);
            if (!counted) {
                return counted.error();
            }
            return json(*counted);
        });
        if (!done) {
            return done.error();
        }
        return done->get<std::size_t>();
    }

    std::string m_backend;
};

} // namespace

Result<OpenedSecretStore> open_user_keyring(std::string_view choice, ChoiceSource from) {
    if (::getuid() != process_ids().real_uid) {
        return make_failure(ExitCode::internal,
                            "this process runs as the jitbox account and cannot reach the "
                            "keyring of uid {}; the kernel backend removes its items at their "
                            "expiry, and the file backend ignores them from then on",
                            process_ids().real_uid);
    }
    const std::string requested(enforced_choice(choice));
    auto chosen = run_with_user_ids([&requested, from]() -> Result<json> {
        auto opened = choose_secret_store(requested, user_env, user_backends(), from);
        if (!opened) {
            return opened.error();
        }
        return json{{"backend", opened->store->name()},
                    {"reason", opened->reason},
                    {"probes", probes_to_json(opened->probes)}};
    });
    if (!chosen) {
        return make_failure(chosen.error().code, "{}; {}", chosen.error().message,
                            k_secret_service_skipped);
    }
    OpenedSecretStore opened;
    opened.store = std::make_unique<UserKeyring>(chosen->value("backend", std::string()));
    opened.reason =
        fmt::format("{}; {}", chosen->value("reason", std::string()), k_secret_service_skipped);
    opened.probes = probes_from_json(chosen->value("probes", json::array()));
    log_debug(1, "secret store: {}", opened.reason);
    return opened;
}

} // namespace jitbox::enforced
