#pragma once

// The effective policy digest that audit records carry, so a record can be matched with the
// exact policy files that decided it.

#include <memory>
#include <string>
#include <vector>

namespace jitbox {

/// SHA-256 over the policy sources, computed the first time hex() is called. Hashing starts
/// OpenSSL, which reads its configuration file first: about 1 ms of CPU in a small C program
/// measured with `perf stat` on the 2-core test machine, an eighth of a `jitbox status` with
/// no sandboxes. Most commands record no audit event. Copies share one result.
class PolicyDigest {
public:
    /// One hashed source: its role ("system", "project" or "default") and its exact bytes.
    struct Source {
        std::string role;
        std::string bytes;
    };

    /// No digest, for a command that loads no policy: hex() is empty, and audit records leave
    /// the field out.
    PolicyDigest();
    /// The digest of `sources`, in order, each fed as "ROLE LENGTH\n" and then its bytes.
    explicit PolicyDigest(std::vector<Source> sources);
    /// A digest already known as 64 hex digits, as tests give it.
    PolicyDigest(std::string hex); // NOLINT(google-explicit-constructor): PolicyInputs{..., hex}

    /// 64 lower-case hex digits. Throws Error (internal) when OpenSSL fails.
    const std::string& hex() const;

private:
    struct Shared;
    std::shared_ptr<Shared> m_shared;
};

} // namespace jitbox
