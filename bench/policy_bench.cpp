// Measures the cost of one policy decision as the number of roles grows, and the cost of loading
// a large jitbox.toml. Every sample times one call with std::chrono::steady_clock, and the
// tables report the median and the 95th percentile (nearest rank) of those samples.
//
// Usage: jitbox_policy_bench [--smoke]
//   --smoke  takes 3 samples per case and a small file, to check that the benchmark still
//            builds and runs. Its figures mean nothing.

#include "jitbox/config/config.hpp"
#include "jitbox/policy/layers.hpp"
#include "jitbox/policy/policy.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

using SteadyClock = std::chrono::steady_clock;

// The budgets that the summary lines compare the medians with. The program reports a missed
// budget but still exits with 0, because timings on a shared machine vary too much to gate on.
constexpr double k_decision_budget_ns = 1e6; // one decision over 10,000 roles: under 1 ms
constexpr double k_load_budget_ns = 100e6;   // loading a 1 MiB policy file: under 100 ms

enum class RunMode { full, smoke };

// How many samples to take of one case: at least `min_samples` and `min_seconds` of calls,
// stopping at `max_samples`.
struct SampleCount {
    std::size_t min_samples;
    std::size_t max_samples;
    double min_seconds;
};

// Wall-clock time of the samples, and the median CPU time of this thread when recorded.
struct Summary {
    double median_ns = 0;
    double p95_ns = 0;
    double cpu_median_ns = 0;
    std::size_t samples = 0;
};

enum class CpuTime { skip, record };

// Policy shapes, named by the roles that match alice's request (groups alice and dev) to `up`
// db-0.
enum class Shape {
    last_matches,      // only the last role has alice as a member
    none_match_member, // alice is a member of every role, but each names other templates
    none_match_other,  // alice is a member of no role
    all_match,         // every role has alice as a member and covers db-0
};

struct ShapeInfo {
    Shape shape;
    std::string_view name;
    bool allowed; // the expected decision, checked before timing
};

constexpr std::array<ShapeInfo, 4> k_shapes{{
    {Shape::last_matches, "last role matches", true},
    {Shape::none_match_member, "none matches (member of all)", false},
    {Shape::none_match_other, "none matches (member of none)", false},
    {Shape::all_match, "all roles match", true},
}};

constexpr std::array<std::size_t, 3> k_role_counts{10, 1000, 10000};

// ---- statistics ----

double percentile(const std::vector<double>& sorted, double fraction) {
    const auto rank = static_cast<std::size_t>(std::ceil(fraction * sorted.size()));
    return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

Summary summarize(std::vector<double> wall_samples, std::vector<double> cpu_samples) {
    std::sort(wall_samples.begin(), wall_samples.end());
    std::sort(cpu_samples.begin(), cpu_samples.end());
    Summary summary{percentile(wall_samples, 0.5), percentile(wall_samples, 0.95), 0,
                    wall_samples.size()};
    if (!cpu_samples.empty()) {
        summary.cpu_median_ns = percentile(cpu_samples, 0.5);
    }
    return summary;
}

double thread_cpu_ns() {
    timespec now{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return static_cast<double>(now.tv_sec) * 1e9 + static_cast<double>(now.tv_nsec);
}

// Times `call` once per sample, after two calls that warm caches and the tz database. Reading
// the CPU clock is a system call, so only the slow cases record CPU time.
template <typename Call> Summary measure(const SampleCount& count, CpuTime cpu_time, Call call) {
    call();
    call();
    std::vector<double> wall_samples;
    std::vector<double> cpu_samples;
    const auto started = SteadyClock::now();
    const auto elapsed_seconds = [&] {
        return std::chrono::duration<double>(SteadyClock::now() - started).count();
    };
    while (wall_samples.size() < count.max_samples &&
           (wall_samples.size() < count.min_samples || elapsed_seconds() < count.min_seconds)) {
        const double cpu_before = cpu_time == CpuTime::record ? thread_cpu_ns() : 0;
        const auto before = SteadyClock::now();
        call();
        const auto after = SteadyClock::now();
        if (cpu_time == CpuTime::record) {
            cpu_samples.push_back(thread_cpu_ns() - cpu_before);
        }
        wall_samples.push_back(std::chrono::duration<double, std::nano>(after - before).count());
    }
    return summarize(std::move(wall_samples), std::move(cpu_samples));
}

std::string format_time(double nanoseconds) {
    if (nanoseconds >= 1e6) {
        return fmt::format("{:.2f} ms", nanoseconds / 1e6);
    }
    return fmt::format("{:.1f} us", nanoseconds / 1e3);
}

// ---- the policies that decisions are timed against ----

// Templates db-0 to db-9 (label tier=dev), web-0 and prod-0.
std::string decision_templates() {
    std::string text;
    for (int i = 0; i < 10; ++i) {
        text += fmt::format("[templates.db-{}]\nimage = \"postgres:16\"\nmax_ttl = \"12h\"\n"
                            "labels = {{ tier = \"dev\" }}\n",
                            i);
    }
    text += "[templates.web-0]\nimage = \"nginx:1.25\"\n";
    text += "[templates.prod-0]\nimage = \"postgres:16\"\n";
    return text;
}

// Deny rules that never match alice's request but are checked on every decision.
std::string decision_denies(std::size_t count) {
    std::string text;
    for (std::size_t i = 0; i < count; ++i) {
        text += fmt::format("[[deny]]\nname = \"deny-{}\"\nmembers = [\"group:contractors-{}\"]\n"
                            "templates = [\"prod-*\"]\nreason = \"production data\"\n",
                            i, i);
    }
    return text;
}

std::string role_members(Shape shape, std::size_t index, std::size_t count) {
    const bool has_alice = shape == Shape::none_match_member || shape == Shape::all_match ||
                           (shape == Shape::last_matches && index + 1 == count);
    return has_alice ? fmt::format("[\"group:team-{}\", \"group:dev\"]", index)
                     : fmt::format("[\"group:team-{}\", \"user:user-{}\"]", index, index);
}

// One role. Every 7th role also requires the label tier=dev and every 10th a window that is
// always open, so some matches carry condition notes and a time zone lookup.
std::string decision_role(Shape shape, std::size_t index, std::size_t count) {
    const std::string_view templates =
        shape == Shape::none_match_member ? "[\"web-*\"]" : "[\"db-*\"]";
    std::string text = fmt::format("[[roles]]\nname = \"role-{}\"\nmembers = {}\n"
                                   "templates = {}\nmax_ttl = \"{}h\"\n",
                                   index, role_members(shape, index, count), templates,
                                   1 + index % 8);
    if (index % 7 == 0) {
        text += "template_labels = { tier = \"dev\" }\n";
    }
    if (index % 10 == 0) {
        text += "when = { days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", "
                "\"sun\"], timezone = \"Europe/Berlin\" }\n";
    }
    return text;
}

std::string decision_policy_text(Shape shape, std::size_t role_count) {
    std::string text = decision_templates();
    text += decision_denies(std::max<std::size_t>(5, role_count / 100));
    for (std::size_t i = 0; i < role_count; ++i) {
        text += decision_role(shape, i, role_count);
    }
    return text;
}

jitbox::Config parse_or_throw(std::string_view text, std::string_view path) {
    auto config = jitbox::parse_config(text, path);
    if (!config) {
        throw std::runtime_error("the generated policy is invalid: " + config.error().message);
    }
    return std::move(config).value();
}

// ---- the large file that loading is timed against ----

std::string large_template(std::size_t index) {
    return fmt::format(
        "[templates.svc-{0}]\nprovider = \"docker\"\nimage = \"postgres:16\"\n"
        "command = [\"sleep\", \"infinity\"]\nenv = {{ APP_ENV = \"test\", APP_INDEX = \"{0}\" }}\n"
        "workdir = \"/srv\"\nuser = \"999:999\"\nnetwork = \"isolated\"\nports = [\"5432\"]\n"
        "read_only = true\ncap_add = [\"NET_ADMIN\"]\ncpus = 1.5\nmemory = \"512MiB\"\n"
        "pids_limit = 256\nmounts = [{{ source = \"./fixtures/{0}\", target = \"/fixtures\" }}]\n"
        "labels = {{ team = \"team-{1}\", tier = \"dev\" }}\nstop_timeout = \"10s\"\n"
        "ttl = \"30m\"\nmax_ttl = \"8h\"\n\n",
        index, index % 50);
}

std::string large_role(std::size_t index, std::size_t template_count) {
    std::string text = fmt::format(
        "[[roles]]\nname = \"role-{0}\"\n"
        "members = [\"group:team-{1}\", \"user:user-{0}\", \"uid:{2}\"]\n"
        "templates = [\"svc-{3}\", \"svc-{4}*\"]\nactions = [\"up\", \"down\", \"extend\"]\n"
        "ttl = \"1h\"\nmax_ttl = \"{5}h\"\nmax_active = 3\nrequire_reason = {6}\n",
        index, index % 50, 10000 + index, index % template_count,
        (index * 7 + 3) % template_count, 1 + index % 8, index % 2 == 0);
    if (index % 5 == 0) {
        text += "when = { days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"], "
                "hours = \"08:00-19:00\", timezone = \"Europe/Berlin\" }\n";
    }
    if (index % 3 == 0) {
        text += "template_labels = { tier = \"dev\" }\n";
    }
    return text + "\n";
}

// A jitbox.toml of at least `target_bytes`: one template per 1,400 bytes of the target, then
// roles that name them until the text reaches the target, then 20 deny rules.
std::string large_config_text(std::size_t target_bytes) {
    const std::size_t template_count = std::max<std::size_t>(1, target_bytes / 1400);
    std::string text = "default_template = \"svc-0\"\n\n[policy]\nmax_ttl = \"1d\"\n\n";
    for (std::size_t i = 0; i < template_count; ++i) {
        text += large_template(i);
    }
    for (std::size_t i = 0; text.size() < target_bytes; ++i) {
        text += large_role(i, template_count);
    }
    for (std::size_t i = 0; i < 20; ++i) {
        text += fmt::format("[[deny]]\nname = \"deny-{}\"\nmembers = [\"group:contractors\"]\n"
                            "templates = [\"svc-{}\"]\nreason = \"frozen\"\n\n",
                            i, i % template_count);
    }
    return text;
}

// A new folder under the system temp folder, removed with its content on destruction.
class TempDir {
public:
    TempDir() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "jitbox-bench-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            throw std::runtime_error("failed to create a temp folder from " + pattern);
        }
        m_path = pattern;
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(m_path, ignored);
    }

    const std::filesystem::path& path() const { return m_path; }

private:
    std::filesystem::path m_path;
};

void write_file(const std::filesystem::path& path, std::string_view text) {
    std::ofstream file(path, std::ios::binary);
    file.write(text.data(), static_cast<std::streamsize>(text.size()));
    if (!file.flush()) {
        throw std::runtime_error("failed to write " + path.string());
    }
}

// The request that `jitbox` makes for a project file named with --config, with a system file
// and a trusted-keys folder that do not exist.
jitbox::LayeredConfigRequest layered_request(const std::filesystem::path& dir) {
    jitbox::LayeredConfigRequest request;
    request.project.explicit_path = dir / "jitbox.toml";
    request.system_path = dir / "no-system-jitbox.toml";
    request.trusted_keys_dir = dir / "no-trusted-keys";
    request.required_owner = ::geteuid();
    return request;
}

// ---- running the cases ----

struct DecisionRow {
    std::string case_name;
    std::size_t roles;
    Summary summary;
};

jitbox::Requester bench_requester() {
    return jitbox::Requester{1001, "alice", {"alice", "dev"}, "host", {}};
}

DecisionRow run_decision_case(const ShapeInfo& info, std::size_t role_count,
                              const SampleCount& count) {
    const jitbox::Config config =
        parse_or_throw(decision_policy_text(info.shape, role_count), "jitbox.toml");
    const std::vector<jitbox::PolicyLayer> layers{{"jitbox.toml", config.policy}};
    const jitbox::Requester requester = bench_requester();
    jitbox::AccessRequest request;
    request.spec = &config.templates.at("db-0");
    request.reason = "benchmark";
    request.now = jitbox::value_or_throw(jitbox::parse_rfc3339("2026-03-30T10:00:00Z"));

    const jitbox::Decision check = jitbox::evaluate(layers, requester, request);
    if (check.allowed != info.allowed) {
        throw std::runtime_error(fmt::format("case \"{}\" with {} roles decided {}: {}", info.name,
                                             role_count, check.allowed ? "allowed" : "denied",
                                             check.message));
    }
    std::size_t explanation_lines = 0;
    const Summary summary = measure(count, CpuTime::skip, [&] {
        explanation_lines += jitbox::evaluate(layers, requester, request).explanation.size();
    });
    // Reading the sum keeps the calls from being optimized away.
    if (explanation_lines == 0) {
        throw std::runtime_error("evaluate() returned no explanation");
    }
    return DecisionRow{std::string(info.name), role_count, summary};
}

void print_decision_table(const std::vector<DecisionRow>& rows) {
    fmt::print("One evaluate() decision. Each policy also has 1 deny rule per 100 roles (at "
               "least 5), and none of them matches.\n\n");
    fmt::print("{:<32} {:>7} {:>11} {:>11} {:>13} {:>8}\n", "case", "rules", "median", "p95",
               "decisions/s", "samples");
    for (const DecisionRow& row : rows) {
        fmt::print("{:<32} {:>7} {:>11} {:>11} {:>13.0f} {:>8}\n", row.case_name, row.roles,
                   format_time(row.summary.median_ns), format_time(row.summary.p95_ns),
                   1e9 / row.summary.median_ns, row.summary.samples);
    }
}

const DecisionRow& find_row(const std::vector<DecisionRow>& rows, std::string_view case_name,
                            std::size_t roles) {
    return *std::find_if(rows.begin(), rows.end(), [&](const DecisionRow& row) {
        return row.case_name == case_name && row.roles == roles;
    });
}

// Prints, for each shape, whether 10,000 roles stay under the budget, and how the median
// grows from 1,000 to 10,000 roles (10 when the cost grows linearly).
void print_decision_budget(const std::vector<DecisionRow>& rows) {
    fmt::print("\nBudget: one decision over 10,000 roles under 1 ms, growing at most linearly\n");
    for (const ShapeInfo& info : k_shapes) {
        const DecisionRow& large = find_row(rows, info.name, 10000);
        const DecisionRow& medium = find_row(rows, info.name, 1000);
        fmt::print("  {:<32} median {:>10}  {:<6}  growth 1,000 -> 10,000 roles: x{:.1f}\n",
                   info.name, format_time(large.summary.median_ns),
                   large.summary.median_ns < k_decision_budget_ns ? "met" : "MISSED",
                   large.summary.median_ns / medium.summary.median_ns);
    }
}

struct LoadRow {
    std::string_view case_name;
    Summary summary;
};

// Times the whole load as `jitbox` does it, parse_config alone, and toml++ alone.
std::vector<LoadRow> measure_loads(const std::string& text, const SampleCount& count) {
    const TempDir dir;
    write_file(dir.path() / "jitbox.toml", text);
    const jitbox::LayeredConfigRequest request = layered_request(dir.path());
    const std::string source_name = "bench/jitbox.toml";

    std::vector<LoadRow> rows;
    rows.push_back({"load_layered_config (from disk)", measure(count, CpuTime::record, [&] {
                        if (!jitbox::load_layered_config(request)) {
                            throw std::runtime_error("load_layered_config failed");
                        }
                    })});
    rows.push_back({"parse_config (toml++ and checks)", measure(count, CpuTime::record, [&] {
                        if (!jitbox::parse_config(text, source_name)) {
                            throw std::runtime_error("parse_config failed");
                        }
                    })});
    rows.push_back({"toml::parse alone", measure(count, CpuTime::record, [&] {
                        const toml::table table = toml::parse(std::string_view(text), source_name);
                        if (table.empty()) {
                            throw std::runtime_error("toml::parse returned an empty table");
                        }
                    })});
    return rows;
}

void print_load_table(const std::string& text, const std::vector<LoadRow>& rows) {
    const jitbox::Config config = parse_or_throw(text, "bench/jitbox.toml");
    const double mebibytes = static_cast<double>(text.size()) / (1024.0 * 1024.0);
    fmt::print("\nLoading a generated jitbox.toml of {:.2f} MiB: {} templates, {} roles, {} deny "
               "rules:\n\n",
               mebibytes, config.templates.size(), config.policy.roles.size(),
               config.policy.denies.size());
    fmt::print("{:<34} {:>11} {:>11} {:>11} {:>7} {:>5}\n", "case", "median", "p95",
               "CPU median", "MiB/s", "runs");
    for (const LoadRow& row : rows) {
        const Summary& summary = row.summary;
        fmt::print("{:<34} {:>11} {:>11} {:>11} {:>7.1f} {:>5}\n", row.case_name,
                   format_time(summary.median_ns), format_time(summary.p95_ns),
                   format_time(summary.cpu_median_ns), mebibytes / (summary.median_ns / 1e9),
                   summary.samples);
    }
}

// Wall-clock time includes waiting for a core on a busy machine, so CPU time is shown as well.
void print_load_budget(const Summary& load) {
    const auto verdict = [](double nanoseconds) {
        return nanoseconds < k_load_budget_ns ? "met" : "MISSED";
    };
    fmt::print("\nBudget: load_layered_config of a 1 MiB file under 100 ms: wall median {} ({}), "
               "CPU median {} ({})\n",
               format_time(load.median_ns), verdict(load.median_ns),
               format_time(load.cpu_median_ns), verdict(load.cpu_median_ns));
}

void run_load_cases(RunMode mode) {
    const std::size_t target_bytes = mode == RunMode::smoke ? 32 * 1024 : 1024 * 1024;
    const SampleCount count = mode == RunMode::smoke ? SampleCount{3, 3, 0} : SampleCount{9, 9, 0};
    const std::string text = large_config_text(target_bytes);
    const std::vector<LoadRow> rows = measure_loads(text, count);
    print_load_table(text, rows);
    if (mode == RunMode::full) {
        print_load_budget(rows.front().summary);
    }
}

void run_decision_cases(RunMode mode) {
    const SampleCount count = mode == RunMode::smoke ? SampleCount{3, 3, 0}
                                                     : SampleCount{50, 20000, 0.5};
    std::vector<DecisionRow> rows;
    for (const ShapeInfo& info : k_shapes) {
        for (const std::size_t roles : k_role_counts) {
            rows.push_back(run_decision_case(info, roles, count));
        }
    }
    print_decision_table(rows);
    if (mode == RunMode::full) {
        print_decision_budget(rows);
    }
}

} // namespace

int main(int argc, char** argv) {
    RunMode mode = RunMode::full;
    for (int i = 1; i < argc; ++i) {
        const std::string_view argument = argv[i];
        if (argument == "--smoke") {
            mode = RunMode::smoke;
        } else {
            std::fprintf(stderr,
                         "jitbox_policy_bench: error: unknown argument \"%s\", the only option "
                         "is --smoke\n",
                         argv[i]);
            return 2;
        }
    }
    try {
        if (mode == RunMode::smoke) {
            fmt::print("Smoke run: 3 samples per case; the figures are not measurements.\n\n");
        }
        run_decision_cases(mode);
        run_load_cases(mode);
    } catch (const std::exception& error) {
        std::fprintf(stderr, "jitbox_policy_bench: error: %s\n", error.what());
        return 1;
    }
    return 0;
}
