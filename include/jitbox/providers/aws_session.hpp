#pragma once

// The keyring item in which an aws-sts sandbox keeps its STS session, for the commands that
// hand the credentials to programs. The item's value is a JSON object:
//
//   {"AccessKeyId": ..., "SecretAccessKey": ..., "SessionToken": ...,
//    "Expiration": "2026-01-01T12:00:00Z", "Region": "eu-west-1"}
//
// and its expiry is the credentials' Expiration, so the keyring drops it when it is useless.

#include "jitbox/aws/sigv4.hpp"
#include "jitbox/secrets/store.hpp"
#include "jitbox/util/result.hpp"

#include <string>
#include <string_view>

namespace jitbox {

// The item's key, beside the sandbox id, is k_aws_session_key of secrets/store.hpp.

/// Temporary credentials and the region they were issued for.
struct AwsSession {
    aws::Credentials credentials; // expiration always set
    std::string region;
};

/// Serialises a session as the item's JSON value.
std::string encode_aws_session(const AwsSession& session);

/// Parses an item's value. Fails with ExitCode::internal on invalid JSON, a missing or empty
/// field, or an Expiration that is not RFC 3339. Messages name the field but never a value.
Result<AwsSession> decode_aws_session(std::string_view text);

/// Builds the keyring item of the sandbox for `session`, expiring with the credentials.
SecretItem make_aws_session_item(const std::string& sandbox_id, const std::string& sandbox_name,
                                 const AwsSession& session);

} // namespace jitbox
