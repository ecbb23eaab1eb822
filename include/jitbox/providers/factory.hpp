#pragma once

#include "jitbox/lifecycle/lifecycle.hpp"

namespace jitbox {

/// The providers this build has, reading DOCKER_HOST and its companions from the process
/// environment.
class EnvironmentProviderFactory final : public ProviderFactory {
public:
    Result<std::unique_ptr<Provider>> make(const std::string& provider,
                                           const std::string& endpoint) override;
    Result<std::string> default_endpoint(const std::string& provider) override;
};

} // namespace jitbox
