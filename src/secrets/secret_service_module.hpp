#pragma once

// The entry point of jitbox-secret-service.so, the module that contains the Secret Service
// backend and links libsecret, GLib and GIO. jitbox loads it with dlopen only when that backend is
// opened, so the other commands map none of those libraries. The module and the binary are
// built from the same sources by the same compiler, so C++ types may cross between them.

#include "jitbox/secrets/store.hpp"

#include <memory>
#include <string>

namespace jitbox {

/// The module's file name: next to the jitbox binary in a build tree, under LIBDIR/jitbox when
/// installed.
inline constexpr const char* k_secret_service_module = "jitbox-secret-service.so";

/// The environment variable with the session bus address, which GIO reads.
inline constexpr const char* k_bus_variable = "DBUS_SESSION_BUS_ADDRESS";

/// The name of the entry point, for dlsym.
inline constexpr const char* k_secret_service_entry = "jitbox_secret_service_open";

/// Connects to the Secret Service on the session bus at `address`, which the caller has checked,
/// and stores the open store or the failure in `result`.
using SecretServiceOpen = void (*)(const std::string& address, const Clock& clock,
                                   WhenLocked when_locked,
                                   Result<std::unique_ptr<SecretStore>>* result);

} // namespace jitbox

extern "C" void
jitbox_secret_service_open(const std::string& address, const jitbox::Clock& clock,
                           jitbox::WhenLocked when_locked,
                           jitbox::Result<std::unique_ptr<jitbox::SecretStore>>* result);
