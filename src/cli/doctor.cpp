// `jitbox doctor`: gathers what the checks of doctor/doctor.hpp inspect and prints the findings.
// It changes nothing except that opening the keyring may create the file backend's folder.

#include "commands.hpp"

#include "jitbox/doctor/doctor.hpp"
#include "jitbox/enforced/keyring.hpp"
#include "jitbox/policy/signing.hpp"
#include "jitbox/providers/docker.hpp"

#include <fmt/ranges.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace jitbox::cli {

namespace {

namespace fs = std::filesystem;

// Each engine request of doctor waits at most this long, so an engine that accepts
// connections and never replies is reported in seconds.
constexpr auto k_engine_connect_timeout = std::chrono::seconds(3);
constexpr auto k_engine_request_timeout = std::chrono::seconds(5);

void append(std::vector<Finding>& findings, std::vector<Finding> more) {
    for (auto& finding : more) {
        findings.push_back(std::move(finding));
    }
}

std::optional<std::string> process_env(const std::string& name) {
    const char* value = std::getenv(name.c_str());
    return value == nullptr ? std::nullopt : std::optional<std::string>(value);
}

// ---- configuration ----------------------------------------------------------------------------

Finding system_file_finding() {
    struct stat info {};
    if (::stat(k_system_config_path, &info) != 0) {
        return make_finding("config", Severity::ok,
                            fmt::format("no system policy at {}", k_system_config_path));
    }
    Finding finding =
        make_finding("config", Severity::ok,
                     fmt::format("system policy {}: owner uid {}, mode {:04o}",
                                 k_system_config_path, info.st_uid, info.st_mode & 07777));
    finding.details = {{"path", k_system_config_path},
                       {"owner_uid", info.st_uid},
                       {"mode", fmt::format("{:04o}", info.st_mode & 07777)}};
    return finding;
}

// The signature of the project file, when it has one. An invalid signature that nothing
// requires is a warning, because load_layered_config has already rejected a required one.
std::optional<Finding> signature_finding(const fs::path& project) {
    std::error_code error;
    if (project.empty() || !fs::exists(signature_path(project), error)) {
        return std::nullopt;
    }
    auto verified = verify(project, k_trusted_keys_dir);
    if (!verified) {
        return make_finding("config", Severity::warning,
                            fmt::format("{} has a signature that does not verify: {}",
                                        project.string(), verified.error().message),
                            fmt::format("sign it again with `jitbox policy sign --key KEY {}`, or "
                                        "remove {}",
                                        project.string(), signature_path(project).string()));
    }
    return make_finding(
        "config", Severity::ok,
        fmt::format("{} is signed by trusted key {}", project.string(), verified->key.fingerprint));
}

std::string config_fix(const Failure& failure) {
    if (failure.code == ExitCode::denied) {
        return "have a trusted key sign the file with `jitbox policy sign`, or restore the "
               "signed version";
    }
    return "correct the file at the position named, then run `jitbox policy check`";
}

std::vector<Finding> check_config(Context& context, std::optional<LoadedConfig>& loaded) {
    std::vector<Finding> findings;
    LayeredConfigRequest request;
    request.project = context.project_request();
    auto result = load_layered_config(request);
    if (!result) {
        findings.push_back(make_finding("config", Severity::error, result.error().message,
                                        config_fix(result.error())));
        return findings;
    }
    loaded = std::move(result).value();

    std::vector<std::string> sources;
    for (const auto& layer : loaded->layers) {
        sources.push_back(layer.source);
    }
    Finding valid =
        make_finding("config", Severity::ok,
                     fmt::format("{} template(s), policy from {}", loaded->merged.templates.size(),
                                 fmt::join(sources, ", ")));
    valid.details = {{"sources", sources}, {"policy_digest", loaded->digest.hex()}};
    findings.push_back(std::move(valid));
    for (const auto& warning : loaded->warnings) {
        findings.push_back(make_finding("config", Severity::warning, warning,
                                        "correct or remove the file that the warning names"));
    }
    findings.push_back(system_file_finding());
    auto project = find_config(request.project);
    if (auto signature = signature_finding(project ? *project : fs::path())) {
        findings.push_back(std::move(*signature));
    }
    return findings;
}

// ---- engine -----------------------------------------------------------------------------------

// Resolves the engine as the docker provider does (DOCKER_HOST, else the first engine socket
// that exists) and requests its versions and clock.
EngineProbe probe_engine(ProviderFactory& factory, std::string& docker_host) {
    Template docker;
    docker.provider = "docker";
    auto location = factory.locate(docker);
    if (!location) {
        return EngineProbe{std::nullopt, location.error().message,
                           "start Docker or Podman, or set DOCKER_HOST to the engine's address"};
    }
    docker_host = location->endpoint;
    auto endpoint = docker_endpoint(docker_host, process_env);
    if (!endpoint) {
        return EngineProbe{std::nullopt, endpoint.error().message,
                           "correct DOCKER_HOST, or unset it to search the default sockets"};
    }
    auto client = make_curl_client(*endpoint, k_engine_connect_timeout);
    SystemClock clock;
    return probe_docker_engine(*client, endpoint->describe(), k_engine_request_timeout, clock);
}

// ---- keyring ----------------------------------------------------------------------------------

bool needs_keyring(const Config& config) {
    for (const auto& [name, spec] : config.templates) {
        if (!spec.secrets.empty() || spec.provider == "aws-sts") {
            return true;
        }
    }
    return false;
}

Finding check_keyring(const std::optional<LoadedConfig>& loaded) {
    const std::string configured = loaded ? loaded->merged.keyring_backend : "";
    // Without a valid configuration, assume a template may need the keyring.
    const bool needed = !loaded || needs_keyring(loaded->merged);
    // Enforced mode skips the Secret Service, and the finding and its probes give the reason.
    if (enforced::is_enforced()) {
        Finding finding = keyring_finding(
            enforced::open_user_keyring(configured, ChoiceSource::configuration), needed);
        if (!finding.fix.empty()) {
            finding.fix = fmt::format("allow the keyctl system call for the kernel keyring, or "
                                      "log in so that /run/user/{} exists for the file backend",
                                      enforced::process_ids().real_uid);
        }
        return finding;
    }
    return keyring_finding(open_secret_store(configured, process_env), needed);
}

// ---- sandboxes --------------------------------------------------------------------------------

struct RecordScan {
    std::vector<SandboxRecord> records;
    std::vector<Finding> damaged;
};

// Reads the records without StateStore, which would create the folders, tighten their modes
// and remove stale temp files, all of which doctor reports instead.
RecordScan read_records(const fs::path& dir) {
    RecordScan scan;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(dir / "sandboxes", error)) {
        const fs::path& path = entry.path();
        if (path.extension() != ".json" || !is_valid_sandbox_name(path.stem().string())) {
            continue;
        }
        std::ifstream file(path);
        std::string text{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
        auto record = record_from_json(text);
        if (!record) {
            scan.damaged.push_back(make_finding(
                "sandbox", Severity::error,
                fmt::format("record {} is damaged: {}", path.string(), record.error().message),
                fmt::format("remove it after checking `docker ps --filter "
                            "label=io.jitbox.name={}`",
                            path.stem().string())));
            continue;
        }
        scan.records.push_back(std::move(record).value());
    }
    std::sort(scan.records.begin(), scan.records.end(),
              [](const auto& left, const auto& right) { return left.name < right.name; });
    return scan;
}

// The sandbox ids that each engine or API of the records has resources for. An engine that
// could not be asked, or whose provider lists nothing, is missing from the map.
std::map<std::string, std::set<std::string>>
list_engines(ProviderFactory& factory, const std::vector<SandboxRecord>& records,
             const std::optional<std::string>& unreachable_docker_host) {
    std::map<std::string, std::set<std::string>> listed;
    std::set<std::string> tried;
    for (const auto& record : records) {
        const std::string key = record.provider + " " + record.endpoint + " " + record.region;
        const bool known_down =
            record.provider == "docker" && record.endpoint == unreachable_docker_host;
        if (known_down || !tried.insert(key).second) {
            continue;
        }
        auto provider = factory.make(record.provider, {record.endpoint, record.region});
        if (!provider || !(*provider)->lists_resources()) {
            continue;
        }
        auto resources = (*provider)->list_labelled(ListScope::containers);
        if (!resources) {
            continue;
        }
        auto& ids = listed[key];
        for (const auto& resource : *resources) {
            if (auto id = resource.labels.find(k_label_sandbox); id != resource.labels.end()) {
                ids.insert(id->second);
            }
        }
    }
    return listed;
}

std::vector<Finding> check_sandboxes(const fs::path& dir, ProviderFactory& factory,
                                     const std::optional<std::string>& unreachable_docker_host) {
    RecordScan scan = read_records(dir);
    std::vector<Finding> findings = std::move(scan.damaged);
    auto listed = list_engines(factory, scan.records, unreachable_docker_host);
    const TimePoint now = SystemClock().now();
    for (auto& record : scan.records) {
        SandboxObservation observed{record, observe_child(dir, record.name), std::nullopt};
        auto engine = listed.find(record.provider + " " + record.endpoint + " " + record.region);
        if (engine != listed.end()) {
            observed.on_engine = engine->second.count(record.id) > 0;
        }
        findings.push_back(sandbox_finding(observed, now));
    }
    if (findings.empty()) {
        findings.push_back(make_finding("sandbox", Severity::ok, "no sandboxes"));
    }
    return findings;
}

// ---- the command ------------------------------------------------------------------------------

// The mode, and in enforced mode the ids that it switches between.
Finding mode_finding() {
    if (!enforced::is_enforced()) {
        return make_finding("mode", Severity::ok, "mode: user");
    }
    const auto& ids = enforced::process_ids();
    Finding finding =
        make_finding("mode", Severity::ok,
                     fmt::format("mode: enforced (requester uid {}, set-id uid {} and gid {})",
                                 ids.real_uid, ids.elevated_uid, ids.elevated_gid));
    finding.details = {{"mode", "enforced"},
                       {"real_uid", ids.real_uid},
                       {"elevated_uid", ids.elevated_uid},
                       {"elevated_gid", ids.elevated_gid}};
    return finding;
}

// The state folder, the audit log and the sandboxes, each read as their owner: the jitbox
// account in enforced mode, else this user.
void check_state(const fs::path& state_dir, EnvironmentProviderFactory& factory,
                 const std::optional<std::string>& unreachable, std::vector<Finding>& findings) {
    const enforced::ElevatedScope elevated;
    const uid_t owner = enforced::is_enforced() ? enforced::process_ids().elevated_uid : ::getuid();
    const auto now = fs::file_time_type::clock::now();
    append(findings, check_state_folder(state_dir, owner, now));
    append(findings, check_audit_log(enforced::audit_log_path(state_dir), owner));
    append(findings, check_sandboxes(state_dir, factory, unreachable));
}

DoctorReport run_checks(Context& context) {
    DoctorReport report;
    auto& findings = report.findings;
    findings.push_back(mode_finding());

    std::optional<LoadedConfig> loaded;
    append(findings, check_config(context, loaded));

    EnvironmentProviderFactory factory;
    std::string docker_host;
    EngineProbe engine = probe_engine(factory, docker_host);
    findings.push_back(engine_finding(engine));
    if (engine.info) {
        findings.push_back(clock_finding(*engine.info));
    }

    findings.push_back(check_keyring(loaded));

    auto state_dir = default_state_dir();
    if (!state_dir) {
        findings.push_back(make_finding("state", Severity::error, state_dir.error().message,
                                        "set HOME or XDG_STATE_HOME to an absolute path"));
    } else {
        auto unreachable = engine.info ? std::nullopt : std::optional<std::string>(docker_host);
        check_state(*state_dir, factory, unreachable, findings);
    }

    std::error_code error;
    fs::path executable = fs::read_symlink("/proc/self/exe", error);
    append(findings, check_install(install_share_dirs(executable)));
    return report;
}

bool use_colour() {
    const char* no_colour = std::getenv("NO_COLOR");
    return (no_colour == nullptr || no_colour[0] == '\0') && is_terminal(STDOUT_FILENO);
}

void run_doctor(Context& context) {
    DoctorReport report = run_checks(context);
    if (context.options().json) {
        fmt::print("{}\n", report_to_json(report).dump(2));
    } else if (is_terminal(STDOUT_FILENO)) {
        fmt::print("{}", format_table(report, use_colour()));
    } else {
        fmt::print("{}", format_plain(report));
    }
    const std::size_t errors = report.count(Severity::error);
    if (errors > 0) {
        std::fflush(stdout);
        throw Error(ExitCode::checks_failed,
                    fmt::format("doctor found {} error{}; each line above names its fix", errors,
                                errors == 1 ? "" : "s"));
    }
}

} // namespace

void register_doctor(CLI::App& app, Context& context) {
    CLI::App* doctor = app.add_subcommand(
        "doctor", "Check the engine, keyring, state folder, audit log, configuration, live "
                  "sandboxes, clock and installed files; exit 8 when a check found an error");
    doctor->callback([&context] { run_doctor(context); });
}

} // namespace jitbox::cli
