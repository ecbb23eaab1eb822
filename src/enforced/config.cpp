// The configuration of enforced mode: the system policy, and a project file only when signed.

#include "jitbox/enforced/config.hpp"

#include "jitbox/enforced/mode.hpp"
#include "jitbox/policy/signing.hpp"

#include <fstream>
#include <sstream>

namespace jitbox::enforced {

namespace {

namespace fs = std::filesystem;

// Returns why the project file at `path` is not used, or an empty string when a trusted key
// signed it. load_layered_config verifies the bytes it reads again.
std::string unsigned_reason(const fs::path& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        return "it cannot be read";
    }
    std::ostringstream text;
    text << file.rdbuf();
    const auto trusted = load_trusted_keys(k_trusted_keys_dir, 0);
    if (!trusted) {
        return trusted.error().message;
    }
    if (trusted->keys.empty()) {
        return fmt::format("{} contains no trusted key", k_trusted_keys_dir);
    }
    const auto verified = verify_content(text.str(), path, *trusted);
    return verified ? std::string() : verified.error().message;
}

// The project part of the request: the signed jitbox.toml nearest `working_dir`, or else the
// system file itself, which load_layered_config loads only once.
Result<ConfigRequest> project_request(const fs::path& working_dir,
                                      std::vector<std::string>& warnings) {
    ConfigRequest request;
    request.explicit_path = fs::path(k_config_path);
    ConfigRequest search;
    search.working_dir = working_dir;
    const auto found = find_config(search);
    if (!found) {
        return found.error();
    }
    if (found->empty()) {
        return request;
    }
    const std::string reason = unsigned_reason(*found);
    if (!reason.empty()) {
        warnings.push_back(fmt::format("enforced mode ignores the project file {}, because it "
                                       "is not signed by a trusted key: {}",
                                       found->string(), reason));
        return request;
    }
    request.explicit_path = *found;
    return request;
}

DenyRule deny_without_roles() {
    DenyRule rule;
    rule.name = "enforced-mode-without-roles";
    rule.actions = {Action::up, Action::extend, Action::exec};
    rule.reason = fmt::format("enforced mode allows nothing while {} defines no [[roles]]; ask "
                              "an administrator to add one",
                              k_config_path);
    rule.origin = std::string(k_config_path);
    return rule;
}

} // namespace

Result<LoadedConfig> load_enforced_config(const fs::path& working_dir) {
    std::error_code error;
    if (!fs::exists(k_config_path, error)) {
        return make_failure(ExitCode::usage,
                            "enforced mode needs the system policy {}, which does not exist; run "
                            "`jitbox setup enforced --group GROUP` as root to create it",
                            k_config_path);
    }
    std::vector<std::string> warnings;
    auto project = project_request(working_dir, warnings);
    if (!project) {
        return project.error();
    }
    LayeredConfigRequest request;
    request.project = std::move(project).value();
    request.required_owner = 0;
    // project_request keeps a project file only when a trusted key signed it.
    request.project_adds_templates = true;
    auto loaded = load_layered_config(request);
    if (!loaded) {
        return loaded.error();
    }
    if (loaded->layers.empty() || loaded->layers.front().source != k_config_path) {
        return make_failure(ExitCode::internal, "the system policy {} was not loaded",
                            k_config_path);
    }
    PolicyLayer& system = loaded->layers.front();
    if (system.policy.roles.empty()) {
        system.policy.denies.push_back(deny_without_roles());
    }
    loaded->warnings.insert(loaded->warnings.begin(), warnings.begin(), warnings.end());
    return loaded;
}

} // namespace jitbox::enforced
