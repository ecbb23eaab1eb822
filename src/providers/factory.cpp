#include "jitbox/providers/factory.hpp"

#include "jitbox/aws/query.hpp"
#include "jitbox/enforced/mode.hpp"
#include "jitbox/providers/aws.hpp"
#include "jitbox/providers/docker.hpp"

#include <chrono>
#include <cstdlib>
#include <thread>

namespace jitbox {

namespace {

constexpr auto k_connect_timeout = std::chrono::seconds(5);

const SystemClock k_system_clock;

std::optional<std::string> process_env(const std::string& name) {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) {
        return std::nullopt;
    }
    return std::string(value);
}

Failure unknown_provider(const std::string& provider) {
    return make_failure(ExitCode::usage,
                        "unknown provider \"{}\"; this build supports: docker, aws-sts, aws-ec2",
                        provider);
}

// The engine that a new sandbox uses: the fixed socket in enforced mode, else DOCKER_HOST or
// the first socket that exists.
Result<std::string> engine_host() {
    if (enforced::is_enforced()) {
        return std::string(enforced::k_engine_host);
    }
    return find_docker_host(process_env, system_socket_search());
}

const aws::QueryService* aws_service(const std::string& provider) {
    if (provider == "aws-sts") {
        return &aws::k_sts_service;
    }
    if (provider == "aws-ec2") {
        return &aws::k_ec2_service;
    }
    return nullptr;
}

// The endpoint of the engine at `recorded`, a sandbox record's engine address. A recorded
// address wins over today's DOCKER_HOST and sockets, so a sandbox is always reached and torn down
// on the engine that runs it. An empty one, from a record that names none, is resolved as `up`
// resolves it.
Result<HttpEndpoint> recorded_docker_endpoint(const std::string& recorded) {
    Result<std::string> host = recorded;
    if (recorded.empty()) {
        host = engine_host();
    }
    if (!host) {
        return host.error();
    }
    return docker_endpoint(*host, process_env);
}

Result<std::unique_ptr<Provider>> make_docker(const ProviderLocation& location) {
    auto where = recorded_docker_endpoint(location.endpoint);
    if (!where) {
        return where.error();
    }
    auto client = make_curl_client(*where, k_connect_timeout);
    DockerProviderOptions options;
    options.registry_auth = docker_config_registry_auth(process_env);
    return make_docker_provider(std::move(client), where->describe(), std::move(options));
}

// Builds a Query client for the recorded endpoint and region. The base credentials are looked
// up on the first request, so an aws-sts teardown, which sends none, works without them.
Result<std::unique_ptr<aws::QueryClient>> make_query_client(const aws::QueryService& service,
                                                            const ProviderLocation& location) {
    if (location.endpoint.empty() || location.region.empty()) {
        return make_failure(ExitCode::internal,
                            "the sandbox record names no {} endpoint or region; remove the "
                            "record and check the AWS console for leftovers",
                            service.name);
    }
    auto endpoint = aws::parse_endpoint_url(location.endpoint, "the sandbox record");
    if (!endpoint) {
        return endpoint.error();
    }
    HttpEndpoint http;
    http.base_url = endpoint->base_url; // no ca_file: libcurl checks against the system CAs
    aws::CredentialSource credentials = []() -> Result<aws::Credentials> {
        auto found = aws::find_base_credentials(aws::Environment::from_process());
        if (!found) {
            return found.error();
        }
        return std::move(found->credentials);
    };
    aws::SleepFn sleep = [](std::chrono::milliseconds delay) {
        std::this_thread::sleep_for(delay);
    };
    return std::make_unique<aws::QueryClient>(service, make_curl_client(http, k_connect_timeout),
                                              std::move(endpoint).value(), location.region,
                                              std::move(credentials), k_system_clock, sleep);
}

} // namespace

Result<std::unique_ptr<Provider>>
EnvironmentProviderFactory::make(const std::string& provider, const ProviderLocation& location) {
    if (provider == "docker") {
        return make_docker(location);
    }
    const aws::QueryService* service = aws_service(provider);
    if (service == nullptr) {
        return unknown_provider(provider);
    }
    auto client = make_query_client(*service, location);
    if (!client) {
        return client.error();
    }
    if (provider == "aws-sts") {
        return make_aws_sts_provider(std::move(client).value(), k_system_clock);
    }
    return make_aws_ec2_provider(
        std::move(client).value(), k_system_clock,
        [](std::chrono::milliseconds delay) { std::this_thread::sleep_for(delay); });
}

Result<ProviderLocation> EnvironmentProviderFactory::locate(const Template& spec) {
    if (spec.provider == "docker") {
        auto host = engine_host();
        if (!host) {
            return host.error();
        }
        return ProviderLocation{std::move(host).value(), ""};
    }
    const aws::QueryService* service = aws_service(spec.provider);
    if (service == nullptr) {
        return unknown_provider(spec.provider);
    }
    const aws::Environment environment = aws::Environment::from_process();
    auto region = aws::resolve_region(spec, environment);
    if (!region) {
        return region.error();
    }
    auto endpoint = aws::resolve_endpoint_url(*service, spec, *region, environment);
    if (!endpoint) {
        return endpoint.error();
    }
    return ProviderLocation{std::move(endpoint).value(), std::move(region).value()};
}

Result<std::unique_ptr<DockerContainer>> open_docker_container(const std::string& endpoint,
                                                               const std::string& container_id) {
    // Only hex ids and jitbox's own names reach URL paths.
    const bool path_safe = !container_id.empty() &&
                           container_id.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") ==
                               std::string::npos;
    if (!path_safe) {
        return make_failure(ExitCode::internal,
                            "the recorded container id \"{}\" is not a Docker id; remove the "
                            "sandbox with `jitbox down` and create it again",
                            container_id);
    }
    auto where = recorded_docker_endpoint(endpoint);
    if (!where) {
        return where.error();
    }
    return std::make_unique<DockerContainer>(make_curl_client(*where, k_connect_timeout),
                                             where->describe(), container_id);
}

} // namespace jitbox
