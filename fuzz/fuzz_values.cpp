// Fuzz target: the value parsers of the configuration and the command line, which are
// parse_duration (with format_duration), parse_size, parse_port and parse_rfc3339.

#include "jitbox/config/config.hpp"
#include "jitbox/util/time.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

// The format functions are documented as the inverse of the parsers, so a parsed value must
// format to text that parses to the same value.
template <typename Parse, typename Format>
void check_round_trip(std::string_view text, Parse parse, Format format) {
    const auto value = parse(text);
    if (!value) {
        return;
    }
    const auto again = parse(format(*value));
    if (!again || *again != *value) {
        std::abort();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    check_round_trip(text, jitbox::parse_duration, jitbox::format_duration);
    check_round_trip(text, jitbox::parse_rfc3339, jitbox::format_rfc3339);
    if (const auto bytes = jitbox::parse_size(text); bytes && *bytes <= 0) {
        std::abort(); // documented as greater than zero
    }
    static_cast<void>(jitbox::parse_port(text));
    return 0;
}
