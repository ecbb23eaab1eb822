#include "jitbox/doctor/doctor.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace jitbox {

namespace {

constexpr std::string_view k_green = "\x1b[32m";
constexpr std::string_view k_yellow = "\x1b[33m";
constexpr std::string_view k_red = "\x1b[31m";
constexpr std::string_view k_reset = "\x1b[0m";

std::string_view mark(Severity severity) {
    switch (severity) {
    case Severity::ok:
        return "✓";
    case Severity::warning:
        return "!";
    case Severity::error:
        return "✗";
    }
    return "?";
}

std::string_view colour_of(Severity severity) {
    switch (severity) {
    case Severity::ok:
        return k_green;
    case Severity::warning:
        return k_yellow;
    case Severity::error:
        return k_red;
    }
    return k_reset;
}

std::string plural(std::size_t count, std::string_view noun) {
    return fmt::format("{} {}{}", count, noun, count == 1 ? "" : "s");
}

} // namespace

std::string_view to_string(Severity severity) {
    switch (severity) {
    case Severity::ok:
        return "ok";
    case Severity::warning:
        return "warning";
    case Severity::error:
        return "error";
    }
    return "unknown";
}

Finding make_finding(std::string check, Severity severity, std::string message, std::string fix) {
    Finding finding;
    finding.check = std::move(check);
    finding.severity = severity;
    finding.message = std::move(message);
    finding.fix = std::move(fix);
    return finding;
}

std::size_t DoctorReport::count(Severity severity) const {
    return static_cast<std::size_t>(
        std::count_if(findings.begin(), findings.end(),
                      [severity](const Finding& finding) { return finding.severity == severity; }));
}

nlohmann::json report_to_json(const DoctorReport& report) {
    nlohmann::json findings = nlohmann::json::array();
    for (const auto& finding : report.findings) {
        findings.push_back({
            {"check", finding.check},
            {"status", to_string(finding.severity)},
            {"message", finding.message},
            {"fix", finding.fix.empty() ? nlohmann::json(nullptr) : nlohmann::json(finding.fix)},
            {"details", finding.details},
        });
    }
    return {{"errors", report.count(Severity::error)},
            {"warnings", report.count(Severity::warning)},
            {"findings", findings}};
}

std::string format_plain(const DoctorReport& report) {
    std::string text;
    for (const auto& finding : report.findings) {
        text +=
            fmt::format("{} {}: {}", to_string(finding.severity), finding.check, finding.message);
        if (!finding.fix.empty()) {
            text += fmt::format(" (fix: {})", finding.fix);
        }
        text += "\n";
    }
    return text;
}

std::string format_table(const DoctorReport& report, bool colour) {
    std::size_t width = 0;
    for (const auto& finding : report.findings) {
        width = std::max(width, finding.check.size());
    }
    std::string text;
    // The mark takes one column on screen whatever its UTF-8 byte count, so an indent of
    // mark, space, `width` and two spaces puts the fix under the message.
    const std::string indent(width + 4, ' ');
    for (const auto& finding : report.findings) {
        std::string mark_text(mark(finding.severity));
        if (colour) {
            mark_text = fmt::format("{}{}{}", colour_of(finding.severity), mark_text, k_reset);
        }
        text += fmt::format("{} {:<{}}  {}\n", mark_text, finding.check, width, finding.message);
        if (!finding.fix.empty()) {
            text += fmt::format("{}fix: {}\n", indent, finding.fix);
        }
    }
    text += fmt::format("{}, {}\n", plural(report.count(Severity::error), "error"),
                        plural(report.count(Severity::warning), "warning"));
    return text;
}

} // namespace jitbox
