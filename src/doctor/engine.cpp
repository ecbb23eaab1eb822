#include "jitbox/doctor/doctor.hpp"

#include "jitbox/providers/docker.hpp"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <sstream>

namespace jitbox {

namespace {

struct ApiVersion {
    int major = 0;
    int minor = 0;

    auto operator<=>(const ApiVersion&) const = default;
};

std::optional<int> parse_number(std::string_view text) {
    int value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
        return std::nullopt;
    }
    return value;
}

// "1.41" to {1, 41}.
std::optional<ApiVersion> parse_api_version(std::string_view text) {
    auto dot = text.find('.');
    if (dot == std::string_view::npos) {
        return std::nullopt;
    }
    auto major = parse_number(text.substr(0, dot));
    auto minor = parse_number(text.substr(dot + 1));
    if (!major || !minor) {
        return std::nullopt;
    }
    return ApiVersion{*major, *minor};
}

std::string format_api_version(ApiVersion version) {
    return fmt::format("{}.{}", version.major, version.minor);
}

EngineProbe probe_problem(std::string problem, std::string fix) {
    EngineProbe probe;
    probe.problem = std::move(problem);
    probe.fix = std::move(fix);
    return probe;
}

// The fix for an engine that cannot be reached, from the transport's reason.
std::string unreachable_fix(const std::string& reason) {
    if (reason.find("Permission denied") != std::string::npos) {
        return "add your user to the docker group and log in again, or set DOCKER_HOST to an "
               "engine you may use";
    }
    if (reason.find("SSL") != std::string::npos ||
        reason.find("certificate") != std::string::npos) {
        return "check ca.pem, cert.pem and key.pem in DOCKER_CERT_PATH (default ~/.docker)";
    }
    return "start dockerd (such as `systemctl start docker`) or set DOCKER_HOST to a running "
           "engine";
}

// The body of a GET under the negotiated version as a JSON object, or null on any failure.
nlohmann::json get_json(HttpClient& client, const std::string& target,
                        std::chrono::milliseconds timeout) {
    HttpRequest request;
    request.target = target;
    request.timeout = timeout;
    auto response = client.send(request);
    if (!response || response->status != 200) {
        return nullptr;
    }
    auto body = nlohmann::json::parse(response->body, nullptr, /*allow_exceptions=*/false);
    return body.is_object() ? body : nlohmann::json(nullptr);
}

std::string string_member(const nlohmann::json& object, const char* key) {
    if (!object.is_object()) {
        return "";
    }
    auto found = object.find(key);
    return found != object.end() && found->is_string() ? found->get<std::string>() : "";
}

// Reads /version and /info into `info`: the engine's version and its clock.
void read_engine_details(HttpClient& client, const std::string& prefix,
                         std::chrono::milliseconds timeout, EngineInfo& info) {
    nlohmann::json version = get_json(client, prefix + "/version", timeout);
    info.engine_version = string_member(version, "Version");
    info.min_api_version = string_member(version, "MinAPIVersion");

    nlohmann::json system = get_json(client, prefix + "/info", timeout);
    if (auto time = parse_rfc3339(string_member(system, "SystemTime"))) {
        info.engine_time = *time;
    }
}

} // namespace

EngineProbe probe_docker_engine(HttpClient& client, const std::string& endpoint,
                                std::chrono::milliseconds timeout, const Clock& clock) {
    EngineInfo info;
    info.endpoint = endpoint;
    info.local_before = clock.now();

    HttpRequest ping;
    ping.target = "/_ping";
    ping.timeout = timeout;
    auto response = client.send(ping);
    if (!response) {
        const std::string reason = transport_reason(response.error().message);
        return probe_problem(
            fmt::format("cannot reach the Docker engine at {}: {}", endpoint, reason),
            unreachable_fix(reason));
    }
    if (response->status != 200) {
        return probe_problem(fmt::format("the Docker engine at {} answered GET /_ping with "
                                         "HTTP {}",
                                         endpoint, response->status),
                             "check the engine's log, such as `journalctl -u docker`");
    }
    auto header = response->headers.find("api-version");
    auto server =
        header == response->headers.end() ? std::nullopt : parse_api_version(header->second);
    if (!server) {
        return probe_problem(fmt::format("the server at {} sent no valid Api-Version header, so "
                                         "it is probably not a Docker engine",
                                         endpoint),
                             "point DOCKER_HOST at the Docker engine's socket");
    }
    if (*server < *parse_api_version(k_docker_min_api)) {
        return probe_problem(fmt::format("the Docker engine at {} speaks API {}, older than the "
                                         "{} that jitbox needs",
                                         endpoint, header->second, k_docker_min_api),
                             "upgrade the engine to Docker 19.03 or newer");
    }
    // Podman's service adds Libpod-Api-Version to the headers that dockerd sends.
    info.product = response->headers.contains("libpod-api-version") ? "Podman" : "Docker";
    info.api_version = format_api_version(*server);
    info.negotiated = format_api_version(std::min(*server, *parse_api_version(k_docker_max_api)));
    if (auto date = response->headers.find("date"); date != response->headers.end()) {
        info.engine_time = parse_http_date(date->second);
    }

    read_engine_details(client, "/v" + info.negotiated, timeout, info);
    info.local_after = clock.now();
    EngineProbe probe;
    probe.info = std::move(info);
    return probe;
}

Finding engine_finding(const EngineProbe& probe) {
    Finding finding;
    finding.check = "engine";
    if (!probe.info) {
        finding.severity = Severity::error;
        finding.message = probe.problem;
        finding.fix = probe.fix;
        return finding;
    }
    const EngineInfo& info = *probe.info;
    finding.message =
        fmt::format("{} {} at {}, API {}, jitbox uses {}", info.product,
                    info.engine_version.empty() ? "(version unknown)" : info.engine_version,
                    info.endpoint, info.api_version, info.negotiated);
    finding.details = {{"endpoint", info.endpoint},
                       {"product", info.product},
                       {"engine_version", info.engine_version},
                       {"api_version", info.api_version},
                       {"min_api_version", info.min_api_version},
                       {"negotiated_api_version", info.negotiated}};
    return finding;
}

std::optional<TimePoint> parse_http_date(std::string_view text) {
    static constexpr std::array<std::string_view, 12> k_months = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT", fixed width.
    if (text.size() != 29 || text.substr(3, 2) != ", " || text.substr(25) != " GMT" ||
        text[7] != ' ' || text[11] != ' ' || text[16] != ' ' || text[19] != ':' ||
        text[22] != ':') {
        return std::nullopt;
    }
    auto day = parse_number(text.substr(5, 2));
    auto year = parse_number(text.substr(12, 4));
    auto hour = parse_number(text.substr(17, 2));
    auto minute = parse_number(text.substr(20, 2));
    auto second = parse_number(text.substr(23, 2));
    auto month = std::find(k_months.begin(), k_months.end(), text.substr(8, 3));
    if (!day || !year || !hour || !minute || !second || month == k_months.end() || *hour > 23 ||
        *minute > 59 || *second > 60) {
        return std::nullopt;
    }
    const std::chrono::year_month_day date{
        std::chrono::year(*year),
        std::chrono::month(static_cast<unsigned>(month - k_months.begin() + 1)),
        std::chrono::day(static_cast<unsigned>(*day))};
    if (!date.ok()) {
        return std::nullopt;
    }
    return std::chrono::sys_days(date) + std::chrono::hours(*hour) + std::chrono::minutes(*minute) +
           Seconds(*second);
}

Finding clock_finding(const EngineInfo& engine) {
    Finding finding;
    finding.check = "clock";
    if (!engine.engine_time) {
        finding.severity = Severity::warning;
        finding.message = fmt::format("the engine at {} sent neither SystemTime nor a Date "
                                      "header, so the clocks were not compared",
                                      engine.endpoint);
        finding.fix = "check the engine's clock yourself, such as with `docker info`";
        return finding;
    }
    // The engine read its clock somewhere between the two local readings.
    const TimePoint local_middle =
        engine.local_before + (engine.local_after - engine.local_before) / 2;
    const Seconds skew = *engine.engine_time - local_middle;
    const Seconds size = skew < Seconds(0) ? -skew : skew;
    finding.details = {{"skew_seconds", skew.count()},
                       {"limit_seconds", k_clock_skew_limit.count()}};
    if (size > k_clock_skew_limit) {
        finding.severity = Severity::warning;
        finding.message =
            fmt::format("the engine's clock is {} {} the local clock; sandbox "
                        "expiry labels and deadlines disagree by that much",
                        format_duration(size), skew > Seconds(0) ? "ahead of" : "behind");
        finding.fix = "synchronise both clocks with NTP, such as with systemd-timesyncd or chrony";
        return finding;
    }
    finding.message = fmt::format("the engine's clock is within {} of the local clock (skew {})",
                                  format_duration(k_clock_skew_limit), format_duration(skew));
    return finding;
}

} // namespace jitbox
