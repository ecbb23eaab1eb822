#pragma once

// Registry credentials for image pulls. jitbox reads them from the Docker CLI's configuration
// file as `docker pull` does, and sends them to the engine in the X-Registry-Auth header.

#include "jitbox/util/result.hpp"

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace jitbox {

/// The server name under which Docker Hub credentials are stored, by `docker login` and by
/// credential helpers alike.
inline constexpr const char* k_docker_hub_server = "https://index.docker.io/v1/";

/// Returns the registry host of an image reference as Docker parses it. The host is the first
/// path component when it contains '.' or ':' or is "localhost", such as "127.0.0.1:5000" or
/// "ghcr.io". Every other reference, such as "postgres:16" or "team/app", maps to "docker.io".
std::string registry_host(std::string_view image);

/// A user name and password, or an identity token (an OAuth refresh token) in their place.
struct RegistryCredential {
    std::string username;
    std::string password;
    std::string identity_token;
};

/// The authentication that jitbox sends with one pull.
struct RegistryAuth {
    std::string registry; // registry_host of the image
    std::string header;   // the X-Registry-Auth value; empty when no credential was found
    std::string source;   // where the credential came from, or where jitbox looked, for
                          // messages: "credential helper docker-credential-pass", ...
};

/// Returns the credentials to send when pulling `image`.
using RegistryAuthFn = std::function<Result<RegistryAuth>(const std::string& image)>;

/// Runs the credential helper program `docker-credential-NAME get` with `server` on its
/// standard input, and returns its standard output. Returns nullopt when the helper reports
/// that it has no credentials for `server`.
using CredentialHelperFn = std::function<Result<std::optional<std::string>>(
    const std::string& name, const std::string& server)>;

/// Looks up the credential for `registry` in the text of a Docker CLI config.json. The lookup
/// tries the helper that `credHelpers` names for it, then the one `credsStore` names, then the
/// entry of `auths` (base64 `auth`, `username` and `password`, or `identitytoken`). An `auths`
/// key matches with or without a scheme and path, such as "https://127.0.0.1:5000/v2/". `path`
/// names the file in messages. Sets `source` to where the credential came from. Invalid JSON, a
/// helper that fails and a malformed entry are ExitCode::usage failures.
Result<std::optional<RegistryCredential>>
find_registry_credential(std::string_view config_text, const std::string& path,
                         const std::string& registry, const CredentialHelperFn& run_helper,
                         std::string& source);

/// Encodes the X-Registry-Auth value for `credential`: base64url of a JSON object with
/// `username` and `password`, or `identitytoken`, and `serveraddress`.
std::string encode_registry_auth(const RegistryCredential& credential, const std::string& registry);

/// Runs `docker-credential-NAME get` from PATH, writing `server` to its standard input and
/// waiting at most `timeout`. Nothing secret goes into its arguments.
Result<std::optional<std::string>> run_credential_helper(const std::string& name,
                                                         const std::string& server,
                                                         std::chrono::milliseconds timeout);

/// Creates a RegistryAuthFn that reads `$DOCKER_CONFIG/config.json` at each call, or
/// `~/.docker/config.json` when DOCKER_CONFIG is unset or empty, and runs credential helpers
/// from PATH. A missing file means no credentials. Every secret found is added to the debug
/// log's redactions.
RegistryAuthFn
docker_config_registry_auth(std::function<std::optional<std::string>(const std::string&)> env);

} // namespace jitbox
