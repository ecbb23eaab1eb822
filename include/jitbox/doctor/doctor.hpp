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

/// Returns "ok", "warning" or "error", the spelling that `--json` uses.
std::string_view to_string(Severity severity);

/// One result of one check.
struct Finding {
    std::string check; // the area: config, engine, clock, keyring, state, audit, sandbox, install
    Severity severity = Severity::ok;
    std::string message;                               // one line that states the result
    std::string fix;                                   // one line of advice, empty for `ok`
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

/// Converts `report` to the `--json` shape {"errors": N, "warnings": N, "findings": [{"check",
/// "status", "message", "fix", "details"}]}, where `fix` is null for `ok`.
nlohmann::json report_to_json(const DoctorReport& report);

/// Formats `report` for pipes: one line per finding, "STATUS CHECK: MESSAGE", with " (fix: FIX)"
/// appended when there is a fix.
std::string format_plain(const DoctorReport& report);

/// Formats `report` as a table for a terminal: a mark (✓, ! or ✗), the check and the message,
/// the fix on its own line below, and a count at the end. `colour` adds ANSI colours to the
/// marks.
std::string format_table(const DoctorReport& report, bool colour);

// ---- engine and clock -------------------------------------------------------------------------

/// The facts the Docker engine reports about itself.
struct EngineInfo {
    std::string endpoint;        // such as "unix:///var/run/docker.sock"
    std::string product;         // "Podman" when /_ping sends Libpod-Api-Version, else "Docker"
    std::string api_version;     // the newest API version the engine supports, from /_ping
    std::string negotiated;      // the lower of `api_version` and jitbox's maximum
    std::string engine_version;  // "Version" of GET /version, empty when not sent
    std::string min_api_version; // "MinAPIVersion" of GET /version, empty when not sent
    std::optional<TimePoint> engine_time; // /info SystemTime, else the Date header of /_ping
    TimePoint local_before;               // the local clock before the first request
    TimePoint local_after;                // the local clock after the last request
};

/// The result of probing the engine: its facts, or the problem and its fix.
struct EngineProbe {
    std::optional<EngineInfo> info;
    std::string problem; // one line, set when `info` is not
    std::string fix;
};

/// Sends GET /_ping to the engine behind `client`, then /version and /info under the negotiated
/// version, each bounded by `timeout`. The probe reports a problem when the engine cannot be
/// reached, is not a Docker engine, or is older than k_docker_min_api. A failed /version or
/// /info only leaves their fields empty.
EngineProbe probe_docker_engine(HttpClient& client, const std::string& endpoint,
                                std::chrono::milliseconds timeout, const Clock& clock);

/// Builds the engine finding: the versions, or the problem and its fix.
Finding engine_finding(const EngineProbe& probe);

/// Parses an HTTP Date header in the IMF-fixdate form of RFC 9110, such as
/// "Sun, 06 Nov 1994 08:49:37 GMT".
std::optional<TimePoint> parse_http_date(std::string_view text);

/// The skew above which the clock finding is a warning.
inline constexpr Seconds k_clock_skew_limit{10};

/// Compares the engine's clock with the midpoint of the local interval that the requests took.
Finding clock_finding(const EngineInfo& engine);

// ---- keyring ----------------------------------------------------------------------------------

/// Builds the keyring finding from the result of choosing a secret store. `needed` is true when
/// a template of the configuration stores credentials in the keyring, and then a failed keyring
/// is an error. The file backend, chosen by `auto` because the others failed, is a warning.
Finding keyring_finding(const Result<OpenedSecretStore>& opened, bool needed);

// ---- files ------------------------------------------------------------------------------------

/// Checks the state folder `dir` without changing it. The folder and its sandboxes and locks
/// folders must be owned by `uid`, mode 0700 and writable, which the check tests by creating and
/// removing a temp file. Its records must be mode 0600. No temp file that a killed writer left
/// may be older than an hour at `now`.
std::vector<Finding> check_state_folder(const std::filesystem::path& dir, uid_t uid,
                                        std::filesystem::file_time_type now);

/// Checks the audit log at `path` and its head file: owned by `uid`, mode 0600, writable, and
/// an intact hash chain.
std::vector<Finding> check_audit_log(const std::filesystem::path& path, uid_t uid);

/// Lists the data folders where an installed man page or completion may be, in order and
/// without repeats: the one beside the binary's prefix (`PREFIX/share` for `PREFIX/bin/jitbox`),
/// /usr/local/share and /usr/share.
std::vector<std::filesystem::path> install_share_dirs(const std::filesystem::path& executable);

/// Returns one finding per man page and shell completion: found in one of `share_dirs`, or
/// missing.
std::vector<Finding> check_install(const std::vector<std::filesystem::path>& share_dirs);

// ---- sandboxes --------------------------------------------------------------------------------

/// The state of a sandbox's background child and its lock, as the state folder shows them.
struct ChildObservation {
    bool child_lock_held = false;       // a process holds locks/NAME.child
    std::optional<ChildProcess> holder; // the pid and start time in that lock file, set only
                                        // when they identify a running process
    bool sandbox_lock_held = false;     // a command holds locks/NAME.lock
};

/// Inspects the locks of sandbox `name` in state folder `dir` without creating a file. To find
/// out whether a lock is free, the function takes it and releases it at once.
ChildObservation observe_child(const std::filesystem::path& dir, const std::string& name);

/// The facts that doctor collected about one sandbox.
struct SandboxObservation {
    SandboxRecord record;
    ChildObservation child;
    std::optional<bool> on_engine; // unset when the provider query failed or lists nothing
};

/// Builds the finding of one sandbox at `now`. A live sandbox without a background child is an
/// error, because nothing removes it at its deadline.
Finding sandbox_finding(const SandboxObservation& observed, TimePoint now);

} // namespace jitbox
