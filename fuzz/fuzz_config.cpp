// Fuzz target: jitbox::parse_config on arbitrary text, which covers templates, provider keys,
// [policy], [[roles]] and [[deny]]. Any input must give a Config or a failure. An exception
// that escapes, a crash or a sanitizer report is a bug.

#include "jitbox/config/config.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    // A path under a folder that does not exist, so relative mount sources resolve against it
    // and no check can touch a real file.
    static_cast<void>(jitbox::parse_config(text, "/nonexistent/jitbox-fuzz/jitbox.toml"));
    return 0;
}
