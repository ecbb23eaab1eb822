#include "docker_json.hpp"

#include <charconv>
#include <climits>
#include <cstdint>
#include <fmt/format.h>
#include <simdjson.h>
#include <system_error>
#include <utility>

namespace jitbox::docker_json {

namespace {

constexpr std::size_t k_max_quoted_length = 300;

void report(const ProgressFn& progress, const ProgressEvent& event) {
    if (progress) {
        progress(event);
    }
}

// A byte count of progressDetail, or 0 when it is absent, not an integer or negative.
std::int64_t byte_count(const Json& detail, const char* key) {
    const Json& value = member(detail, key);
    if (!value.is_number_integer()) {
        return 0;
    }
    const std::int64_t count = value.get<std::int64_t>();
    return count > 0 ? count : 0;
}

} // namespace

const Json& member(const Json& object, const char* key) {
    static const Json k_null;
    if (!object.is_object()) {
        return k_null;
    }
    const auto found = object.find(key);
    return found == object.end() ? k_null : *found;
}

std::string string_field(const Json& object, const char* key) {
    const Json& value = member(object, key);
    return value.is_string() ? value.get<std::string>() : std::string();
}

std::map<std::string, std::string> string_map(const Json& object) {
    std::map<std::string, std::string> result;
    if (!object.is_object()) {
        return result;
    }
    for (const auto& [key, value] : object.items()) {
        if (value.is_string()) {
            result.emplace(key, value.get<std::string>());
        }
    }
    return result;
}

std::string_view trim(std::string_view text) {
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) {
        return {};
    }
    const auto last = text.find_last_not_of(" \t\r\n");
    return text.substr(first, last - first + 1);
}

std::string one_line(std::string_view text) {
    std::string line(trim(text).substr(0, k_max_quoted_length));
    for (char& c : line) {
        if (c == '\n' || c == '\r' || c == '\t') {
            c = ' ';
        }
    }
    return line;
}

std::string engine_message(std::string_view body) {
    const Json parsed = Json::parse(body, nullptr, false);
    std::string message = one_line(string_field(parsed, "message"));
    if (message.empty()) {
        message = one_line(body);
    }
    return message.empty() ? "no message" : message;
}

bool parse_number(std::string_view digits, int& number) {
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string_view::npos) {
        return false;
    }
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), number);
    return error == std::errc() && end == digits.data() + digits.size();
}

std::optional<ApiVersion> parse_api_version(std::string_view text) {
    const auto dot = text.find('.');
    ApiVersion version;
    if (dot == std::string_view::npos || !parse_number(text.substr(0, dot), version.major) ||
        !parse_number(text.substr(dot + 1), version.minor)) {
        return std::nullopt;
    }
    return version;
}

void PullStream::feed(std::string_view chunk) {
    m_pending.append(chunk);
    std::size_t start = 0;
    for (auto end = m_pending.find('\n'); end != std::string::npos;
         end = m_pending.find('\n', start)) {
        handle_line(std::string_view(m_pending).substr(start, end - start));
        start = end + 1;
    }
    m_pending.erase(0, start);
}

void PullStream::finish() {
    handle_line(m_pending);
    m_pending.clear();
}

void PullStream::handle_line(std::string_view line) {
    line = trim(line);
    if (line.empty()) {
        return;
    }

    const Json object = Json::parse(line, nullptr, false);
    if (!object.is_object()) {
        if (m_error.empty()) {
            m_error = fmt::format("the engine sent a line that is not JSON: {}", one_line(line));
        }
        return;
    }

    std::string error = string_field(member(object, "errorDetail"), "message");
    if (error.empty()) {
        error = string_field(object, "error");
    }
    if (error.empty()) {
        error = string_field(object, "message"); // the body of a non-200 response
    }
    if (!error.empty()) {
        if (m_error.empty()) {
            m_error = one_line(error);
        }
        return;
    }

    std::string status = one_line(string_field(object, "status"));
    if (status.empty()) {
        return;
    }
    // Lines with an id are about one layer, such as {"status":"Downloading","id":"a3ed95caeb02",
    // "progressDetail":{"current":1024,"total":2048}}. Lines without one, such as "Digest: ...",
    // are about the whole image and add nothing that the step does not show.
    const std::string layer = one_line(string_field(object, "id"));
    // "Pulling from library/busybox" carries the tag as its id, not a layer.
    if (layer.empty() || status.starts_with("Pulling from")) {
        return;
    }
    const Json& detail = member(object, "progressDetail");
    report(m_progress, progress_layer(layer, std::move(status), byte_count(detail, "current"),
                                      byte_count(detail, "total")));
}

std::vector<PublishedPort> published_ports(const Json& ports) {
    std::vector<PublishedPort> result;
    if (!ports.is_object()) {
        return result;
    }
    for (const auto& [container_port, bindings] : ports.items()) {
        if (!bindings.is_array()) {
            continue; // null: exposed but not published
        }
        for (const Json& binding : bindings) {
            PublishedPort port{container_port, string_field(binding, "HostIp"), 0};
            const std::string host_port = string_field(binding, "HostPort");
            if (!parse_number(host_port, port.host_port)) {
                continue;
            }
            result.push_back(std::move(port));
        }
    }
    return result;
}

ContainerReadiness container_readiness(const Json& details) {
    const Json& state = member(details, "State");
    ContainerReadiness result;
    result.status = one_line(string_field(state, "Status"));
    const Json& exit_code = member(state, "ExitCode");
    if (exit_code.is_number_integer()) {
        const auto code = exit_code.get<std::int64_t>();
        result.exit_code = code >= INT_MIN && code <= INT_MAX ? static_cast<int>(code) : -1;
    }
    const Json& health = member(state, "Health");
    result.health = one_line(string_field(health, "Status"));
    const Json& log = member(health, "Log");
    if (log.is_array() && !log.empty()) {
        result.health_output = one_line(string_field(log.back(), "Output"));
    }
    return result;
}

namespace {

// The string member `key` of `entry`, or "" when it is absent or not a string.
std::string string_member(simdjson::dom::object entry, std::string_view key) {
    std::string_view value;
    if (entry[key].get_string().get(value) != simdjson::SUCCESS) {
        return {};
    }
    return std::string(value);
}

// Reads a list reply with simdjson, which parses the hundreds of entries of a busy engine
// about ten times faster than nlohmann/json. `read_entry` fills one item from one entry; an
// entry that is not an object gives an empty item, as an object without members would.
template <typename ReadEntry>
std::optional<std::vector<LabelledResource>> read_list(std::string_view body,
                                                       ReadEntry read_entry) {
    simdjson::dom::parser parser;
    const simdjson::padded_string padded(body);
    simdjson::dom::array entries;
    if (parser.parse(padded).get_array().get(entries) != simdjson::SUCCESS) {
        return std::nullopt;
    }
    std::vector<LabelledResource> items;
    for (const simdjson::dom::element entry : entries) {
        LabelledResource item;
        simdjson::dom::object object;
        if (entry.get_object().get(object) == simdjson::SUCCESS) {
            read_entry(object, item);
            simdjson::dom::object labels;
            if (object["Labels"].get_object().get(labels) == simdjson::SUCCESS) {
                for (const auto field : labels) {
                    std::string_view value;
                    if (field.value.get_string().get(value) == simdjson::SUCCESS) {
                        item.labels.emplace(std::string(field.key), std::string(value));
                    }
                }
            }
        }
        items.push_back(std::move(item));
    }
    return items;
}

} // namespace

std::optional<std::vector<LabelledResource>> container_list(std::string_view body) {
    return read_list(body, [](simdjson::dom::object entry, LabelledResource& item) {
        item.resource = Resource{"container", string_member(entry, "Id"), {}};
        std::string_view name;
        if (entry["Names"].at(0).get_string().get(name) == simdjson::SUCCESS) {
            item.resource.name = name.starts_with('/') ? name.substr(1) : name;
        }
        item.state = string_member(entry, "State");
    });
}

std::optional<std::vector<LabelledResource>> network_list(std::string_view body) {
    return read_list(body, [](simdjson::dom::object entry, LabelledResource& item) {
        item.resource =
            Resource{"network", string_member(entry, "Id"), string_member(entry, "Name")};
    });
}

ExecState exec_state(const Json& reply) {
    ExecState state;
    const Json& running = member(reply, "Running");
    state.running = running.is_boolean() && running.get<bool>();
    const Json& exit_code = member(reply, "ExitCode");
    if (exit_code.is_number_integer() && exit_code.get<long long>() >= 0 &&
        exit_code.get<long long>() <= 255) {
        state.exit_code = exit_code.get<int>();
    }
    const Json& pid = member(reply, "Pid");
    if (pid.is_number_integer()) {
        state.pid = pid.get<long>();
    }
    return state;
}

ContainerState container_state(const Json& reply) {
    ContainerState state;
    state.status = string_field(member(reply, "State"), "Status");
    const Json& tty = member(member(reply, "Config"), "Tty");
    state.tty = tty.is_boolean() && tty.get<bool>();
    return state;
}

} // namespace jitbox::docker_json
