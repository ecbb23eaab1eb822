// AWS Signature Version 4 with OpenSSL's libcrypto for SHA-256 and HMAC-SHA256.

#include "jitbox/aws/sigv4.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <map>
#include <optional>

namespace jitbox::aws {
namespace {

constexpr std::string_view k_algorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view k_scope_terminator = "aws4_request";
constexpr std::string_view k_hex_digits = "0123456789abcdef";
constexpr std::string_view k_upper_hex_digits = "0123456789ABCDEF";

// Key material that is wiped from memory when it goes out of scope.
class SecretBytes {
public:
    explicit SecretBytes(std::string bytes) : m_bytes(std::move(bytes)) {}
    ~SecretBytes() { OPENSSL_cleanse(m_bytes.data(), m_bytes.size()); }
    SecretBytes(const SecretBytes&) = delete;
    SecretBytes& operator=(const SecretBytes&) = delete;

    std::string_view view() const { return m_bytes; }

private:
    std::string m_bytes;
};

const unsigned char* as_bytes(std::string_view text) {
    return reinterpret_cast<const unsigned char*>(text.data());
}

std::string to_hex(const unsigned char* bytes, std::size_t size) {
    std::string hex;
    hex.reserve(size * 2);
    for (std::size_t i = 0; i < size; ++i) {
        hex += k_hex_digits[bytes[i] >> 4];
        hex += k_hex_digits[bytes[i] & 0x0F];
    }
    return hex;
}

// Returns the raw 32-byte HMAC-SHA256 of `data` under `key`.
std::string hmac_sha256(std::string_view key, std::string_view data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int size = 0;
    if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), as_bytes(data), data.size(),
             digest.data(), &size) == nullptr) {
        throw Error(ExitCode::internal, "HMAC-SHA256 failed in libcrypto while signing an AWS "
                                        "request; check the OpenSSL installation");
    }
    return std::string(reinterpret_cast<const char*>(digest.data()), size);
}

std::string to_lower(std::string_view text) {
    std::string lower(text);
    std::transform(lower.begin(), lower.end(), lower.begin(), [](char c) {
        return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    });
    return lower;
}

bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && is_blank(text.front())) {
        text.remove_prefix(1);
    }
    while (!text.empty() && is_blank(text.back())) {
        text.remove_suffix(1);
    }
    return text;
}

// Trims a header value and folds each inner run of spaces and tabs into one space.
std::string fold_header_value(std::string_view value) {
    std::string folded;
    bool in_blank_run = false;
    for (const char c : trim(value)) {
        if (is_blank(c)) {
            in_blank_run = true;
            continue;
        }
        if (in_blank_run) {
            folded += ' ';
            in_blank_run = false;
        }
        folded += c;
    }
    return folded;
}

bool is_unreserved(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

enum class SlashEncoding { keep, encode };

std::string percent_encode(std::string_view text, SlashEncoding slash) {
    std::string encoded;
    encoded.reserve(text.size());
    for (const char c : text) {
        if (is_unreserved(c) || (c == '/' && slash == SlashEncoding::keep)) {
            encoded += c;
            continue;
        }
        const auto byte = static_cast<unsigned char>(c);
        encoded += '%';
        encoded += k_upper_hex_digits[byte >> 4];
        encoded += k_upper_hex_digits[byte & 0x0F];
    }
    return encoded;
}

std::optional<int> hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return std::nullopt;
}

// Decodes each valid %XX escape. A '%' without two hex digits after it stays a literal '%'.
std::string percent_decode(std::string_view text) {
    std::string decoded;
    decoded.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size()) {
            const auto high = hex_value(text[i + 1]);
            const auto low = hex_value(text[i + 2]);
            if (high && low) {
                decoded += static_cast<char>(*high * 16 + *low);
                i += 2;
                continue;
            }
        }
        decoded += text[i];
    }
    return decoded;
}

// Resolves `.` and `..` segments and merges repeated slashes. A path that ends in a slash, or
// in a `.` or `..` segment, keeps one trailing slash, as in RFC 3986 section 5.2.4.
std::string normalize_path(std::string_view path) {
    std::vector<std::string_view> segments;
    std::size_t start = 0;
    while (start <= path.size()) {
        const std::size_t end = std::min(path.find('/', start), path.size());
        const std::string_view segment = path.substr(start, end - start);
        if (segment == "..") {
            if (!segments.empty()) {
                segments.pop_back();
            }
        } else if (!segment.empty() && segment != ".") {
            segments.push_back(segment);
        }
        start = end + 1;
    }

    const bool ends_as_folder = path.ends_with('/') || path.ends_with("/.") ||
                                path.ends_with("/..") || path == "." || path == "..";
    std::string normalized = "/";
    for (std::size_t i = 0; i < segments.size(); ++i) {
        normalized += (i == 0) ? "" : "/";
        normalized += segments[i];
    }
    if (ends_as_folder && !segments.empty()) {
        normalized += '/';
    }
    return normalized;
}

// Maps lower-cased names to folded values, sorted by name. The values of a repeated name are
// joined with ','.
std::map<std::string, std::string> canonical_headers(const SigningRequest& request) {
    std::map<std::string, std::string> headers;
    for (const auto& [name, value] : request.headers) {
        const std::string key = to_lower(trim(name));
        const auto [position, inserted] = headers.try_emplace(key, fold_header_value(value));
        if (!inserted) {
            position->second += ',';
            position->second += fold_header_value(value);
        }
    }
    return headers;
}

bool has_header(const SigningRequest& request, std::string_view lower_name) {
    return std::any_of(request.headers.begin(), request.headers.end(), [&](const auto& header) {
        return to_lower(trim(header.first)) == lower_name;
    });
}

void remove_header(SigningRequest& request, std::string_view lower_name) {
    std::erase_if(request.headers,
                  [&](const auto& header) { return to_lower(trim(header.first)) == lower_name; });
}

std::string format_scope_date(TimePoint time) {
    return format_amz_date(time).substr(0, 8);
}

// Checks what sign needs beyond the request's own content, naming no secret.
Result<void> check_signing_inputs(const SigningRequest& request, const Credentials& credentials,
                                  const SigningScope& scope) {
    if (!has_header(request, "host")) {
        return make_failure(ExitCode::internal,
                            "cannot sign the AWS request {} {}: it has no Host header",
                            request.method, request.path);
    }
    if (scope.region.empty() || scope.service.empty()) {
        return make_failure(ExitCode::internal,
                            "cannot sign the AWS request {} {}: the signing scope needs both a "
                            "region and a service",
                            request.method, request.path);
    }
    if (credentials.access_key_id.empty() || credentials.secret_access_key.empty()) {
        return make_failure(ExitCode::usage,
                            "the AWS credentials lack an access key ID or a secret access key; "
                            "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or both "
                            "aws_access_key_id and aws_secret_access_key in the profile");
    }
    if (credentials.expiration && *credentials.expiration <= scope.time) {
        return make_failure(ExitCode::provider,
                            "the temporary AWS credentials expired at {}; get new credentials "
                            "and try again",
                            format_rfc3339(*credentials.expiration));
    }
    return {};
}

} // namespace

std::string format_amz_date(TimePoint time) {
    const auto day = std::chrono::floor<std::chrono::days>(time);
    const std::chrono::year_month_day date{day};
    const std::chrono::hh_mm_ss clock{time - day};
    return fmt::format("{:04}{:02}{:02}T{:02}{:02}{:02}Z", static_cast<int>(date.year()),
                       static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                       clock.hours().count(), clock.minutes().count(), clock.seconds().count());
}

std::string credential_scope(const SigningScope& scope) {
    return fmt::format("{}/{}/{}/{}", format_scope_date(scope.time), scope.region, scope.service,
                       k_scope_terminator);
}

std::string sha256_hex(std::string_view data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int size = 0;
    if (EVP_Digest(data.data(), data.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1) {
        throw Error(ExitCode::internal, "SHA-256 failed in libcrypto while signing an AWS "
                                        "request; check the OpenSSL installation");
    }
    return to_hex(digest.data(), size);
}

std::string canonical_path(std::string_view path, PathNormalization normalization) {
    if (path.empty()) {
        return "/";
    }
    if (normalization == PathNormalization::normalize) {
        return percent_encode(normalize_path(path), SlashEncoding::keep);
    }
    return percent_encode(path, SlashEncoding::keep);
}

std::string canonical_query(std::string_view query) {
    std::vector<std::pair<std::string, std::string>> parameters;
    std::size_t start = 0;
    while (start <= query.size()) {
        const std::size_t end = std::min(query.find('&', start), query.size());
        const std::string_view parameter = query.substr(start, end - start);
        start = end + 1;
        if (parameter.empty()) {
            continue;
        }

        const std::size_t equals = parameter.find('=');
        const std::string_view name = parameter.substr(0, equals);
        const std::string_view value =
            (equals == std::string_view::npos) ? std::string_view{} : parameter.substr(equals + 1);
        parameters.emplace_back(percent_encode(percent_decode(name), SlashEncoding::encode),
                                percent_encode(percent_decode(value), SlashEncoding::encode));
    }
    std::sort(parameters.begin(), parameters.end());

    std::string canonical;
    for (const auto& [name, value] : parameters) {
        canonical += canonical.empty() ? "" : "&";
        canonical += name;
        canonical += '=';
        canonical += value;
    }
    return canonical;
}

std::string signed_header_names(const SigningRequest& request) {
    std::string names;
    for (const auto& [name, value] : canonical_headers(request)) {
        names += names.empty() ? "" : ";";
        names += name;
    }
    return names;
}

std::string canonical_request(const SigningRequest& request, const SigningOptions& options) {
    std::string canonical;
    canonical += request.method;
    canonical += '\n';
    canonical += canonical_path(request.path, options.path);
    canonical += '\n';
    canonical += canonical_query(request.query);
    canonical += '\n';
    for (const auto& [name, value] : canonical_headers(request)) {
        canonical += name;
        canonical += ':';
        canonical += value;
        canonical += '\n';
    }
    canonical += '\n';
    canonical += signed_header_names(request);
    canonical += '\n';
    canonical += sha256_hex(request.body);
    return canonical;
}

std::string string_to_sign(std::string_view canonical_request, const SigningScope& scope) {
    return fmt::format("{}\n{}\n{}\n{}", k_algorithm, format_amz_date(scope.time),
                       credential_scope(scope), sha256_hex(canonical_request));
}

std::string signature(std::string_view string_to_sign, std::string_view secret_access_key,
                      const SigningScope& scope) {
    const SecretBytes secret(fmt::format("AWS4{}", secret_access_key));
    const SecretBytes date_key(hmac_sha256(secret.view(), format_scope_date(scope.time)));
    const SecretBytes region_key(hmac_sha256(date_key.view(), scope.region));
    const SecretBytes service_key(hmac_sha256(region_key.view(), scope.service));
    const SecretBytes signing_key(hmac_sha256(service_key.view(), k_scope_terminator));

    const std::string raw = hmac_sha256(signing_key.view(), string_to_sign);
    return to_hex(as_bytes(raw), raw.size());
}

SigningRequest add_signing_headers(SigningRequest request, const Credentials& credentials,
                                   const SigningScope& scope, const SigningOptions& options) {
    remove_header(request, "authorization");
    remove_header(request, "x-amz-date");
    remove_header(request, "x-amz-security-token");
    request.headers.emplace_back("X-Amz-Date", format_amz_date(scope.time));

    if (!credentials.session_token.empty() && options.session_token == SessionTokenSigning::sign) {
        request.headers.emplace_back("X-Amz-Security-Token", credentials.session_token);
    }
    if (options.payload_hash_header == PayloadHashHeader::add) {
        remove_header(request, "x-amz-content-sha256");
        request.headers.emplace_back("x-amz-content-sha256", sha256_hex(request.body));
    }
    return request;
}

std::string authorization_header(const SigningRequest& request, const Credentials& credentials,
                                 const SigningScope& scope, const SigningOptions& options) {
    const std::string to_sign = string_to_sign(canonical_request(request, options), scope);
    return fmt::format("{} Credential={}/{}, SignedHeaders={}, Signature={}", k_algorithm,
                       credentials.access_key_id, credential_scope(scope),
                       signed_header_names(request),
                       signature(to_sign, credentials.secret_access_key, scope));
}

Result<SigningRequest> sign(SigningRequest request, const Credentials& credentials,
                            const SigningScope& scope, const SigningOptions& options) {
    if (auto checked = check_signing_inputs(request, credentials, scope); !checked) {
        return checked.error();
    }

    SigningRequest signed_request =
        add_signing_headers(std::move(request), credentials, scope, options);
    signed_request.headers.emplace_back(
        "Authorization", authorization_header(signed_request, credentials, scope, options));

    if (!credentials.session_token.empty() &&
        options.session_token == SessionTokenSigning::append_after_signing) {
        signed_request.headers.emplace_back("X-Amz-Security-Token", credentials.session_token);
    }
    return signed_request;
}

} // namespace jitbox::aws
