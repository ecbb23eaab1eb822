#pragma once

#include "jitbox/config/config.hpp"
#include "jitbox/policy/rules.hpp"
#include "jitbox/util/time.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace jitbox {

/// The requester as the operating system identifies them, plus the request attributes.
struct Requester {
    std::uint32_t uid = 0;
    std::string user;
    std::vector<std::string> groups; // primary and supplementary group names
    std::string host;
    /// Values of the environment variables that `[policy] attributes_from_env` names. Anyone
    /// can set them, so explanations mark every use as spoofable.
    std::map<std::string, std::string> attributes;
};

/// One request to decide on.
struct AccessRequest {
    Action action = Action::up;
    const Template* spec = nullptr; // required; a request without one is denied
    /// The requested ttl; unset: the default applies. For `extend`, the time from `now` to the
    /// requested new deadline. Ignored for `down` and `exec`.
    std::optional<Seconds> ttl;
    std::string reason;
    bool break_glass = false;
    int active_sandboxes = 0; // the requester's live sandboxes, checked against max_active
    TimePoint now;
};

/// One layer of policy with the file it came from; the system layer comes first.
struct PolicyLayer {
    std::string source; // path, or "<default>"
    Policy policy;
};

/// The outcome of evaluate(): allowed or not, the effective ttl, and why.
struct Decision {
    bool allowed = false;
    Seconds ttl{0};     // effective ttl when allowed; zero for `down` and `exec`
    Seconds max_ttl{0}; // the lowest bound considered; zero for `down` and `exec`
    /// The rules that decided, such as "role dev (jitbox.toml:12:1)" or
    /// "deny prod-only (jitbox.toml:20:1)". Several granting roles are joined by ", ". Empty
    /// when no rule applied.
    std::string rule;
    std::string message;                  // one line for the user: the reason and what to do
    /// The rules that matched and how ttl was bounded. Per layer it lists the first 20 matching
    /// roles, and the first 20 deny rules that cover the request but do not apply, and counts
    /// the rest in one line. The role that decides a layer is always listed.
    std::vector<std::string> explanation;
    bool break_glass = false;             // allowed as a break-glass request
};

/// Decides a request against every layer. A matching deny rule of any layer denies. Then every
/// layer that has roles needs a matching role, and of several the one that grants the longest
/// maximum ttl decides for its layer. For `up` and `extend`, a requested ttl above the lowest
/// bound of all layers is denied, while a default ttl is lowered to it. Pure: no I/O, no clock
/// and no environment. The only shared state is the tz database, which date::locate_zone loads
/// on first use.
Decision evaluate(const std::vector<PolicyLayer>& layers, const Requester& requester,
                  const AccessRequest& request);

} // namespace jitbox
