#include "jitbox/lifecycle/lifecycle.hpp"

#include "jitbox/audit/stats.hpp"
#include "jitbox/enforced/mode.hpp"
#include "jitbox/secrets/generate.hpp"
#include "jitbox/secrets/store.hpp"
#include "jitbox/providers/aws.hpp"
#include "jitbox/util/fault.hpp"
#include "jitbox/util/log.hpp"

#include <fmt/chrono.h>
#include <fmt/ranges.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <future>
#include <map>
#include <set>

namespace jitbox {

namespace {

std::string random_hex(std::size_t bytes) {
    std::array<unsigned char, 32> buffer{};
    bytes = std::min(bytes, buffer.size());
    if (RAND_bytes(buffer.data(), static_cast<int>(bytes)) != 1) {
        throw Error(ExitCode::internal, "the system random source failed");
    }
    std::string text;
    for (std::size_t i = 0; i < bytes; ++i) {
        text += fmt::format("{:02x}", buffer[i]);
    }
    return text;
}

std::vector<std::string> template_names(const Config& config) {
    std::vector<std::string> names;
    for (const auto& [name, spec] : config.templates) {
        names.push_back(name);
    }
    return names;
}

std::map<std::string, std::string> sandbox_labels(const SandboxPlan& plan) {
    auto labels = plan.spec.labels;
    labels[k_label_sandbox] = plan.id;
    labels[k_label_name] = plan.name;
    labels[k_label_owner] = plan.owner;
    labels[k_label_template] = plan.spec.name;
    labels[k_label_expires_at] = format_rfc3339(plan.expires_at);
    return labels;
}

bool is_expired(const SandboxRecord& record, TimePoint now) { return record.expires_at <= now; }

Result<void> renew_items(SecretStore& store, const SandboxRecord& record) {
    auto listed = store.list();
    if (!listed) {
        return listed.error();
    }
    for (const SecretInfo& info : *listed) {
        if (info.sandbox_id != record.id || info.key == k_aws_session_key) {
            continue;
        }
        auto found = store.get(info.sandbox_id, info.key);
        if (!found) {
            return found.error();
        }
        if (found->status == LookupStatus::locked) {
            return make_failure(ExitCode::locked, "the keyring is locked");
        }
        if (found->status == LookupStatus::not_found) {
            continue; // expired since the list
        }
        SecretItem renewed{record.id, info.key, found->value, record.expires_at, record.name};
        if (auto put = store.put(renewed); !put) {
            return put.error();
        }
    }
    return {};
}

// Generated secrets live in the keyring, and aws-sts puts the session it obtains there.
bool needs_keyring(const Template& spec) {
    return !spec.secrets.empty() || spec.provider == "aws-sts";
}

ProviderLocation location_of(const SandboxRecord& record) {
    return ProviderLocation{record.endpoint, record.region};
}

} // namespace

std::string make_sandbox_id() { return random_hex(8); }

std::string make_sandbox_name(const std::string& template_name) {
    std::string prefix;
    for (char c : template_name) {
        bool keep = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        prefix += keep ? c : '-';
    }
    prefix = prefix.substr(0, 48);
    while (!prefix.empty() && prefix.back() == '-') {
        prefix.pop_back();
    }
    if (prefix.empty() || prefix.front() == '-') {
        prefix = "sandbox";
    }
    return prefix + "-" + random_hex(3);
}

Result<const Template*> Lifecycle::resolve_template(const std::string& name) const {
    const Config& config = m_services.config;
    const std::string& wanted = name.empty() ? config.default_template : name;
    if (wanted.empty()) {
        return make_failure(ExitCode::usage, "no template given and {} sets no default_template; "
                            "name one of: {}", config.path.empty() ? "the configuration"
                            : config.path.string(), fmt::join(template_names(config), ", "));
    }
    auto found = config.templates.find(wanted);
    if (found == config.templates.end()) {
        std::string source = config.path.empty() ? "the built-in default configuration"
                                                  : config.path.string();
        auto suggestion = closest_name(wanted, template_names(config));
        return make_failure(ExitCode::usage, "template \"{}\" not found in {}{} (known: {})",
                            wanted, source,
                            suggestion.empty() ? "" : fmt::format("; did you mean \"{}\"?",
                                                                  suggestion),
                            fmt::join(template_names(config), ", "));
    }
    return &found->second;
}

void Lifecycle::audit(const std::string& action, const SandboxRecord& record,
                      const Failure* failure, const AuditExtras& extras) {
    AuditEvent event;
    event.time = m_services.clock.now();
    event.user = m_services.identity.user;
    event.action = action;
    event.sandbox = record.name;
    event.sandbox_id = record.id;
    event.template_name = record.template_name;
    event.result = "ok";
    if (failure) {
        event.result = failure->code == ExitCode::denied ? "denied" : "error";
    }
    event.error = failure ? failure->message : "";
    event.detail = extras.detail;
    event.rule = extras.rule;
    event.reason = extras.reason;
    event.break_glass = extras.break_glass;
    event.policy_digest = m_services.policy.digest.hex();
    if (auto appended = m_services.audit.append(event); !appended) {
        fmt::print(stderr, "jitbox: warning: {}\n", appended.error().message);
    }
}

Requester Lifecycle::requester() const {
    Requester requester;
    requester.uid = m_services.identity.uid;
    requester.user = m_services.identity.user;
    requester.groups = m_services.identity.groups;
    requester.host = m_services.identity.host;
    requester.attributes = m_services.policy.attributes;
    return requester;
}

// The requester's sandboxes that count against a role's max_active and the guardrail
// max_live_per_user: live, not expired and not on their way out.
int Lifecycle::count_active_sandboxes() const {
    auto records = m_services.store.list();
    if (!records) {
        return 0;
    }
    TimePoint now = m_services.clock.now();
    return static_cast<int>(std::count_if(records->begin(), records->end(), [&](const auto& r) {
        return r.owner == m_services.identity.user && r.state != SandboxState::removing &&
               !is_expired(r, now);
    }));
}

GuardrailVerdict Lifecycle::check_guardrails_of(const Template& spec,
                                                std::optional<Seconds> ttl) const {
    GuardrailRequest request;
    request.spec = &spec;
    request.ttl = ttl;
    request.live_sandboxes = count_active_sandboxes();
    request.other_homes = m_services.other_homes();
    return check_guardrails(m_services.config.guardrails, m_services.guardrail_defaults, request);
}

Decision Lifecycle::decide(Action action, const Template& spec, std::optional<Seconds> ttl,
                           const std::string& reason, bool break_glass) const {
    AccessRequest request;
    request.action = action;
    request.spec = &spec;
    request.ttl = ttl;
    request.reason = reason;
    request.break_glass = break_glass;
    request.active_sandboxes = action == Action::up ? count_active_sandboxes() : 0;
    request.now = m_services.clock.now();
    return evaluate(m_services.policy.layers, requester(), request);
}

namespace {

// Rejects an action on another user's sandbox. In enforced mode every user's records share one
// state folder, so this check is what keeps one user from another's sandbox.
Result<void> check_owner(const SandboxRecord& record, const std::string& requester) {
    if (record.owner == requester) {
        return {};
    }
    return make_failure(ExitCode::denied,
                        "sandbox \"{}\" belongs to {}, and only its owner may use it; ask "
                        "them, or create one of your own with `jitbox up`",
                        record.name, record.owner);
}

} // namespace

// The template a live sandbox was made from, for decisions about it. When the configuration no
// longer defines it, a stand-in with the record's own bounds keeps rules on its name working.
Result<SandboxRecord> Lifecycle::find_record(const std::string& name) const {
    auto found = m_services.store.find(name);
    if (!found) {
        return found.error();
    }
    if (!found->has_value()) {
        return make_failure(ExitCode::not_found, "no sandbox named \"{}\"; `jitbox status` lists "
                            "yours", name);
    }
    return std::move(**found);
}

Result<SandboxRecord> Lifecycle::find_live(const std::string& name) const {
    Result<SandboxRecord> record = find_record(name);
    if (!record) {
        return record;
    }
    if (auto owned = check_owner(*record, m_services.identity.user); !owned) {
        return owned.error();
    }
    if (record->state == SandboxState::creating) {
        return make_failure(ExitCode::not_found,
                            "sandbox \"{}\" is still being created; retry once `jitbox up` has "
                            "finished",
                            name);
    }
    if (record->state == SandboxState::removing) {
        return make_failure(ExitCode::not_found,
                            "sandbox \"{}\" is being removed; create a new one with `jitbox up`",
                            name);
    }
    if (is_expired(*record, m_services.clock.now())) {
        return make_failure(ExitCode::not_found,
                            "sandbox \"{}\" expired at {} and is about to be removed; create a "
                            "new one with `jitbox up`",
                            name, format_rfc3339(record->expires_at));
    }
    return record;
}

Result<void> Lifecycle::authorize_exec(const SandboxRecord& record, const std::string& command) {
    Decision decision = decide(Action::exec, template_for(record), std::nullopt, "", false);
    if (decision.allowed) {
        return {};
    }
    Failure denied{ExitCode::denied, decision.message};
    audit(command, record, &denied, AuditExtras{"", decision.rule, "", false});
    return denied;
}

void Lifecycle::audit_use(const std::string& action, const SandboxRecord& record,
                          const std::string& detail, const Failure* failure) {
    AuditExtras extras;
    extras.detail = detail;
    audit(action, record, failure, extras);
}

Template Lifecycle::template_for(const SandboxRecord& record) const {
    auto found = m_services.config.templates.find(record.template_name);
    if (found != m_services.config.templates.end()) {
        return found->second;
    }
    Template stand_in;
    stand_in.name = record.template_name;
    stand_in.provider = record.provider;
    stand_in.max_ttl = std::chrono::duration_cast<Seconds>(record.max_expires_at -
                                                           record.created_at);
    stand_in.ttl = stand_in.max_ttl;
    return stand_in;
}

Result<SandboxRecord> Lifecycle::up(const UpRequest& request) {
    auto spec = resolve_template(request.template_name);
    if (!spec) {
        return spec.error();
    }
    const Template& requested = **spec;
    TimePoint now = m_services.clock.now();

    SandboxRecord record;
    record.name = request.name.value_or(make_sandbox_name(requested.name));
    record.id = make_sandbox_id();
    record.template_name = requested.name;
    record.provider = requested.provider;
    record.owner = m_services.identity.user;
    record.created_at = now;
    record.stop_timeout = requested.stop_timeout;
    record.reason = request.reason;

    if (!is_valid_sandbox_name(record.name)) {
        return make_failure(ExitCode::usage, "invalid sandbox name \"{}\": use 1 to 63 lower-case "
                            "letters, digits and hyphens, starting with a letter or digit",
                            record.name);
    }
    if (request.ttl && *request.ttl <= Seconds(0)) {
        return make_failure(ExitCode::usage, "--ttl must be longer than 0s");
    }
    // Guardrails come first, so a template that breaks one is audited as an attempted
    // violation whatever the roles allow. From here on the template carries the ceilings.
    GuardrailVerdict guarded = check_guardrails_of(**spec, request.ttl);
    if (!guarded.allowed) {
        Failure denied{ExitCode::denied, guarded.message};
        audit("up", record, &denied,
              AuditExtras{"", guarded.rule, request.reason, request.break_glass});
        return denied;
    }
    const Template& chosen = guarded.effective;
    Decision decision = decide(Action::up, chosen, request.ttl, request.reason,
                               request.break_glass);
    AuditExtras extras{"", decision.rule, request.reason, decision.break_glass};
    if (!decision.allowed) {
        Failure denied{ExitCode::denied, decision.message};
        audit("up", record, &denied, extras);
        return denied;
    }
    record.break_glass = decision.break_glass;
    record.expires_at = now + decision.ttl;
    // Extensions stop at the lowest bound policy allowed at creation: the template's max_ttl,
    // the role's and the system's, or the end of the role's time window.
    record.max_expires_at = now + std::max(decision.max_ttl, decision.ttl);

    auto secrets = open_keyring_for(chosen, record);
    if (!secrets) {
        audit("up", record, &secrets.error(), extras);
        return secrets.error();
    }
    auto location = m_services.providers.locate(chosen);
    if (!location) {
        return location.error();
    }
    record.endpoint = location->endpoint;
    record.region = location->region;
    record.shell = chosen.shell;
    if (chosen.provider == "aws-sts") {
        record.role_arn = chosen.aws.role_arn;
        record.session_policy = chosen.aws.session_policy;
        record.mfa_serial = chosen.aws.mfa_serial;
    }
    auto provider = m_services.providers.make(record.provider, *location);
    if (!provider) {
        return provider.error();
    }

    auto lock = m_services.store.lock_sandbox(record.name);
    if (!lock) {
        return lock.error();
    }
    if (auto inserted = m_services.store.insert(record); !inserted) {
        return inserted.error();
    }
    fault_point("lifecycle.creating.after");

    SandboxPlan plan;
    plan.id = record.id;
    plan.name = record.name;
    plan.owner = record.owner;
    plan.spec = chosen;
    plan.expires_at = record.expires_at;
    plan.labels = sandbox_labels(plan);
    plan.secrets = *secrets;
    plan.mfa_code = request.mfa_code;
    plan.wait_timeout = request.wait_timeout;
    plan.interrupted = m_services.interrupted;
    auto created = put_generated_secrets(chosen, record, plan);
    if (created) {
        created = (*provider)->create(plan, record.resources, m_services.progress);
    }
    if (created && m_services.interrupted()) {
        created = make_failure(ExitCode::interrupted, "interrupted; removed what was created");
    }
    // The record shows `running` only once the child is armed and recorded, in one write, so
    // an `up` killed before then leaves a `creating` record that the next command rolls back.
    if (created) {
        auto child = m_services.children.start(record.name);
        if (child) {
            fault_point("lifecycle.running.before");
            record.state = SandboxState::running;
            record.child_pid = child->pid;
            record.child_start_time = child->start_time;
            created = m_services.store.update(record);
        } else {
            created = child.error();
        }
    }
    if (!created) {
        if (m_services.progress) {
            // Clears the progress line, so the rollback's warnings start on a line of their own.
            m_services.progress(progress_step(""));
        }
        rollback(std::move(record), created.error());
        return created.error();
    }
    audit("up", record, nullptr, extras);
    return record;
}

// Undoes a failed `up` in reverse order: the child (if it started), the resources, then the
// record. A rollback that cannot reach the provider leaves the record marked `removing`, so
// the next jitbox command retries it instead of forgetting a live container.
void Lifecycle::rollback(SandboxRecord record, const Failure& failure) {
    m_services.children.stop(record);
    audit("up", record, &failure);
    if (record.resources.items.empty()) {
        remove_secrets(record);
        (void)m_services.store.remove(record.name);
        return;
    }
    record.stop_timeout = Seconds(0); // nothing in a sandbox that never started needs a grace
    std::string name = record.name;
    if (auto removed = teardown(std::move(record), "rollback"); !removed) {
        fmt::print(stderr, "jitbox: warning: a background child will retry removing what was "
                   "created: {}\n", removed.error().message);
        start_retrying_child(name);
    }
}

// Opens the keyring before anything is created, so a keyring that does not work stops `up`
// with nothing to undo. Returns null for a template that needs no keyring.
Result<SecretStore*> Lifecycle::open_keyring_for(const Template& spec, SandboxRecord& record) {
    if (!needs_keyring(spec)) {
        return nullptr;
    }
    auto store = m_services.open_secrets("");
    if (!store) {
        return make_failure(store.error().code, "template \"{}\" keeps credentials in a "
                            "keyring, and none could be opened, so nothing was created: {}",
                            spec.name, store.error().message);
    }
    record.secret_backend = std::string((*store)->name());
    return *store;
}

// Generates each of the template's secrets, stores it until the sandbox expires, and hands the
// values to the provider in plan.secret_env.
Result<void> Lifecycle::put_generated_secrets(const Template& spec, const SandboxRecord& record,
                                              SandboxPlan& plan) {
    for (const GeneratedSecret& secret : spec.secrets) {
        auto value = generate_secret_value(static_cast<std::size_t>(secret.length));
        if (!value) {
            return value.error();
        }
        add_redacted_value(*value);
        SecretItem item{record.id, secret.name, *value, record.expires_at, record.name};
        if (auto stored = plan.secrets->put(item); !stored) {
            return make_failure(stored.error().code, "storing secret {} of sandbox \"{}\" in "
                                "keyring {}: {}", secret.name, record.name,
                                plan.secrets->name(), stored.error().message);
        }
        log_debug(1, "generated secret {} of {} characters, stored in keyring {}", secret.name,
                  secret.length, plan.secrets->name());
        plan.secret_env[secret.name] = std::move(item.value);
    }
    return {};
}

// Deletes the sandbox's keyring items and every expired item of that backend. A keyring that
// fails only warns, because a locked or missing keyring must never keep a sandbox alive, and
// its items expire on their own.
void Lifecycle::remove_secrets(const SandboxRecord& record) {
    if (record.secret_backend.empty()) {
        return;
    }
    auto store = m_services.open_secrets(record.secret_backend);
    auto removed = store ? (*store)->remove_sandbox(record.id) : Result<std::size_t>(store.error());
    if (removed) {
        log_debug(1, "removed {} keyring items of {} from {}", *removed, record.name,
                  record.secret_backend);
        removed = (*store)->purge_expired(m_services.clock.now());
    }
    if (!removed) {
        fmt::print(stderr, "jitbox: warning: removing the credentials of \"{}\" from keyring "
                   "{} failed, they stay there until {}: {}\n", record.name,
                   record.secret_backend, format_rfc3339(record.expires_at),
                   removed.error().message);
    }
}

// Stores the sandbox's generated items again with its new expiry. The aws-sts session keeps
// the expiry that STS gave it.
void Lifecycle::renew_secrets(const SandboxRecord& record) {
    if (record.secret_backend.empty()) {
        return;
    }
    auto store = m_services.open_secrets(record.secret_backend);
    auto renewed = store ? renew_items(**store, record) : Result<void>(store.error());
    if (!renewed) {
        fmt::print(stderr, "jitbox: warning: the credentials of \"{}\" in keyring {} still "
                   "expire at their old time: {}\n", record.name, record.secret_backend,
                   renewed.error().message);
    }
}

namespace {

// Names the longest --by that `extend` accepts now: the record's max_expires_at caps the new
// deadline, and the policy's lowest bound caps the time from now to it.
std::string describe_allowed_extension(const SandboxRecord& record, const Decision& decision,
                                       TimePoint now) {
    Seconds allowed =
        std::chrono::duration_cast<Seconds>(record.max_expires_at - record.expires_at);
    if (decision.max_ttl > Seconds(0)) {
        const auto left = std::chrono::duration_cast<Seconds>(record.expires_at - now);
        allowed = std::min(allowed, decision.max_ttl - left);
    }
    if (allowed <= Seconds(0)) {
        return "it cannot be extended any further; start a new one with `jitbox up`";
    }
    return fmt::format("at most --by {} is allowed now", format_duration(allowed));
}

} // namespace

Result<void> Lifecycle::check_status_all() {
    Decision decision;
    decision.message = "no template is configured, so no role can grant status-all";
    for (const auto& [name, spec] : m_services.config.templates) {
        decision = decide(Action::status_all, spec, std::nullopt, "", false);
        if (decision.allowed) {
            return {};
        }
    }
    Failure denied = make_failure(ExitCode::denied,
                                  "status --all-users needs a role whose actions include "
                                  "status-all: {}",
                                  decision.message);
    SandboxRecord none;
    audit("status-all", none, &denied, AuditExtras{"", decision.rule, "", false});
    return denied;
}

// The lifetime guardrail counts from creation, so a sandbox cannot pass it in steps.
Result<void> Lifecycle::check_extension_guardrail(const SandboxRecord& record, Seconds by,
                                                  TimePoint wanted, const std::string& reason) {
    const Guardrails& guardrails = m_services.config.guardrails;
    if (!guardrails.max_ttl || wanted - record.created_at <= *guardrails.max_ttl) {
        return {};
    }
    const std::string origin = guardrails.origins.at("max_ttl");
    Failure denied = make_failure(
        ExitCode::denied,
        "extending \"{}\" by {} would make it live {} in all, which guardrails.max_ttl ({}) does "
        "not allow; it may live {}, until {}",
        record.name, format_duration(by),
        format_duration(std::chrono::duration_cast<Seconds>(wanted - record.created_at)), origin,
        format_duration(*guardrails.max_ttl),
        format_rfc3339(record.created_at + *guardrails.max_ttl));
    audit("extend", record, &denied,
          AuditExtras{"", fmt::format("{}guardrails.max_ttl ({})", k_deny_rule_prefix, origin),
                      reason, false});
    return denied;
}

Result<SandboxRecord> Lifecycle::extend(const std::string& name, Seconds by,
                                        const std::string& reason) {
    if (by <= Seconds(0)) {
        return make_failure(ExitCode::usage, "--by must be longer than 0s, such as 30m");
    }
    auto lock = m_services.store.lock_sandbox(name);
    if (!lock) {
        return lock.error();
    }
    auto found = find_record(name);
    if (!found) {
        return found.error();
    }
    if (auto owned = check_owner(*found, m_services.identity.user); !owned) {
        audit("extend", *found, &owned.error(), AuditExtras{"", "owner", "", false});
        return owned.error();
    }
    SandboxRecord record = std::move(found).value();
    TimePoint now = m_services.clock.now();
    if (is_expired(record, now)) {
        return make_failure(ExitCode::not_found, "sandbox \"{}\" expired at {} and is being "
                            "removed; start a new one with `jitbox up`", name,
                            format_rfc3339(record.expires_at));
    }
    TimePoint wanted = record.expires_at + by;
    if (auto denied = check_extension_guardrail(record, by, wanted, reason); !denied) {
        return denied.error();
    }
    const Seconds requested_ttl = std::chrono::duration_cast<Seconds>(wanted - now);
    Decision decision = decide(Action::extend, template_for(record), requested_ttl, reason, false);
    AuditExtras extras{"", decision.rule, reason, false};
    // A ttl bound of the policy limits the time from now, so the --by it allows is shorter by
    // the time the sandbox has left.
    const bool bounded_by_policy =
        !decision.allowed && decision.max_ttl > Seconds(0) && requested_ttl > decision.max_ttl;
    if (!decision.allowed && !bounded_by_policy) {
        Failure denied = make_failure(ExitCode::denied, "extending \"{}\" by {}: {}", name,
                                      format_duration(by), decision.message);
        audit("extend", record, &denied, extras);
        return denied;
    }
    if (bounded_by_policy || wanted > record.max_expires_at) {
        const std::string limit =
            bounded_by_policy ? fmt::format("would end it {} from now, above the {} allowed by {}",
                                            format_duration(requested_ttl),
                                            format_duration(decision.max_ttl), decision.rule)
                              : fmt::format("would pass its max_ttl (until {})",
                                            format_rfc3339(record.max_expires_at));
        Failure denied = make_failure(ExitCode::denied, "extending \"{}\" by {} {}; {}", name,
                                      format_duration(by), limit,
                                      describe_allowed_extension(record, decision, now));
        audit("extend", record, &denied, extras);
        return denied;
    }
    // The resources learn the new deadline first: an instance that powers itself off at the
    // old one must not outrun a record that promises the new one.
    auto provider = m_services.providers.make(record.provider, location_of(record));
    auto moved =
        provider ? (*provider)->extend(record.resources, wanted) : Result<void>(provider.error());
    if (!moved) {
        audit("extend", record, &moved.error(), extras);
        return moved.error();
    }
    record.expires_at = wanted;
    if (auto updated = m_services.store.update(record); !updated) {
        return updated.error();
    }
    renew_secrets(record);
    if (m_services.children.is_alive(record.name)) {
        m_services.children.notify(record);
    } else if (auto child = m_services.children.start(record.name); child) {
        record.child_pid = child->pid;
        record.child_start_time = child->start_time;
        (void)m_services.store.update(record);
    }
    audit("extend", record, nullptr, extras);
    return record;
}

namespace {

// Reads the sandbox's cached session; none when it is missing, undecodable or expired.
Result<std::optional<AwsSession>> cached_aws_session(SecretStore& store,
                                                     const SandboxRecord& record) {
    const std::string& name = record.name;
    auto lookup = store.get(record.id, k_aws_session_key);
    if (!lookup) {
        return lookup.error();
    }
    if (lookup->status == LookupStatus::locked) {
        return make_failure(ExitCode::locked, "keyring {} is locked, so the AWS session of "
                            "\"{}\" cannot be read; unlock its default collection and retry",
                            store.name(), name);
    }
    if (lookup->status == LookupStatus::not_found) {
        return std::optional<AwsSession>();
    }
    auto session = decode_aws_session(lookup->value);
    if (!session) {
        log_debug(1, "the cached AWS session of {} is unreadable, requesting a new one: {}", name,
                  session.error().message);
        return std::optional<AwsSession>();
    }
    return std::optional<AwsSession>(std::move(session).value());
}

} // namespace

Result<AwsSession> Lifecycle::aws_session(const std::string& name,
                                          const std::function<Result<std::string>()>& mfa_code) {
    auto lock = m_services.store.lock_sandbox(name);
    if (!lock) {
        return lock.error();
    }
    auto found = find_record(name);
    if (!found) {
        return found.error();
    }
    if (auto owned = check_owner(*found, m_services.identity.user); !owned) {
        return owned.error();
    }
    const SandboxRecord record = std::move(found).value();
    if (record.provider != "aws-sts") {
        return make_failure(ExitCode::usage, "sandbox \"{}\" has provider {}, not aws-sts, so it "
                            "has no AWS session", name, record.provider);
    }
    const TimePoint now = m_services.clock.now();
    if (is_expired(record, now) || record.state != SandboxState::running) {
        return make_failure(ExitCode::not_found, "sandbox \"{}\" is {}; start a new one with "
                            "`jitbox up`", name, is_expired(record, now) ? "expired"
                            : std::string(to_string(record.state)));
    }
    auto store = m_services.open_secrets(record.secret_backend);
    if (!store) {
        return store.error();
    }
    auto cached = cached_aws_session(**store, record);
    if (!cached) {
        return cached.error();
    }
    if (*cached && !aws_session_needs_renewal(**cached, record.expires_at, now)) {
        return std::move(**cached);
    }

    auto provider = m_services.providers.make(record.provider, location_of(record));
    if (!provider) {
        return provider.error();
    }
    SandboxPlan plan;
    plan.id = record.id;
    plan.name = record.name;
    plan.owner = record.owner;
    plan.spec = template_for(record);
    if (!record.role_arn.empty()) {
        // The grant's role and policy, not today's template: an edited template must not widen
        // or move a live sandbox's permissions.
        plan.spec.aws.role_arn = record.role_arn;
        plan.spec.aws.session_policy = record.session_policy;
        plan.spec.aws.mfa_serial = record.mfa_serial;
    }
    plan.expires_at = record.expires_at;
    plan.secrets = *store;
    // An MFA session is never renewed silently: the code comes from the caller's terminal
    // prompt or --mfa-stdin, and without one the renewal fails before any call to STS.
    // Captured by value: the plan, and so this function, may outlive this call's locals.
    plan.mfa_code = [mfa_code, name = record.name,
                     serial = plan.spec.aws.mfa_serial]() -> Result<std::string> {
        auto code = mfa_code ? mfa_code()
                             : Result<std::string>(make_failure(
                                   ExitCode::usage, "this command cannot ask for a code"));
        if (!code) {
            return make_failure(code.error().code,
                                "the AWS session of \"{}\" needs renewal, "
                                "which needs a code of MFA device {}: {}",
                                name, serial, code.error().message);
        }
        return code;
    };
    auto renewed = (*provider)->renew_credentials(plan);
    AuditExtras extras;
    extras.detail = *cached ? "session near its expiry" : "no session in the keyring";
    audit("renew", record, renewed ? nullptr : &renewed.error(), extras);
    if (!renewed) {
        return renewed.error();
    }
    auto fresh = cached_aws_session(**store, record);
    if (!fresh) {
        return fresh.error();
    }
    if (!*fresh) {
        return make_failure(ExitCode::internal, "the renewed AWS session of \"{}\" is not in "
                            "keyring {}", name, (*store)->name());
    }
    return std::move(**fresh);
}

Result<void> Lifecycle::down(const std::string& name, const std::optional<std::string>& owner) {
    auto lock = m_services.store.lock_sandbox(name);
    if (!lock) {
        return lock.error();
    }
    auto found = find_record(name);
    if (!found) {
        return found.error();
    }
    if (owner && found->owner != *owner) {
        return make_failure(ExitCode::not_found, "user {} has no sandbox named \"{}\"", *owner,
                            name);
    }
    const bool other_user = owner.has_value();
    // Removing another user's sandbox is the role's decision alone (Action::down_others).
    if (!other_user) {
        if (auto owned = check_owner(*found, m_services.identity.user); !owned) {
            audit("down", *found, &owned.error(), AuditExtras{"", "owner", "", false});
            return owned.error();
        }
    }
    const Action action = other_user ? Action::down_others : Action::down;
    Decision decision = decide(action, template_for(*found), std::nullopt, "", false);
    const std::string detail =
        other_user ? fmt::format("sandbox of user {}", found->owner) : std::string();
    if (!decision.allowed) {
        Failure denied{ExitCode::denied, decision.message};
        audit("down", *found, &denied, AuditExtras{detail, decision.rule, "", false});
        return denied;
    }
    if (other_user) {
        audit("down-others", *found, nullptr, AuditExtras{detail, decision.rule, "", false});
    }
    m_services.children.stop(*found);
    auto removed = teardown(std::move(*found), "down", FailureAudit::record, detail);
    if (!removed) {
        start_retrying_child(name);
    }
    return removed;
}

// Starts a background child for a sandbox whose removal failed, so the removal is retried
// even if no other jitbox command runs. The caller holds the sandbox lock; the child finds the
// record `removing` and retries at once with backoff.
void Lifecycle::start_retrying_child(const std::string& name) {
    auto found = m_services.store.find(name);
    if (!found || !found->has_value() || m_services.children.is_alive(name)) {
        return;
    }
    auto child = m_services.children.start(name);
    if (!child) {
        fmt::print(stderr, "jitbox: warning: the next jitbox command will retry removing \"{}\": "
                   "{}\n", name, child.error().message);
        return;
    }
    SandboxRecord record = std::move(**found);
    record.child_pid = child->pid;
    record.child_start_time = child->start_time;
    (void)m_services.store.update(record);
}

Result<void> Lifecycle::expire(const std::string& name, FailureAudit audit_failure,
                               const std::string& detail) {
    auto lock = m_services.store.lock_sandbox(name);
    if (!lock) {
        return lock.error();
    }
    auto found = m_services.store.find(name);
    if (!found) {
        return found.error();
    }
    if (!found->has_value()) {
        return {};
    }
    // A record left `removing` by a failed teardown is retried whatever its deadline, and
    // audited under the action that started the removal.
    const SandboxRecord& record = **found;
    bool retry = record.state == SandboxState::removing && !record.removal_action.empty();
    if (!is_expired(record, m_services.clock.now()) && !retry) {
        return {};
    }
    std::string action = retry ? record.removal_action : "expire";
    return teardown(std::move(**found), action, audit_failure, detail);
}

namespace {

// Adds every resource on the provider that carries this sandbox's id label but is missing from
// the record: an `up` interrupted between a create call and its record update leaves such
// resources, and labels are the truth about what exists.
Result<void> add_labelled_resources(Provider& provider, SandboxRecord& record) {
    auto listed = provider.list_labelled(ListScope::all);
    if (!listed) {
        return listed.error();
    }
    for (const auto& found : *listed) {
        auto label = found.labels.find(k_label_sandbox);
        if (label == found.labels.end() || label->second != record.id) {
            continue;
        }
        auto& items = record.resources.items;
        bool known = std::any_of(items.begin(), items.end(), [&](const Resource& item) {
            return item.id == found.resource.id;
        });
        if (!known) {
            // Networks go first in creation order, so destroy, which works backwards, removes
            // the container before its network.
            auto position = found.resource.kind == "network" ? items.begin() : items.end();
            items.insert(position, found.resource);
        }
    }
    return {};
}

// Provider states of a resource that is on its way out and needs no further call.
bool is_leaving(const std::string& state) {
    return state == "removing" || state == "terminated" || state == "shutting-down";
}

// Asks the provider again, after destroy, for what still carries the sandbox's id: the receipt
// that teardown is complete. Fails with ExitCode::partial_teardown naming what is left.
Result<void> check_teardown_receipt(Provider& provider, const SandboxRecord& record) {
    if (!provider.lists_resources()) {
        return {};
    }
    auto listed = provider.list_labelled(ListScope::all);
    if (!listed) {
        return make_failure(listed.error().code, "could not confirm the removal of \"{}\": {}",
                            record.name, listed.error().message);
    }
    std::vector<std::string> left;
    for (const auto& found : *listed) {
        auto label = found.labels.find(k_label_sandbox);
        if (label != found.labels.end() && label->second == record.id &&
            !is_leaving(found.state)) {
            left.push_back(fmt::format("{} {} ({})", found.resource.kind, found.resource.name,
                                       found.state));
        }
    }
    if (left.empty()) {
        return {};
    }
    return make_failure(ExitCode::partial_teardown, "sandbox \"{}\" was removed only in part: "
                        "{} still exist; the record stays and the removal is retried",
                        record.name, fmt::join(left, ", "));
}

} // namespace

// Removes the provider's resources, then the record. The caller holds the sandbox lock. On
// failure the record stays, marked `removing`, so a later command or the child retries.
Result<void> Lifecycle::teardown(SandboxRecord record, const std::string& action,
                                 FailureAudit audit_failure, const std::string& detail) {
    record.state = SandboxState::removing;
    record.removal_action = action;
    if (auto updated = m_services.store.update(record); !updated) {
        return updated.error();
    }
    fault_point("lifecycle.removing.after");
    auto fail = [&](const Failure& failure) -> Result<void> {
        if (audit_failure == FailureAudit::record) {
            audit(action, record, &failure);
        }
        return failure;
    };
    auto provider = m_services.providers.make(record.provider, location_of(record));
    if (!provider) {
        return fail(provider.error());
    }
    if (auto found = add_labelled_resources(**provider, record); !found) {
        return fail(found.error());
    }
    if (auto destroyed = (*provider)->destroy(record.resources, record.stop_timeout);
        !destroyed) {
        return fail(destroyed.error());
    }
    if (auto receipt = check_teardown_receipt(**provider, record); !receipt) {
        return fail(receipt.error());
    }
    remove_secrets(record);
    fault_point("lifecycle.record.remove.before");
    if (auto removed = m_services.store.remove(record.name); !removed) {
        return fail(removed.error());
    }
    audit(action, record, nullptr, AuditExtras{detail, "", "", false});
    return {};
}

namespace {

// Names the engine or API endpoint that contains a record's resources.
std::string engine_key(const std::string& provider, const ProviderLocation& location) {
    return provider + " " + location.endpoint + " " + location.region;
}

EngineView view_engine(ProviderFactory& providers, const std::string& provider_name,
                       const ProviderLocation& location) {
    EngineView view;
    auto provider = providers.make(provider_name, location);
    auto listed = provider ? (*provider)->list_labelled(ListScope::containers)
                           : Result<std::vector<LabelledResource>>(provider.error());
    if (!listed) {
        // One unreachable engine must not hide the sandboxes on the others.
        view.failure = listed.error().message;
        return view;
    }
    view.lists_resources = (*provider)->lists_resources();
    for (auto& resource : *listed) {
        const auto sandbox = resource.labels.find(k_label_sandbox);
        if (sandbox == resource.labels.end()) {
            continue; // the list filter requests the label, so only a faulty engine omits it
        }
        const std::string sandbox_id = sandbox->second;
        view.resources[sandbox_id] = std::move(resource);
    }
    return view;
}

} // namespace

Result<std::vector<SandboxStatus>> Lifecycle::status() {
    auto records = m_services.store.list();
    if (!records) {
        return records.error();
    }
    return statuses_of(std::move(*records), nullptr, {});
}

StatusLookahead start_status_lookahead(const StateStore& store, ProviderFactory& providers) {
    if (enforced::is_enforced()) {
        return {};
    }
    auto ask = [&store, &providers]() -> std::optional<KeyedEngineView> {
        auto names = store.names();
        if (!names || names->empty()) {
            return std::nullopt;
        }
        auto first = store.find(names->front());
        if (!first || !first->has_value()) {
            return std::nullopt; // reading every record reports it
        }
        const ProviderLocation location = location_of(**first);
        return KeyedEngineView{engine_key((**first).provider, location),
                               view_engine(providers, (**first).provider, location)};
    };
    return StatusLookahead{std::async(std::launch::async, ask)};
}

Result<std::vector<SandboxStatus>> Lifecycle::reconcile_and_status() {
    return reconcile_and_status(start_status_lookahead(m_services.store, m_services.providers));
}

Result<std::vector<SandboxStatus>> Lifecycle::reconcile_and_status(StatusLookahead lookahead) {
    auto records = m_services.store.list();
    if (!records) {
        return records.error();
    }
    std::set<std::string> alive;
    const bool changed = reconcile_records(*records, alive);
    std::map<std::string, EngineView> views;
    if (lookahead.view.valid()) {
        if (auto answer = lookahead.view.get()) {
            views[answer->engine] = std::move(answer->view);
        }
    }
    if (changed) {
        // The engine's reply may predate what reconciling removed.
        return status();
    }
    return statuses_of(std::move(*records), &alive, std::move(views));
}

std::vector<SandboxStatus> Lifecycle::statuses_of(std::vector<SandboxRecord> records,
                                                  const std::set<std::string>* alive,
                                                  std::map<std::string, EngineView> views) {
    // One list request per engine endpoint, whatever the number of sandboxes.
    std::vector<SandboxStatus> statuses;
    TimePoint now = m_services.clock.now();
    for (auto& record : records) {
        std::string key = engine_key(record.provider, location_of(record));
        if (!views.count(key)) {
            views[key] = view_engine(m_services.providers, record.provider, location_of(record));
        }
        const EngineView& view = views[key];
        SandboxStatus status{std::move(record), "", false, "", ""};
        status.child_alive = (alive != nullptr && alive->count(status.record.name) > 0) ||
                             m_services.children.is_alive(status.record.name);
        auto found = view.resources.find(status.record.id);
        if (status.record.state != SandboxState::running) {
            status.state = std::string(to_string(status.record.state));
        } else if (is_expired(status.record, now)) {
            status.state = "expired";
        } else if (view.failure) {
            status.state = "unknown";
            status.problem = *view.failure;
        } else if (!view.lists_resources) {
            status.state = "running"; // nothing to ask the provider about; the record decides
        } else if (found == view.resources.end()) {
            status.state = "missing";
        } else {
            status.state = found->second.state;
            status.detail = found->second.detail;
        }
        statuses.push_back(std::move(status));
    }
    return statuses;
}

Result<SandboxStatus> Lifecycle::status_of(const std::string& name) {
    auto found = find_record(name);
    if (!found) {
        return found.error();
    }
    if (auto owned = check_owner(*found, m_services.identity.user); !owned) {
        return owned.error();
    }
    SandboxStatus status{std::move(found).value(), "", false, "", ""};
    status.child_alive = m_services.children.is_alive(status.record.name);
    if (status.record.state != SandboxState::running) {
        status.state = std::string(to_string(status.record.state));
        return status;
    }
    if (is_expired(status.record, m_services.clock.now())) {
        status.state = "expired";
        return status;
    }
    auto provider = m_services.providers.make(status.record.provider, location_of(status.record));
    if (!provider) {
        return provider.error();
    }
    if (!(*provider)->lists_resources()) {
        status.state = "running"; // nothing to ask the provider about; the record decides
        return status;
    }
    auto state = (*provider)->resource_state(status.record.id, status.record.resources);
    if (!state) {
        return state.error();
    }
    status.state = std::move(state).value();
    return status;
}

Result<std::vector<std::string>> Lifecycle::reap_expired() {
    auto records = m_services.store.list();
    if (!records) {
        return records.error();
    }
    std::vector<std::string> removed;
    std::optional<Failure> first_failure;
    TimePoint now = m_services.clock.now();
    for (const auto& record : *records) {
        if (!is_expired(record, now) && record.state != SandboxState::removing) {
            continue;
        }
        if (auto expired = expire(record.name); !expired) {
            first_failure = first_failure.value_or(expired.error());
            continue;
        }
        removed.push_back(record.name);
    }
    if (first_failure) {
        return *first_failure;
    }
    return removed;
}

namespace {

// The labelled resources of one sandbox id, grouped, networks first so that destroy, which
// works backwards, removes containers before their networks.
struct LabelledSandbox {
    std::map<std::string, std::string> labels;
    ResourceSet resources;
};

std::map<std::string, LabelledSandbox> group_by_sandbox(
    const std::vector<LabelledResource>& listed) {
    std::map<std::string, LabelledSandbox> sandboxes;
    for (const auto& found : listed) {
        auto id = found.labels.find(k_label_sandbox);
        if (id == found.labels.end() || id->second.empty()) {
            continue;
        }
        auto& sandbox = sandboxes[id->second];
        sandbox.labels = found.labels;
        auto& items = sandbox.resources.items;
        items.insert(found.resource.kind == "network" ? items.begin() : items.end(),
                     found.resource);
    }
    return sandboxes;
}

std::string label_or(const std::map<std::string, std::string>& labels, const char* key,
                     const std::string& fallback) {
    auto found = labels.find(key);
    return found == labels.end() ? fallback : found->second;
}

} // namespace

Result<std::vector<GcAction>> Lifecycle::gc(GcScope scope, GcMode mode) {
    auto records = m_services.store.list();
    if (!records) {
        return records.error();
    }
    std::map<std::string, const SandboxRecord*> known; // by sandbox id
    std::set<std::pair<std::string, ProviderLocation>> engines;
    for (const auto& record : *records) {
        known[record.id] = &record;
        engines.insert({record.provider, location_of(record)});
    }
    Template docker;
    docker.provider = "docker";
    if (auto location = m_services.providers.locate(docker)) {
        engines.insert({"docker", *location});
    }
    std::set<std::string> unlisted_providers; // whose records gc cannot check against labels

    std::vector<GcAction> actions;
    std::set<std::string> seen_ids;
    TimePoint now = m_services.clock.now();
    for (const auto& [provider_name, location] : engines) {
        auto provider = m_services.providers.make(provider_name, location);
        if (!provider) {
            return provider.error();
        }
        if (!(*provider)->lists_resources()) {
            unlisted_providers.insert(provider_name);
            continue;
        }
        auto listed = (*provider)->list_labelled(ListScope::all);
        if (!listed) {
            return listed.error();
        }
        for (auto& [id, sandbox] : group_by_sandbox(*listed)) {
            seen_ids.insert(id);
            GcAction action{id, label_or(sandbox.labels, k_label_name, ""),
                            label_or(sandbox.labels, k_label_owner, ""), "", ""};
            if (auto record = known.find(id); record != known.end()) {
                const SandboxRecord& mine = *record->second;
                bool due = is_expired(mine, now) || mine.state == SandboxState::removing;
                if (!due || m_services.children.is_alive(mine.name)) {
                    continue; // live, or its child is on it
                }
                action.what = "expired sandbox of this state";
                action.result = mode == GcMode::dry_run ? "would remove" : "removed";
                if (mode == GcMode::remove) {
                    if (auto expired = expire(mine.name); !expired) {
                        action.result = "failed: " + expired.error().message;
                    }
                }
                actions.push_back(action);
                continue;
            }
            // Not this state's: another state folder's or another user's. Only its own label
            // gives its deadline, and a deadline still ahead means someone else owns it.
            if (scope == GcScope::own && action.owner != m_services.identity.user) {
                continue;
            }
            auto expires = parse_rfc3339(label_or(sandbox.labels, k_label_expires_at, ""));
            if (expires && *expires > now) {
                continue;
            }
            action.what = expires ? "expired resources that no record here lists"
                                  : "resources with no readable expiry label";
            action.result = mode == GcMode::dry_run ? "would remove" : "removed";
            if (mode == GcMode::remove) {
                if (auto destroyed = (*provider)->destroy(sandbox.resources, Seconds(0));
                    !destroyed) {
                    action.result = "failed: " + destroyed.error().message;
                }
            }
            actions.push_back(action);
        }
    }

    // Records whose resources are all gone, and that no up is still creating, are forgotten.
    for (const auto& record : *records) {
        if (seen_ids.count(record.id) > 0 || record.state == SandboxState::creating ||
            unlisted_providers.count(record.provider) > 0) {
            continue;
        }
        GcAction action{record.id, record.name, record.owner, "record whose resources are gone",
                        mode == GcMode::dry_run ? "would forget" : "forgotten"};
        if (mode == GcMode::remove) {
            auto forgotten = forget_record(record);
            if (!forgotten) {
                action.result = "failed: " + forgotten.error().message;
            } else if (!*forgotten) {
                continue; // removed or replaced by another command since the list
            }
        }
        actions.push_back(action);
    }
    return actions;
}

// Removes the record of a sandbox whose resources are gone. Under the lock the record is read
// again: a `down` and a new `up` of the same name since gc listed the records must not lose
// the new sandbox's record. Returns false when the listed record is no longer there.
Result<bool> Lifecycle::forget_record(const SandboxRecord& listed) {
    auto lock = m_services.store.lock_sandbox(listed.name);
    if (!lock) {
        return lock.error();
    }
    auto found = m_services.store.find(listed.name);
    if (!found) {
        return found.error();
    }
    if (!found->has_value() || (**found).id != listed.id) {
        return false;
    }
    m_services.children.stop(**found);
    remove_secrets(**found);
    if (auto removed = m_services.store.remove(listed.name); !removed) {
        return removed.error();
    }
    audit("gc", **found, nullptr, AuditExtras{"resources were already gone", "", "", false});
    return true;
}

void Lifecycle::reconcile() {
    auto records = m_services.store.list();
    if (!records) {
        return;
    }
    std::set<std::string> alive;
    reconcile_records(*records, alive);
}

bool Lifecycle::reconcile_records(const std::vector<SandboxRecord>& records,
                                  std::set<std::string>& alive) {
    bool changed = false;
    TimePoint now = m_services.clock.now();
    for (const auto& record : records) {
        // Every branch except a running child may change or remove the record, even one that
        // fails, so the caller reads the records again.
        if (record.state == SandboxState::creating) {
            changed = true;
            if (auto rolled_back = roll_back_abandoned(record.name); !rolled_back) {
                fmt::print(stderr, "jitbox: warning: removing the half-made sandbox \"{}\": {}\n",
                           record.name, rolled_back.error().message);
            }
            continue;
        }
        if (m_services.children.is_alive(record.name)) {
            alive.insert(record.name);
            continue;
        }
        changed = true;
        if (is_expired(record, now) || record.state == SandboxState::removing) {
            auto expired = expire(record.name);
            if (!expired) {
                fmt::print(stderr, "jitbox: warning: removing expired sandbox \"{}\": {}\n",
                           record.name, expired.error().message);
            }
            continue;
        }
        if (auto restarted = restart_child(record.name); !restarted) {
            fmt::print(stderr, "jitbox: warning: restarting the teardown timer of \"{}\": {}\n",
                       record.name, restarted.error().message);
        }
    }
    return changed;
}

// Rolls back a sandbox left `creating` by an `up` that died. A live `up` holds the sandbox
// lock from before the record exists until the sandbox runs, so a free lock means its creator
// is gone.
Result<void> Lifecycle::roll_back_abandoned(const std::string& name) {
    auto lock = m_services.store.try_lock_sandbox(name);
    if (!lock) {
        return lock.error();
    }
    if (!lock->has_value()) {
        return {};
    }
    auto found = m_services.store.find(name);
    if (!found) {
        return found.error();
    }
    if (!found->has_value() || (**found).state != SandboxState::creating) {
        return {};
    }
    SandboxRecord record = std::move(**found);
    m_services.children.stop(record); // the dead `up` may have started one already
    record.stop_timeout = Seconds(0);
    return teardown(std::move(record), "rollback");
}

// Starts a child for a live sandbox that has none. Skips the sandbox when another command
// holds its lock, since that command decides its fate.
Result<void> Lifecycle::restart_child(const std::string& name) {
    auto lock = m_services.store.try_lock_sandbox(name);
    if (!lock || !lock->has_value()) {
        return {};
    }
    auto found = m_services.store.find(name);
    if (!found || !found->has_value() || m_services.children.is_alive(name)) {
        return {};
    }
    auto child = m_services.children.start(name);
    if (!child) {
        return child.error();
    }
    SandboxRecord record = std::move(**found);
    record.child_pid = child->pid;
    record.child_start_time = child->start_time;
    return m_services.store.update(record);
}

} // namespace jitbox
