// Fuzz target: the readers of Docker Engine API reply bodies, which are error messages, the
// Api-Version header, a container's inspect reply and the container and network lists.

#include "providers/docker_json.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace dj = jitbox::docker_json;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    static_cast<void>(dj::engine_message(body));
    static_cast<void>(dj::parse_api_version(body));

    // The same steps as DockerProvider: parse without exceptions, then read what is there.
    const dj::Json reply = dj::Json::parse(body, nullptr, false);
    static_cast<void>(dj::published_ports(dj::member(dj::member(reply, "NetworkSettings"), "Ports")));
    static_cast<void>(dj::container_state(reply));
    static_cast<void>(dj::container_readiness(reply));
    static_cast<void>(dj::container_list(body));
    static_cast<void>(dj::network_list(body));
    return 0;
}
