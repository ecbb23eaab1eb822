// Fuzz target: the reader of the image pull stream (POST /images/create), fed in chunks whose
// sizes come from the input, so lines and UTF-8 sequences are split at every position.

#include "providers/docker_json.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    // The first byte sets the chunk size, 1 to 256 bytes, and the rest is the body.
    const std::size_t chunk_size = static_cast<std::size_t>(data[0]) + 1;
    const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);

    std::size_t reported = 0;
    const jitbox::ProgressFn progress = [&reported](const jitbox::ProgressEvent& event) {
        reported += event.text.size() + event.layer.size();
    };
    jitbox::docker_json::PullStream stream(progress);
    for (std::size_t offset = 0; offset < body.size(); offset += chunk_size) {
        stream.feed(body.substr(offset, std::min(chunk_size, body.size() - offset)));
    }
    stream.finish();
    static_cast<void>(stream.error());
    return 0;
}
