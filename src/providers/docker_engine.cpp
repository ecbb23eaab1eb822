#include "docker_engine.hpp"

#include "docker_json.hpp"

#include <fmt/format.h>

namespace jitbox::docker_engine {

namespace {

constexpr EngineTerms k_docker_terms{
    "Docker engine",
    "docker",
    "dockerd",
    "start dockerd (for example `systemctl start docker`) or set DOCKER_HOST",
    "add your user to the `docker` group (then log in again) or set DOCKER_HOST",
    "check the engine's log, for example with `journalctl -u docker`",
    "upgrade the engine (Docker 19.03 or newer)",
};

constexpr EngineTerms k_podman_terms{
    "Podman service",
    "podman",
    "the Podman service",
    "start the Podman service (for example `systemctl --user start podman.socket`, or "
    "`systemctl start podman.socket` as root) or set DOCKER_HOST",
    "use your own rootless Podman socket, $XDG_RUNTIME_DIR/podman/podman.sock, or set "
    "DOCKER_HOST",
    "check the Podman service's log, for example with `journalctl --user -u podman`",
    "upgrade Podman (4.3 serves API 1.41)",
};

std::string header(const std::map<std::string, std::string>& headers, const std::string& name) {
    const auto found = headers.find(name);
    return found == headers.end() ? std::string() : found->second;
}

bool contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

} // namespace

const EngineTerms& terms_of(EngineKind kind) {
    return kind == EngineKind::podman ? k_podman_terms : k_docker_terms;
}

EngineKind guess_from_address(std::string_view address) {
    return contains(address, "podman") ? EngineKind::podman : EngineKind::docker;
}

// Podman's service adds Libpod-Api-Version (its own REST API, "4.3.1" for Podman 4.3.1) to the
// Api-Version of the Docker-compatible API that it also sends ("1.41"). Docker sends no
// Libpod-Api-Version.
EngineKind identify_from_ping(const std::map<std::string, std::string>& headers) {
    return headers.contains("libpod-api-version") ? EngineKind::podman : EngineKind::docker;
}

// The Server header is "Docker/20.10.24+dfsg1 (linux)" from dockerd and "Libpod/4.3.1 (linux)"
// from Podman.
std::string describe_server(const std::map<std::string, std::string>& headers) {
    if (const std::string libpod = header(headers, "libpod-api-version"); !libpod.empty()) {
        return fmt::format("Podman {}", docker_json::one_line(libpod));
    }
    std::string server = header(headers, "server");
    if (!server.starts_with("Docker/")) {
        return {};
    }
    server = server.substr(0, server.find(' '));
    return fmt::format("Docker {}", docker_json::one_line(server.substr(server.find('/') + 1)));
}

// Docker responds with 409. Podman 4.3 responds with 500 and the cause "that name is already in
// use" for a container or "network already exists" for a network.
bool is_name_conflict(const HttpResponse& response) {
    if (response.status == 409) {
        return true;
    }
    const std::string message = docker_json::engine_message(response.body);
    return response.status == 500 &&
           (contains(message, "already in use") || contains(message, "already exists"));
}

// Docker responds to a second DELETE of a container that it is still removing with 409 and
// "removal of container ... is already in progress". Podman 4.3 holds the container's lock for
// the whole removal, so a second DELETE waits and then gets 204 or 404, which need no case here.
bool is_removal_in_progress(const HttpResponse& response) {
    return response.status == 409 &&
           contains(docker_json::engine_message(response.body), "already in progress");
}

// Docker responds with 403 and "network ... has active endpoints". Podman 4.3 responds with 500
// and the cause "network is being used".
bool is_network_in_use(const HttpResponse& response) {
    if (response.status == 403) {
        return contains(docker_json::engine_message(response.body), "active endpoints");
    }
    return response.status == 500 &&
           contains(docker_json::engine_message(response.body), "network is being used");
}

// Docker responds to an exec of a stopped or paused container with 409 and "Container ... is not
// running" or "... is paused". Podman 4.3 responds with 500 and the cause "container state
// improper".
bool is_container_state_conflict(const HttpResponse& response) {
    if (response.status == 409) {
        return true;
    }
    return response.status == 500 &&
           contains(docker_json::engine_message(response.body), "container state improper");
}

// Podman 4.3 resolves the exec's user before it starts the process, so an unknown one fails the
// start with 500 and "unable to find user NAME: no matching entries in passwd file" (or "group"
// and "group file"), and the exec instance gets exit code 125. Docker 20.10 starts the stream
// instead and reports the same words in it, with exit code 126.
bool is_exec_user_unknown(const HttpResponse& response) {
    if (response.status != 500) {
        return false;
    }
    const std::string message = docker_json::engine_message(response.body);
    return message.starts_with("unable to find user ") ||
           message.starts_with("unable to find group ");
}

} // namespace jitbox::docker_engine
