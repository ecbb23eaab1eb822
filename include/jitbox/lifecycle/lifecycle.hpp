#pragma once

#include "jitbox/audit/audit.hpp"
#include "jitbox/config/config.hpp"
#include "jitbox/lifecycle/identity.hpp"
#include "jitbox/policy/digest.hpp"
#include "jitbox/policy/guardrails.hpp"
#include "jitbox/policy/policy.hpp"
#include "jitbox/providers/aws_session.hpp"
#include "jitbox/providers/provider.hpp"
#include "jitbox/reaper/reaper.hpp"
#include "jitbox/state/store.hpp"
#include "jitbox/util/result.hpp"
#include "jitbox/util/time.hpp"

#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace jitbox {

/// The place of a sandbox's resources, kept in its record so that teardown reaches it later
/// whatever the environment then contains.
struct ProviderLocation {
    std::string endpoint; // such as "unix:///var/run/docker.sock" or an AWS endpoint URL; empty
                          // means "as the environment says" (DOCKER_HOST and so on)
    std::string region;   // the AWS region; empty for docker

    auto operator<=>(const ProviderLocation&) const = default;
};

/// Chooses a provider by name and location.
class ProviderFactory {
public:
    virtual ~ProviderFactory() = default;
    virtual Result<std::unique_ptr<Provider>> make(const std::string& provider,
                                                   const ProviderLocation& location) = 0;
    /// The location a new sandbox of this template would use, for its record.
    virtual Result<ProviderLocation> locate(const Template& spec) = 0;
};

struct UpRequest {
    std::string template_name; // empty: the configuration's default template
    std::optional<Seconds> ttl;
    std::optional<std::string> name;
    std::string reason;       // --reason, recorded in the audit log
    bool break_glass = false; // --break-glass
    /// Asks the user for the current MFA code, for templates with an mfa_serial; passed on as
    /// SandboxPlan::mfa_code. Unset: such templates fail.
    std::function<Result<std::string>()> mfa_code;
    /// `--wait-timeout`, set with `--wait`: up returns only once the sandbox is ready, and
    /// rolls it back when it is not ready within this time (SandboxPlan::wait_timeout).
    std::optional<Seconds> wait_timeout;
};

/// Whether a failed teardown writes an audit record; the background child skips the records
/// of repeated retries.
enum class FailureAudit { record, skip };

/// A sandbox as `status` shows it: the record plus the provider's current state.
struct SandboxStatus {
    SandboxRecord record;
    std::string state; // "running", "exited", "missing", "expired", "creating", "removing",
                       // or "unknown" when the engine could not be asked
    bool child_alive = false;
    std::string problem; // why the state is "unknown": the engine's failure message
    std::string detail;  // the provider's LabelledResource::detail, such as addresses
};

/// The owners whose labelled resources `gc` may remove: this user only, or everyone.
enum class GcScope { own, all_users };
enum class GcMode { remove, dry_run };

/// One thing `gc` found and what it did about it.
struct GcAction {
    std::string sandbox_id;
    std::string name;
    std::string owner;
    std::string what;   // "expired resources", "resources of a rolled-back sandbox", ...
    std::string result; // "removed", "would remove", "failed: ..."
};

/// The policy that decides requests, as loaded for this process.
struct PolicyInputs {
    std::vector<PolicyLayer> layers;
    PolicyDigest digest; // recorded in every audit record
    std::map<std::string, std::string> attributes; // from the environment, spoofable
};

/// Everything the lifecycle talks to; owned by the caller.
struct LifecycleServices {
    const Config& config;
    const StateStore& store;
    const AuditLog& audit;
    ProviderFactory& providers;
    const Clock& clock;
    ChildSupervisor& children;
    Identity identity;
    ProgressFn progress;
    PolicyInputs policy;
    /// True once the user asked to stop (Ctrl-C, SIGTERM, a closed terminal); `up` then rolls
    /// back instead of arming the sandbox.
    std::function<bool()> interrupted = [] { return false; };
    /// Opens a keyring backend on first use and keeps it open. A non-empty `backend` names the
    /// one that holds a sandbox's items; empty picks JITBOX_KEYRING, then the configuration's
    /// keyring.backend, then the first that works. The default fails, for callers that never
    /// need a keyring.
    std::function<Result<SecretStore*>(std::string_view backend)> open_secrets =
        [](std::string_view) -> Result<SecretStore*> {
        return Failure{ExitCode::internal, "this command has no access to a keyring"};
    };
    /// The defaults of config.guardrails' unset keys: strict in enforced mode.
    GuardrailDefaults guardrail_defaults = GuardrailDefaults::permissive;
    /// The other users' home folders, which no mount may reach while guardrails apply.
    std::function<std::vector<UserHome>()> other_homes = other_users_homes_of_real_user;
};

/// The audit fields beyond the action and its result.
struct AuditExtras {
    std::string detail;
    std::string rule; // the policy rule that decided
    std::string reason;
    bool break_glass = false;
};

/// The one path through which sandboxes are created, extended and torn down, so state, provider
/// and audit log stay consistent for every caller: a command or the background child.
/// One engine's reply to the list request of `status`.
struct EngineView {
    std::map<std::string, LabelledResource> resources; // by sandbox id
    std::optional<std::string> failure;                // why the list request failed
    bool lists_resources = true;
};

/// The reply of the engine that `engine` names, as engine_key() writes it.
struct KeyedEngineView {
    std::string engine;
    EngineView view;
};

/// The list request of `status`, sent on a thread of its own to the engine of the first
/// record found while the calling thread builds the lifecycle and reads the records. With
/// hundreds of sandboxes the engine takes about as long to reply as all of that, and the
/// other records nearly always name the same engine.
struct StatusLookahead {
    /// Empty when no record names an engine to request. Not valid in enforced mode,
    /// whose raised ids belong to the whole process and so cannot serve two threads.
    std::future<std::optional<KeyedEngineView>> view;
};

/// Starts the lookahead over the records of `store`. Both arguments must outlive it.
StatusLookahead start_status_lookahead(const StateStore& store, ProviderFactory& providers);

class Lifecycle {
public:
    explicit Lifecycle(LifecycleServices services) : m_services(std::move(services)) {}

    Result<SandboxRecord> up(const UpRequest& request);
    Result<SandboxRecord> extend(const std::string& name, Seconds by,
                                 const std::string& reason = "");
    /// The AWS session of a live aws-sts sandbox: the one in its keyring, or a new one from STS
    /// when that one is missing or has less than k_aws_session_renewal_margin left. STS is
    /// called only while the grant runs, under the sandbox's lock, and each call is audited as
    /// "renew". ExitCode::not_found for no record or an expired grant, ExitCode::locked for a
    /// locked keyring.
    Result<AwsSession> aws_session(const std::string& name,
                                   const std::function<Result<std::string>()>& mfa_code);
    /// Tears a sandbox down now. ExitCode::not_found when there is no record. With `owner`
    /// (`down --user`), the record must belong to that user, the policy decides the action
    /// down-others instead of down, and the audit record's detail names the owner.
    Result<void> down(const std::string& name,
                      const std::optional<std::string>& owner = std::nullopt);
    /// Decides `status --all-users`: allowed when a role grants status-all on one of the
    /// configured templates. A denial is audited and is ExitCode::denied.
    Result<void> check_status_all();
    /// Tears a sandbox down if its deadline has passed; called by its background child.
    /// `detail` goes into the audit record of a successful removal.
    Result<void> expire(const std::string& name, FailureAudit audit_failure = FailureAudit::record,
                        const std::string& detail = "");
    /// Every record with the provider's view of it, from one list request per engine.
    Result<std::vector<SandboxStatus>> status();
    /// Returns one sandbox's record with the provider's view of it, for `status --check`. It
    /// skips reconciliation and makes one provider request (an inspect of the container for
    /// docker), or none when the record shows that the sandbox is not running.
    /// ExitCode::not_found when there is no record.
    Result<SandboxStatus> status_of(const std::string& name);
    /// Tears down every expired sandbox of this state now, child or not: `jitbox reap`.
    /// Returns the names removed; the first failure, if any, after trying them all.
    Result<std::vector<std::string>> reap_expired();
    /// Reconciles the provider's labelled resources with this state: removes resources whose
    /// sandbox is expired (by this state's record, or by the label when the state does not
    /// know the sandbox) or was rolled back, and removes records whose resources are gone.
    Result<std::vector<GcAction>> gc(GcScope scope, GcMode mode);
    /// Tears down expired sandboxes whose child is gone and restarts the child of a live
    /// sandbox that lost it. Failures are printed as warnings, never fatal.
    void reconcile();
    /// Runs reconcile() and then status(). When reconciling changed no record, it reads each
    /// record and tests each child lock once instead of twice, and uses the engine's reply
    /// in `lookahead` for the records on that engine: `jitbox status`.
    Result<std::vector<SandboxStatus>> reconcile_and_status(StatusLookahead lookahead);
    /// reconcile_and_status() with a lookahead started here.
    Result<std::vector<SandboxStatus>> reconcile_and_status();

    /// The record of `name` when the caller may use the sandbox now: it is running, its
    /// deadline is ahead and the caller owns it. ExitCode::not_found when there is no record or
    /// the sandbox has expired or is being created or removed, ExitCode::denied for another
    /// user's record.
    Result<SandboxRecord> find_live(const std::string& name) const;
    /// Asks the policy whether the caller may run commands in `record` now, as `exec` and
    /// `shell` do. A denial is audited under `command` and returned as ExitCode::denied.
    Result<void> authorize_exec(const SandboxRecord& record, const std::string& command);
    /// Appends an audit record of a use of a live sandbox that changes nothing on it, such as
    /// `exec`. `detail` describes what was done, and a non-null `failure` makes the result
    /// "error".
    void audit_use(const std::string& action, const SandboxRecord& record,
                   const std::string& detail, const Failure* failure = nullptr);

    /// The named template, or the configuration's default when `name` is empty.
    Result<const Template*> resolve_template(const std::string& name) const;

private:
    Result<void> teardown(SandboxRecord record, const std::string& action,
                          FailureAudit audit_failure = FailureAudit::record,
                          const std::string& detail = "");
    void start_retrying_child(const std::string& name);
    Result<void> restart_child(const std::string& name);
    void rollback(SandboxRecord record, const Failure& failure);
    Result<SecretStore*> open_keyring_for(const Template& spec, SandboxRecord& record);
    Result<void> put_generated_secrets(const Template& spec, const SandboxRecord& record,
                                       SandboxPlan& plan);
    void remove_secrets(const SandboxRecord& record);
    void renew_secrets(const SandboxRecord& record);
    Result<void> roll_back_abandoned(const std::string& name);
    /// Reconciles the listed records and returns true when it changed any. Adds the names of
    /// sandboxes whose background child runs to `alive`.
    bool reconcile_records(const std::vector<SandboxRecord>& records,
                           std::set<std::string>& alive);
    /// The status of each record. A name in `alive` counts as having a running child without
    /// another test of its lock; pass nullptr to test every lock. `views` contains the replies
    /// already received, by engine_key(), and the other engines are requested here.
    std::vector<SandboxStatus> statuses_of(std::vector<SandboxRecord> records,
                                           const std::set<std::string>* alive,
                                           std::map<std::string, EngineView> views);
    Result<bool> forget_record(const SandboxRecord& listed);
    void audit(const std::string& action, const SandboxRecord& record, const Failure* failure,
               const AuditExtras& extras = {});
    Requester requester() const;
    int count_active_sandboxes() const;
    GuardrailVerdict check_guardrails_of(const Template& spec, std::optional<Seconds> ttl) const;
    Result<void> check_extension_guardrail(const SandboxRecord& record, Seconds by,
                                           TimePoint wanted, const std::string& reason);
    Decision decide(Action action, const Template& spec, std::optional<Seconds> ttl,
                    const std::string& reason, bool break_glass) const;
    Template template_for(const SandboxRecord& record) const;
    /// The record of `name`, or ExitCode::not_found naming it.
    Result<SandboxRecord> find_record(const std::string& name) const;

    LifecycleServices m_services;
};

/// A random sandbox id: 16 lower-case hex digits.
std::string make_sandbox_id();

/// A generated sandbox name, `<template>-<6 hex digits>`, valid by is_valid_sandbox_name.
std::string make_sandbox_name(const std::string& template_name);

} // namespace jitbox
