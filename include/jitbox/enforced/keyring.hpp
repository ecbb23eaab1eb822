#pragma once

// The keyring of the requesting user in enforced mode. The keyring belongs to the user, so only
// a process with the user's ids alone may open it. The jitbox process keeps its saved set-id ids
// for the state and the engine, so every keyring call runs in a forked child that drops them.

#include "jitbox/secrets/store.hpp"

#include <string_view>

namespace jitbox::enforced {

/// The reason why enforced mode skips the Secret Service, for doctor and errors.
inline constexpr std::string_view k_secret_service_skipped =
    "enforced mode skips the Secret Service, because GLib ignores DBUS_SESSION_BUS_ADDRESS in a "
    "set-id process";

/// Opens the real user's kernel keyring or file backend as `choice` names it ("kernel", "file";
/// "auto", "secret-service" or an empty name try kernel, then file). Every call of the returned
/// store forks a child that calls drop_for_good(), opens the backend and runs the call, and
/// sends the result back over a pipe. The file backend uses user_runtime_dir() as its
/// XDG_RUNTIME_DIR. `probes` lists the Secret Service first, as skipped. Fails with
/// ExitCode::internal in a process that runs as the service account (the background child),
/// because that process cannot reach the user's keyring. Items it cannot remove stay until
/// their expiry, when the kernel removes them and the file backend starts to ignore them.
Result<OpenedSecretStore> open_user_keyring(std::string_view choice, ChoiceSource from);

} // namespace jitbox::enforced
