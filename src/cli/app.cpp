#include "jitbox/cli/app.hpp"

#include "commands.hpp"
#include "jitbox/cli/complete.hpp"
#include "jitbox/enforced/config.hpp"
#include "jitbox/enforced/mode.hpp"
#include "jitbox/util/log.hpp"

#include <filesystem>
#include <fmt/ranges.h>
#include <unistd.h>

namespace jitbox::cli {

namespace {

constexpr const char* k_engine_help =
    R"(Engine: DOCKER_HOST, else the first socket that exists of /var/run/docker.sock,
  $XDG_RUNTIME_DIR/docker.sock, $XDG_RUNTIME_DIR/podman/podman.sock and, as root,
  /run/podman/podman.sock. Docker and Podman both work; -v names the engine in use.

)";

constexpr const char* k_exit_codes_help = R"(Exit codes:
  0  success
  1  internal error
  2  usage or configuration error, such as a config file that others may change or a named
     keyring backend that does not work
  3  provider failure: the Docker or Podman engine failed, could not be reached or was not found
  4  sandbox not found, or not live: expired, or being created or removed
  5  name already in use
  6  denied by policy, such as a ttl above the template's max_ttl
  7  the keyring holds the credentials but is locked; unlock it and retry
  8  checks failed: policy check --strict found warnings, a policy test case did not match,
     audit verify found a broken hash chain, or doctor found an error
  9  teardown was partial: some of the sandbox's resources still exist; it is retried
  10  status --check: the sandbox exists but is expired, being created or removed, or not
      running
  11  up --wait: the sandbox exited, became unhealthy or was not ready in time; it was removed
  125  exec or shell failed before running the command (126: cannot run it, 127: not found)
  130  interrupted (SIGINT, SIGTERM or SIGHUP) during up; what was created is removed
)";

std::optional<std::filesystem::path> env_path(const char* name) {
    const char* value = std::getenv(name);
    if (value == nullptr || value[0] == '\0') {
        return std::nullopt;
    }
    return std::filesystem::path(value);
}

} // namespace

ConfigRequest Context::project_request() const {
    ConfigRequest request;
    request.working_dir = std::filesystem::current_path();
    // Enforced mode reads no configuration that the user names.
    if (enforced::is_enforced()) {
        return request;
    }
    if (!m_options.config_path.empty()) {
        request.explicit_path = m_options.config_path;
    }
    request.env_path = env_path("JITBOX_CONFIG");
    return request;
}

const LoadedConfig& Context::loaded() {
    if (!m_loaded) {
        if (enforced::is_enforced()) {
            m_loaded =
                value_or_throw(enforced::load_enforced_config(std::filesystem::current_path()));
        } else {
            LayeredConfigRequest request;
            request.project = project_request();
            m_loaded = value_or_throw(load_layered_config(request));
        }
        for (const auto& warning : m_loaded->warnings) {
            fmt::print(stderr, "jitbox: warning: {}\n", warning);
        }
        for (const auto& layer : m_loaded->layers) {
            log_debug(1, "policy layer: {}", layer.source);
        }
        if (log_verbosity() >= 1) {
            log_debug(1, "policy digest: {}", m_loaded->digest.hex());
        }
    }
    return *m_loaded;
}

const Config& Context::config() {
    return loaded().merged;
}

const StateStore& Context::store() {
    if (!m_store) {
        std::string owner;
        if (state_layout() == StateLayout::shared) {
            owner = value_or_throw(current_identity()).user;
        }
        m_store = value_or_throw(
            StateStore::open(value_or_throw(owner_state_dir(state_root(), state_layout(), owner))));
        log_debug(1, "state folder: {}", m_store->dir().string());
    }
    return *m_store;
}

StateLayout Context::state_layout() const {
    return enforced::is_enforced() ? StateLayout::shared : StateLayout::per_user;
}

GuardrailDefaults active_guardrail_defaults() {
    return enforced::is_enforced() ? GuardrailDefaults::strict : GuardrailDefaults::permissive;
}

const std::filesystem::path& Context::state_root() {
    if (!m_state_root) {
        m_state_root = value_or_throw(default_state_dir());
    }
    return *m_state_root;
}

std::filesystem::path Context::audit_log_path() {
    if (enforced::is_enforced()) {
        return enforced::k_audit_log_path;
    }
    return state_root() / "audit.log";
}

Lifecycle& Context::lifecycle_of(const std::string& owner) {
    Lifecycle& own = lifecycle();
    if (state_layout() == StateLayout::per_user ||
        owner == value_or_throw(current_identity()).user) {
        return own;
    }
    auto& services = m_other_owners[owner];
    if (!services) {
        const auto dir = value_or_throw(owner_state_dir(state_root(), state_layout(), owner));
        services = std::make_unique<OwnerServices>(
            OwnerServices{value_or_throw(StateStore::open(dir)), nullptr, nullptr});
        services->children = std::make_unique<ProcessSupervisor>(services->store, audit_log_path());
        PolicyInputs policy{loaded().layers, loaded().digest, policy_attributes(loaded().layers)};
        LifecycleServices lifecycle_services{config(),
                                             services->store,
                                             *m_audit,
                                             providers(),
                                             *m_clock,
                                             *services->children,
                                             value_or_throw(current_identity()),
                                             progress(),
                                             std::move(policy)};
        lifecycle_services.guardrail_defaults = active_guardrail_defaults();
        lifecycle_services.open_secrets = [this](std::string_view backend) {
            return secret_stores().open(backend);
        };
        services->lifecycle = std::make_unique<Lifecycle>(std::move(lifecycle_services));
    }
    return *services->lifecycle;
}

std::string Context::resolve_sandbox_name(const std::string& name) {
    if (value_or_throw(store().find(name))) {
        return name;
    }
    std::vector<std::string> matches;
    for (const auto& record : value_or_throw(store().list())) {
        if (record.template_name == name) {
            matches.push_back(record.name);
        }
    }
    if (matches.size() > 1) {
        throw Error(ExitCode::usage,
                    fmt::format("no sandbox is named \"{}\", and {} sandboxes use the template "
                                "of that name ({}); name one of them",
                                name, matches.size(), fmt::join(matches, ", ")));
    }
    if (matches.size() == 1) {
        log_debug(1, "\"{}\" names template {}, whose only sandbox is {}", name, name,
                  matches.front());
        return matches.front();
    }
    return name;
}

const StderrStyle& Context::stderr_style() {
    if (!m_stderr_style) {
        m_stderr_style = detect_stderr_style();
    }
    return *m_stderr_style;
}

ProgressFn Context::progress() {
    if (m_options.quiet || m_options.json || !stderr_style().terminal) {
        return [](const ProgressEvent&) {};
    }
    if (!m_progress) {
        m_progress = std::make_shared<ProgressDisplay>(
            stderr_style(),
            [](std::string_view bytes) {
                std::fwrite(bytes.data(), 1, bytes.size(), stderr);
                std::fflush(stderr);
            },
            [] { return ProgressDisplay::Clock::now(); });
    }
    return [display = m_progress](const ProgressEvent& event) { display->report(event); };
}

void Context::end_progress() {
    if (m_progress) {
        m_progress->clear();
    }
}

SecretStores& Context::secret_stores() {
    if (!m_secret_stores) {
        m_secret_stores =
            std::make_unique<SecretStores>([this] { return config().keyring_backend; });
    }
    return *m_secret_stores;
}

ProviderFactory& Context::providers() {
    if (!m_providers) {
        m_providers = std::make_unique<EnvironmentProviderFactory>();
    }
    return *m_providers;
}

Lifecycle& Context::lifecycle(std::function<bool()> interrupted) {
    if (!m_lifecycle) {
        const Config& loaded = config();
        const StateStore& opened = store();
        m_audit.emplace(audit_log_path());
        m_clock = std::make_unique<SystemClock>();
        m_children = std::make_unique<ProcessSupervisor>(
            opened,
            state_layout() == StateLayout::shared ? audit_log_path() : std::filesystem::path());
        PolicyInputs policy{this->loaded().layers, this->loaded().digest,
                            policy_attributes(this->loaded().layers)};
        LifecycleServices services{loaded,
                                   opened,
                                   *m_audit,
                                   providers(),
                                   *m_clock,
                                   *m_children,
                                   value_or_throw(current_identity()),
                                   progress(),
                                   std::move(policy),
                                   std::move(interrupted)};
        services.open_secrets = [this](std::string_view backend) {
            return secret_stores().open(backend);
        };
        services.guardrail_defaults = active_guardrail_defaults();
        m_lifecycle = std::make_unique<Lifecycle>(std::move(services));
    }
    return *m_lifecycle;
}

std::map<std::string, std::string> policy_attributes(const std::vector<PolicyLayer>& layers) {
    std::map<std::string, std::string> attributes;
    for (const auto& layer : layers) {
        for (const auto& name : layer.policy.attribute_env) {
            if (const char* value = std::getenv(name.c_str()); value != nullptr) {
                attributes[name] = value;
            }
        }
    }
    return attributes;
}

void add_global_options(CLI::App& app, GlobalOptions& options) {
    app.add_option("--config", options.config_path,
                   "Configuration file (default: $JITBOX_CONFIG, else the nearest jitbox.toml "
                   "in this folder or above, else the built-in default). Rejected when group "
                   "or others may write it, or a folder above it without the sticky bit")
        ->type_name("FILE")
        ->check(CLI::Validator(
            [](std::string& value) {
                return value.empty() ? std::string("needs a file name, such as ./jitbox.toml")
                                     : std::string();
            },
            ""));
    app.add_flag("--json", options.json, "Print data as JSON");
    // A function flag, because option callbacks run before the subcommand's and the log level
    // must be set by then.
    app.add_flag_function(
        "-v,--verbose",
        [&options](std::int64_t count) {
            options.verbosity = static_cast<int>(count);
            set_log_verbosity(options.verbosity);
        },
        "Explain each step on stderr; -vv adds every API request");
    app.add_flag("-q,--quiet", options.quiet, "No notices on stderr; `status` prints names only");
}

void report_ignored_inputs(const enforced::StartReport& report, int argc, char** argv) {
    if (report.mode != enforced::RunMode::enforced) {
        return;
    }
    std::vector<std::string> ignored = report.ignored_variables;
    for (int i = 1; i < argc; ++i) {
        const std::string_view word(argv[i]);
        if (word == "--") {
            break;
        }
        if (word == "--config" || word.starts_with("--config=")) {
            ignored.insert(ignored.begin(), "--config");
            break;
        }
    }
    if (!ignored.empty()) {
        fmt::print(stderr, "jitbox: enforced mode ignores {}; it uses {} and the engine at {}\n",
                   fmt::join(ignored, ", "), enforced::k_config_path, enforced::k_engine_host);
    }
}

// Internal subcommands (`__reap` and the like) and `status --prompt`, which runs inside a
// shell prompt, print no expiry warning.
bool wants_expiry_warning(CLI::App& app) {
    for (const CLI::App* sub : app.get_subcommands()) {
        if (sub->get_name().starts_with("__")) {
            return false;
        }
        if (sub->get_name() == "status" && sub->get_option("--prompt")->count() > 0) {
            return false;
        }
    }
    return true;
}

} // namespace jitbox::cli

namespace jitbox {

int run_cli(int argc, char** argv) {
    // First, before any library reads the environment.
    cli::report_ignored_inputs(enforced::start_process(), argc, argv);

    cli::GlobalOptions options;
    cli::Context context(options);

    CLI::App app("jitbox: time-boxed sandboxes that tear themselves down", "jitbox");
    // The flag's callback runs once parsing is done, so --json is counted by then.
    app.set_version_flag(
        "--version", [&app] { return cli::version_text(app.get_option("--json")->count() > 0); },
        "Print the version and this build's providers, keyring backends and libraries, one per "
        "line (a JSON object with --json), and exit");
    app.footer(std::string(cli::k_engine_help) + cli::k_exit_codes_help);
    app.require_subcommand(1);
    app.fallthrough();
    cli::add_global_options(app, options);

    cli::register_up(app, context);
    cli::register_down(app, context);
    cli::register_status(app, context);
    cli::register_extend(app, context);
    cli::register_templates(app, context);
    cli::register_policy(app, context);
    cli::register_gc(app, context);
    cli::register_audit(app, context);
    cli::register_creds(app, context);
    cli::register_env(app, context);
    cli::register_exec(app, context);
    cli::register_doctor(app, context);
    cli::register_metrics(app, context);
    cli::register_shell(app, context);
    cli::register_logs(app, context);
    cli::register_reap(app, context);
    cli::register_setup(app, context);
    // Runs after parsing and before the subcommand, so even a command that replaces its process
    // or fails shows the warning; --help and --version end parsing before it.
    app.parse_complete_callback([&app, &context] {
        if (cli::wants_expiry_warning(app)) {
            cli::warn_about_expiry(context);
        }
    });

    // Before parsing, because the words to complete are an unfinished command line that CLI11
    // would reject.
    if (argc > 1 && std::string_view(argv[1]) == cli::k_complete_command) {
        return cli::run_complete(app, std::vector<std::string>(argv + 2, argv + argc));
    }

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& help) {
        return app.exit(help);
    } catch (const CLI::CallForAllHelp& help) {
        return app.exit(help);
    } catch (const CLI::CallForVersion& version) {
        return app.exit(version);
    } catch (const CLI::ParseError& error) {
        fmt::print(stderr, "jitbox: error: {}\n", cli::describe_parse_error(app, error));
        return static_cast<int>(ExitCode::usage);
    } catch (const Error& error) {
        context.end_progress();
        // An empty message marks an exit status that reports a result rather than an error, such
        // as `status --check`'s 4 and 10.
        if (*error.what() != '\0') {
            fmt::print(stderr, "jitbox: error: {}\n", error.what());
        }
        return static_cast<int>(error.code());
    } catch (const std::exception& error) {
        context.end_progress();
        fmt::print(stderr, "jitbox: error: {}\n", error.what());
        return static_cast<int>(ExitCode::internal);
    }
    context.end_progress();
    return context.exit_status();
}

} // namespace jitbox
