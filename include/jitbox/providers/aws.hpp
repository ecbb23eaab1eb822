#pragma once

// The AWS providers: `aws-sts` issues a role session per sandbox and keeps it in the keyring,
// and `aws-ec2` runs one EC2 instance per sandbox that also powers itself off at the deadline.

#include "jitbox/aws/query.hpp"
#include "jitbox/providers/aws_session.hpp"
#include "jitbox/providers/provider.hpp"

#include <functional>
#include <memory>
#include <string>

namespace jitbox {

/// The DurationSeconds bounds of STS AssumeRole (AWS STS API Reference, AssumeRole). A role's
/// own MaxSessionDuration, 1 hour unless raised, can lower the upper bound further.
inline constexpr Seconds k_sts_min_duration{15 * 60};
inline constexpr Seconds k_sts_max_duration{12 * 60 * 60};

/// A cached session with less than this left is replaced while the grant is still valid.
inline constexpr Seconds k_aws_session_renewal_margin{5 * 60};

/// A function that requests the user's current MFA code, as SandboxPlan::mfa_code is.
using MfaCodeFn = std::function<Result<std::string>()>;

/// The sandbox that a role session is issued for.
struct AwsSessionSubject {
    std::string sandbox_id;
    std::string sandbox_name;
    std::string owner;
};

/// A session as AssumeRole returned it.
struct IssuedAwsSession {
    AwsSession session;
    std::string assumed_role_arn; // such as "arn:aws:sts::123456789012:assumed-role/ci/a@db"
};

/// Builds RoleSessionName, "OWNER@SANDBOX" with every character outside [A-Za-z0-9+=,.@-]
/// replaced by '-', cut to 64 characters and padded to the minimum of 2.
std::string make_role_session_name(const std::string& owner, const std::string& sandbox_name);

/// Builds SourceIdentity from the owner under the same rules as make_role_session_name.
std::string make_source_identity(const std::string& owner);

/// Converts the granted ttl to DurationSeconds: rounded to the nearest minute, so the seconds
/// between the grant and the call do not push a 15-minute grant below the minimum. Fails with
/// ExitCode::usage outside k_sts_min_duration..k_sts_max_duration.
Result<Seconds> session_duration_for_grant(Seconds granted, const std::string& template_name);

/// Returns `session_policy` (empty: one that allows what the role allows) with a statement that
/// denies every action once aws:CurrentTime passes `deadline`. Fails with ExitCode::usage when
/// `session_policy` is not a JSON object.
Result<std::string> deny_after_deadline(const std::string& session_policy, TimePoint deadline,
                                        const std::string& template_name);

/// Calls AssumeRole for `subject` with the template's role_arn and mfa_serial, the given
/// DurationSeconds and session policy (empty: none), the session tags io.jitbox.owner,
/// io.jitbox.template and io.jitbox.sandbox, and the owner as SourceIdentity. Asks `mfa_code`
/// only when the template has an mfa_serial.
Result<IssuedAwsSession> assume_sandbox_role(aws::QueryClient& sts, const Template& spec,
                                             const AwsSessionSubject& subject, Seconds duration,
                                             const std::string& policy, const MfaCodeFn& mfa_code);

/// Requests a fresh session for a live sandbox whose grant ends at `grant_deadline`:
/// DurationSeconds is the remaining grant clamped to the STS bounds, and when less than
/// k_sts_min_duration remains, a deny-after-deadline statement keeps the session from
/// outliving the grant. Fails with ExitCode::not_found when the grant has ended.
Result<IssuedAwsSession> renew_aws_session(aws::QueryClient& sts, const Template& spec,
                                           const AwsSessionSubject& subject,
                                           TimePoint grant_deadline, TimePoint now,
                                           const MfaCodeFn& mfa_code);

/// True when `session` expires within k_aws_session_renewal_margin of `now` while the grant
/// still runs past it.
bool aws_session_needs_renewal(const AwsSession& session, TimePoint grant_deadline, TimePoint now);

/// The aws-sts provider. create stores the session in SandboxPlan::secrets; destroy calls
/// nothing, because the caller cannot revoke issued STS credentials.
std::unique_ptr<Provider> make_aws_sts_provider(std::unique_ptr<aws::QueryClient> sts,
                                                const Clock& clock);

/// The wait limits and the polling interval of the aws-ec2 provider.
struct Ec2Timing {
    Seconds poll_interval{5};
    Seconds launch_timeout{5 * 60};     // until the instance is running
    Seconds terminate_timeout{10 * 60}; // until it is terminated
};

/// Builds the instance's user data: a /bin/sh script that, detached, powers the instance off at
/// `deadline`, re-reading the io.jitbox.expires-at tag through IMDSv2 every minute so that
/// `extend` can move the deadline.
std::string make_poweroff_script(TimePoint deadline);

/// The aws-ec2 provider.
std::unique_ptr<Provider> make_aws_ec2_provider(std::unique_ptr<aws::QueryClient> ec2,
                                                const Clock& clock, aws::SleepFn sleep,
                                                Ec2Timing timing = {});

} // namespace jitbox
