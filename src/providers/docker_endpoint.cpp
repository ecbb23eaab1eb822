#include "jitbox/providers/docker.hpp"
#include "jitbox/util/log.hpp"

#include <filesystem>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace jitbox {
namespace {

constexpr std::string_view k_docker_socket = "/var/run/docker.sock";
constexpr std::string_view k_rootful_podman_socket = "/run/podman/podman.sock";
constexpr std::string_view k_supported_hosts = "unix:///path/to/socket or tcp://host:port";
constexpr std::string_view k_plain_tcp_port = "2375";
constexpr std::string_view k_tls_tcp_port = "2376";

std::string lookup(const EnvLookup& env, const std::string& name) {
    if (!env) {
        return {};
    }
    return env(name).value_or("");
}

// An empty value and "0" both mean off.
bool tls_verify_requested(const EnvLookup& env) {
    const std::string value = lookup(env, "DOCKER_TLS_VERIFY");
    return !value.empty() && value != "0";
}

Failure invalid_host(std::string_view host, std::string_view reason) {
    return make_failure(ExitCode::usage, "DOCKER_HOST \"{}\" is invalid: {}; use {}", host, reason,
                        k_supported_hosts);
}

Result<HttpEndpoint> unix_endpoint(std::string_view host, std::string_view path) {
    if (path.empty() || path.front() != '/') {
        return invalid_host(host, "the socket path must be absolute");
    }

    HttpEndpoint endpoint;
    endpoint.unix_socket = std::string(path);
    endpoint.base_url = "http://localhost";
    return endpoint;
}

bool is_host_name_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

bool is_valid_port(std::string_view port) {
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != port.npos) {
        return false;
    }
    const int number = std::stoi(std::string(port));
    return number >= 1 && number <= 65535;
}

// Returns why `host` cannot go into a URL, or an empty string when it can. Only characters that
// cannot change the meaning of the URL built from it are allowed.
std::string check_host(std::string_view host) {
    if (host.empty() || host == "[]") {
        return "the host is missing";
    }
    if (host.starts_with('[')) {
        const std::string_view address = host.substr(1, host.size() - 2);
        if (address.find_first_not_of(":.0123456789abcdefABCDEF") != std::string_view::npos) {
            return "the IPv6 address is malformed";
        }
        return {};
    }
    for (const char c : host) {
        if (!is_host_name_char(c)) {
            return fmt::format("the host contains '{}'", c);
        }
    }
    return {};
}

struct HostAndPort {
    std::string host; // an IPv6 address keeps its brackets, ready for a URL
    std::string port;
};

// Splits "host", "host:port", "[v6]" or "[v6]:port".
Result<HostAndPort> split_authority(std::string_view value, std::string_view authority,
                                    std::string_view default_port) {
    std::string_view host = authority;
    std::string_view port = default_port;
    if (authority.starts_with('[')) {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) {
            return invalid_host(value, "the IPv6 address has no closing bracket");
        }
        host = authority.substr(0, close + 1);
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty() && !after.starts_with(':')) {
            return invalid_host(value, "only a port may follow the IPv6 address");
        }
        if (!after.empty()) {
            port = after.substr(1);
        }
    } else if (const auto colon = authority.find(':'); colon != std::string_view::npos) {
        if (authority.find(':', colon + 1) != std::string_view::npos) {
            return invalid_host(value, "an IPv6 address needs brackets, as in tcp://[::1]:2375");
        }
        host = authority.substr(0, colon);
        port = authority.substr(colon + 1);
    }

    if (const std::string problem = check_host(host); !problem.empty()) {
        return invalid_host(value, problem);
    }
    if (!is_valid_port(port)) {
        return invalid_host(value, "the port must be a number from 1 to 65535");
    }
    return HostAndPort{std::string(host), std::string(port)};
}

Result<std::filesystem::path> tls_folder(const EnvLookup& env) {
    if (const std::string cert_path = lookup(env, "DOCKER_CERT_PATH"); !cert_path.empty()) {
        return std::filesystem::path(cert_path);
    }
    if (const std::string home = lookup(env, "HOME"); !home.empty()) {
        return std::filesystem::path(home) / ".docker";
    }
    return Failure{ExitCode::usage,
                   "DOCKER_TLS_VERIFY is set, but neither DOCKER_CERT_PATH nor HOME is set, so "
                   "ca.pem, cert.pem and key.pem cannot be found; set DOCKER_CERT_PATH to their "
                   "folder"};
}

Result<void> add_tls_files(const EnvLookup& env, HttpEndpoint& endpoint) {
    const Result<std::filesystem::path> folder = tls_folder(env);
    if (!folder) {
        return folder.error();
    }

    const std::filesystem::path ca = *folder / "ca.pem";
    const std::filesystem::path cert = *folder / "cert.pem";
    const std::filesystem::path key = *folder / "key.pem";
    std::vector<std::string> missing;
    for (const auto& file : {ca, cert, key}) {
        std::error_code error;
        if (!std::filesystem::is_regular_file(file, error)) {
            missing.push_back(file.string());
        }
    }
    if (!missing.empty()) {
        return make_failure(ExitCode::usage,
                            "DOCKER_TLS_VERIFY is set, but {} {} missing; copy the engine's client "
                            "certificates there or set DOCKER_CERT_PATH to their folder",
                            fmt::join(missing, ", "), missing.size() == 1 ? "is" : "are");
    }

    endpoint.ca_file = ca.string();
    endpoint.cert_file = cert.string();
    endpoint.key_file = key.string();
    endpoint.verify_peer = true;
    return {};
}

Result<HttpEndpoint> tcp_endpoint(const EnvLookup& env, std::string_view host,
                                  std::string_view authority) {
    if (authority.ends_with('/')) {
        authority.remove_suffix(1);
    }
    if (authority.find_first_of("/?#@") != std::string_view::npos) {
        return invalid_host(host, "only a host and a port may follow tcp://");
    }

    const bool tls = tls_verify_requested(env);
    const auto parts = split_authority(host, authority, tls ? k_tls_tcp_port : k_plain_tcp_port);
    if (!parts) {
        return parts.error();
    }

    HttpEndpoint endpoint;
    endpoint.base_url = fmt::format("{}://{}:{}", tls ? "https" : "http", parts->host, parts->port);
    if (tls) {
        if (const Result<void> added = add_tls_files(env, endpoint); !added) {
            return added.error();
        }
    }
    return endpoint;
}

Failure unsupported_scheme(std::string_view host, std::string_view scheme) {
    if (scheme == "ssh") {
        return make_failure(
            ExitCode::usage,
            "DOCKER_HOST \"{}\" uses ssh://, which jitbox does not support; forward "
            "the engine's socket (for example `ssh -nNT -L "
            "/tmp/docker.sock:/var/run/docker.sock HOST`) and set "
            "DOCKER_HOST=unix:///tmp/docker.sock",
            host);
    }
    return make_failure(ExitCode::usage,
                        "DOCKER_HOST \"{}\" uses {}://, which jitbox does not support; use {}",
                        host, scheme, k_supported_hosts);
}

Failure no_engine_socket(const std::vector<std::string>& tried) {
    return make_failure(ExitCode::provider,
                        "no engine socket found: DOCKER_HOST is unset and none of {} exists; "
                        "start Docker (for example `systemctl start docker`) or the Podman "
                        "service (for example `systemctl --user start podman.socket`), or set "
                        "DOCKER_HOST to the engine's address",
                        fmt::join(tried, ", "));
}

} // namespace

SocketSearch system_socket_search() {
    SocketSearch search;
    search.is_socket = [](const std::string& path) {
        struct stat info {};
        return ::stat(path.c_str(), &info) == 0 && S_ISSOCK(info.st_mode);
    };
    search.as_root = ::geteuid() == 0;
    return search;
}

std::vector<std::string> engine_socket_candidates(const EnvLookup& env, bool as_root) {
    std::vector<std::string> candidates{std::string(k_docker_socket)};
    // Rootless Docker and rootless Podman put their sockets in the user's runtime folder.
    const std::string runtime_dir = lookup(env, "XDG_RUNTIME_DIR");
    if (runtime_dir.starts_with('/')) {
        candidates.push_back(runtime_dir + "/docker.sock");
        candidates.push_back(runtime_dir + "/podman/podman.sock");
    }
    if (as_root) {
        candidates.emplace_back(k_rootful_podman_socket);
    }
    return candidates;
}

// NOTE: Docker CLI contexts (DOCKER_CONTEXT, `docker context use`) are not read, so an engine
// chosen through a context is reached only when DOCKER_HOST names it too.
Result<std::string> find_docker_host(const EnvLookup& env, const SocketSearch& search) {
    if (std::string host = lookup(env, "DOCKER_HOST"); !host.empty()) {
        log_debug(1, "engine: {}, from DOCKER_HOST", host);
        return host;
    }

    const std::vector<std::string> candidates = engine_socket_candidates(env, search.as_root);
    for (std::size_t index = 0; index < candidates.size(); ++index) {
        if (!search.is_socket || !search.is_socket(candidates[index])) {
            continue;
        }
        if (index == 0) {
            log_debug(1, "engine: unix://{}, the default socket, because DOCKER_HOST is unset",
                      candidates[index]);
        } else {
            log_debug(
                1, "engine: unix://{}, because DOCKER_HOST is unset and no socket exists at {}",
                candidates[index], fmt::join(candidates.begin(), candidates.begin() + index, ", "));
        }
        return "unix://" + candidates[index];
    }
    return no_engine_socket(candidates);
}

Result<HttpEndpoint> docker_endpoint(const std::string& host, const EnvLookup& env) {
    const auto scheme_end = host.find("://");
    if (scheme_end == std::string::npos || scheme_end == 0) {
        return invalid_host(host, "it does not start with a scheme such as unix:// or tcp://");
    }
    const std::string_view scheme = std::string_view(host).substr(0, scheme_end);
    const std::string_view rest = std::string_view(host).substr(scheme_end + 3);
    if (scheme == "unix") {
        return unix_endpoint(host, rest);
    }
    if (scheme == "tcp") {
        return tcp_endpoint(env, host, rest);
    }
    return unsupported_scheme(host, scheme);
}

} // namespace jitbox
