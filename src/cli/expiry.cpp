// Deadline output built from the state records alone: the warning that a sandbox is about to
// expire, and the segment that `status --prompt` prints for a shell prompt. Neither reads the
// configuration, the engine, a keyring or the audit log.

#include "commands.hpp"

#include <algorithm>

namespace jitbox::cli {

namespace {

// A command warns when a sandbox has less than this left.
constexpr Seconds k_expiry_warning_time{5 * 60};
// The maximum extension that the warning suggests, when `extend` would grant that much.
constexpr Seconds k_suggested_extension{30 * 60};

// Reads the running sandboxes whose deadline is in the future, soonest first.
std::vector<SandboxRecord> live_by_deadline(TimePoint now) {
    auto dir = default_state_dir();
    if (!dir) {
        return {};
    }
    std::vector<SandboxRecord> records = StateStore::read_quietly(*dir);
    std::erase_if(records, [now](const SandboxRecord& record) {
        return record.state != SandboxState::running || record.expires_at <= now;
    });
    // Every user's records share the state folder of enforced mode.
    if (enforced::is_enforced()) {
        const auto requester = current_identity();
        std::erase_if(records, [&requester](const SandboxRecord& record) {
            return !requester || record.owner != requester->user;
        });
    }
    std::sort(records.begin(), records.end(), [](const auto& left, const auto& right) {
        return left.expires_at < right.expires_at;
    });
    return records;
}

// Formats the time left short enough for a prompt: "45s" below a minute, "12m" below an hour,
// "1h30m" above.
std::string format_prompt_time(TimePoint deadline, TimePoint now) {
    auto left = std::chrono::duration_cast<Seconds>(deadline - now);
    if (left >= std::chrono::minutes(1)) {
        left = std::chrono::duration_cast<std::chrono::minutes>(left);
    }
    return format_duration(left);
}

std::string extension_advice(const SandboxRecord& record) {
    const auto allowed =
        std::chrono::duration_cast<Seconds>(record.max_expires_at - record.expires_at);
    if (allowed < std::chrono::minutes(1)) {
        return "it cannot be extended past its max_ttl";
    }
    // Rounded down to whole minutes, so that `extend` accepts the suggested command unchanged.
    const auto by =
        std::chrono::duration_cast<std::chrono::minutes>(std::min(allowed, k_suggested_extension));
    return fmt::format("run `jitbox extend {} --by {}` to keep it", record.name,
                       format_duration(by));
}

} // namespace

void warn_about_expiry(Context& context) {
    if (context.options().quiet || !context.stderr_style().terminal) {
        return;
    }
    const TimePoint now = SystemClock().now();
    const std::vector<SandboxRecord> live = live_by_deadline(now);
    if (live.empty() || live.front().expires_at - now >= k_expiry_warning_time) {
        return;
    }
    const SandboxRecord& soonest = live.front();
    fmt::print(stderr, "{}sandbox {} expires in {}; {}\n", warning_prefix(context.stderr_style()),
               soonest.name, format_time_left(soonest.expires_at, now), extension_advice(soonest));
}

void print_prompt_segment(Context& context) {
    const TimePoint now = SystemClock().now();
    const std::vector<SandboxRecord> live = live_by_deadline(now);
    if (context.options().json) {
        nlohmann::json segment = nullptr;
        if (!live.empty()) {
            segment = {{"name", live.front().name},
                       {"expires_at", format_rfc3339(live.front().expires_at)},
                       {"time_left", format_prompt_time(live.front().expires_at, now)},
                       {"others", live.size() - 1}};
        }
        fmt::print("{}\n", segment.dump(2));
        return;
    }
    if (live.empty()) {
        return;
    }
    std::string segment =
        fmt::format("{} {}", live.front().name, format_prompt_time(live.front().expires_at, now));
    if (live.size() > 1) {
        segment += fmt::format(",+{}", live.size() - 1);
    }
    fmt::print("{}\n", segment);
}

} // namespace jitbox::cli
