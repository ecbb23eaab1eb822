#pragma once

// Guardrails: the system policy's bounds on what a template may ask of the engine, checked on
// every `up` before any API call. A request that passes a role can still fail a guardrail,
// because guardrails bound the templates themselves, including signed project templates.

#include "jitbox/config/config.hpp"

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jitbox {

/// The meaning of an unset guardrail: nothing in user mode, or its strict default in enforced
/// mode. The strict defaults are no image, no bind mount, no privileged container, no host namespace, no device, no
/// cap_add, and a docker template must set memory, cpus and pids_limit itself. max_ttl and
/// max_live_per_user have no strict default, because the template's max_ttl and the roles'
/// max_active already bound them.
enum class GuardrailDefaults { permissive, strict };

/// A user's home folder from the passwd database.
struct UserHome {
    std::string user;
    std::filesystem::path home;
};

/// The home folders of every passwd entry whose uid is not `uid`, leaving out "/", empty
/// homes and `own_home`.
std::vector<UserHome> other_users_homes(uid_t uid, const std::filesystem::path& own_home);

/// other_users_homes of the real uid and its home from the passwd database.
std::vector<UserHome> other_users_homes_of_real_user();

/// Docker's normal form of an image reference: a name without a registry gets "docker.io/",
/// a single-component name on docker.io gets "library/", "index.docker.io" becomes
/// "docker.io", and a reference without a tag or digest gets ":latest". "busybox" becomes
/// "docker.io/library/busybox:latest".
std::string normalize_image_reference(std::string_view reference);

/// True when the `images` entry `pattern` matches `reference`. Both are normalised, except
/// that the pattern gets no ":latest", and a pattern without a tag or digest also matches
/// every tag and digest of its repository. `*` matches any run of characters, '/' and ':'
/// included.
bool image_pattern_matches(std::string_view pattern, std::string_view reference);

/// One `up` to check.
struct GuardrailRequest {
    const Template* spec = nullptr;
    std::optional<Seconds> ttl; // the requested ttl; unset: the template's
    int live_sandboxes = 0;     // the requester's own live sandboxes
    std::vector<UserHome> other_homes;
};

/// The outcome of check_guardrails.
struct GuardrailVerdict {
    bool allowed = true;
    /// For the audit record: "deny rule guardrails.KEY (ORIGIN)", which `audit stats` counts
    /// as an attempted violation. Empty when allowed.
    std::string rule;
    std::string message; // one line naming the guardrail, its origin, the value and the fix
    /// The template with each ceiling as its limit where it sets none, and ttl and max_ttl
    /// lowered to guardrails.max_ttl.
    Template effective;
    /// One line per guardrail that applied, for `policy explain`.
    std::vector<std::string> explanation;
};

/// Checks `request` against `guardrails`. The mount rule that is always on while guardrails
/// apply (a `[guardrails]` table exists or `defaults` is strict): never the Docker socket or
/// another socket, `/`, /etc, /proc, /sys, another user's home, or a folder that contains one
/// of them, whatever mount_sources and allow_sensitive allow. Pure but for the file system
/// lookups that resolve symbolic links in mount sources.
GuardrailVerdict check_guardrails(const Guardrails& guardrails, GuardrailDefaults defaults,
                                  const GuardrailRequest& request);

} // namespace jitbox
