#include "jitbox/aws/responses.hpp"
#include "jitbox/providers/aws.hpp"
#include "jitbox/util/log.hpp"
#include "jitbox/secrets/store.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace jitbox {
namespace {

// RoleSessionName and SourceIdentity are 2 to 64 characters (AWS STS API Reference).
constexpr std::size_t k_min_identity_length = 2;
constexpr std::size_t k_max_identity_length = 64;
// Session tag values are at most 256 characters (AWS IAM User Guide, session tags).
constexpr std::size_t k_max_tag_value_length = 256;

constexpr const char* k_deadline_statement_id = "JitboxGrantDeadline";

bool is_identity_character(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           std::string_view("+=,.@-").find(c) != std::string_view::npos;
}

std::string sanitize_identity(std::string text) {
    for (char& c : text) {
        if (!is_identity_character(c)) {
            c = '-';
        }
    }
    text.resize(std::min(text.size(), k_max_identity_length));
    while (text.size() < k_min_identity_length) {
        text += '-';
    }
    return text;
}

// Keeps the characters IAM accepts in a tag value for ASCII text: letters, digits, space and
// _ . : / = + - @. Others become '_'.
std::string sanitize_tag_value(std::string text) {
    for (char& c : text) {
        const bool allowed = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                             (c >= '0' && c <= '9') ||
                             std::string_view(" _.:/=+-@").find(c) != std::string_view::npos;
        if (!allowed) {
            c = '_';
        }
    }
    text.resize(std::min(text.size(), k_max_tag_value_length));
    return text;
}

Result<std::string> read_mfa_code(const Template& spec, const MfaCodeFn& mfa_code) {
    if (!mfa_code) {
        return make_failure(ExitCode::usage,
                            "template \"{}\" requires an MFA code for {}; run `jitbox up` on a "
                            "terminal, or pass the code with --mfa-stdin",
                            spec.name, spec.aws.mfa_serial);
    }
    auto code = mfa_code();
    if (!code) {
        return code.error();
    }
    const bool six_digits =
        code->size() == 6 &&
        std::all_of(code->begin(), code->end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!six_digits) {
        return make_failure(ExitCode::usage,
                            "invalid MFA code for {}: expected the six digits the device shows",
                            spec.aws.mfa_serial);
    }
    return code;
}

aws::QueryParameters assume_role_parameters(const Template& spec, const AwsSessionSubject& subject,
                                            Seconds duration, const std::string& policy) {
    aws::QueryParameters parameters{
        {"RoleArn", spec.aws.role_arn},
        {"RoleSessionName", make_role_session_name(subject.owner, subject.sandbox_name)},
        {"DurationSeconds", std::to_string(duration.count())},
    };
    if (!policy.empty()) {
        parameters.emplace_back("Policy", policy);
    }
    const std::pair<const char*, std::string> tags[] = {
        {k_label_owner, subject.owner},
        {k_label_template, spec.name},
        {k_label_sandbox, subject.sandbox_id},
    };
    int index = 1;
    for (const auto& [key, value] : tags) {
        parameters.emplace_back(fmt::format("Tags.member.{}.Key", index), key);
        parameters.emplace_back(fmt::format("Tags.member.{}.Value", index),
                                sanitize_tag_value(value));
        ++index;
    }
    parameters.emplace_back("SourceIdentity", make_source_identity(subject.owner));
    return parameters;
}

class AwsStsProvider final : public Provider {
public:
    AwsStsProvider(std::unique_ptr<aws::QueryClient> sts, const Clock& clock)
        : m_sts(std::move(sts)), m_clock(clock) {}

    Result<void> create(const SandboxPlan& plan, ResourceSet& created,
                        const ProgressFn& progress) override;

    Result<void> destroy(const ResourceSet& resources, std::optional<Seconds>) override {
        // NOTE: the caller cannot revoke issued STS credentials. They end at their Expiration,
        // which create bounded by the grant, and the lifecycle deletes the keyring item.
        static_cast<void>(resources);
        return {};
    }

    Result<std::vector<LabelledResource>> list_labelled(ListScope) override {
        return std::vector<LabelledResource>{};
    }

    bool lists_resources() const override { return false; }

    Result<void> renew_credentials(const SandboxPlan& plan) override {
        if (plan.secrets == nullptr) {
            return make_failure(ExitCode::internal,
                                "no keyring was opened to renew the session of \"{}\"; this is "
                                "a bug in jitbox",
                                plan.name);
        }
        // A template removed from the configuration reaches here as a stand-in without AWS
        // settings, and AssumeRole with an empty RoleArn cannot succeed.
        if (plan.spec.aws.role_arn.empty()) {
            return make_failure(ExitCode::usage,
                                "template \"{}\" sets no role_arn, so the AWS session of "
                                "\"{}\" cannot be renewed; restore the template in the "
                                "configuration, or start a new sandbox with `jitbox up`",
                                plan.spec.name, plan.name);
        }
        const AwsSessionSubject subject{plan.id, plan.name, plan.owner};
        auto session = renew_aws_session(*m_sts, plan.spec, subject, plan.expires_at,
                                         m_clock.now(), plan.mfa_code);
        if (!session) {
            return session.error();
        }
        return plan.secrets->put(make_aws_session_item(plan.id, plan.name, session->session));
    }

private:
    std::unique_ptr<aws::QueryClient> m_sts;
    const Clock& m_clock;
};

Result<void> AwsStsProvider::create(const SandboxPlan& plan, ResourceSet& created,
                                    const ProgressFn& progress) {
    const Template& spec = plan.spec;
    if (spec.aws.role_arn.empty()) {
        return make_failure(ExitCode::usage,
                            "template \"{}\" has provider aws-sts but no "
                            "role_arn; set role_arn to the ARN of the role to assume",
                            spec.name);
    }
    const auto granted = std::chrono::duration_cast<Seconds>(plan.expires_at - m_clock.now());
    auto duration = session_duration_for_grant(granted, spec.name);
    if (!duration) {
        return duration.error();
    }
    if (plan.secrets == nullptr) {
        return make_failure(ExitCode::internal,
                            "no keyring was opened for the aws-sts sandbox "
                            "\"{}\"; this is a bug in jitbox",
                            plan.name);
    }

    progress(progress_step(fmt::format("assuming {}", spec.aws.role_arn)));
    const AwsSessionSubject subject{plan.id, plan.name, plan.owner};
    auto session = assume_sandbox_role(*m_sts, spec, subject, *duration, spec.aws.session_policy,
                                       plan.mfa_code);
    if (!session) {
        return session.error();
    }
    created.items.push_back(Resource{"aws-session", session->assumed_role_arn,
                                     make_role_session_name(plan.owner, plan.name)});
    return plan.secrets->put(make_aws_session_item(plan.id, plan.name, session->session));
}

} // namespace

std::string make_role_session_name(const std::string& owner, const std::string& sandbox_name) {
    return sanitize_identity(owner + "@" + sandbox_name);
}

std::string make_source_identity(const std::string& owner) {
    return sanitize_identity(owner);
}

Result<Seconds> session_duration_for_grant(Seconds granted, const std::string& template_name) {
    const Seconds rounded{(granted.count() + 30) / 60 * 60};
    if (rounded < k_sts_min_duration || rounded > k_sts_max_duration) {
        return make_failure(ExitCode::usage,
                            "template \"{}\": the granted ttl of {} is outside what AWS STS "
                            "accepts for a role session ({} to {}); request a --ttl in that range",
                            template_name, format_duration(granted),
                            format_duration(k_sts_min_duration),
                            format_duration(k_sts_max_duration));
    }
    return rounded;
}

Result<std::string> deny_after_deadline(const std::string& session_policy, TimePoint deadline,
                                        const std::string& template_name) {
    nlohmann::json policy;
    if (session_policy.empty()) {
        // A session policy narrows the role, so the deny needs an allow-all beside it to keep
        // the role's own permissions until the deadline.
        policy = {{"Version", "2012-10-17"},
                  {"Statement", {{{"Effect", "Allow"}, {"Action", "*"}, {"Resource", "*"}}}}};
    } else {
        policy = nlohmann::json::parse(session_policy, nullptr, /*allow_exceptions=*/false);
        if (!policy.is_object()) {
            return make_failure(ExitCode::usage,
                                "template \"{}\": session_policy is not a JSON object; write an "
                                "IAM policy document",
                                template_name);
        }
    }

    nlohmann::json& statements = policy["Statement"];
    if (statements.is_null()) {
        statements = nlohmann::json::array();
    } else if (!statements.is_array()) {
        statements = nlohmann::json::array({statements});
    }
    statements.push_back({
        {"Sid", k_deadline_statement_id},
        {"Effect", "Deny"},
        {"Action", "*"},
        {"Resource", "*"},
        {"Condition", {{"DateGreaterThan", {{"aws:CurrentTime", format_rfc3339(deadline)}}}}},
    });
    return policy.dump();
}

Result<IssuedAwsSession> assume_sandbox_role(aws::QueryClient& sts, const Template& spec,
                                             const AwsSessionSubject& subject, Seconds duration,
                                             const std::string& policy, const MfaCodeFn& mfa_code) {
    aws::QueryParameters parameters = assume_role_parameters(spec, subject, duration, policy);
    if (!spec.aws.mfa_serial.empty()) {
        auto code = read_mfa_code(spec, mfa_code);
        if (!code) {
            return code.error();
        }
        parameters.emplace_back("SerialNumber", spec.aws.mfa_serial);
        parameters.emplace_back("TokenCode", *code);
    }

    auto body = sts.call("AssumeRole", parameters);
    if (!body) {
        return body.error();
    }
    auto role = aws::parse_assume_role_response(*body);
    if (!role) {
        return role.error();
    }
    add_redacted_value(role->credentials.secret_access_key);
    add_redacted_value(role->credentials.session_token);
    return IssuedAwsSession{AwsSession{std::move(role->credentials), sts.region()},
                            std::move(role->arn)};
}

Result<IssuedAwsSession> renew_aws_session(aws::QueryClient& sts, const Template& spec,
                                           const AwsSessionSubject& subject,
                                           TimePoint grant_deadline, TimePoint now,
                                           const MfaCodeFn& mfa_code) {
    if (grant_deadline <= now) {
        return make_failure(ExitCode::not_found,
                            "the grant of sandbox \"{}\" ended at {}; start a new one with "
                            "`jitbox up`",
                            subject.sandbox_name, format_rfc3339(grant_deadline));
    }
    const auto remaining = std::chrono::duration_cast<Seconds>(grant_deadline - now);
    const Seconds duration = std::clamp(remaining, k_sts_min_duration, k_sts_max_duration);
    std::string policy = spec.aws.session_policy;
    if (remaining < k_sts_min_duration) {
        auto bounded = deny_after_deadline(spec.aws.session_policy, grant_deadline, spec.name);
        if (!bounded) {
            return bounded.error();
        }
        policy = std::move(bounded).value();
    }
    return assume_sandbox_role(sts, spec, subject, duration, policy, mfa_code);
}

bool aws_session_needs_renewal(const AwsSession& session, TimePoint grant_deadline, TimePoint now) {
    if (grant_deadline <= now) {
        return false;
    }
    const TimePoint expiration = session.credentials.expiration.value_or(now);
    return expiration - now < k_aws_session_renewal_margin && expiration < grant_deadline;
}

std::unique_ptr<Provider> make_aws_sts_provider(std::unique_ptr<aws::QueryClient> sts,
                                                const Clock& clock) {
    return std::make_unique<AwsStsProvider>(std::move(sts), clock);
}

} // namespace jitbox
