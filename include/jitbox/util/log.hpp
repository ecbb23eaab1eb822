#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <string>
#include <string_view>
#include <utility>

namespace jitbox {

/// How much `-v` asked for: 0 is silent, 1 explains each decision, 2 adds every API request.
int log_verbosity();
void set_log_verbosity(int level);

/// Adds a secret value, such as a generated password, an AWS secret key or a session token,
/// that redact() replaces from then on. Values shorter than 8 characters are ignored, so that
/// short common strings stay readable.
void add_redacted_value(std::string_view value);

/// Returns `text` with credentials replaced by "[redacted]": every value given to
/// add_redacted_value, the values of the headers Authorization, Proxy-Authorization, Cookie,
/// X-Amz-Security-Token, X-Registry-Auth and X-Registry-Config, the query and form parameters
/// X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token, Signature, SecretAccessKey,
/// SessionToken, TokenCode and password, and the XML elements and JSON members
/// SecretAccessKey, SessionToken, password, auth and identitytoken. Names match in any case.
std::string redact(std::string_view text);

/// Prints `jitbox: debug: LINE` on stderr, with LINE passed through redact().
void write_debug_line(std::string_view line);

/// Prints a debug line when the verbosity is at least `level`. Callers should pass no
/// secrets: request lines carry the method, path and status, never headers or bodies. The
/// line is redacted anyway, in case a value slips into a message.
template <typename... Args>
void log_debug(int level, fmt::format_string<Args...> format, Args&&... args) {
    if (log_verbosity() >= level) {
        write_debug_line(fmt::format(format, std::forward<Args>(args)...));
    }
}

} // namespace jitbox
