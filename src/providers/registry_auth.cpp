#include "jitbox/providers/registry_auth.hpp"

#include "jitbox/enforced/mode.hpp"

#include "docker_json.hpp"
#include "jitbox/policy/mounts.hpp"
#include "jitbox/util/base64.hpp"
#include "jitbox/util/log.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <spawn.h>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace jitbox {

namespace {

using Json = nlohmann::json;
using docker_json::string_field;
namespace fs = std::filesystem;

constexpr std::chrono::seconds k_helper_timeout{30};
// A helper prints one small JSON object; anything larger is not a helper's reply.
constexpr std::size_t k_max_helper_output = 64 * 1024;
constexpr std::string_view k_helper_prefix = "docker-credential-";
// docker-credential-helpers (credentials/credentials.go) prints this on standard output, with
// exit status 1, when it has nothing stored for the server.
constexpr std::string_view k_not_found_reply = "credentials not found";

// ---- the configuration file ----------------------------------------------------------------

// "https://127.0.0.1:5000/v2/" and "127.0.0.1:5000" both name the host 127.0.0.1:5000.
std::string host_of_key(std::string_view key) {
    for (const std::string_view scheme : {"https://", "http://"}) {
        if (key.starts_with(scheme)) {
            key.remove_prefix(scheme.size());
        }
    }
    return std::string(key.substr(0, key.find('/')));
}

// Docker Hub is stored under index.docker.io, while references name docker.io.
bool same_registry(const std::string& key_host, const std::string& registry) {
    if (key_host == registry) {
        return true;
    }
    const auto is_hub = [](const std::string& host) {
        return host == "docker.io" || host == "index.docker.io" || host == "registry-1.docker.io";
    };
    return is_hub(key_host) && is_hub(registry);
}

// The server name that credential helpers and `serveraddress` use for `registry`.
std::string server_name(const std::string& registry) {
    return registry == "docker.io" ? k_docker_hub_server : registry;
}

const Json* find_entry(const Json& table, const std::string& registry) {
    if (!table.is_object()) {
        return nullptr;
    }
    for (const auto& [key, value] : table.items()) {
        if (same_registry(host_of_key(key), registry)) {
            return &value;
        }
    }
    return nullptr;
}

Result<std::optional<RegistryCredential>>
credential_from_auths(const Json& entry, const std::string& path, const std::string& registry) {
    if (!entry.is_object()) {
        return make_failure(ExitCode::usage,
                            "{}: auths entry of {} is not an object; run "
                            "`docker login {}` again or remove the entry",
                            path, registry, registry);
    }
    RegistryCredential credential;
    credential.username = string_field(entry, "username");
    credential.password = string_field(entry, "password");
    credential.identity_token = string_field(entry, "identitytoken");
    if (const std::string encoded = string_field(entry, "auth"); !encoded.empty()) {
        const std::optional<std::string> decoded = from_base64(encoded);
        const auto colon = decoded ? decoded->find(':') : std::string::npos;
        if (colon == std::string::npos) {
            return make_failure(ExitCode::usage,
                                "{}: the auth value of {} is not base64 of "
                                "USER:PASSWORD; run `docker login {}` again",
                                path, registry, registry);
        }
        credential.username = decoded->substr(0, colon);
        credential.password = decoded->substr(colon + 1);
    }
    // An entry without a secret, such as the {} that `docker login` leaves beside a
    // credsStore, is no credential.
    if (credential.password.empty() && credential.identity_token.empty()) {
        return std::optional<RegistryCredential>();
    }
    return std::optional<RegistryCredential>(std::move(credential));
}

bool is_helper_name(const std::string& name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
    });
}

// Reads the reply of `docker-credential-NAME get`: {"ServerURL", "Username", "Secret"}.
Result<RegistryCredential> credential_from_helper(const std::string& reply,
                                                  const std::string& helper) {
    const Json parsed = Json::parse(reply, nullptr, false);
    const std::string secret = string_field(parsed, "Secret");
    if (secret.empty()) {
        return make_failure(ExitCode::usage,
                            "credential helper {}{} printed no JSON object with "
                            "a Secret; check it with `echo SERVER | {}{} get`",
                            k_helper_prefix, helper, k_helper_prefix, helper);
    }
    RegistryCredential credential;
    credential.username = string_field(parsed, "Username");
    // A user name of "<token>" marks the secret as an identity token.
    if (credential.username == "<token>") {
        credential.username.clear();
        credential.identity_token = secret;
    } else {
        credential.password = secret;
    }
    return credential;
}

Result<std::optional<RegistryCredential>>
credential_from_named_helper(const std::string& helper, const std::string& path,
                             const std::string& registry, const CredentialHelperFn& run_helper) {
    if (!is_helper_name(helper)) {
        return make_failure(ExitCode::usage,
                            "{}: invalid credential helper name \"{}\": use "
                            "the part after docker-credential-, such as \"pass\"",
                            path, helper);
    }
    auto reply = run_helper(helper, server_name(registry));
    if (!reply) {
        return reply.error();
    }
    if (!*reply) {
        return std::optional<RegistryCredential>();
    }
    auto credential = credential_from_helper(**reply, helper);
    if (!credential) {
        return credential.error();
    }
    return std::optional<RegistryCredential>(std::move(credential).value());
}

// ---- running a helper ----------------------------------------------------------------------

// Both ends of a pipe, closed when it goes out of scope unless closed earlier.
class Pipe {
public:
    Pipe() {
        std::array<int, 2> fds{-1, -1};
        if (::pipe2(fds.data(), O_CLOEXEC) == 0) {
            m_read = fds[0];
            m_write = fds[1];
        }
    }
    ~Pipe() {
        close_read();
        close_write();
    }
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;

    bool valid() const { return m_read >= 0; }
    int read_end() const { return m_read; }
    int write_end() const { return m_write; }
    void close_read() { close_fd(m_read); }
    void close_write() { close_fd(m_write); }

private:
    static void close_fd(int& fd) {
        if (fd >= 0) {
            ::close(fd);
            fd = -1;
        }
    }

    int m_read = -1;
    int m_write = -1;
};

// Writes all of `text`, with SIGPIPE ignored so a helper that exits without reading its input
// makes the write fail instead of killing jitbox.
void write_ignoring_broken_pipe(int fd, std::string_view text) {
    void (*previous)(int) = std::signal(SIGPIPE, SIG_IGN);
    while (!text.empty()) {
        const ssize_t written = ::write(fd, text.data(), text.size());
        if (written < 0 && errno == EINTR) {
            continue;
        }
        if (written <= 0) {
            break;
        }
        text.remove_prefix(static_cast<std::size_t>(written));
    }
    std::signal(SIGPIPE, previous);
}

// Collects standard output and standard error until both close or the deadline passes.
// Returns false on timeout.
bool collect_output(int out_fd, int err_fd, std::chrono::milliseconds timeout, std::string& out,
                    std::string& err) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::array<pollfd, 2> fds{{{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}}};
    std::array<std::string*, 2> sinks{&out, &err};
    int open_count = 2;
    while (open_count > 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            return false;
        }
        const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(left.count()));
        if (ready < 0 && errno == EINTR) {
            continue;
        }
        if (ready == 0) {
            return false;
        }
        if (ready < 0) {
            return true; // poll itself failed, so the exit status decides the outcome
        }
        for (std::size_t i = 0; i < fds.size(); ++i) {
            if (fds[i].fd < 0 || fds[i].revents == 0) {
                continue;
            }
            std::array<char, 4096> buffer{};
            const ssize_t count = ::read(fds[i].fd, buffer.data(), buffer.size());
            if (count > 0 && sinks[i]->size() < k_max_helper_output) {
                sinks[i]->append(buffer.data(), static_cast<std::size_t>(count));
            }
            if (count == 0 || (count < 0 && errno != EINTR && errno != EAGAIN)) {
                fds[i].fd = -1;
                --open_count;
            }
        }
    }
    return true;
}

int wait_for_exit(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string first_line(std::string_view text) {
    const auto start = text.find_first_not_of(" \t\r\n");
    if (start == std::string_view::npos) {
        return "no message";
    }
    text.remove_prefix(start);
    return std::string(text.substr(0, std::min(text.find('\n'), std::size_t{200})));
}

// ---- the file ------------------------------------------------------------------------------

fs::path
docker_config_path(const std::function<std::optional<std::string>(const std::string&)>& env) {
    const std::optional<std::string> folder = env("DOCKER_CONFIG");
    if (folder && !folder->empty()) {
        return fs::path(*folder) / "config.json";
    }
    return current_user_home() / ".docker" / "config.json";
}

Result<std::optional<std::string>> read_optional_file(const fs::path& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        std::error_code error;
        if (!fs::exists(path, error)) {
            return std::optional<std::string>();
        }
        return make_failure(ExitCode::usage,
                            "cannot read {}: {}; fix its permissions or set "
                            "DOCKER_CONFIG to another folder",
                            path.string(), std::strerror(errno));
    }
    std::ostringstream text;
    text << file.rdbuf();
    return std::optional<std::string>(text.str());
}

} // namespace

std::string registry_host(std::string_view image) {
    const auto slash = image.find('/');
    if (slash == std::string_view::npos) {
        return "docker.io";
    }
    const std::string_view first = image.substr(0, slash);
    if (first.find('.') != std::string_view::npos || first.find(':') != std::string_view::npos ||
        first == "localhost") {
        return std::string(first);
    }
    return "docker.io";
}

Result<std::optional<RegistryCredential>>
find_registry_credential(std::string_view config_text, const std::string& path,
                         const std::string& registry, const CredentialHelperFn& run_helper,
                         std::string& source) {
    const Json config = Json::parse(config_text, nullptr, false);
    if (!config.is_object()) {
        return make_failure(ExitCode::usage,
                            "{} is not a JSON object; fix it, or set "
                            "DOCKER_CONFIG to a folder without registry credentials",
                            path);
    }

    std::string helper;
    if (const Json* named = find_entry(docker_json::member(config, "credHelpers"), registry);
        named != nullptr && named->is_string()) {
        helper = named->get<std::string>();
    } else if (const std::string store = string_field(config, "credsStore"); !store.empty()) {
        helper = store;
    }
    if (!helper.empty()) {
        auto found = credential_from_named_helper(helper, path, registry, run_helper);
        if (!found || *found) {
            source = fmt::format("credential helper {}{}", k_helper_prefix, helper);
            return found;
        }
    }

    const std::string helper_note =
        helper.empty()
            ? ""
            : fmt::format("none from credential helper {}{}, and ", k_helper_prefix, helper);
    const Json* entry = find_entry(docker_json::member(config, "auths"), registry);
    if (entry == nullptr) {
        source = fmt::format("{}no entry in {}", helper_note, path);
        return std::optional<RegistryCredential>();
    }
    auto found = credential_from_auths(*entry, path, registry);
    source = found && !*found ? fmt::format("{}an entry without a secret in {}", helper_note, path)
                              : fmt::format("auths in {}", path);
    return found;
}

std::string encode_registry_auth(const RegistryCredential& credential,
                                 const std::string& registry) {
    Json object = {{"serveraddress", server_name(registry)}};
    if (!credential.identity_token.empty()) {
        object["identitytoken"] = credential.identity_token;
    } else {
        object["username"] = credential.username;
        object["password"] = credential.password;
    }
    return to_base64url(object.dump(-1, ' ', false, Json::error_handler_t::replace));
}

namespace {

// Starts `program get` from PATH with the pipes as its standard input, output and error, and
// closes the child's ends in this process so that end of file comes through.
Result<pid_t> spawn_helper(const std::string& program, Pipe& input, Pipe& output, Pipe& errors) {
    if (enforced::is_enforced()) {
        // The helper would inherit the saved set-id uid and could switch back to it.
        return make_failure(ExitCode::usage,
                            "enforced mode runs no credential helper such as {}; ask an "
                            "administrator to pull the image",
                            program);
    }
    if (!input.valid() || !output.valid() || !errors.valid()) {
        return make_failure(ExitCode::internal,
                            "cannot create a pipe for credential helper {}: "
                            "{}",
                            program, std::strerror(errno));
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, input.read_end(), STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, output.write_end(), STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, errors.write_end(), STDERR_FILENO);
    // The server goes on standard input and never into the arguments.
    std::array<char*, 3> argv{const_cast<char*>(program.c_str()), const_cast<char*>("get"),
                              nullptr};
    pid_t pid = 0;
    const int spawned =
        ::posix_spawnp(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) {
        return make_failure(ExitCode::usage,
                            "cannot run credential helper {}: {}; install it "
                            "or remove it from the Docker configuration",
                            program, std::strerror(spawned));
    }
    input.close_read();
    output.close_write();
    errors.close_write();
    return pid;
}

// "30s", or "200ms" for a limit that is not whole seconds.
std::string format_limit(std::chrono::milliseconds limit) {
    if (limit.count() % 1000 == 0) {
        return fmt::format("{}s", limit.count() / 1000);
    }
    return fmt::format("{}ms", limit.count());
}

} // namespace

Result<std::optional<std::string>> run_credential_helper(const std::string& name,
                                                         const std::string& server,
                                                         std::chrono::milliseconds timeout) {
    const std::string program = std::string(k_helper_prefix) + name;
    Pipe input;
    Pipe output;
    Pipe errors;
    const Result<pid_t> pid = spawn_helper(program, input, output, errors);
    if (!pid) {
        return pid.error();
    }
    log_debug(1, "running credential helper {} for {}", program, server);
    write_ignoring_broken_pipe(input.write_end(), server + "\n");
    input.close_write();

    std::string out;
    std::string err;
    const bool finished = collect_output(output.read_end(), errors.read_end(), timeout, out, err);
    if (!finished) {
        ::kill(*pid, SIGKILL);
    }
    const int status = wait_for_exit(*pid);
    if (!finished) {
        return make_failure(ExitCode::usage,
                            "credential helper {} timed out after {}; check it "
                            "with `echo {} | {} get`",
                            program, format_limit(timeout), server, program);
    }
    if (status == 0) {
        return std::optional<std::string>(std::move(out));
    }
    if (out.find(k_not_found_reply) != std::string::npos) {
        return std::optional<std::string>();
    }
    return make_failure(ExitCode::usage,
                        "credential helper {} failed with exit status {} ({}); "
                        "check it with `echo {} | {} get`",
                        program, status, first_line(err.empty() ? out : err), server, program);
}

RegistryAuthFn
docker_config_registry_auth(std::function<std::optional<std::string>(const std::string&)> env) {
    return [env = std::move(env)](const std::string& image) -> Result<RegistryAuth> {
        RegistryAuth auth;
        auth.registry = registry_host(image);
        const fs::path path = docker_config_path(env);
        auto text = read_optional_file(path);
        if (!text) {
            return text.error();
        }
        if (!*text) {
            auth.source = fmt::format("no file {}", path.string());
            return auth;
        }
        const CredentialHelperFn run_helper = [](const std::string& name,
                                                 const std::string& server) {
            return run_credential_helper(name, server, k_helper_timeout);
        };
        auto credential =
            find_registry_credential(**text, path.string(), auth.registry, run_helper, auth.source);
        if (!credential) {
            return credential.error();
        }
        if (*credential) {
            add_redacted_value((*credential)->password);
            add_redacted_value((*credential)->identity_token);
            auth.header = encode_registry_auth(**credential, auth.registry);
            add_redacted_value(auth.header);
        }
        log_debug(1, "registry {}: {}", auth.registry,
                  *credential ? "credentials from " + auth.source : auth.source);
        return auth;
    };
}

} // namespace jitbox
