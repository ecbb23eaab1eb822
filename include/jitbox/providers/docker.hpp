#pragma once

#include "jitbox/net/http.hpp"
#include "jitbox/providers/provider.hpp"
#include "jitbox/providers/registry_auth.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jitbox {

/// The oldest and newest Engine API versions jitbox speaks. 1.41 is Docker 20.10, the engine
/// in Debian 12; newer engines still serve 1.41 when asked for it.
inline constexpr const char* k_docker_min_api = "1.40";
inline constexpr const char* k_docker_max_api = "1.41";

/// Reads an environment variable; returns nullopt when unset. Injected so tests need not touch
/// the process environment.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

/// The inputs of the engine socket search besides the environment, injected so that tests need
/// neither real sockets nor root.
struct SocketSearch {
    /// True when a unix socket exists at the path.
    std::function<bool(const std::string& path)> is_socket;
    /// True when the effective uid is 0. Debian's podman.socket creates rootful Podman's socket
    /// with mode 0660, owned by root, so other users cannot open it.
    bool as_root = false;
};

/// A SocketSearch of this machine: stat(2) and geteuid(2).
SocketSearch system_socket_search();

/// The unix sockets that jitbox tries, in this order, when DOCKER_HOST is unset or empty:
/// /var/run/docker.sock, $XDG_RUNTIME_DIR/docker.sock (rootless Docker),
/// $XDG_RUNTIME_DIR/podman/podman.sock (rootless Podman) and, as root, /run/podman/podman.sock
/// (rootful Podman). The two under XDG_RUNTIME_DIR are left out when it is unset or relative.
std::vector<std::string> engine_socket_candidates(const EnvLookup& env, bool as_root);

/// The engine address: DOCKER_HOST when it is set and not empty, else unix:// and the first of
/// engine_socket_candidates() that is a socket. Fails with ExitCode::provider, naming every path
/// it tried, when none is. `-v` logs which socket it chose.
Result<std::string> find_docker_host(const EnvLookup& env, const SocketSearch& search);

/// The endpoint of an engine address such as find_docker_host() returns, unix:///PATH or
/// tcp://HOST[:PORT]. For tcp:// it reads DOCKER_TLS_VERIFY and DOCKER_CERT_PATH from `env`.
/// Error messages call the address DOCKER_HOST, the variable that users set it with.
Result<HttpEndpoint> docker_endpoint(const std::string& host, const EnvLookup& env);

/// An image reference split the way POST /images/create takes it: `fromImage` and `tag`.
struct ImageReference {
    std::string repository; // registry host and path, such as "reg.local:5000/team/app"
    std::string tag;        // a tag, or a digest such as "sha256:..."; "latest" when none
};

/// Splits `postgres:16`, `reg.local:5000/a/b:1`, `busybox` (tag "latest") or `app@sha256:...`
/// (the digest becomes the tag, and a tag beside the digest is dropped).
ImageReference split_image_reference(std::string_view reference);

/// The Docker provider's services beyond its HTTP client; tests replace the clock and sleep.
struct DockerProviderOptions {
    /// The credentials for an image pull. Unset: pulls send none.
    RegistryAuthFn registry_auth;
    /// Waits between two polls of `up --wait`. Unset: std::this_thread::sleep_for.
    std::function<void(std::chrono::milliseconds)> sleep;
    /// The time for `up --wait`'s timeout. Unset: std::chrono::steady_clock::now.
    std::function<std::chrono::steady_clock::time_point()> now;
};

/// The Docker Engine API provider. The API version is negotiated through GET /_ping on first
/// use, before any request that changes something.
std::unique_ptr<Provider> make_docker_provider(std::unique_ptr<HttpClient> client,
                                               std::string endpoint_description,
                                               DockerProviderOptions options = {});

} // namespace jitbox
