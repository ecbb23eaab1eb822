#pragma once

// The base AWS credentials and region, found where the AWS CLI and SDKs look for them:
//
// 1. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN in the environment.
// 2. The profile named by AWS_PROFILE ("default" when unset) in the shared credentials file
//    (AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials), in a section `[NAME]`.
// 3. The same profile in the config file (AWS_CONFIG_FILE, else ~/.aws/config), in a section
//    `[profile NAME]`, or `[default]` for the default profile.
//
// Only static keys are read. A profile that gets its credentials through role_arn,
// web_identity_token_file, SSO or credential_process fails with a message that names the setting, at the
// point where botocore's default chain (the one the AWS CLI uses) would try that source. The
// EC2 instance metadata service is never contacted.
//
// Failures are ExitCode::usage. Their messages name the file, the line and the fix, and never
// contain a key, a secret or a token.

#include "jitbox/aws/sigv4.hpp"
#include "jitbox/util/result.hpp"

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace jitbox::aws {

/// The environment variables and home folder that the lookup reads. Tests build one by hand.
struct Environment {
    std::map<std::string, std::string> variables; // an empty value counts as unset
    std::filesystem::path home;

    /// Copies the AWS_* variables that the lookups and the endpoint resolution use, and HOME
    /// (or the home folder in the password database when HOME is unset), from the process.
    static Environment from_process();
};

/// Credentials with a description of their source for messages and the debug log, such as
/// "the environment" or "profile \"dev\" in /home/ana/.aws/credentials".
struct BaseCredentials {
    Credentials credentials;
    std::string source;
};

/// Returns the profile name that the lookup uses: AWS_PROFILE, or "default".
std::string selected_profile(const Environment& environment);

/// Finds the base credentials in the order described at the top of this file.
Result<BaseCredentials> find_base_credentials(const Environment& environment);

/// True when `region` is lower-case letters, digits and hyphens, such as "us-east-1". Checking
/// it keeps a typo from turning into a different host name in an endpoint URL.
bool is_valid_region(std::string_view region);

/// Finds the region: AWS_REGION, then AWS_DEFAULT_REGION, then `region` in the profile's
/// section of the config file. Returns no region when none of them sets one.
Result<std::optional<std::string>> find_region(const Environment& environment);

} // namespace jitbox::aws
