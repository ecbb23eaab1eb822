#pragma once

// Shared by the files in src/cli: the options every subcommand accepts and the lazily built
// services behind them. One file per subcommand registers it on the CLI::App.

#include "progress.hpp"

#include "jitbox/config/config.hpp"
#include "jitbox/enforced/mode.hpp"
#include "jitbox/lifecycle/lifecycle.hpp"
#include "jitbox/policy/layers.hpp"
#include "jitbox/providers/aws.hpp"
#include "jitbox/providers/factory.hpp"
#include "jitbox/secrets/store.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace jitbox::cli {

/// Flags accepted before and after any subcommand.
struct GlobalOptions {
    std::string config_path;
    bool json = false;
    int verbosity = 0;
    bool quiet = false;
};

/// The keyring backends of this process, each opened on first use and kept open (keyring.cpp).
class SecretStores {
public:
    /// `configured` returns the configuration's keyring.backend. It is called only when a
    /// backend is chosen, so a command that names none never loads the configuration for it.
    explicit SecretStores(std::function<std::string()> configured);

    /// Opens the backend named `backend`, ignoring JITBOX_KEYRING, or with an empty name the
    /// one JITBOX_KEYRING, then the configuration, then auto chooses. `-v` logs the choice.
    Result<SecretStore*> open(std::string_view backend);

private:
    std::function<std::string()> m_configured;
    std::map<std::string, std::unique_ptr<SecretStore>> m_open; // by backend name
    std::string m_default; // the backend an empty name chose, once it is open
};

/// The services a subcommand needs, built on first use so that `--help` and `templates` never touch
/// the engine or the state folder.
class Context {
public:
    explicit Context(const GlobalOptions& options) : m_options(options) {}

    const GlobalOptions& options() const { return m_options; }
    /// The effective configuration: the system file and the project file, layered.
    const LoadedConfig& loaded();
    /// The merged templates of loaded().
    const Config& config();
    /// The project file lookup, from --config, JITBOX_CONFIG and the working folder.
    ConfigRequest project_request() const;
    /// The caller's records: the state folder, or the caller's folder inside a shared one.
    const StateStore& store();
    /// Whether the state folder is the caller's alone or, in enforced mode, shared by every
    /// user.
    StateLayout state_layout() const;
    /// The state folder itself, which contains the audit log.
    const std::filesystem::path& state_root();
    /// The audit log: /var/log/jitbox/audit.log in enforced mode, else audit.log in
    /// state_root().
    std::filesystem::path audit_log_path();
    /// A lifecycle over `owner`'s records, for `status --all-users` and `down --user`. It
    /// decides and audits as the caller. For the caller's own name it is lifecycle().
    Lifecycle& lifecycle_of(const std::string& owner);
    /// The keyring backends, opened on first use.
    SecretStores& secret_stores();
    /// The sandbox that `name` means: the sandbox of that name, or else this user's only
    /// sandbox of the template of that name, so `jitbox up db` can be followed by
    /// `jitbox exec db`. Several sandboxes of the template are a usage error listing them;
    /// anything else is returned unchanged for the command to report.
    std::string resolve_sandbox_name(const std::string& name);
    /// The engines and APIs that sandboxes run on, as the environment names them.
    ProviderFactory& providers();
    /// The lifecycle; `interrupted` returns true once the user has asked `up` to stop.
    Lifecycle& lifecycle(std::function<bool()> interrupted = [] { return false; });

    /// The output capabilities of standard error, detected once.
    const StderrStyle& stderr_style();
    /// Draws on the progress line of a terminal; does nothing with --quiet or --json, or when
    /// standard error is not a terminal.
    ProgressFn progress();
    /// Erases the progress line, before anything else is printed on standard error.
    void end_progress();

    /// The status run_cli returns when the subcommand ends without an exception: 0 unless a
    /// subcommand passes on a command's exit code, as `exec` and `shell` do.
    int exit_status() const { return m_exit_status; }
    void set_exit_status(int status) { m_exit_status = status; }

    /// A notice on stderr, unless --quiet.
    template <typename... Args>
    void notice(fmt::format_string<Args...> format, Args&&... args) {
        if (!m_options.quiet) {
            end_progress();
            fmt::print(stderr, "{}\n", fmt::format(format, std::forward<Args>(args)...));
        }
    }

private:
    const GlobalOptions& m_options;
    std::optional<StderrStyle> m_stderr_style;
    std::shared_ptr<ProgressDisplay> m_progress;
    std::optional<LoadedConfig> m_loaded;
    std::optional<StateStore> m_store;
    std::optional<AuditLog> m_audit;
    std::unique_ptr<EnvironmentProviderFactory> m_providers;
    std::unique_ptr<SystemClock> m_clock;
    std::unique_ptr<ProcessSupervisor> m_children;
    std::unique_ptr<SecretStores> m_secret_stores;
    std::unique_ptr<Lifecycle> m_lifecycle;
    std::optional<std::filesystem::path> m_state_root;
    // Another owner's records, with the supervisor and lifecycle that work on them.
    struct OwnerServices {
        StateStore store;
        std::unique_ptr<ProcessSupervisor> children;
        std::unique_ptr<Lifecycle> lifecycle;
    };
    std::map<std::string, std::unique_ptr<OwnerServices>> m_other_owners;
    int m_exit_status = 0;
};

void register_up(CLI::App& app, Context& context);
void register_down(CLI::App& app, Context& context);
void register_status(CLI::App& app, Context& context);
void register_extend(CLI::App& app, Context& context);
void register_templates(CLI::App& app, Context& context);
void register_reap(CLI::App& app, Context& context);
void register_policy(CLI::App& app, Context& context);
void register_gc(CLI::App& app, Context& context);
void register_audit(CLI::App& app, Context& context);
void register_creds(CLI::App& app, Context& context);
void register_env(CLI::App& app, Context& context);
void register_exec(CLI::App& app, Context& context);
void register_doctor(CLI::App& app, Context& context);
void register_metrics(CLI::App& app, Context& context);
void register_shell(CLI::App& app, Context& context);
void register_logs(CLI::App& app, Context& context);
void register_setup(CLI::App& app, Context& context);

/// The audit log: Context::audit_log_path() (audit.cpp).
std::filesystem::path audit_log_path(Context& context);
/// The defaults of guardrails that the system file leaves unset: strict in enforced mode, where
/// the system policy is the only door, and permissive elsewhere.
GuardrailDefaults active_guardrail_defaults();
/// Reads every line of the audit log at `path` that is a JSON object. Other lines are skipped
/// with one warning on stderr.
std::vector<nlohmann::json> read_audit_records(const std::filesystem::path& path);

/// The text of `--version`: the version and this build's features, one per line, or as a JSON
/// object with `json` (version.cpp).
std::string version_text(bool json);

/// Returns a function that reads an MFA code from one line of standard input (`from_stdin`) or
/// from a prompt on the controlling terminal, waiting at most two minutes. `interrupted` ends
/// the wait early (mfa.cpp).
MfaCodeFn make_mfa_source(bool from_stdin, std::function<bool()> interrupted = [] {
    return false;
});

// What a sandbox hands to local programs (sandbox_env.cpp).

/// Set in the environment that `env` and `exec` give out, to the sandbox's name, so that a
/// nested `exec` notices it runs inside another sandbox's credentials.
inline constexpr const char* k_sandbox_marker = "JITBOX_SANDBOX";

/// Variables that would make AWS tools prefer a profile over the session's credentials.
inline const std::vector<std::string> k_aws_profile_variables = {"AWS_PROFILE",
                                                                 "AWS_DEFAULT_PROFILE"};

/// The variables to set, in order, and those to unset.
struct SandboxEnvironment {
    std::vector<std::pair<std::string, std::string>> set;
    std::vector<std::string> unset;
};

/// The AWS session of aws-sts sandbox `name`, renewed when needed (Lifecycle::aws_session).
AwsSession current_aws_session(Context& context, const std::string& name,
                               const MfaCodeFn& mfa_code);

/// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_SESSION_EXPIRATION,
/// AWS_REGION and AWS_DEFAULT_REGION for `session`.
std::vector<std::pair<std::string, std::string>> aws_session_variables(const AwsSession& session);

/// An aws-sts sandbox's session variables, or a docker sandbox's generated secrets, plus
/// JITBOX_SANDBOX. Fails with ExitCode::usage for a sandbox with neither.
SandboxEnvironment sandbox_environment(Context& context, const std::string& name,
                                       const MfaCodeFn& mfa_code);

/// Returns the values of the sandbox's keyring items by key: the one `key`, or all of them
/// when `key` is empty. Items are found by the record's id. Throws ExitCode::locked for a
/// locked keyring and ExitCode::not_found when there is no such item (creds.cpp).
std::map<std::string, std::string>
read_sandbox_values(SecretStore& store, const SandboxRecord& record, const std::string& key);

/// `value` in single quotes, safe for a POSIX shell's eval.
std::string shell_quote(std::string_view value);

/// The request attributes that the layers' `attributes_from_env` name, read from the
/// environment; policy explanations mark them as spoofable.
std::map<std::string, std::string> policy_attributes(const std::vector<PolicyLayer>& layers);

/// False for the commands that must print no expiry warning: internal ones and
/// `status --prompt`.
bool wants_expiry_warning(CLI::App& app);

/// One line for a command-line error that names an unknown subcommand or option and the
/// closest known one (usage_errors.cpp).
std::string describe_parse_error(const CLI::App& app, const CLI::ParseError& error);

/// Prints one line on stderr in enforced mode that names the ignored variables of `report` and
/// a `--config` option in `argv`, when there are any.
void report_ignored_inputs(const enforced::StartReport& report, int argc, char** argv);

/// Adds the shared flags to `app`; subcommands see them through fallthrough.
void add_global_options(CLI::App& app, GlobalOptions& options);

// Deadlines from the state records alone (expiry.cpp).

/// Prints one warning line on a terminal's standard error, unless --quiet, when one of the
/// user's sandboxes has less than 5 minutes left: the soonest one, with the `extend` command.
void warn_about_expiry(Context& context);
/// `status --prompt`: "NAME TIME" for the running sandbox with the least time left, with
/// ",+N" for the N others, or nothing when none runs.
void print_prompt_segment(Context& context);

// Output helpers (output.cpp).
bool is_terminal(int fd);
/// "45m", "1h30m", or "expired" for a deadline in the past.
std::string format_time_left(TimePoint deadline, TimePoint now);
nlohmann::json status_to_json(const SandboxStatus& status);
/// Prints rows as left-aligned columns separated by three spaces, header first.
void print_table(const std::vector<std::vector<std::string>>& rows);
/// A CLI11 validator for durations such as 30m, so bad values are usage errors that name the
/// value.
CLI::Validator duration_validator();
Seconds parse_duration_or_throw(const std::string& text, const std::string& option);
/// A CLI11 validator that rejects a negative number; the option's type checks the rest.
CLI::Validator non_negative_validator();
/// The time `text` means for `option`: a duration back from `now`, such as 2h, or an RFC 3339
/// time. ExitCode::usage for anything else.
TimePoint parse_since(const std::string& text, TimePoint now, std::string_view option);

} // namespace jitbox::cli
