// Parsers for single configuration values: sizes, published ports, devices and key-name
// suggestions.

#include "jitbox/config/config.hpp"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

namespace jitbox {
namespace {

struct SizeUnit {
    std::string_view symbol;
    std::int64_t bytes;
};

constexpr std::int64_t k_kib = 1024;
constexpr std::int64_t k_mib = 1024 * k_kib;
constexpr std::int64_t k_gib = 1024 * k_mib;
constexpr std::int64_t k_tib = 1024 * k_gib;

// The single letters follow docker's `--memory` spelling, where `k`, `m`, `g` mean powers of 1024.
constexpr std::array<SizeUnit, 18> k_size_units{{
    {"", 1},
    {"B", 1},
    {"k", k_kib}, {"K", k_kib}, {"KiB", k_kib}, {"KB", 1000},
    {"m", k_mib}, {"M", k_mib}, {"MiB", k_mib}, {"MB", 1000 * 1000},
    {"g", k_gib}, {"G", k_gib}, {"GiB", k_gib}, {"GB", 1000 * 1000 * 1000},
    {"t", k_tib}, {"T", k_tib}, {"TiB", k_tib}, {"TB", 1000LL * 1000 * 1000 * 1000},
}};

// Digits of a fraction beyond this many are ignored, which keeps `fraction * unit` within
// std::int64_t for every unit and changes the result by less than one millionth.
constexpr std::size_t k_max_fraction_digits = 6;

constexpr std::string_view k_size_hint =
    "use a positive number with a unit (B, KiB, MiB, GiB, TiB or KB, MB, GB, TB), such as 512MiB";

constexpr std::string_view k_port_hint =
    "use [[HOST_IP:]HOST_PORT:]CONTAINER_PORT[/PROTOCOL], such as 5432, 15432:5432 or "
    "127.0.0.1:15432:5432/tcp";

constexpr std::array<std::string_view, 3> k_port_protocols{"tcp", "udp", "sctp"};

Failure size_failure(std::string_view text, std::string_view reason) {
    return make_failure(ExitCode::usage, "invalid size \"{}\": {}", text, reason);
}

Failure port_failure(std::string_view text, std::string_view reason) {
    return make_failure(ExitCode::usage, "invalid port \"{}\": {}", text, reason);
}

std::size_t count_digits(std::string_view text, std::size_t position) {
    std::size_t end = position;
    while (end < text.size() && text[end] >= '0' && text[end] <= '9') {
        ++end;
    }
    return end - position;
}

std::optional<std::int64_t> find_size_unit(std::string_view symbol) {
    for (const SizeUnit& unit : k_size_units) {
        if (unit.symbol == symbol) {
            return unit.bytes;
        }
    }
    return std::nullopt;
}

// The split form of a size: `<whole>[.<fraction>][ ]<unit>`.
struct SizeParts {
    std::string_view whole;
    std::string_view fraction;
    std::string_view unit;
};

std::optional<SizeParts> split_size(std::string_view text) {
    SizeParts parts;
    parts.whole = text.substr(0, count_digits(text, 0));
    std::size_t position = parts.whole.size();
    if (parts.whole.empty()) {
        return std::nullopt;
    }
    if (position < text.size() && text[position] == '.') {
        parts.fraction = text.substr(position + 1, count_digits(text, position + 1));
        if (parts.fraction.empty()) {
            return std::nullopt;
        }
        position += 1 + parts.fraction.size();
    }
    if (position < text.size() && text[position] == ' ') {
        ++position;
    }
    parts.unit = text.substr(position);
    return parts;
}

// Returns the bytes in `fraction` (the digits after the point) of `unit_bytes`, truncated.
std::int64_t fraction_bytes(std::string_view fraction, std::int64_t unit_bytes) {
    const std::string_view used_digits = fraction.substr(0, k_max_fraction_digits);
    std::int64_t numerator = 0;
    std::int64_t denominator = 1;
    for (const char digit : used_digits) {
        numerator = numerator * 10 + (digit - '0');
        denominator *= 10;
    }
    return numerator * unit_bytes / denominator;
}

// Parses a port number, 1 to 65535, given as decimal digits only.
std::optional<int> parse_port_number(std::string_view text) {
    if (text.empty() || count_digits(text, 0) != text.size()) {
        return std::nullopt;
    }
    int number = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (error != std::errc{} || number < 1 || number > 65535) {
        return std::nullopt;
    }
    return number;
}

bool is_ip_address(std::string_view text) {
    const std::string address(text);
    in6_addr buffer{};
    return inet_pton(AF_INET, address.c_str(), &buffer) == 1 ||
           inet_pton(AF_INET6, address.c_str(), &buffer) == 1;
}

// Splits `[HOST_IP:]HOST_PORT:CONTAINER_PORT` or `CONTAINER_PORT` (protocol already removed)
// into `spec`. An IPv6 host address is bracketed, as in `[::1]:8080:80`.
bool split_port_addresses(std::string_view text, PortSpec& spec) {
    if (!text.empty() && text.front() == '[') {
        const std::size_t close = text.find("]:");
        if (close == std::string_view::npos) {
            return false;
        }
        spec.host_ip = std::string(text.substr(1, close - 1));
        text.remove_prefix(close + 2);
        const std::size_t colon = text.find(':');
        if (colon == std::string_view::npos || text.rfind(':') != colon) {
            return false;
        }
        spec.host_port = std::string(text.substr(0, colon));
        spec.container_port = std::string(text.substr(colon + 1));
        return true;
    }

    const std::size_t last = text.rfind(':');
    spec.container_port = std::string(text.substr(last == std::string_view::npos ? 0 : last + 1));
    if (last == std::string_view::npos) {
        return true;
    }
    const std::string_view front = text.substr(0, last);
    const std::size_t middle = front.rfind(':');
    spec.host_port = std::string(front.substr(middle == std::string_view::npos ? 0 : middle + 1));
    if (middle != std::string_view::npos) {
        spec.host_ip = std::string(front.substr(0, middle));
        return front.substr(0, middle).find(':') == std::string_view::npos;
    }
    return true;
}

Result<void> check_port_spec(std::string_view text, const PortSpec& spec) {
    if (spec.container_port.find('-') != std::string::npos) {
        return port_failure(text, "port ranges are not supported, list each port on its own");
    }
    if (!parse_port_number(spec.container_port)) {
        return port_failure(text, fmt::format("container port \"{}\" is not a number from 1 to "
                                              "65535",
                                              spec.container_port));
    }
    if (!spec.host_port.empty() && !parse_port_number(spec.host_port)) {
        return port_failure(text, fmt::format("host port \"{}\" is not a number from 1 to 65535 "
                                              "(leave it empty to let the engine pick one)",
                                              spec.host_port));
    }
    if (!is_ip_address(spec.host_ip)) {
        return port_failure(text, fmt::format("host address \"{}\" is not an IPv4 or IPv6 "
                                              "address, such as 127.0.0.1 or [::1]",
                                              spec.host_ip));
    }
    const auto protocol = std::find(k_port_protocols.begin(), k_port_protocols.end(),
                                    spec.protocol);
    if (protocol == k_port_protocols.end()) {
        return port_failure(text, fmt::format("unknown protocol \"{}\", use tcp, udp or sctp",
                                              spec.protocol));
    }
    return {};
}

} // namespace

Result<std::int64_t> parse_size(std::string_view text) {
    if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
        return size_failure(text, "remove the sign, a size is never negative");
    }
    const auto parts = split_size(text);
    const auto unit_bytes = parts ? find_size_unit(parts->unit) : std::nullopt;
    if (!unit_bytes) {
        return size_failure(text, k_size_hint);
    }
    if (!parts->fraction.empty() && *unit_bytes == 1) {
        return size_failure(text, "a number of bytes must be whole, or add a unit such as MiB");
    }

    constexpr auto k_max_bytes = std::numeric_limits<std::int64_t>::max();
    std::int64_t whole = 0;
    const auto [end, error] = std::from_chars(parts->whole.data(),
                                              parts->whole.data() + parts->whole.size(), whole);
    if (error != std::errc{} || whole > k_max_bytes / *unit_bytes - 1) {
        return size_failure(text, "too large, the maximum is 8EiB");
    }
    const std::int64_t bytes = whole * *unit_bytes + fraction_bytes(parts->fraction, *unit_bytes);
    if (bytes == 0) {
        return size_failure(text, "a size must be greater than zero, such as 512MiB");
    }
    return bytes;
}

std::string format_size(std::int64_t bytes) {
    constexpr std::array<std::pair<std::int64_t, std::string_view>, 3> k_units{{
        {std::int64_t{1} << 30, "GiB"},
        {std::int64_t{1} << 20, "MiB"},
        {std::int64_t{1} << 10, "KiB"},
    }};
    for (const auto& [size, symbol] : k_units) {
        if (bytes % size == 0) {
            return fmt::format("{}{}", bytes / size, symbol);
        }
    }
    return fmt::format("{} bytes", bytes);
}

Result<PortSpec> parse_port(std::string_view text) {
    PortSpec spec;
    std::string_view addresses = text;
    const std::size_t slash = text.rfind('/');
    if (slash != std::string_view::npos) {
        spec.protocol = std::string(text.substr(slash + 1));
        addresses = text.substr(0, slash);
    }
    if (addresses.empty() || !split_port_addresses(addresses, spec)) {
        return port_failure(text, k_port_hint);
    }

    const auto valid = check_port_spec(text, spec);
    if (!valid) {
        return valid.error();
    }
    // Normalise "05432" to "5432", so the engine and jitbox's labels see one spelling.
    spec.container_port = std::to_string(*parse_port_number(spec.container_port));
    if (!spec.host_port.empty()) {
        spec.host_port = std::to_string(*parse_port_number(spec.host_port));
    }
    return spec;
}

namespace {

bool is_clean_absolute_path(std::string_view path) {
    if (path.size() < 2 || path.front() != '/' || path.back() == '/') {
        return false;
    }
    const bool printable = std::all_of(path.begin(), path.end(), [](char c) {
        return static_cast<unsigned char>(c) > ' ' && c != '\x7f';
    });
    const std::filesystem::path normal = std::filesystem::path(path).lexically_normal();
    return printable && normal.string() == path;
}

} // namespace

Result<DeviceMapping> parse_device(std::string_view text) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    while (true) {
        const std::size_t colon = text.find(':', start);
        parts.push_back(text.substr(start, colon - start));
        if (colon == std::string_view::npos) {
            break;
        }
        start = colon + 1;
    }
    const auto invalid = [&](std::string_view problem) {
        return make_failure(ExitCode::usage,
                            "invalid device \"{}\": {}; use HOST[:CONTAINER[:PERMISSIONS]], such "
                            "as \"/dev/fuse\" or \"/dev/sdc:/dev/xvdc:rw\"",
                            text, problem);
    };
    if (parts.size() > 3) {
        return invalid("it has more than three ':'-separated parts");
    }
    DeviceMapping device;
    device.host_path = std::string(parts[0]);
    device.container_path = parts.size() > 1 ? std::string(parts[1]) : device.host_path;
    if (parts.size() > 2) {
        device.permissions = std::string(parts[2]);
    }
    if (!is_clean_absolute_path(device.host_path) || !device.host_path.starts_with("/dev/")) {
        return invalid("the host path must be a normal absolute path below /dev/");
    }
    if (!is_clean_absolute_path(device.container_path)) {
        return invalid("the container path must be a normal absolute path");
    }
    const std::string_view permissions = device.permissions;
    const bool valid_permissions =
        !permissions.empty() && permissions.size() <= 3 &&
        std::all_of(permissions.begin(), permissions.end(), [&](char c) {
            return (c == 'r' || c == 'w' || c == 'm') &&
                   std::count(permissions.begin(), permissions.end(), c) == 1;
        });
    if (!valid_permissions) {
        return invalid("the permissions must be one or more of r, w and m, each once");
    }
    return device;
}

std::size_t edit_distance(std::string_view from, std::string_view to) {
    // Three rows of the dynamic programming table: a transposition looks two rows back.
    std::vector<std::size_t> before_previous(to.size() + 1);
    std::vector<std::size_t> previous(to.size() + 1);
    std::vector<std::size_t> current(to.size() + 1);
    std::iota(previous.begin(), previous.end(), std::size_t{0});
    for (std::size_t i = 0; i < from.size(); ++i) {
        current[0] = i + 1;
        for (std::size_t j = 0; j < to.size(); ++j) {
            const std::size_t substitution = previous[j] + (from[i] == to[j] ? 0 : 1);
            current[j + 1] = std::min({previous[j + 1] + 1, current[j] + 1, substitution});
            if (i > 0 && j > 0 && from[i] == to[j - 1] && from[i - 1] == to[j]) {
                current[j + 1] = std::min(current[j + 1], before_previous[j - 1] + 1);
            }
        }
        std::swap(before_previous, previous);
        std::swap(previous, current);
    }
    return previous[to.size()];
}

std::string closest_name(std::string_view name, const std::vector<std::string>& known) {
    std::string closest;
    std::size_t closest_distance = std::numeric_limits<std::size_t>::max();
    for (const std::string& candidate : known) {
        // A third of the shorter word, so "xx" suggests nothing for "up" but "stauts" finds
        // "status".
        const std::size_t max_distance =
            std::max<std::size_t>(1, std::min(name.size(), candidate.size()) / 3);
        const std::size_t distance = edit_distance(name, candidate);
        if (distance <= max_distance && distance < closest_distance) {
            closest = candidate;
            closest_distance = distance;
        }
    }
    return closest;
}

std::string_view network_mode_name(NetworkMode mode) {
    switch (mode) {
    case NetworkMode::none:
        return "none";
    case NetworkMode::isolated:
        return "isolated";
    case NetworkMode::bridge:
        return "bridge";
    case NetworkMode::host:
        return "host";
    }
    return "none";
}

} // namespace jitbox
