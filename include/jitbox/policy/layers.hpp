#pragma once

// The configuration as two layers: the administrator's system file, then the project's
// jitbox.toml. The system file bounds the templates a project may use, may require that the
// project file is signed, and contributes the first policy layer.

#include "jitbox/config/config.hpp"
#include "jitbox/policy/digest.hpp"
#include "jitbox/policy/policy.hpp"
#include "jitbox/util/result.hpp"

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace jitbox {

inline constexpr const char* k_system_config_path = "/etc/jitbox/jitbox.toml";
inline constexpr const char* k_trusted_keys_dir = "/etc/jitbox/trusted-keys";

/// The files to load as layers, and the owner that the system files must have.
struct LayeredConfigRequest {
    ConfigRequest project; // found as find_config() finds it
    std::filesystem::path system_path = k_system_config_path;
    std::filesystem::path trusted_keys_dir = k_trusted_keys_dir;
    /// The uid that must own the system file and the trusted-keys folder and its keys. Only
    /// tests change it, because they cannot create files owned by root.
    uid_t required_owner = 0;
    /// The caller's home folder for the sensitive-mount check; unset: current_user_home().
    std::optional<std::filesystem::path> home;
    /// Whether the project file may define templates that the system file does not. Enforced
    /// mode sets it after checking the project file's signature, and the guardrails and roles
    /// of the system file then bound those templates. Templates of the same name still narrow.
    bool project_adds_templates = false;
};

/// The effective configuration and where each part came from.
struct LoadedConfig {
    /// Templates of both files: the system file's, with a project template of the same name
    /// in place of the system's. The project's `default_template` wins over the system's.
    /// `merged.policy` stays empty, because each file's policy is its own entry in `layers`.
    /// `merged.guardrails` is the system file's.
    Config merged;
    /// Policy layers in order: the system file's, then the project file's. With neither file,
    /// one layer with the source "<default>".
    std::vector<PolicyLayer> layers;
    /// The effective policy digest recorded in audit records, over each source in order:
    /// system, project, then the embedded default when its templates apply.
    PolicyDigest digest;
    /// Problems that did not stop loading, such as a trusted key file that was skipped.
    std::vector<std::string> warnings;
};

/// Loads the system file (optional) and the project file, and checks them against each other.
///
/// - The system file, when it exists, must be a regular file owned by `required_owner` and not
///   writable by group or others (checked on the open file).
/// - When the system file defines templates, every project template must narrow the system
///   template of the same name: the same image and provider, a network no less strict
///   (none < isolated < bridge), ttl and max_ttl no longer, the same user when the system sets
///   one, read_only kept on, memory, cpus and pids_limit kept and not raised, and no cap_add,
///   mounts or ports that the system template lacks. A writable mount must be writable there
///   too, and a mount with `allow_sensitive` must have it there too. Otherwise project templates
///   are used as written. A project template of a name that the system file lacks fails,
///   unless `project_adds_templates` is set.
/// - With neither file defining templates, the embedded default's templates apply.
/// - When the trusted-keys folder contains a key, or the system file sets `require_signed`, the
///   project file must carry a valid signature by a trusted key.
/// - The project file must be a regular file that is not writable by group or others.
/// - Every mount of the merged templates passes check_sensitive_mounts (policy/mounts.hpp).
/// - `[guardrails]` comes from the system file alone; a project file that has the table fails.
///
/// Failures: ExitCode::usage for unreadable, unsafe or invalid files and for a widened or
/// unknown template, every problem of the templates in one line. ExitCode::denied when the
/// project file's signature is required and missing or not valid, and when the system file
/// forbids a sensitive mount.
Result<LoadedConfig> load_layered_config(const LayeredConfigRequest& request);

} // namespace jitbox
