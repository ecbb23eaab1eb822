#pragma once

// AWS Signature Version 4 for requests signed with the Authorization header.
//
// jitbox signs requests itself because the AWS signing built into libcurl 7.88 neither sorts
// query parameters nor exposes the canonical request, which the tests compare step by step.
// Each step of the signing process is a function of its own for the same reason.
//
// Every header in SigningRequest::headers is signed. Add headers that a proxy may rewrite only
// after signing. The path is encoded once more on top of its wire form, which is what AWS
// services other than S3 expect, so this signer is not meant for S3.

#include "jitbox/util/result.hpp"
#include "jitbox/util/time.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace jitbox::aws {

/// An AWS access key, long-term or temporary. No message of the aws module contains the secret
/// or the token.
struct Credentials {
    std::string access_key_id;
    std::string secret_access_key;
    std::string session_token;           // empty for long-term keys
    std::optional<TimePoint> expiration; // set for temporary credentials
};

/// The region, service and time that a signature is valid for.
struct SigningScope {
    std::string region;  // such as "us-east-1"
    std::string service; // the signing name, such as "sts" or "ec2"
    TimePoint time;
};

/// An HTTP request before signing, with its path and query exactly as they go on the wire.
struct SigningRequest {
    std::string method; // such as "GET" or "POST"
    std::string path;   // percent-encoded where the URL needs it, such as "/" or "/a%20b"
    std::string query;  // without the '?', such as "Action=DescribeInstances&Version=2016-11-15"
    std::vector<std::pair<std::string, std::string>> headers; // must include Host
    std::string body;
};

/// Whether the canonical path has `.` and `..` segments resolved and repeated slashes merged.
/// AWS services other than S3 expect the normalized path.
enum class PathNormalization { normalize, keep };

/// Whether sign adds an x-amz-content-sha256 header with the hash of the body.
enum class PayloadHashHeader { omit, add };

/// Whether the X-Amz-Security-Token header is part of the signature or added after signing.
/// A few services expect the unsigned form.
enum class SessionTokenSigning { sign, append_after_signing };

struct SigningOptions {
    PathNormalization path = PathNormalization::normalize;
    PayloadHashHeader payload_hash_header = PayloadHashHeader::omit;
    SessionTokenSigning session_token = SessionTokenSigning::sign;
};

/// Formats a time as X-Amz-Date expects it, such as "20150830T123600Z".
std::string format_amz_date(TimePoint time);

/// Builds the credential scope, such as "20150830/us-east-1/sts/aws4_request".
std::string credential_scope(const SigningScope& scope);

/// Returns the lower-case hex SHA-256 of `data`. Throws Error with ExitCode::internal when
/// libcrypto fails, as do the other functions here that hash.
std::string sha256_hex(std::string_view data);

/// Builds the canonical path: `.` and `..` resolved and slashes merged when asked, then every
/// byte other than an unreserved character (A-Z a-z 0-9 - . _ ~) and `/` percent-encoded.
std::string canonical_path(std::string_view path, PathNormalization normalization);

/// Builds the canonical query: each name and value decoded, encoded again with only unreserved
/// characters left as they are, then sorted by name and, for equal names, by value. A `+` is
/// taken as a literal plus sign, not as a space.
std::string canonical_query(std::string_view query);

/// Lists the lower-case names of the signed headers, sorted and joined with ';'.
std::string signed_header_names(const SigningRequest& request);

/// Builds the canonical request from a request that already carries every header to sign,
/// X-Amz-Date included (see add_signing_headers). Header names are lower-cased, values trimmed
/// with inner runs of spaces and tabs folded to one space, and the values of repeated names
/// joined with ',' in their original order.
std::string canonical_request(const SigningRequest& request, const SigningOptions& options = {});

/// Builds the string to sign from a canonical request.
std::string string_to_sign(std::string_view canonical_request, const SigningScope& scope);

/// Computes the hex signature of `string_to_sign` with the signing key derived from the secret
/// access key, date, region and service.
std::string signature(std::string_view string_to_sign, std::string_view secret_access_key,
                      const SigningScope& scope);

/// Returns `request` with any earlier Authorization, X-Amz-Date, X-Amz-Security-Token and
/// x-amz-content-sha256 headers replaced by the ones this signature needs: X-Amz-Date always,
/// X-Amz-Security-Token when the credentials have a token that is signed, and
/// x-amz-content-sha256 when the options ask for it.
SigningRequest add_signing_headers(SigningRequest request, const Credentials& credentials,
                                   const SigningScope& scope, const SigningOptions& options = {});

/// Builds the Authorization header value for a request prepared by add_signing_headers.
std::string authorization_header(const SigningRequest& request, const Credentials& credentials,
                                 const SigningScope& scope, const SigningOptions& options = {});

/// Signs `request`: add_signing_headers, then the Authorization header, then the session token
/// when it is sent unsigned. Fails with ExitCode::internal when the request has no Host header
/// or the scope no region or service, with ExitCode::usage when the credentials lack a key,
/// and with ExitCode::provider when temporary credentials expired before the scope's time.
Result<SigningRequest> sign(SigningRequest request, const Credentials& credentials,
                            const SigningScope& scope, const SigningOptions& options = {});

} // namespace jitbox::aws
