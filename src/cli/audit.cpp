// `jitbox audit`: show the audit log of the state folder, and check its hash chain.

#include "commands.hpp"

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

struct RecordFilter {
    std::optional<TimePoint> since;
    std::string sandbox;
};

fs::path default_log_path(Context& context) {
    return context.store().dir() / "audit.log";
}

// A string field of a record, or "" when it is missing, null or not a string.
std::string string_field(const nlohmann::json& record, const char* key) {
    auto found = record.find(key);
    return found != record.end() && found->is_string() ? found->get<std::string>() : "";
}

bool matches(const nlohmann::json& record, const RecordFilter& filter) {
    if (!filter.sandbox.empty() && string_field(record, "sandbox") != filter.sandbox) {
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

// A table cell: control characters, such as a newline in an error message, become spaces so
// that each record stays on one row, and an empty value becomes "-".
std::string cell(const nlohmann::json& record, const char* key) {
    std::string text = string_field(record, key);
    std::replace_if(
        text.begin(), text.end(),
        [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == '\x7f'; }, ' ');
    return text.empty() ? "-" : text;
}

void run_list(Context& context, const AuditOptions& options) {
    RecordFilter filter;
    filter.sandbox = options.sandbox;
    if (!options.since.empty()) {
        filter.since = parse_since(options.since, SystemClock().now(), "--since");
    }
    auto records = read_records(default_log_path(context), filter);

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
    fs::path path = options.file.empty() ? default_log_path(context) : fs::path(options.file);
    // A missing default log means that no sandbox was started yet, but a missing named file is
    // most likely a typo.
    std::error_code unknown; // such as EACCES, which verify_audit_log reports as a failed read
    if (!options.file.empty() && !fs::exists(path, unknown) && !unknown) {
        throw Error(ExitCode::usage,
                    fmt::format("audit verify: {} does not exist; name an audit log, or omit "
                                "FILE to check {}",
                                path.string(), default_log_path(context).string()));
    }
    VerifyReport report = value_or_throw(verify_audit_log(path));

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

} // namespace

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

    // CLI11 runs this after the callback of `verify`, so it lists only when no subcommand ran.
    audit->callback([&context, options, audit, verify] {
        if (!audit->got_subcommand(verify)) {
            run_list(context, *options);
        }
    });
}

} // namespace jitbox::cli
