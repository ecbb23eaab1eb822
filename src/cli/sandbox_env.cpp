// The environment a sandbox hands to local programs, shared by `jitbox env`, `jitbox exec` and
// `jitbox creds show`: an aws-sts sandbox's role session, or a docker sandbox's generated
// secrets, plus the JITBOX_SANDBOX marker.

#include "commands.hpp"

#include "jitbox/providers/aws_session.hpp"

namespace jitbox::cli {

namespace {

SandboxRecord find_record(Context& context, const std::string& name) {
    auto record = value_or_throw(context.store().find(name));
    if (!record) {
        throw Error(ExitCode::not_found,
                    fmt::format("no sandbox named \"{}\"; `jitbox status` lists yours", name));
    }
    return std::move(*record);
}


} // namespace

AwsSession current_aws_session(Context& context, const std::string& name,
                               const MfaCodeFn& mfa_code) {
    return value_or_throw(context.lifecycle().aws_session(name, mfa_code));
}

std::vector<std::pair<std::string, std::string>> aws_session_variables(const AwsSession& session) {
    const aws::Credentials& credentials = session.credentials;
    return {
        {"AWS_ACCESS_KEY_ID", credentials.access_key_id},
        {"AWS_SECRET_ACCESS_KEY", credentials.secret_access_key},
        {"AWS_SESSION_TOKEN", credentials.session_token},
        {"AWS_SESSION_EXPIRATION", format_rfc3339(*credentials.expiration)},
        {"AWS_REGION", session.region},
        {"AWS_DEFAULT_REGION", session.region},
    };
}

SandboxEnvironment sandbox_environment(Context& context, const std::string& name,
                                       const MfaCodeFn& mfa_code) {
    const SandboxRecord record = find_record(context, name);
    SandboxEnvironment result;
    if (record.provider == "aws-sts") {
        result.set = aws_session_variables(current_aws_session(context, name, mfa_code));
        result.unset = k_aws_profile_variables;
    } else if (!record.secret_backend.empty()) {
        if (record.expires_at <= SystemClock().now()) {
            throw Error(ExitCode::not_found,
                        fmt::format("sandbox \"{}\" has expired; its secrets are gone", name));
        }
        SecretStore* store = value_or_throw(context.secret_stores().open(record.secret_backend));
        for (auto& [key, value] : read_sandbox_values(*store, record, "")) {
            result.set.emplace_back(key, std::move(value));
        }
    } else {
        throw Error(ExitCode::usage,
                    fmt::format("sandbox \"{}\" (template {}) has no credentials or generated "
                                "secrets to hand out",
                                name, record.template_name));
    }
    result.set.emplace_back(k_sandbox_marker, name);
    return result;
}

std::string shell_quote(std::string_view value) {
    std::string quoted = "'";
    for (const char c : value) {
        quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    return quoted + "'";
}

} // namespace jitbox::cli
