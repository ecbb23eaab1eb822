#pragma once

// Readers of the JSON that the Docker engine sends: error bodies, the API version, the image
// pull stream, published ports and list entries. They are apart from docker.cpp so that the
// fuzz targets in fuzz/ can call them without an engine or an HTTP client. Every reader accepts
// any bytes: a value of the wrong type reads as absent, never as an exception.

#include "jitbox/providers/docker_container.hpp"
#include "jitbox/providers/provider.hpp"

#include <nlohmann/json.hpp>

#include <compare>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jitbox::docker_json {

using Json = nlohmann::json;

/// The member `key` of `object`, or a null value when `object` is not an object or lacks it.
const Json& member(const Json& object, const char* key);

/// The member `key` when it is a string, else an empty string.
std::string string_field(const Json& object, const char* key);

/// The string members of `object`, without members of other types.
std::map<std::string, std::string> string_map(const Json& object);

/// `text` without leading and trailing spaces, tabs and line breaks.
std::string_view trim(std::string_view text);

/// Replaces line breaks with spaces and cuts the text to 300 characters, so engine text fits in
/// a one-line message.
std::string one_line(std::string_view text);

/// Returns the `message` of an error response's JSON body, else the body itself, else
/// "no message".
std::string engine_message(std::string_view body);

struct ApiVersion {
    int major = 0;
    int minor = 0;

    auto operator<=>(const ApiVersion&) const = default;
};

/// Parses a non-empty run of decimal digits that fits in an int.
bool parse_number(std::string_view digits, int& number);

/// Parses `MAJOR.MINOR`, such as "1.41".
std::optional<ApiVersion> parse_api_version(std::string_view text);

/// The reader of POST /images/create, which streams one JSON object per line. A chunk may end
/// inside an object, so the incomplete tail is kept until the next chunk completes it.
class PullStream {
public:
    explicit PullStream(const ProgressFn& progress) : m_progress(progress) {}

    void feed(std::string_view chunk);
    void finish();

    /// The first error the engine reported, or empty when there was none. For an error response
    /// it is the response's `message`.
    const std::string& error() const { return m_error; }

private:
    void handle_line(std::string_view line);

    const ProgressFn& m_progress;
    std::string m_pending;
    std::string m_error;
};

/// The published ports of `NetworkSettings.Ports` in a container's inspect reply. Ports that
/// are exposed but not published, and bindings without a numeric HostPort, are skipped.
std::vector<PublishedPort> published_ports(const Json& ports);

/// The parts of a container's inspect reply (GET /containers/{id}/json) that tell whether it
/// is ready.
struct ContainerReadiness {
    std::string status;        // State.Status: "created", "running", "exited", "dead", ...
    int exit_code = 0;         // State.ExitCode, meaningful once the container has exited
    std::string health;        // State.Health.Status: "starting", "healthy" or "unhealthy";
                               // empty when the container has no health check
    std::string health_output; // the output of the latest health check, on one line
};

/// Reads State of an inspect reply. A missing or malformed State reads as an empty status.
ContainerReadiness container_readiness(const Json& details);

/// The entries of a GET /containers/json reply: Id, the first of Names without its leading
/// '/', State and the string-valued Labels of each. nullopt when the body is not a JSON array.
std::optional<std::vector<LabelledResource>> container_list(std::string_view body);

/// The entries of a GET /networks reply: Id, Name and the string-valued Labels of each.
/// Networks have no state, so `state` stays empty. nullopt when the body is not a JSON array.
std::optional<std::vector<LabelledResource>> network_list(std::string_view body);

/// The state of an exec instance from its inspect reply. A missing or mistyped `Running` reads
/// as false, and a missing or out-of-range `ExitCode` as unset.
ExecState exec_state(const Json& reply);

/// `State.Status` and `Config.Tty` of a container's inspect reply.
ContainerState container_state(const Json& reply);

} // namespace jitbox::docker_json
