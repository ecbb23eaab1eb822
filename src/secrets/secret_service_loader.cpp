#include "jitbox/secrets/store.hpp"
#include "jitbox/util/install.hpp"
#include "jitbox/util/log.hpp"
#include "secret_service_module.hpp"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <dlfcn.h>
#include <mutex>

namespace jitbox {

namespace {

// Checks the session bus address before the module is loaded, so a machine without a session
// bus never maps GLib. It also keeps GIO from starting a bus of its own (autolaunch), which it
// does when the address is unset or names the autolaunch: transport.
Result<std::string> session_bus_address(const EnvLookup& env) {
    auto address = env(k_bus_variable);
    if (!address || address->empty()) {
        return make_failure(ExitCode::internal,
                            "no D-Bus session bus: {} is unset (jitbox never starts a bus)",
                            k_bus_variable);
    }
    std::string_view rest = *address;
    while (!rest.empty()) {
        const auto end = std::min(rest.find(';'), rest.size());
        if (rest.substr(0, end).substr(0, 11) == "autolaunch:") {
            return make_failure(ExitCode::internal,
                                "{}={} names the autolaunch: transport, which starts a bus; "
                                "jitbox never starts one",
                                k_bus_variable, *address);
        }
        rest.remove_prefix(std::min(end + 1, rest.size()));
    }
    const char* process_address = std::getenv(k_bus_variable);
    if (process_address == nullptr || *address != process_address) {
        return make_failure(ExitCode::internal,
                            "{} given to the secret store differs from the process environment, "
                            "which GIO reads",
                            k_bus_variable);
    }
    return *address;
}

// The module's entry point, or why it could not be loaded.
struct LoadedModule {
    SecretServiceOpen open = nullptr;
    Failure failure;
};

// Loads the module once per process. The module stays loaded (RTLD_NODELETE), because the
// stores it returns run its code until the process exits.
const LoadedModule& load_module() {
    static std::once_flag once;
    static LoadedModule loaded;
    std::call_once(once, [] {
        const auto program = own_executable();
        const auto path =
            find_installed_file(program, k_secret_service_module, JITBOX_MODULES_FROM_BINDIR);
        if (!path) {
            loaded.failure = make_failure(ExitCode::internal,
                                          "the Secret Service backend is not installed: {} is "
                                          "missing next to {}; reinstall jitbox, or set "
                                          "JITBOX_KEYRING to kernel or file",
                                          k_secret_service_module, program.string());
            return;
        }
        void* handle = ::dlopen(path->c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        void* entry = handle == nullptr ? nullptr : ::dlsym(handle, k_secret_service_entry);
        if (entry == nullptr) {
            const char* reason = ::dlerror();
            loaded.failure =
                make_failure(ExitCode::internal,
                             "cannot load the Secret Service backend {}: {}; "
                             "reinstall jitbox, or set JITBOX_KEYRING to kernel or "
                             "file",
                             path->string(), reason != nullptr ? reason : "no entry point");
            return;
        }
        log_debug(1, "secret store: loaded {}", path->string());
        loaded.open = std::bit_cast<SecretServiceOpen>(entry);
    });
    return loaded;
}

} // namespace

Result<std::unique_ptr<SecretStore>>
open_secret_service_store(const EnvLookup& env, const Clock& clock, WhenLocked when_locked) {
    auto address = session_bus_address(env);
    if (!address) {
        return address.error();
    }
    const LoadedModule& module = load_module();
    if (module.open == nullptr) {
        return module.failure;
    }
    Result<std::unique_ptr<SecretStore>> store =
        make_failure(ExitCode::internal, "the Secret Service backend returned nothing");
    module.open(*address, clock, when_locked, &store);
    return store;
}

} // namespace jitbox
