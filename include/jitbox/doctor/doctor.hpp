#pragma once

// `jitbox doctor`: checks of everything jitbox depends on, each a finding with its severity and
// a one-line fix. The checks take what they inspect as arguments, so that unit tests can run
// them on temp folders, fake HTTP replies and fixed clocks.

#include "jitbox/net/http.hpp"
#include "jitbox/reaper/reaper.hpp"
#include "jitbox/secrets/store.hpp"
#include "jitbox/state/store.hpp"
#include "jitbox/util/result.hpp"
#include "jitbox/util/time.hpp"

#include <nlohmann/json.hpp>

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jitbox {

/// `error`: jitbox cannot work. `warning`: it works, but worse or less safely.
enum class Severity { ok, warning, error };

/// "ok", "warning" or "error", the spelling of `--json`.
std::string_view to_string(Severity severity);

/// One result of one check.
struct Finding {
    std::string check; // the area: config, engine, clock, keyring, state, audit, sandbox, install
    Severity severity = Severity::ok;
    std::string message;                               // one line: what was found
    std::string fix;                                   // one line: what to do; empty for `ok`
    nlohmann::json details = nlohmann::json::object(); // machine-readable facts of the check
};

/// Builds a finding with no details.
Finding make_finding(std::string check, Severity severity, std::string message,
                     std::string fix = "");

/// Every finding, in the order the checks ran.
struct DoctorReport {
    std::vector<Finding> findings;

    std::size_t count(Severity severity) const;
};

// ---- output -----------------------------------------------------------------------------------

/// The `--json` shape: {"errors": N, "warnings": N, "findings": [{"check", "status", "message",
/// "fix", "details"}]}, where `fix` is null for `ok`.
nlohmann::json report_to_json(const DoctorReport& report);

/// One line per finding, "STATUS CHECK: MESSAGE", plus " (fix: FIX)" when there is a fix, for
/// pipes.
std::string format_plain(const DoctorReport& report);

/// A table for a terminal: a mark (✓, ! or ✗), the check and the message, the fix on its own
/// line below, and a count at the end. `colour` adds ANSI colours to the marks.
std::string format_table(const DoctorReport& report, bool colour);

// ---- engine and clock -------------------------------------------------------------------------

/// What the Docker engine reports about itself.
struct EngineInfo {
    std::string endpoint;        // such as "unix:///var/run/docker.sock"
    std::string product;         // "Podman" when /_ping sends Libpod-Api-Version, else "Docker"
    std::string api_version;     // the newest API version the engine speaks, from /_ping
    std::string negotiated;      // the version jitbox uses: the lower of that and its own maximum
    std::string engine_version;  // "Version" of GET /version, empty when not sent
    std::string min_api_version; // "MinAPIVersion" of GET /version, empty when not sent
    std::optional<TimePoint> engine_time; // /info SystemTime, else the Date header of /_ping
    TimePoint local_before;               // the local clock before the first request
    TimePoint local_after;                // and after the last
};

/// The outcome of asking the engine: its facts, or the problem and its fix.
struct EngineProbe {
    std::optional<EngineInfo> info;
    std::string problem; // one line, set when `info` is not
    std::string fix;
};

/// Asks the engine behind `client` for GET /_ping, then /version and /info under the negotiated
/// version, each bounded by `timeout`. A problem is an engine that cannot be reached, is no
/// Docker engine, or is older than k_docker_min_api. A failed /version or /info only leaves
/// their fields empty.
EngineProbe probe_docker_engine(HttpClient& client, const std::string& endpoint,
                                std::chrono::milliseconds timeout, const Clock& clock);

/// The engine finding: the versions, or the problem and its fix.
Finding engine_finding(const EngineProbe& probe);

/// Parses an HTTP Date header in the IMF-fixdate form of RFC 9110, such as
/// "Sun, 06 Nov 1994 08:49:37 GMT".
std::optional<TimePoint> parse_http_date(std::string_view text);

/// The skew above which the clock finding is a warning.
inline constexpr Seconds k_clock_skew_limit{10};

/// Compares the engine's clock with the middle of the local interval that the request took.
Finding clock_finding(const EngineInfo& engine);

// ---- keyring ----------------------------------------------------------------------------------

/// The keyring finding from the chooser's result. `needed` is true when a template of the
/// configuration keeps credentials in the keyring, which makes a keyring that fails an error.
/// The file backend, chosen by `auto` because the others failed, is a warning.
Finding keyring_finding(const Result<OpenedSecretStore>& opened, bool needed);

// ---- files ------------------------------------------------------------------------------------

/// Checks the state folder `dir` without changing it: that it and its sandboxes and locks
/// folders are owned by `uid`, mode 0700 and writable (a temp file is created and removed), its
/// records are 0600, and no temp file of a killed writer is older than an hour at `now`.
std::vector<Finding> check_state_folder(const std::filesystem::path& dir, uid_t uid,
                                        std::filesystem::file_time_type now);

/// Checks the audit log at `path` and its head file: owned by `uid`, mode 0600, writable, and
/// an intact hash chain.
std::vector<Finding> check_audit_log(const std::filesystem::path& path, uid_t uid);

/// The data folders where an installed man page or completion may be, in order: the one
/// beside the binary's prefix (`PREFIX/share` for `PREFIX/bin/jitbox`), /usr/local/share and
/// /usr/share, without repeats.
std::vector<std::filesystem::path> install_share_dirs(const std::filesystem::path& executable);

/// One finding per man page and shell completion, found in any of `share_dirs` or missing.
std::vector<Finding> check_install(const std::vector<std::filesystem::path>& share_dirs);

// ---- sandboxes --------------------------------------------------------------------------------

/// What the state folder shows about a sandbox's background child and its lock.
struct ChildObservation {
    bool child_lock_held = false;       // a process holds locks/NAME.child
    std::optional<ChildProcess> holder; // the pid and start time in that lock file, when they
                                        // name a running process
    bool sandbox_lock_held = false;     // a command holds locks/NAME.lock
};

/// Looks at the locks of sandbox `name` in state folder `dir` without creating a file. A lock
/// that is free is taken for an instant to find that out.
ChildObservation observe_child(const std::filesystem::path& dir, const std::string& name);

/// What doctor learnt about one sandbox.
struct SandboxObservation {
    SandboxRecord record;
    ChildObservation child;
    std::optional<bool> on_engine; // unset when the provider could not be asked or lists nothing
};

/// The finding of one sandbox at `now`: a live sandbox without a background child is an error,
/// because nothing removes it at its deadline.
Finding sandbox_finding(const SandboxObservation& observed, TimePoint now);

} // namespace jitbox
