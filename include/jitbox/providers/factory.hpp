#pragma once

#include "jitbox/lifecycle/lifecycle.hpp"
#include "jitbox/providers/docker_container.hpp"

#include <string>
#include <vector>

namespace jitbox {

/// The provider names that EnvironmentProviderFactory accepts.
inline const std::vector<std::string> k_built_in_providers = {"docker", "aws-sts", "aws-ec2"};

/// The providers this build has: docker, reading DOCKER_HOST and its companions from the
/// process environment, and aws-sts and aws-ec2, reading the AWS credentials, region and
/// endpoint variables from it.
class EnvironmentProviderFactory final : public ProviderFactory {
public:
    Result<std::unique_ptr<Provider>> make(const std::string& provider,
                                           const ProviderLocation& location) override;
    Result<ProviderLocation> locate(const Template& spec) override;
};

/// Engine API access to container `container_id` on the engine at `endpoint`, the engine address
/// that a sandbox record keeps. Empty means the engine that `up` would use now: DOCKER_HOST, else
/// the first engine socket that exists (find_docker_host). Fails with ExitCode::internal for an
/// id that cannot go into a URL path.
Result<std::unique_ptr<DockerContainer>> open_docker_container(const std::string& endpoint,
                                                               const std::string& container_id);

} // namespace jitbox
