#include "jitbox/util/log.hpp"

#include <cstdio>
#include <mutex>
#include <regex>
#include <vector>

namespace jitbox {

namespace {

int g_verbosity = 0; // set once by the CLI before any work starts

constexpr std::size_t k_min_redacted_length = 8;
constexpr std::string_view k_redacted = "[redacted]";

std::mutex g_values_mutex;
std::vector<std::string> g_redacted_values; // guarded by g_values_mutex

struct Pattern {
    std::regex regex;
    const char* replacement;
};

// A header line, "NAME: VALUE", up to the end of the line.
constexpr const char* k_header_pattern =
    R"(\b(authorization|proxy-authorization|cookie|x-amz-security-token|x-registry-auth|)"
    R"(x-registry-config)(\s*:\s*)[^\r\n]*)";

// A query or form parameter, "NAME=VALUE", up to the next separator. The names also catch the
// "Credential=..., Signature=..." parts of a SigV4 Authorization value.
constexpr const char* k_parameter_pattern =
    R"((^|[?&,;\s])(x-amz-signature|x-amz-credential|x-amz-security-token|signature|)"
    R"(secretaccesskey|sessiontoken|tokencode|password)=[^&,;\s]*)";

constexpr const char* k_xml_pattern = R"(<(secretaccesskey|sessiontoken|password)>[^<]*)";

constexpr const char* k_json_pattern =
    R"#("(secretaccesskey|sessiontoken|password|auth|identitytoken)"(\s*:\s*)"(?:[^"\\]|\\.)*")#";

const std::vector<Pattern>& patterns() {
    constexpr auto k_flags = std::regex::ECMAScript | std::regex::icase;
    static const std::vector<Pattern> k_patterns{
        {std::regex(k_header_pattern, k_flags), "$1$2[redacted]"},
        {std::regex(k_parameter_pattern, k_flags), "$1$2=[redacted]"},
        {std::regex(k_xml_pattern, k_flags), "<$1>[redacted]"},
        {std::regex(k_json_pattern, k_flags), "\"$1\"$2\"[redacted]\""},
    };
    return k_patterns;
}

void replace_all(std::string& text, std::string_view value) {
    for (std::size_t at = text.find(value); at != std::string::npos;
         at = text.find(value, at + k_redacted.size())) {
        text.replace(at, value.size(), k_redacted);
    }
}

} // namespace

int log_verbosity() { return g_verbosity; }

void set_log_verbosity(int level) { g_verbosity = level; }

void add_redacted_value(std::string_view value) {
    if (value.size() < k_min_redacted_length) {
        return;
    }
    const std::lock_guard lock(g_values_mutex);
    g_redacted_values.emplace_back(value);
}

std::string redact(std::string_view text) {
    std::string result(text);
    {
        const std::lock_guard lock(g_values_mutex);
        for (const std::string& value : g_redacted_values) {
            replace_all(result, value);
        }
    }
    for (const Pattern& pattern : patterns()) {
        result = std::regex_replace(result, pattern.regex, pattern.replacement);
    }
    return result;
}

void write_debug_line(std::string_view line) {
    const std::string redacted = redact(line);
    std::fprintf(stderr, "jitbox: debug: %s\n", redacted.c_str());
}

} // namespace jitbox
