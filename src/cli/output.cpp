#include "commands.hpp"

#include <algorithm>
#include <unistd.h>

namespace jitbox::cli {

bool is_terminal(int fd) { return ::isatty(fd) == 1; }

std::string format_time_left(TimePoint deadline, TimePoint now) {
    if (deadline <= now) {
        return "expired";
    }
    auto left = std::chrono::duration_cast<Seconds>(deadline - now);
    // Minutes are precise enough once more than an hour is left.
    if (left >= std::chrono::hours(1)) {
        left = std::chrono::duration_cast<std::chrono::minutes>(left);
    }
    return format_duration(left);
}

nlohmann::json status_to_json(const SandboxStatus& status) {
    const SandboxRecord& record = status.record;
    nlohmann::json items = nlohmann::json::array();
    for (const auto& item : record.resources.items) {
        items.push_back({{"kind", item.kind}, {"id", item.id}, {"name", item.name}});
    }
    nlohmann::json ports = nlohmann::json::array();
    for (const auto& port : record.resources.ports) {
        ports.push_back({{"container_port", port.container_port},
                         {"host_ip", port.host_ip},
                         {"host_port", port.host_port}});
    }
    nlohmann::json child = nullptr;
    if (status.child_alive && record.child_pid) {
        child = *record.child_pid;
    }
    return {
        {"name", record.name},
        {"id", record.id},
        {"template", record.template_name},
        {"provider", record.provider},
        {"state", status.state},
        {"owner", record.owner},
        {"created_at", format_rfc3339(record.created_at)},
        {"expires_at", format_rfc3339(record.expires_at)},
        {"max_expires_at", format_rfc3339(record.max_expires_at)},
        {"child_pid", child},
        {"region", record.region},
        {"detail", status.detail},
        {"resources", {{"items", items}, {"ports", ports}}},
    };
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> widths;
    for (const auto& row : rows) {
        widths.resize(std::max(widths.size(), row.size()));
        for (std::size_t i = 0; i < row.size(); ++i) {
            widths[i] = std::max(widths[i], row[i].size());
        }
    }
    for (const auto& row : rows) {
        std::string line;
        for (std::size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size()) {
                line += std::string(widths[i] - row[i].size() + 3, ' ');
            }
        }
        fmt::print("{}\n", line);
    }
}

CLI::Validator duration_validator() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            auto parsed = parse_duration(text);
            return parsed ? std::string() : parsed.error().message;
        },
        "DURATION");
}

CLI::Validator non_negative_validator() {
    return CLI::Validator(
        [](std::string& value) {
            return value.rfind('-', 0) == 0 ? std::string("must be 0 or more") : std::string();
        },
        "");
}

Seconds parse_duration_or_throw(const std::string& text, const std::string& option) {
    auto parsed = parse_duration(text);
    if (!parsed) {
        throw Error(ExitCode::usage, fmt::format("{}: {}", option, parsed.error().message));
    }
    return *parsed;
}

TimePoint parse_since(const std::string& text, TimePoint now, std::string_view option) {
    if (auto duration = parse_duration(text)) {
        return now - *duration;
    }
    if (auto time = parse_rfc3339(text)) {
        return *time;
    }
    throw Error(ExitCode::usage,
                fmt::format("{}: \"{}\" is neither a duration such as 2h nor an RFC 3339 "
                            "time such as 2026-12-04T17:00:00Z",
                            option, text));
}

} // namespace jitbox::cli
