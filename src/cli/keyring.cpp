// The keyring backends a command opens: each on first use, so commands that need no keyring
// never touch D-Bus or the kernel keyring, and each only once per process.

#include "commands.hpp"

#include "jitbox/enforced/keyring.hpp"
#include "jitbox/util/log.hpp"

#include <cstdlib>

namespace jitbox::cli {

namespace {

constexpr const char* k_keyring_variable = "JITBOX_KEYRING";

std::optional<std::string> process_env(const std::string& name) {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) {
        return std::nullopt;
    }
    return std::string(value);
}

// The process environment without JITBOX_KEYRING, so that a backend named by a record is
// opened even when the variable names another.
std::optional<std::string> env_without_override(const std::string& name) {
    if (name == k_keyring_variable) {
        return std::nullopt;
    }
    return process_env(name);
}

// Opens `backend`, or with an empty name the configured or automatic choice.
Result<OpenedSecretStore> open_backend(std::string_view backend,
                                       const std::function<std::string()>& configured) {
    // The keyring belongs to the user, so enforced mode reaches it only through a child process
    // with the user's ids alone.
    if (enforced::is_enforced()) {
        return backend.empty()
                   ? enforced::open_user_keyring(configured(), ChoiceSource::configuration)
                   : enforced::open_user_keyring(backend, ChoiceSource::record);
    }
    return backend.empty() ? open_secret_store(configured(), process_env)
                           : open_secret_store(backend, env_without_override, ChoiceSource::record);
}

} // namespace

SecretStores::SecretStores(std::function<std::string()> configured)
    : m_configured(std::move(configured)) {}

Result<SecretStore*> SecretStores::open(std::string_view backend) {
    const std::string wanted = backend.empty() ? m_default : std::string(backend);
    if (auto found = m_open.find(wanted); !wanted.empty() && found != m_open.end()) {
        return found->second.get();
    }
    auto opened = open_backend(backend, m_configured);
    if (!opened) {
        return opened.error();
    }
    if (!backend.empty()) {
        log_debug(1, "keyring {} opened because a sandbox's items are there", backend);
    }
    const std::string name(opened->store->name());
    auto& slot = m_open[name];
    if (!slot) {
        slot = std::move(opened->store);
    }
    if (backend.empty()) {
        m_default = name;
    }
    return slot.get();
}

} // namespace jitbox::cli
