#pragma once

#include "jitbox/lifecycle/lifecycle.hpp"

namespace jitbox {

/// The providers this build has: docker, reading DOCKER_HOST and its companions from the
/// process environment, and aws-sts and aws-ec2, reading the AWS credentials, region and
/// endpoint variables from it.
class EnvironmentProviderFactory final : public ProviderFactory {
public:
    Result<std::unique_ptr<Provider>> make(const std::string& provider,
                                           const ProviderLocation& location) override;
    Result<ProviderLocation> locate(const Template& spec) override;
};

} // namespace jitbox
