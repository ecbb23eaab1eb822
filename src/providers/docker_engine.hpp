#pragma once

// The engines behind the Docker Engine API and where their responses differ. Docker and
// Podman's `podman system service` both serve the API that docker.cpp uses. Podman reports some
// failures with other status codes and other words, and a message should point to other
// commands and logs. Each difference that jitbox handles is in this file, with the engine
// behaviour it accounts for.

#include "jitbox/net/http.hpp"

#include <map>
#include <string>
#include <string_view>

namespace jitbox::docker_engine {

enum class EngineKind { docker, podman };

/// The words that messages use for an engine.
struct EngineTerms {
    std::string_view name;         // "Docker engine", as in "cannot reach the Docker engine at"
    std::string_view cli;          // the command line client: "docker" or "podman"
    std::string_view server;       // the process that serves the API, for "check that ... runs"
    std::string_view start_hint;   // how to start it
    std::string_view access_hint;  // what to do when the socket denies this user access
    std::string_view log_hint;     // where its log is
    std::string_view upgrade_hint; // what to upgrade when its API is older than 1.40
};

const EngineTerms& terms_of(EngineKind kind);

/// Guesses the engine behind an address, for messages before the first response. The guess is
/// Podman when the address contains "podman", as podman/podman.sock and /run/podman/podman.sock
/// do.
EngineKind guess_from_address(std::string_view address);

/// Identifies the engine that replied to GET /_ping from its headers, whose names are
/// lower-cased.
EngineKind identify_from_ping(const std::map<std::string, std::string>& headers);

/// Returns the engine's product and version from the ping headers, such as "Podman 4.3.1" or
/// "Docker 20.10.24+dfsg1", for the -v log. Returns an empty string when the headers name
/// neither.
std::string describe_server(const std::map<std::string, std::string>& headers);

/// True when a create request failed because the name is taken.
bool is_name_conflict(const HttpResponse& response);

/// True when a DELETE of a container failed only because another removal of it is running.
bool is_removal_in_progress(const HttpResponse& response);

/// True when a DELETE of a network failed because a container is still attached to it.
bool is_network_in_use(const HttpResponse& response);

/// True when an exec request failed because the container is not running or is paused.
bool is_container_state_conflict(const HttpResponse& response);

/// True when POST /exec/{id}/start failed because the exec's user or group does not exist in
/// the container, which Docker reports in the stream instead.
bool is_exec_user_unknown(const HttpResponse& response);

} // namespace jitbox::docker_engine
