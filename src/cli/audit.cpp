// `jitbox audit`: show the audit log of the state folder, count its records, and check its
// hash chain.

#include "commands.hpp"

#include "jitbox/audit/stats.hpp"

#include <algorithm>

namespace jitbox::cli {

namespace {

namespace fs = std::filesystem;

struct AuditOptions {
    std::string since; // a duration back from now, such as 2h, or an RFC 3339 time
    std::string sandbox;
};

struct VerifyOptions {
    std::string file;
};

struct StatsOptions {
    std::string since;
    int top = 10;
};

struct RecordFilter {
    std::optional<TimePoint> since;
    std::string sandbox;
    std::string user; // only this user's records, unless empty
};

// A string field of a record, or "" when it is missing, null or not a string.
std::string string_field(const nlohmann::json& record, const char* key) {
    auto found = record.find(key);
    return found != record.end() && found->is_string() ? found->get<std::string>() : "";
}

bool matches(const nlohmann::json& record, const RecordFilter& filter) {
    if (!filter.sandbox.empty() && string_field(record, "sandbox") != filter.sandbox) {
        return false;
    }
    if (!filter.user.empty() && string_field(record, "user") != filter.user) {
        return false;
    }
    if (filter.since) {
        auto time = parse_rfc3339(string_field(record, "time"));
        return time && *time >= *filter.since;
    }
    return true;
}

// Reads the records that pass `filter`. Lines that are not JSON objects are skipped with one
// warning, because showing the rest is more useful than failing, and `audit verify` reports
// them.
std::vector<nlohmann::json> read_records(const fs::path& path, const RecordFilter& filter) {
    // Callers pass only jitbox's own log, which enforced mode keeps out of the user's reach.
    const enforced::ElevatedScope elevated;
    std::vector<nlohmann::json> records;
    std::size_t skipped = 0;
    std::size_t first_skipped = 0;
    throw_if_failed(read_audit_log(path, [&](const AuditLine& line) {
        auto record = nlohmann::json::parse(line.text, nullptr, /*allow_exceptions=*/false);
        if (record.is_discarded() || !record.is_object()) {
            first_skipped = skipped++ == 0 ? line.number : first_skipped;
        } else if (matches(record, filter)) {
            records.push_back(std::move(record));
        }
        return true;
    }));
    if (skipped > 0) {
        fmt::print(stderr,
                   "jitbox: warning: skipped {} line(s) of {} that are not JSON objects, the "
                   "first at line {}; `jitbox audit verify` checks the whole log\n",
                   skipped, path.string(), first_skipped);
    }
    return records;
}

// True when the requester may read every user's records of the shared log of enforced mode:
// root and the jitbox account.
// TODO: let a role of the system policy allow it too.
bool may_read_every_user() {
    const auto& ids = enforced::process_ids();
    return ids.real_uid == 0 || ids.real_uid == ids.elevated_uid;
}

// The user whose records a reader may read. In enforced mode every user's records share one log,
// so it is the requester unless `may_read_all`. Otherwise it is empty, which means everyone.
std::string restricted_reader(bool may_read_all) {
    if (!enforced::is_enforced() || may_read_all) {
        return "";
    }
    return value_or_throw(current_identity()).user;
}

// A table cell: control characters, such as a newline in an error message, become spaces so
// that each record stays on one row, and an empty value becomes "-".
std::string cell(std::string text) {
    std::replace_if(
        text.begin(), text.end(),
        [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == '\x7f'; }, ' ');
    return text.empty() ? "-" : text;
}

std::string cell(const nlohmann::json& record, const char* key) {
    return cell(string_field(record, key));
}

void run_list(Context& context, const AuditOptions& options) {
    RecordFilter filter;
    filter.sandbox = options.sandbox;
    if (!options.since.empty()) {
        filter.since = parse_since(options.since, SystemClock().now(), "--since");
    }
    filter.user = restricted_reader(may_read_every_user());
    const std::vector<nlohmann::json> records = read_records(audit_log_path(context), filter);

    if (context.options().json) {
        fmt::print("{}\n", nlohmann::json(records).dump(2));
        return;
    }
    std::vector<std::vector<std::string>> rows = {
        {"TIME", "ACTION", "SANDBOX", "TEMPLATE", "RESULT", "ERROR"}};
    for (const auto& record : records) {
        std::string error = string_field(record, "error").empty() ? "" : cell(record, "error");
        rows.push_back({cell(record, "time"), cell(record, "action"), cell(record, "sandbox"),
                        cell(record, "template"), cell(record, "result"), error});
    }
    print_table(rows);
}

void run_verify(Context& context, const VerifyOptions& options) {
    fs::path path = options.file.empty() ? audit_log_path(context) : fs::path(options.file);
    // A missing default log means that no sandbox was started yet, but a missing named file is
    // most likely a typo.
    std::error_code unknown; // such as EACCES, which verify_audit_log reports as a failed read
    if (!options.file.empty() && !fs::exists(path, unknown) && !unknown) {
        throw Error(ExitCode::usage,
                    fmt::format("audit verify: {} does not exist; name an audit log, or omit "
                                "FILE to check {}",
                                path.string(), audit_log_path(context).string()));
    }
    VerifyReport report;
    if (options.file.empty()) {
        const enforced::ElevatedScope elevated;
        report = value_or_throw(verify_audit_log(path));
    } else {
        report = value_or_throw(verify_audit_log(path));
    }

    if (context.options().json) {
        nlohmann::json object = {{"path", path.string()}, {"intact", report.intact()}};
        if (report.intact()) {
            object["records"] = report.records;
        } else {
            object["line"] = report.problem->line;
            object["problem"] = report.problem->reason;
        }
        fmt::print("{}\n", object.dump(2));
    } else if (report.intact()) {
        fmt::print("{} record{}, chain intact\n", report.records, report.records == 1 ? "" : "s");
    }
    if (!report.intact()) {
        std::fflush(stdout);
        throw Error(
            ExitCode::checks_failed,
            fmt::format("{}:{}: {}", path.string(), report.problem->line, report.problem->reason));
    }
}

double hours_of(std::uint64_t seconds) { return static_cast<double>(seconds) / 3600.0; }

nlohmann::json counters_to_json(const UsageCounters& counters) {
    return {{"opened", counters.opened},
            {"sandbox_seconds", counters.sandbox_seconds},
            {"sandbox_hours", hours_of(counters.sandbox_seconds)},
            {"extensions", counters.extensions},
            {"denials", counters.denials},
            {"attempted_violations", counters.attempted_violations},
            {"break_glass", counters.break_glass}};
}

nlohmann::json lifetime_to_json(const SandboxLifetime& lifetime) {
    return {{"sandbox", lifetime.name},
            {"sandbox_id", lifetime.sandbox_id},
            {"user", lifetime.user},
            {"template", lifetime.template_name},
            {"opened_at", format_rfc3339(lifetime.opened_at)},
            {"closed_at", lifetime.closed_at ? nlohmann::json(format_rfc3339(*lifetime.closed_at))
                                             : nlohmann::json(nullptr)},
            {"closed_by", lifetime.closed_at ? nlohmann::json(lifetime.closed_by)
                                             : nlohmann::json(nullptr)},
            {"seconds", lifetime.duration.count()}};
}

void print_stats_json(const AuditStats& stats, const std::optional<TimePoint>& since,
                      TimePoint now, std::size_t top) {
    nlohmann::json usage = nlohmann::json::array();
    for (const auto& [key, counters] : stats.usage) {
        nlohmann::json row = counters_to_json(counters);
        row["user"] = key.user;
        row["template"] = key.template_name;
        usage.push_back(std::move(row));
    }
    nlohmann::json longest = nlohmann::json::array();
    for (std::size_t i = 0; i < std::min(top, stats.sandboxes.size()); ++i) {
        longest.push_back(lifetime_to_json(stats.sandboxes[i]));
    }
    nlohmann::json object = {
        {"since", since ? nlohmann::json(format_rfc3339(*since)) : nlohmann::json(nullptr)},
        {"until", format_rfc3339(now)},
        {"usage", usage},
        {"totals", counters_to_json(stats.totals())},
        {"longest", longest},
    };
    fmt::print("{}\n", object.dump(2));
}

std::vector<std::string> counter_cells(const UsageCounters& counters) {
    return {std::to_string(counters.opened), fmt::format("{:.2f}", hours_of(counters.sandbox_seconds)),
            std::to_string(counters.extensions), std::to_string(counters.denials),
            std::to_string(counters.attempted_violations), std::to_string(counters.break_glass)};
}

void print_stats_table(const AuditStats& stats, std::size_t top) {
    std::vector<std::vector<std::string>> rows = {{"USER", "TEMPLATE", "OPENED", "HOURS",
                                                   "EXTENSIONS", "DENIALS", "VIOLATIONS",
                                                   "BREAK-GLASS"}};
    for (const auto& [key, counters] : stats.usage) {
        rows.push_back({cell(key.user), cell(key.template_name)});
        for (auto& value : counter_cells(counters)) {
            rows.back().push_back(std::move(value));
        }
    }
    rows.push_back({"total", "-"});
    for (auto& value : counter_cells(stats.totals())) {
        rows.back().push_back(std::move(value));
    }
    print_table(rows);

    if (stats.sandboxes.empty() || top == 0) {
        return;
    }
    fmt::print("\n");
    rows = {{"LONGEST-LIVED", "USER", "TEMPLATE", "OPENED", "CLOSED", "LIFETIME"}};
    for (std::size_t i = 0; i < std::min(top, stats.sandboxes.size()); ++i) {
        const SandboxLifetime& lifetime = stats.sandboxes[i];
        std::string closed = lifetime.closed_at
                                 ? fmt::format("{} ({})", format_rfc3339(*lifetime.closed_at),
                                               lifetime.closed_by)
                                 : "open";
        rows.push_back({cell(lifetime.name), cell(lifetime.user), cell(lifetime.template_name),
                        format_rfc3339(lifetime.opened_at), closed,
                        format_duration(lifetime.duration)});
    }
    print_table(rows);
}

void run_stats(Context& context, const StatsOptions& options) {
    TimePoint now = SystemClock().now();
    std::optional<TimePoint> since;
    if (!options.since.empty()) {
        since = parse_since(options.since, now, "--since");
    }
    AuditStats stats = compute_audit_stats(read_audit_records(audit_log_path(context)), since, now);
    const auto top = static_cast<std::size_t>(options.top);
    if (context.options().json) {
        print_stats_json(stats, since, now, top);
    } else {
        print_stats_table(stats, top);
    }
}

CLI::App* register_stats(CLI::App& audit, Context& context) {
    auto options = std::make_shared<StatsOptions>();
    CLI::App* stats = audit.add_subcommand(
        "stats", "Count sandboxes, sandbox-hours, extensions, denials and attempted violations "
                 "per user and template, and list the longest-lived sandboxes");
    stats->add_option("--since", options->since,
                      "Count only from the last DURATION, such as 7d, or since an RFC 3339 time")
        ->type_name("DURATION|TIME");
    stats->add_option("--top", options->top,
                      "How many of the longest-lived sandboxes to list (default: 10)")
        ->type_name("N")
        ->check(non_negative_validator());
    stats->callback([&context, options] { run_stats(context, *options); });
    return stats;
}

} // namespace

fs::path audit_log_path(Context& context) {
    return context.audit_log_path();
}

std::vector<nlohmann::json> read_audit_records(const fs::path& path) {
    RecordFilter filter;
    filter.user = restricted_reader(may_read_every_user());
    return read_records(path, filter);
}

void register_audit(CLI::App& app, Context& context) {
    auto options = std::make_shared<AuditOptions>();
    auto verify_options = std::make_shared<VerifyOptions>();
    CLI::App* audit = app.add_subcommand(
        "audit", "Show the audit log of your sandboxes, or check that it was not altered");
    CLI::Option* since = audit->add_option(
        "--since", options->since,
        "Only records from the last DURATION, such as 2h, or since an RFC 3339 time");
    since->type_name("DURATION|TIME");
    CLI::Option* sandbox =
        audit->add_option("--sandbox", options->sandbox, "Only records of this sandbox");
    sandbox->type_name("NAME");
    audit->require_subcommand(0, 1);

    CLI::App* verify = audit->add_subcommand(
        "verify", "Check the hash chain; exit 8 naming the first bad line if a record was "
                  "changed, removed, inserted, reordered or cut from the end");
    CLI::Option* file = verify->add_option(
        "file", verify_options->file,
        "The log to check (default: audit.log in the state folder), with its .head file beside it");
    file->type_name("FILE");
    verify->excludes(since);
    verify->excludes(sandbox);
    verify->callback([&context, verify_options] { run_verify(context, *verify_options); });
    CLI::App* stats = register_stats(*audit, context);
    stats->excludes(since);
    stats->excludes(sandbox);

    // CLI11 runs this after the callback of a subcommand, so it lists only when none ran.
    audit->callback([&context, options, audit] {
        if (audit->get_subcommands().empty()) {
            run_list(context, *options);
        }
    });
}

} // namespace jitbox::cli
