// The keyring backends a command opens: each on first use, so commands that need no keyring
// never touch D-Bus or the kernel keyring, and each only once per process.

#include "commands.hpp"

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

// GLib ignores DBUS_SESSION_BUS_ADDRESS in a set-id process (it checks AT_SECURE), so enforced
// mode uses the kernel keyring unless the file backend is named.
std::string_view enforced_backend(const std::string& choice) {
    return choice == "file" ? "file" : "kernel";
}

} // namespace

SecretStores::SecretStores(std::function<std::string()> configured)
    : m_configured(std::move(configured)) {}

Result<SecretStore*> SecretStores::open(std::string_view backend) {
    // The keyring belongs to the user, so enforced mode opens it only with the user's ids, and
    // from then on this process cannot reach the state or the engine any more.
    // NOTE: so in enforced mode `up` of a template with generated secrets or an AWS session
    // fails at its next state write, and the background child (the jitbox account) cannot
    // delete the user's keyring items. Both need a helper process that drops alone.
    if (auto dropped = enforced::drop_for_good(); !dropped) {
        return dropped.error();
    }
    if (enforced::is_enforced()) {
        backend = enforced_backend(backend.empty() ? m_configured() : std::string(backend));
    }
    const std::string wanted = backend.empty() ? m_default : std::string(backend);
    if (auto found = m_open.find(wanted); !wanted.empty() && found != m_open.end()) {
        return found->second.get();
    }
    auto opened = backend.empty()
                      ? open_secret_store(m_configured(), process_env)
                      : open_secret_store(backend, env_without_override, ChoiceSource::record);
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
