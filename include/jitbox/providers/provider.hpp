#pragma once

#include "jitbox/config/config.hpp"
#include "jitbox/util/result.hpp"
#include "jitbox/util/time.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace jitbox {

class SecretStore;

// Labels that every resource jitbox creates carries, beside the template's own. They are the
// truth about what exists; local state is only the record of what jitbox meant to do.
inline constexpr const char* k_label_sandbox = "io.jitbox.sandbox";
inline constexpr const char* k_label_owner = "io.jitbox.owner";
inline constexpr const char* k_label_template = "io.jitbox.template";
inline constexpr const char* k_label_expires_at = "io.jitbox.expires-at";
inline constexpr const char* k_label_name = "io.jitbox.name";

/// One thing a provider created, such as a container or a network.
struct Resource {
    std::string kind; // "container", "network", "instance", "aws-session"
    std::string id;
    std::string name;
};

struct PublishedPort {
    std::string container_port; // "5432/tcp"
    std::string host_ip;
    int host_port = 0;
};

/// Everything that belongs to one sandbox on its provider.
struct ResourceSet {
    std::vector<Resource> items; // in creation order; destroyed in reverse
    std::vector<PublishedPort> ports;
};

/// The request to create: the template plus the identity of this sandbox.
struct SandboxPlan {
    std::string id;    // random, unique; the value of io.jitbox.sandbox
    std::string name;  // the user's name for it
    std::string owner; // user name
    Template spec;
    TimePoint expires_at;
    std::map<std::string, std::string> labels; // template labels plus the io.jitbox.* ones

    /// The keyring that receives credentials the provider issues (aws-sts), or null when the
    /// template needs none. Not owned.
    SecretStore* secrets = nullptr;
    /// Generated secrets to pass into the sandbox's environment, by variable name. The plan is
    /// never written to state, so the values stay in memory and the keyring.
    std::map<std::string, std::string> secret_env;
    /// Asks the user for the current MFA code; set when the template names an mfa_serial.
    std::function<Result<std::string>()> mfa_code;
    /// Set by `up --wait`: create returns only once the sandbox is ready, and fails with
    /// ExitCode::not_ready when it is not ready within this time.
    std::optional<Seconds> wait_timeout;
    /// True once the user asked to stop; a pull or a wait then ends early with
    /// ExitCode::interrupted.
    std::function<bool()> interrupted = [] { return false; };
};

/// A resource found on the provider through its jitbox labels.
struct LabelledResource {
    Resource resource;
    std::string state; // provider's word: "running", "exited", "created", ...
    std::map<std::string, std::string> labels;
    /// The text `status` shows beside the state, such as an EC2 instance's id and addresses.
    /// Empty when the provider has nothing to add.
    std::string detail;
};

/// The resource kinds list_labelled covers. Containers alone tell status whether each sandbox
/// runs, in one request; networks are needed only to find leftovers.
enum class ListScope { containers, all };

/// One report of a provider's progress, for the CLI to draw on a terminal.
struct ProgressEvent {
    enum class Kind {
        step,    // a new step starts, such as "pulling image busybox:1.36"; empty text clears
        layer,   // an image layer's pull status, with its bytes when the engine sent them
        waiting, // still waiting for what `text` names; sent again at each poll
    };
    Kind kind = Kind::step;
    std::string text;         // the step, the layer's status ("Downloading") or the wait
    std::string layer;        // the layer id, for Kind::layer
    std::int64_t current = 0; // bytes of the layer done so far
    std::int64_t total = 0;   // bytes of the layer; 0 while the engine has not sent the size
};

inline ProgressEvent progress_step(std::string text) {
    return ProgressEvent{ProgressEvent::Kind::step, std::move(text), {}, 0, 0};
}

inline ProgressEvent progress_waiting(std::string text) {
    return ProgressEvent{ProgressEvent::Kind::waiting, std::move(text), {}, 0, 0};
}

inline ProgressEvent progress_layer(std::string layer, std::string status, std::int64_t current,
                                    std::int64_t total) {
    return ProgressEvent{ProgressEvent::Kind::layer, std::move(status), std::move(layer), current,
                         total};
}

/// Receives progress reports; may ignore them.
using ProgressFn = std::function<void(const ProgressEvent& event)>;

class Provider {
public:
    virtual ~Provider() = default;

    /// Creates the sandbox. Each resource is appended to `created` as soon as it exists, so
    /// that on failure the caller can destroy exactly what was made.
    virtual Result<void> create(const SandboxPlan& plan, ResourceSet& created,
                                const ProgressFn& progress) = 0;

    /// Removes the resources, waiting at most `stop_timeout` for a graceful stop (none: kill at
    /// once). A resource that is already gone, or already being removed, counts as removed.
    virtual Result<void> destroy(const ResourceSet& resources,
                                 std::optional<Seconds> stop_timeout) = 0;

    /// Lists the resources that carry the io.jitbox.sandbox label, with one request per kind.
    virtual Result<std::vector<LabelledResource>> list_labelled(ListScope scope) = 0;

    /// The provider's state word for one sandbox, such as "running" or "exited", or "missing"
    /// when nothing of it exists. The default lists the labelled resources once; a provider
    /// that can ask about the recorded resources directly overrides it.
    virtual Result<std::string> resource_state(const std::string& sandbox_id,
                                               const ResourceSet& resources) {
        static_cast<void>(resources);
        auto listed = list_labelled(ListScope::containers);
        if (!listed) {
            return listed.error();
        }
        for (const LabelledResource& found : *listed) {
            const auto label = found.labels.find(k_label_sandbox);
            if (label != found.labels.end() && label->second == sandbox_id) {
                return found.state;
            }
        }
        return std::string("missing");
    }

    /// False for a provider whose sandboxes have nothing that list_labelled can find (STS
    /// sessions), so `status` and `gc` trust the record instead of calling them missing.
    virtual bool lists_resources() const { return true; }

    /// Moves the deadline that the resources themselves carry, for `extend`. The default has
    /// nothing to move, because the background child enforces the deadline alone.
    virtual Result<void> extend(const ResourceSet& resources, TimePoint expires_at) {
        static_cast<void>(resources);
        static_cast<void>(expires_at);
        return {};
    }

    /// Issues fresh credentials for a live sandbox into plan.secrets, for a provider whose
    /// credentials can end before the grant does (aws-sts). The default has none to issue.
    virtual Result<void> renew_credentials(const SandboxPlan& plan) {
        return make_failure(ExitCode::usage, "sandbox \"{}\" has no credentials to renew",
                            plan.name);
    }
};

} // namespace jitbox
