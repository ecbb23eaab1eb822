#include "jitbox/providers/factory.hpp"

#include "jitbox/providers/docker.hpp"

#include <chrono>
#include <cstdlib>

namespace jitbox {

namespace {

constexpr auto k_connect_timeout = std::chrono::seconds(5);
constexpr const char* k_default_docker_host = "unix:///var/run/docker.sock";

std::optional<std::string> process_env(const std::string& name) {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) {
        return std::nullopt;
    }
    return std::string(value);
}

Failure unknown_provider(const std::string& provider) {
    return make_failure(ExitCode::usage, "unknown provider \"{}\"; this build supports: docker",
                        provider);
}

} // namespace

Result<std::unique_ptr<Provider>> EnvironmentProviderFactory::make(const std::string& provider,
                                                                   const std::string& endpoint) {
    if (provider != "docker") {
        return unknown_provider(provider);
    }
    // A recorded endpoint wins over today's DOCKER_HOST, so a sandbox is always torn down on
    // the engine that runs it.
    EnvLookup env = [&endpoint](const std::string& name) -> std::optional<std::string> {
        if (name == "DOCKER_HOST" && !endpoint.empty()) {
            return endpoint;
        }
        return process_env(name);
    };
    auto where = docker_endpoint(env);
    if (!where) {
        return where.error();
    }
    auto client = make_curl_client(*where, k_connect_timeout);
    return make_docker_provider(std::move(client), where->describe());
}

Result<std::string> EnvironmentProviderFactory::default_endpoint(const std::string& provider) {
    if (provider != "docker") {
        return unknown_provider(provider);
    }
    auto host = process_env("DOCKER_HOST");
    if (!host || host->empty()) {
        return std::string(k_default_docker_host);
    }
    return *host;
}

} // namespace jitbox
