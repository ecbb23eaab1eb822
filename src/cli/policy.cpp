// `jitbox policy`: check the policy of the configuration in use, explain one decision, run
// policy test cases, and make and check the keys that sign project files. None of these
// subcommands creates a sandbox or writes an audit record.

#include "commands.hpp"

// The typed TOML readers of src/config, so a test file reports problems the way jitbox.toml does.
#include "../config/toml_reader.hpp"
#include "jitbox/lifecycle/identity.hpp"
#include "jitbox/policy/glob.hpp"
#include "jitbox/policy/guardrails.hpp"
#include "jitbox/policy/signing.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <grp.h>
#include <iterator>
#include <limits>
#include <memory>
#include <pwd.h>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace jitbox::cli {
namespace {

namespace fs = std::filesystem;

// A uid that no `uid:N` member can name (parse_member accepts 0 to 4294967294), for test cases
// whose user has no account and no `uid` key.
constexpr std::uint32_t k_no_uid = std::numeric_limits<std::uint32_t>::max();

// ---- shared helpers ------------------------------------------------------------------------

void print_warning(const std::string& text) {
    fmt::print(stderr, "jitbox: warning: {}\n", text);
}

// Loads the layered configuration with `project_file` as the project file. An empty path loads
// what every other command loads: the file from --config, JITBOX_CONFIG or the folder search.
LoadedConfig load_layers(Context& context, const fs::path& project_file) {
    if (project_file.empty()) {
        return context.loaded();
    }
    LayeredConfigRequest request;
    request.project = context.project_request();
    request.project.explicit_path = project_file;
    LoadedConfig loaded = value_or_throw(load_layered_config(request));
    for (const auto& warning : loaded.warnings) {
        print_warning(warning);
    }
    return loaded;
}

std::string config_source(const Config& config) {
    return config.path.empty() ? std::string("the built-in configuration") : config.path.string();
}

std::vector<std::string> template_names(const Config& config) {
    std::vector<std::string> names;
    for (const auto& [name, spec] : config.templates) {
        names.push_back(name);
    }
    return names;
}

// Formats a count with its noun: "1 warning", "2 warnings".
std::string count_of(std::size_t count, std::string_view noun) {
    return fmt::format("{} {}{}", count, noun, count == 1 ? "" : "s");
}

std::string join_names(const std::vector<std::string>& names) {
    return names.empty() ? std::string("none") : config_detail::join_names(names);
}

// Finds the template named `name`, or the default template when `name` is empty. Returns null
// and sets `problem` when there is no such template.
const Template* find_template(const Config& config, const std::string& name, std::string& problem) {
    const std::string& chosen = name.empty() ? config.default_template : name;
    if (chosen.empty()) {
        problem = fmt::format("no template given, and {} sets no default_template: name one of "
                              "{}",
                              config_source(config), join_names(template_names(config)));
        return nullptr;
    }
    const auto found = config.templates.find(chosen);
    if (found == config.templates.end()) {
        problem = fmt::format("template \"{}\" not found in {} ({})", chosen, config_source(config),
                              config_detail::suggest_name(chosen, template_names(config)));
        return nullptr;
    }
    return &found->second;
}

Requester requester_from(const Identity& identity, std::map<std::string, std::string> attributes) {
    return Requester{static_cast<std::uint32_t>(identity.uid), identity.user, identity.groups,
                     identity.host, std::move(attributes)};
}

bool has_ttl(Action action) {
    return action == Action::up || action == Action::extend;
}

std::string_view decision_word(bool allowed) {
    return allowed ? "allow" : "deny";
}

std::string rule_or_none(const Decision& decision) {
    return decision.rule.empty() ? std::string("no rule") : decision.rule;
}

nlohmann::json duration_or_null(Seconds duration) {
    return duration > Seconds::zero() ? nlohmann::json(format_duration(duration))
                                      : nlohmann::json(nullptr);
}

nlohmann::json decision_to_json(const Decision& decision, Action action) {
    const bool granted_ttl = decision.allowed && has_ttl(action);
    return {
        {"decision", decision_word(decision.allowed)},
        {"ttl", granted_ttl ? nlohmann::json(format_duration(decision.ttl)) : nullptr},
        {"max_ttl", duration_or_null(decision.max_ttl)},
        {"rule", decision.rule},
        {"message", decision.message},
        {"break_glass", decision.break_glass},
        {"explanation", decision.explanation},
    };
}

TimePoint parse_time_or_throw(const std::string& text, std::string_view option) {
    auto parsed = parse_rfc3339(text);
    if (!parsed) {
        throw Error(ExitCode::usage, fmt::format("{}: {}", option, parsed.error().message));
    }
    return *parsed;
}

Action parse_action_or_throw(const std::string& text) {
    const auto action = parse_action(text);
    if (!action) {
        throw Error(
            ExitCode::usage,
            fmt::format("--action: unknown action \"{}\": use up, down, extend, exec, "
                        "status-all or down-others",
                        text));
    }
    return *action;
}

// Closes a file descriptor when it goes out of scope.
struct DescriptorCloser {
    int fd;
    ~DescriptorCloser() { ::close(fd); }
};

// Reads a whole regular file. Errors name the file and the system's reason.
std::string read_text_file(const fs::path& path) {
    // O_NONBLOCK keeps open() from waiting for a writer when the path is a FIFO, which the
    // fstat below then rejects.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        throw Error(ExitCode::usage,
                    fmt::format("failed to open \"{}\": {}", path.string(), std::strerror(errno)));
    }
    const DescriptorCloser closer{fd};
    struct stat info {};
    if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
        throw Error(ExitCode::usage,
                    fmt::format("\"{}\" is not a regular file, name a file", path.string()));
    }
    std::string text;
    std::array<char, 64 * 1024> buffer{};
    while (true) {
        const ssize_t count = ::read(fd, buffer.data(), buffer.size());
        if (count < 0 && errno == EINTR) {
            continue;
        }
        if (count < 0) {
            throw Error(ExitCode::usage, fmt::format("failed to read \"{}\": {}", path.string(),
                                                     std::strerror(errno)));
        }
        if (count == 0) {
            return text;
        }
        text.append(buffer.data(), static_cast<std::size_t>(count));
    }
}

// Returns `file`, or when it is empty the project file that the normal lookup finds, for
// `sign` and `verify`.
fs::path project_file_or_throw(Context& context, const std::string& file) {
    if (!file.empty()) {
        return file;
    }
    fs::path found = value_or_throw(find_config(context.project_request()));
    if (found.empty()) {
        throw Error(ExitCode::usage, "no jitbox.toml found in this folder or above, and neither "
                                     "--config nor JITBOX_CONFIG names one: name the file");
    }
    return found;
}

// ---- policy check: accounts -----------------------------------------------------------------

enum class Lookup { found, missing, failed };

// Runs getpwnam_r or getgrnam_r for `name`, growing the buffer on ERANGE. `error` receives the
// error number of a failed lookup.
template <typename Entry, typename Function>
Lookup look_up(const std::string& name, Function function, int& error) {
    constexpr std::size_t k_max_buffer_size = 1 << 20;
    std::vector<char> buffer(16384);
    while (true) {
        Entry storage{};
        Entry* found = nullptr;
        error = function(name.c_str(), &storage, buffer.data(), buffer.size(), &found);
        if (error == ERANGE && buffer.size() < k_max_buffer_size) {
            buffer.resize(buffer.size() * 2);
            continue;
        }
        if (found != nullptr) {
            return Lookup::found;
        }
        // glibc returns 0 for a name without an entry. POSIX also allows these error numbers.
        if (error == 0 || error == ENOENT || error == ESRCH || error == EBADF || error == EPERM) {
            return Lookup::missing;
        }
        return Lookup::failed;
    }
}

// A problem that does not stop the policy from loading. `origin` is the FILE:LINE:COLUMN of
// the rule it concerns, or empty.
struct PolicyWarning {
    std::string origin;
    std::string message;

    std::string text() const { return origin.empty() ? message : origin + ": " + message; }
};

// Warns about each `user:` and `group:` member that has no entry on this machine.
void check_accounts(const std::vector<Member>& members, std::string_view key,
                    const std::string& rule, const std::string& origin,
                    std::vector<PolicyWarning>& warnings) {
    for (const Member& member : members) {
        if (member.kind == Member::Kind::uid) {
            continue;
        }
        const bool is_group = member.kind == Member::Kind::group;
        int error = 0;
        const Lookup lookup = is_group ? look_up<group>(member.value, ::getgrnam_r, error)
                                       : look_up<passwd>(member.value, ::getpwnam_r, error);
        const std::string_view kind = is_group ? "group" : "user";
        if (lookup == Lookup::missing) {
            warnings.push_back({origin, fmt::format("{}: {}: {} \"{}\" does not exist on this "
                                                    "machine, so it matches nobody here",
                                                    rule, key, kind, member.value)});
        } else if (lookup == Lookup::failed) {
            warnings.push_back(
                {origin, fmt::format("{}: {}: looking up {} \"{}\" failed: {}", rule, key, kind,
                                     member.value, std::strerror(error))});
        }
    }
}

// ---- policy check: rules that never match ---------------------------------------------------

std::vector<std::string> templates_matching(const std::vector<std::string>& globs,
                                            const Config& config) {
    std::vector<std::string> names;
    for (const auto& [name, spec] : config.templates) {
        const bool matched =
            globs.empty() || std::any_of(globs.begin(), globs.end(), [&](const std::string& glob) {
                return glob_matches(glob, name);
            });
        if (matched) {
            names.push_back(name);
        }
    }
    return names;
}

bool has_labels(const Template& spec, const std::map<std::string, std::string>& labels) {
    return std::all_of(labels.begin(), labels.end(), [&](const auto& label) {
        const auto found = spec.labels.find(label.first);
        return found != spec.labels.end() && found->second == label.second;
    });
}

std::string format_labels(const std::map<std::string, std::string>& labels) {
    std::vector<std::string> pairs;
    for (const auto& [key, value] : labels) {
        pairs.push_back(key + "=" + value);
    }
    return config_detail::join_names(pairs);
}

bool is_read_from_env(const std::string& name, const std::vector<PolicyLayer>& layers) {
    return std::any_of(layers.begin(), layers.end(), [&](const PolicyLayer& layer) {
        const auto& names = layer.policy.attribute_env;
        return std::find(names.begin(), names.end(), name) != names.end();
    });
}

// Lists the templates a rule can match: those in use that its globs match (no globs: every
// template) and that carry the labels its conditions require. Appends the reason to `reasons`
// when none is left, and when the rule needs an attribute that is never read.
std::vector<std::string> reachable_templates(const std::vector<std::string>& globs,
                                             const Conditions& conditions,
                                             const std::vector<PolicyLayer>& layers,
                                             const Config& config,
                                             std::vector<std::string>& reasons) {
    const std::vector<std::string> by_glob = templates_matching(globs, config);
    if (by_glob.empty()) {
        reasons.push_back(fmt::format("its templates {} match none of the templates in use ({})",
                                      join_names(globs), join_names(template_names(config))));
        return by_glob;
    }
    std::vector<std::string> reachable;
    std::copy_if(by_glob.begin(), by_glob.end(), std::back_inserter(reachable),
                 [&](const std::string& name) {
                     return has_labels(config.templates.at(name), conditions.template_labels);
                 });
    if (reachable.empty()) {
        reasons.push_back(fmt::format("none of its templates ({}) carries the labels {} that "
                                      "its template_labels require",
                                      join_names(by_glob),
                                      format_labels(conditions.template_labels)));
    }
    for (const auto& [name, value] : conditions.attributes) {
        if (!is_read_from_env(name, layers)) {
            reasons.push_back(fmt::format("its attribute {} is never set, because no [policy] "
                                          "attributes_from_env lists it",
                                          name));
        }
    }
    return reachable;
}

// Warns when an `up` without --ttl can never match `role`, because the default ttl it would
// get is above the role's max_requested_ttl.
void check_default_ttl(const Role& role, const std::vector<std::string>& templates,
                       const Config& config, std::vector<PolicyWarning>& warnings) {
    const auto limit = role.conditions.max_requested_ttl;
    if (!limit || (!role.actions.empty() && role.actions.count(Action::up) == 0)) {
        return;
    }
    std::string default_source;
    if (role.ttl && *role.ttl > *limit) {
        default_source = fmt::format("its ttl {}", format_duration(*role.ttl));
    } else if (!role.ttl && std::all_of(templates.begin(), templates.end(), [&](const auto& name) {
                   return config.templates.at(name).ttl > *limit;
               })) {
        default_source =
            fmt::format("the ttl of each of its templates ({})", join_names(templates));
    }
    if (!default_source.empty()) {
        warnings.push_back(
            {role.origin, fmt::format("role {}: {} is above its max_requested_ttl {}, so an up "
                                      "without --ttl never matches it",
                                      role.name, default_source, format_duration(*limit))});
    }
}

// ---- policy check: roles that a deny rule shadows -------------------------------------------

bool is_unconditional(const DenyRule& rule) {
    const Conditions& conditions = rule.conditions;
    return rule.members.empty() && rule.unless_members.empty() && !conditions.when &&
           conditions.template_labels.empty() && !conditions.max_requested_ttl &&
           conditions.attributes.empty();
}

// True when `denied` (empty: every action) includes every action of `allowed` (empty: every
// action).
bool covers_actions(const std::set<Action>& denied, const std::set<Action>& allowed) {
    if (denied.empty()) {
        return true;
    }
    if (allowed.empty()) {
        return denied.size() == k_actions.size();
    }
    return std::includes(denied.begin(), denied.end(), allowed.begin(), allowed.end());
}

// Finds the first deny rule that applies to everyone, always, for every action of `role` and
// every template in `templates`. Returns null when there is none.
const DenyRule* find_shadowing_deny(const Role& role, const std::vector<std::string>& templates,
                                    const std::vector<PolicyLayer>& layers) {
    for (const PolicyLayer& layer : layers) {
        for (const DenyRule& rule : layer.policy.denies) {
            const bool covers_templates =
                std::all_of(templates.begin(), templates.end(), [&](const std::string& name) {
                    return rule.templates.empty() ||
                           std::any_of(rule.templates.begin(), rule.templates.end(),
                                       [&](const auto& glob) { return glob_matches(glob, name); });
                });
            if (is_unconditional(rule) && covers_actions(rule.actions, role.actions) &&
                covers_templates) {
                return &rule;
            }
        }
    }
    return nullptr;
}

// ---- policy check: all warnings ---------------------------------------------------------------

void check_role(const Role& role, const std::vector<PolicyLayer>& layers, const Config& config,
                std::vector<PolicyWarning>& warnings) {
    const std::string rule = "role " + role.name;
    check_accounts(role.members, "members", rule, role.origin, warnings);

    std::vector<std::string> reasons;
    const auto templates =
        reachable_templates(role.templates, role.conditions, layers, config, reasons);
    for (const std::string& reason : reasons) {
        warnings.push_back({role.origin, fmt::format("{}: {}, so it never matches", rule, reason)});
    }
    if (templates.empty()) {
        return;
    }
    check_default_ttl(role, templates, config, warnings);
    if (const DenyRule* deny = find_shadowing_deny(role, templates, layers)) {
        warnings.push_back(
            {role.origin, fmt::format("{}: deny rule {} ({}) applies to everyone, always, for "
                                      "each of its actions and templates ({}), so the role "
                                      "never grants anything",
                                      rule, deny->name, deny->origin, join_names(templates))});
    }
}

void check_deny(const DenyRule& deny, const std::vector<PolicyLayer>& layers, const Config& config,
                std::vector<PolicyWarning>& warnings) {
    const std::string rule = "deny rule " + deny.name;
    check_accounts(deny.members, "members", rule, deny.origin, warnings);
    check_accounts(deny.unless_members, "unless_members", rule, deny.origin, warnings);

    std::vector<std::string> reasons;
    (void)reachable_templates(deny.templates, deny.conditions, layers, config, reasons);
    for (const std::string& reason : reasons) {
        warnings.push_back({deny.origin, fmt::format("{}: {}, so it never applies", rule, reason)});
    }
}

// Checks each template against the guardrails as an `up` with its default ttl would be, so a
// template that no one can start shows up before anyone tries.
void check_guardrails_of_templates(const LoadedConfig& loaded,
                                   std::vector<PolicyWarning>& warnings) {
    const std::vector<UserHome> homes = other_users_homes_of_real_user();
    for (const auto& [name, spec] : loaded.merged.templates) {
        GuardrailRequest request;
        request.spec = &spec;
        request.other_homes = homes;
        const GuardrailVerdict verdict =
            check_guardrails(loaded.merged.guardrails, active_guardrail_defaults(), request);
        if (!verdict.allowed) {
            warnings.push_back(PolicyWarning{spec.origin, verdict.message});
        }
    }
}

std::vector<PolicyWarning> check_policy(const LoadedConfig& loaded) {
    std::vector<PolicyWarning> warnings;
    check_guardrails_of_templates(loaded, warnings);
    for (const PolicyLayer& layer : loaded.layers) {
        for (const Role& role : layer.policy.roles) {
            check_role(role, loaded.layers, loaded.merged, warnings);
        }
        for (const DenyRule& deny : layer.policy.denies) {
            check_deny(deny, loaded.layers, loaded.merged, warnings);
        }
    }
    return warnings;
}

// ---- policy check: output ---------------------------------------------------------------------

struct CheckOptions {
    std::string file;
    bool strict = false;
};

std::string_view layer_kind(const PolicyLayer& layer) {
    if (layer.source == k_system_config_path) {
        return "system";
    }
    return layer.source == "<default>" ? "default" : "project";
}

struct RuleCounts {
    std::size_t roles = 0;
    std::size_t denies = 0;
};

RuleCounts count_rules(const std::vector<PolicyLayer>& layers) {
    RuleCounts counts;
    for (const PolicyLayer& layer : layers) {
        counts.roles += layer.policy.roles.size();
        counts.denies += layer.policy.denies.size();
    }
    return counts;
}

void print_check_json(const LoadedConfig& loaded, const std::vector<std::string>& warnings) {
    nlohmann::json layers = nlohmann::json::array();
    for (const PolicyLayer& layer : loaded.layers) {
        layers.push_back({{"kind", layer_kind(layer)},
                          {"source", layer.source},
                          {"roles", layer.policy.roles.size()},
                          {"deny_rules", layer.policy.denies.size()}});
    }
    const RuleCounts counts = count_rules(loaded.layers);
    const nlohmann::json summary = {
        {"layers", layers},
        {"templates", template_names(loaded.merged)},
        {"default_template", loaded.merged.default_template},
        {"roles", counts.roles},
        {"deny_rules", counts.denies},
        {"guardrails", loaded.merged.guardrails.present()
                           ? nlohmann::json(loaded.merged.guardrails.origin)
                           : nlohmann::json(nullptr)},
        {"policy_digest", loaded.digest.hex()},
        {"warnings", warnings},
    };
    fmt::print("{}\n", summary.dump(2));
}

void print_check_text(const LoadedConfig& loaded) {
    std::vector<std::vector<std::string>> rows = {{"LAYER", "FILE", "ROLES", "DENY RULES"}};
    for (const PolicyLayer& layer : loaded.layers) {
        rows.push_back({std::string(layer_kind(layer)), layer.source,
                        std::to_string(layer.policy.roles.size()),
                        std::to_string(layer.policy.denies.size())});
    }
    print_table(rows);
    const RuleCounts counts = count_rules(loaded.layers);
    const std::vector<std::string> names = template_names(loaded.merged);
    fmt::print("templates: {} ({})\n", names.size(), join_names(names));
    fmt::print("roles: {}\n", counts.roles);
    fmt::print("deny rules: {}\n", counts.denies);
    fmt::print("guardrails: {}\n", loaded.merged.guardrails.present()
                                       ? loaded.merged.guardrails.origin
                                       : std::string("none"));
    fmt::print("policy digest: {}\n", loaded.digest.hex());
}

void run_check(Context& context, const CheckOptions& options) {
    if (!options.file.empty() && !context.options().config_path.empty()) {
        throw Error(ExitCode::usage, "policy check: name the file either as FILE or with "
                                     "--config, not both");
    }
    const LoadedConfig loaded = load_layers(context, options.file);

    // Context::loaded() and load_layers() have printed the loader's own warnings already.
    std::vector<std::string> warnings = loaded.warnings;
    for (const PolicyWarning& warning : check_policy(loaded)) {
        print_warning(warning.text());
        warnings.push_back(warning.text());
    }
    if (context.options().json) {
        print_check_json(loaded, warnings);
    } else {
        print_check_text(loaded);
    }
    if (warnings.empty()) {
        context.notice("no problems found");
        return;
    }
    if (options.strict) {
        throw Error(ExitCode::checks_failed,
                    fmt::format("{}, and --strict makes warnings fail the check",
                                count_of(warnings.size(), "warning")));
    }
    context.notice("{}", count_of(warnings.size(), "warning"));
}

// ---- policy explain -------------------------------------------------------------------------

struct ExplainOptions {
    std::string template_name;
    std::string as_user;
    std::string ttl;
    std::string at;
    std::string action = "up";
    std::string reason;
    bool break_glass = false;
    std::optional<int> active;
    bool check = false;
};

// Counts the caller's live sandboxes as `up` counts them for max_active: records in the state
// folder that are not being removed and whose deadline is after `now`. A state folder that
// does not exist yet has none, and is not created.
int count_active_sandboxes(TimePoint now) {
    const fs::path dir = value_or_throw(default_state_dir());
    std::error_code error;
    if (!fs::exists(dir, error)) {
        return 0;
    }
    const StateStore store = value_or_throw(StateStore::open(dir));
    const std::vector<SandboxRecord> records = value_or_throw(store.list());
    const std::string user = value_or_throw(current_identity()).user;
    return static_cast<int>(std::count_if(records.begin(), records.end(), [&](const auto& r) {
        return r.owner == user && r.state != SandboxState::removing && r.expires_at > now;
    }));
}

// Returns the active sandbox count for the request, and where it came from for the output.
std::pair<int, std::string> active_sandboxes(const ExplainOptions& options,
                                             const AccessRequest& request) {
    if (request.action != Action::up) {
        return {0, "not counted, because only up checks max_active"};
    }
    if (options.active) {
        return {*options.active, "--active"};
    }
    if (!options.as_user.empty()) {
        return {0, "assumed for another user; pass --active to set it"};
    }
    return {count_active_sandboxes(request.now), "counted in your state folder"};
}

AccessRequest explain_request(const ExplainOptions& options, const Template& spec) {
    AccessRequest request;
    request.action = parse_action_or_throw(options.action);
    request.spec = &spec;
    if (!options.ttl.empty()) {
        request.ttl = parse_duration_or_throw(options.ttl, "--ttl");
        if (*request.ttl <= Seconds::zero()) {
            throw Error(ExitCode::usage, "--ttl must be longer than 0s");
        }
    }
    request.reason = options.reason;
    request.break_glass = options.break_glass;
    request.now =
        options.at.empty() ? SystemClock().now() : parse_time_or_throw(options.at, "--at");
    return request;
}

void print_explain_text(const Decision& decision, const AccessRequest& request,
                        const std::string& active_source) {
    std::vector<std::vector<std::string>> rows = {
        {"decision", decision.allowed ? "ALLOW" : "DENY"},
        {"at", format_rfc3339(request.now)},
    };
    if (decision.allowed && has_ttl(request.action)) {
        rows.push_back({"ttl", format_duration(decision.ttl)});
    }
    if (decision.max_ttl > Seconds::zero()) {
        rows.push_back({"maximum ttl", format_duration(decision.max_ttl)});
    }
    if (request.action == Action::up) {
        rows.push_back(
            {"active sandboxes", fmt::format("{} ({})", request.active_sandboxes, active_source)});
    }
    rows.push_back({"rule", rule_or_none(decision)});
    rows.push_back({"message", decision.message});
    print_table(rows);
    fmt::print("explanation:\n");
    for (const std::string& line : decision.explanation) {
        fmt::print("  {}\n", line);
    }
}

// The guardrails of an `up`, as Lifecycle::up checks them; other actions pass.
GuardrailVerdict explain_guardrails(const LoadedConfig& loaded, const Identity& identity,
                                    const AccessRequest& request) {
    if (request.action != Action::up) {
        GuardrailVerdict passed;
        passed.effective = *request.spec;
        return passed;
    }
    GuardrailRequest guarded;
    guarded.spec = request.spec;
    guarded.ttl = request.ttl;
    guarded.live_sandboxes = request.active_sandboxes;
    guarded.other_homes = other_users_homes(identity.uid, "");
    return check_guardrails(loaded.merged.guardrails, active_guardrail_defaults(), guarded);
}

void run_explain(Context& context, const ExplainOptions& options) {
    const LoadedConfig& loaded = context.loaded();
    std::string problem;
    const Template* spec = find_template(loaded.merged, options.template_name, problem);
    if (spec == nullptr) {
        throw Error(ExitCode::usage, problem);
    }
    const Identity identity = options.as_user.empty()
                                  ? value_or_throw(current_identity())
                                  : value_or_throw(identity_for_user(options.as_user));
    const Requester requester = requester_from(identity, policy_attributes(loaded.layers));

    AccessRequest request = explain_request(options, *spec);
    const auto [active, active_source] = active_sandboxes(options, request);
    request.active_sandboxes = active;
    const GuardrailVerdict guarded = explain_guardrails(loaded, identity, request);
    Decision decision;
    if (guarded.allowed) {
        request.spec = &guarded.effective;
        decision = evaluate(loaded.layers, requester, request);
    } else {
        decision.rule = guarded.rule;
        decision.message = guarded.message;
    }
    decision.explanation.insert(decision.explanation.begin(), guarded.explanation.begin(),
                                guarded.explanation.end());

    if (context.options().json) {
        nlohmann::json result = decision_to_json(decision, request.action);
        result["template"] = spec->name;
        result["action"] = to_string(request.action);
        result["user"] = requester.user;
        result["at"] = format_rfc3339(request.now);
        result["active_sandboxes"] = request.active_sandboxes;
        result["policy_digest"] = loaded.digest.hex();
        fmt::print("{}\n", result.dump(2));
    } else {
        print_explain_text(decision, request, active_source);
    }
    if (options.check && !decision.allowed) {
        throw Error(ExitCode::denied, decision.message);
    }
}

// ---- policy test: reading the file ----------------------------------------------------------

using config_detail::Field;
using config_detail::KeyRule;

// One `[[cases]]` table of a policy test file.
struct PolicyCase {
    std::string name;
    std::string origin; // FILE:LINE:COLUMN of the table
    std::string user;
    std::string user_site; // "FILE:LINE:COLUMN: KEY" of the value, for messages
    std::optional<std::vector<std::string>> groups; // replaces the user's groups when set
    std::optional<std::uint32_t> uid;
    std::string template_name; // empty: the default template
    std::string template_site; // "FILE:LINE:COLUMN: KEY" of the value, for messages
    Action action = Action::up;
    std::optional<Seconds> ttl;
    std::optional<TimePoint> at;
    std::string reason;
    bool break_glass = false;
    int active = 0;
    std::map<std::string, std::string> attributes;
    std::optional<bool> expect_allow;
    std::optional<Seconds> expect_ttl;
    std::optional<std::string> expect_rule;
};

// A policy test file: the configuration to test and its cases.
struct PolicyTestFile {
    std::optional<fs::path> config; // relative to the test file's folder
    std::vector<PolicyCase> cases;
};

std::string position_of(const Field& field) {
    return config_detail::format_position(field.source, field.node.source());
}

std::string site_of(const Field& field) {
    return position_of(field) + ": " + field.key_path;
}

void read_case_uid(const Field& field, PolicyCase& test_case) {
    const std::int64_t value = config_detail::read_integer(field);
    if (value < 0 || value >= static_cast<std::int64_t>(k_no_uid)) {
        config_detail::fail(
            field, fmt::format("invalid uid {}: use an integer from 0 to {}", value, k_no_uid - 1));
    }
    test_case.uid = static_cast<std::uint32_t>(value);
}

void read_case_action(const Field& field, PolicyCase& test_case) {
    const std::string& name = config_detail::read_string(field);
    const auto action = parse_action(name);
    if (!action) {
        config_detail::fail(field, fmt::format("unknown action \"{}\": use up, down, extend, "
                                               "exec, status-all or down-others",
                                               name));
    }
    test_case.action = *action;
}

void read_case_time(const Field& field, PolicyCase& test_case) {
    const std::string& text = config_detail::read_string(
        field, "a quoted RFC 3339 time such as \"2026-03-30T09:00:00Z\"");
    const auto time = parse_rfc3339(text);
    if (!time) {
        config_detail::fail(field, time.error().message);
    }
    test_case.at = *time;
}

void read_case_active(const Field& field, PolicyCase& test_case) {
    const std::int64_t value = config_detail::read_integer(field);
    if (value < 0 || value > std::numeric_limits<int>::max()) {
        config_detail::fail(field, fmt::format("invalid active count {}: use an integer of 0 or "
                                               "more",
                                               value));
    }
    test_case.active = static_cast<int>(value);
}

void read_case_expect(const Field& field, PolicyCase& test_case) {
    const std::string& word = config_detail::read_string(field);
    if (word != "allow" && word != "deny") {
        config_detail::fail(field,
                            fmt::format("invalid expect \"{}\": use \"allow\" or \"deny\"", word));
    }
    test_case.expect_allow = word == "allow";
}

const auto k_case_keys = std::to_array<KeyRule<PolicyCase>>({
    {"name",
     [](const Field& f, PolicyCase& c) {
         c.name = config_detail::read_non_empty_string(f, "\"dev may start db-main\"");
     }},
    {"user",
     [](const Field& f, PolicyCase& c) {
         c.user = config_detail::read_non_empty_string(f, "\"alice\"");
         c.user_site = site_of(f);
     }},
    {"groups", [](const Field& f, PolicyCase& c) { c.groups = config_detail::read_strings(f); }},
    {"uid", read_case_uid},
    {"template",
     [](const Field& f, PolicyCase& c) {
         c.template_name = config_detail::read_non_empty_string(f, "\"db-main\"");
         c.template_site = site_of(f);
     }},
    {"action", read_case_action},
    {"ttl",
     [](const Field& f, PolicyCase& c) {
         c.ttl = config_detail::read_duration(f, config_detail::ZeroDuration::rejected);
     }},
    {"at", read_case_time},
    {"reason", [](const Field& f, PolicyCase& c) { c.reason = config_detail::read_string(f); }},
    {"break_glass",
     [](const Field& f, PolicyCase& c) { c.break_glass = config_detail::read_bool(f); }},
    {"active", read_case_active},
    {"attributes",
     [](const Field& f, PolicyCase& c) {
         c.attributes = config_detail::read_string_table(f, config_detail::env_key_problem);
     }},
    {"expect", read_case_expect},
    {"expect_ttl",
     [](const Field& f, PolicyCase& c) {
         c.expect_ttl = config_detail::read_duration(f, config_detail::ZeroDuration::rejected);
     }},
    {"expect_rule",
     [](const Field& f, PolicyCase& c) { c.expect_rule = config_detail::read_string(f); }},
});

void require_case_key(const Field& field, std::string_view key, std::string_view example) {
    if (!config_detail::read_table(field).contains(key)) {
        config_detail::fail(field,
                            fmt::format("missing required key \"{}\", such as {}", key, example));
    }
}

PolicyCase read_case(const Field& field) {
    PolicyCase test_case;
    test_case.origin = position_of(field);
    config_detail::read_keys(field, k_case_keys, test_case);
    require_case_key(field, "name", "name = \"dev may start db-main\"");
    require_case_key(field, "user", "user = \"alice\"");
    require_case_key(field, "expect", "expect = \"allow\"");
    if (test_case.expect_ttl && !*test_case.expect_allow) {
        config_detail::fail(field, "expect_ttl needs expect = \"allow\", because a denied "
                                   "request gets no ttl");
    }
    return test_case;
}

const auto k_test_file_keys = std::to_array<KeyRule<PolicyTestFile>>({
    {"config",
     [](const Field& f, PolicyTestFile& file) {
         const fs::path path = config_detail::read_non_empty_string(f, "\"jitbox.toml\"");
         file.config = path.is_absolute() ? path : f.source.base_dir / path;
     }},
    {"cases",
     [](const Field& f, PolicyTestFile& file) {
         file.cases = config_detail::read_each(f, "an array of tables ([[cases]])", read_case);
     }},
});

PolicyTestFile parse_test_file(const std::string& text, const fs::path& path) {
    const config_detail::SourceInfo source{path.string(), path.parent_path()};
    constexpr std::string_view k_utf8_bom = "\xEF\xBB\xBF";
    std::string_view body = text;
    if (body.substr(0, k_utf8_bom.size()) == k_utf8_bom) {
        body.remove_prefix(k_utf8_bom.size());
    }
    try {
        const toml::table root = toml::parse(body, source.name);
        PolicyTestFile file;
        config_detail::read_keys(Field{root, "", source}, k_test_file_keys, file);
        if (file.cases.empty()) {
            throw Error(ExitCode::usage,
                        fmt::format("{}: no test cases: add [[cases]] tables with name, user, "
                                    "template and expect",
                                    source.name));
        }
        return file;
    } catch (const toml::parse_error& error) {
        std::string description(error.description());
        std::replace(description.begin(), description.end(), '\n', ' ');
        throw Error(ExitCode::usage,
                    fmt::format("{}: invalid TOML: {}",
                                config_detail::format_position(source, error.source()),
                                description));
    } catch (const config_detail::InvalidConfig& error) {
        throw Error(ExitCode::usage, error.message);
    }
}

// ---- policy test: running the cases ---------------------------------------------------------

// Builds the requester of a case. `groups` replaces the user's groups, so a case needs a real
// account only when it leaves groups out. Without `uid`, a user without an account gets
// k_no_uid.
Requester case_requester(const PolicyCase& test_case) {
    auto identity = identity_for_user(test_case.user);
    if (!identity && !test_case.groups) {
        throw Error(ExitCode::usage,
                    fmt::format("{}: user \"{}\" does not exist on this machine: add groups = "
                                "[...] to the case to test a user without an account",
                                test_case.user_site, test_case.user));
    }
    Requester requester;
    requester.user = test_case.user;
    requester.uid = identity ? static_cast<std::uint32_t>(identity->uid) : k_no_uid;
    requester.groups = test_case.groups ? *test_case.groups : identity->groups;
    requester.host = identity ? identity->host : std::string();
    if (test_case.uid) {
        requester.uid = *test_case.uid;
    }
    requester.attributes = test_case.attributes;
    return requester;
}

const Template& case_template(const PolicyCase& test_case, const Config& config) {
    std::string problem;
    const Template* spec = find_template(config, test_case.template_name, problem);
    if (spec == nullptr) {
        const std::string& site =
            test_case.template_site.empty() ? test_case.origin : test_case.template_site;
        throw Error(ExitCode::usage, fmt::format("{}: {}", site, problem));
    }
    return *spec;
}

// The outcome of one case, in words for the report.
struct CaseResult {
    const PolicyCase* test_case = nullptr;
    Decision decision;
    bool passed = false;
    std::string expected;
    std::string got;
};

std::string describe_expected(const PolicyCase& test_case) {
    std::string text(decision_word(*test_case.expect_allow));
    if (test_case.expect_ttl) {
        text += fmt::format(" with ttl {}", format_duration(*test_case.expect_ttl));
    }
    if (test_case.expect_rule) {
        text += fmt::format(" by a rule containing \"{}\"", *test_case.expect_rule);
    }
    return text;
}

std::string describe_got(const Decision& decision, Action action) {
    std::string text(decision_word(decision.allowed));
    if (decision.allowed && has_ttl(action)) {
        text += fmt::format(" with ttl {}", format_duration(decision.ttl));
    }
    return text;
}

bool meets_expectation(const PolicyCase& test_case, const Decision& decision) {
    if (decision.allowed != *test_case.expect_allow) {
        return false;
    }
    if (test_case.expect_ttl && decision.ttl != *test_case.expect_ttl) {
        return false;
    }
    return !test_case.expect_rule ||
           decision.rule.find(*test_case.expect_rule) != std::string::npos;
}

CaseResult run_case(const PolicyCase& test_case, const LoadedConfig& loaded, TimePoint now) {
    AccessRequest request;
    request.action = test_case.action;
    request.spec = &case_template(test_case, loaded.merged);
    request.ttl = test_case.ttl;
    request.reason = test_case.reason;
    request.break_glass = test_case.break_glass;
    request.active_sandboxes = test_case.active;
    request.now = test_case.at.value_or(now);

    CaseResult result;
    result.test_case = &test_case;
    result.decision = evaluate(loaded.layers, case_requester(test_case), request);
    result.passed = meets_expectation(test_case, result.decision);
    result.expected = describe_expected(test_case);
    result.got = describe_got(result.decision, test_case.action);
    return result;
}

void print_case_text(const CaseResult& result) {
    if (result.passed) {
        fmt::print("ok - {}\n", result.test_case->name);
        return;
    }
    fmt::print("not ok - {}: expected {}, got {} ({}, {})\n", result.test_case->name,
               result.expected, result.got, rule_or_none(result.decision), result.decision.message);
    fmt::print("#   case at {}\n", result.test_case->origin);
    for (const std::string& line : result.decision.explanation) {
        fmt::print("#   {}\n", line);
    }
}

nlohmann::json case_to_json(const CaseResult& result) {
    return {{"name", result.test_case->name},
            {"origin", result.test_case->origin},
            {"ok", result.passed},
            {"expected", result.expected},
            {"got", result.got},
            {"result", decision_to_json(result.decision, result.test_case->action)}};
}

// Loads the configuration that a test file is checked against: --config when given, else the
// file's own `config` key, else JITBOX_CONFIG or the folder search. --config comes first, so the
// same cases can be run against a changed copy of the policy.
LoadedConfig load_tested_config(Context& context, const PolicyTestFile& file) {
    if (context.options().config_path.empty() && file.config) {
        return load_layers(context, *file.config);
    }
    return load_layers(context, fs::path());
}

void run_test(Context& context, const std::string& path) {
    const PolicyTestFile file = parse_test_file(read_text_file(path), path);
    const LoadedConfig loaded = load_tested_config(context, file);
    const TimePoint now = SystemClock().now();

    std::vector<CaseResult> results;
    for (const PolicyCase& test_case : file.cases) {
        results.push_back(run_case(test_case, loaded, now));
    }
    const auto passed = static_cast<std::size_t>(
        std::count_if(results.begin(), results.end(), [](const auto& r) { return r.passed; }));
    const std::size_t failed = results.size() - passed;

    if (context.options().json) {
        nlohmann::json cases = nlohmann::json::array();
        for (const CaseResult& result : results) {
            cases.push_back(case_to_json(result));
        }
        fmt::print("{}\n", nlohmann::json{{"cases", cases},
                                          {"passed", passed},
                                          {"failed", failed},
                                          {"policy_digest", loaded.digest.hex()}}
                               .dump(2));
    } else {
        for (const CaseResult& result : results) {
            print_case_text(result);
        }
        fmt::print("{} passed, {} failed\n", passed, failed);
    }
    if (failed > 0) {
        throw Error(ExitCode::checks_failed, fmt::format("{} of {} policy test cases in {} failed",
                                                         failed, results.size(), path));
    }
}

// ---- keygen, sign and verify ------------------------------------------------------------------

void run_keygen(Context& context, const std::string& prefix) {
    const fs::path private_key = prefix + ".key";
    const fs::path public_key = prefix + ".pub";
    const std::string fingerprint = value_or_throw(keygen(private_key, public_key));
    if (context.options().json) {
        fmt::print("{}\n", nlohmann::json{{"fingerprint", fingerprint},
                                          {"private_key", private_key.string()},
                                          {"public_key", public_key.string()}}
                               .dump(2));
    } else {
        print_table({{"fingerprint", fingerprint},
                     {"private key", private_key.string()},
                     {"public key", public_key.string()}});
    }
    context.notice("keep {} secret; to trust the key, copy {} into {} on each machine",
                   private_key.string(), public_key.string(), k_trusted_keys_dir);
}

struct SignOptions {
    std::string key;
    std::string file;
};

void run_sign(Context& context, const SignOptions& options) {
    const fs::path file = project_file_or_throw(context, options.file);
    // A file jitbox would reject is not worth approving.
    (void)value_or_throw(parse_config(read_text_file(file), file));
    const fs::path signature = value_or_throw(sign(options.key, file));
    if (context.options().json) {
        fmt::print(
            "{}\n",
            nlohmann::json{{"file", file.string()}, {"signature", signature.string()}}.dump(2));
    } else {
        fmt::print("{}\n", signature.string());
    }
    context.notice("signed {}; sign it again after every change, or jitbox rejects it where a "
                   "trusted key is installed",
                   file.string());
}

struct VerifyOptions {
    std::string file;
    std::string keys_dir = k_trusted_keys_dir;
};

void run_verify(Context& context, const VerifyOptions& options) {
    const fs::path file = project_file_or_throw(context, options.file);
    // The system folder must be root's and not writable by others, as when a project file is
    // loaded. A folder named with --keys is taken as it is.
    const std::optional<uid_t> owner =
        options.keys_dir == k_trusted_keys_dir ? std::optional<uid_t>(0) : std::nullopt;
    const TrustedKeySet trusted = value_or_throw(load_trusted_keys(options.keys_dir, owner));
    for (const std::string& warning : trusted.warnings) {
        print_warning(warning);
    }
    const Verification verified =
        value_or_throw(verify_content(read_text_file(file), file, trusted));
    if (context.options().json) {
        fmt::print("{}\n", nlohmann::json{{"file", file.string()},
                                          {"signature", signature_path(file).string()},
                                          {"fingerprint", verified.key.fingerprint},
                                          {"key", verified.key.path.string()}}
                               .dump(2));
    } else {
        fmt::print("{}\n", verified.key.fingerprint);
    }
    context.notice("{} is signed by trusted key {} ({})", file.string(), verified.key.fingerprint,
                   verified.key.path.string());
}

// ---- registration -----------------------------------------------------------------------------

void register_check(CLI::App& policy, Context& context) {
    auto options = std::make_shared<CheckOptions>();
    CLI::App* check = policy.add_subcommand(
        "check", "Load the configuration and warn about rules that cannot work as written");
    check
        ->add_option("file", options->file,
                     "Project file to check (default: --config, $JITBOX_CONFIG or the nearest "
                     "jitbox.toml)")
        ->type_name("FILE");
    check->add_flag("--strict", options->strict, "Exit with status 8 when there are warnings");
    check->callback([&context, options] { run_check(context, *options); });
}

// A CLI11 validator that rejects negative numbers, with no text added to the help.
// Adds the options that describe the request, as `up`, `extend` and `down` would make it.
void add_request_options(CLI::App& explain, ExplainOptions& options) {
    explain
        .add_option("--ttl", options.ttl,
                    "Requested ttl, such as 45m; for extend, the time from now to the new "
                    "deadline (default: the default ttl)")
        ->type_name("DURATION");
    explain.add_option("--action", options.action,
                       "up, down, extend, exec, status-all or down-others (default: up)")
        ->type_name("ACTION");
    explain.add_option("--reason", options.reason, "Reason given with the request")
        ->type_name("TEXT");
    explain.add_flag("--break-glass", options.break_glass, "Ask as a break-glass request");
    explain
        .add_option("--active", options.active,
                    "Live sandboxes of the requester, for max_active (default: yours in the "
                    "state folder, 0 with --as)")
        ->type_name("N")
        ->check(non_negative_validator());
}

void register_explain(CLI::App& policy, Context& context) {
    auto options = std::make_shared<ExplainOptions>();
    CLI::App* explain =
        policy.add_subcommand("explain", "Show how the policy decides one request; grants nothing");
    explain->add_option("template", options->template_name,
                        "Template of the request (default: the default_template)");
    add_request_options(*explain, *options);

    // The requester and the time of the decision. No other command lets the caller choose them.
    explain
        ->add_option("--as", options->as_user,
                     "Decide for this user, with the groups the system lists for them "
                     "(default: you)")
        ->type_name("USER");
    explain
        ->add_option("--at", options->at,
                     "Decide as at this RFC 3339 time, such as 2026-03-30T09:00:00Z "
                     "(default: now)")
        ->type_name("TIME");

    explain->add_flag("--check", options->check, "Exit with status 6 when the request is denied");
    explain->callback([&context, options] { run_explain(context, *options); });
}

void register_test(CLI::App& policy, Context& context) {
    auto path = std::make_shared<std::string>();
    CLI::App* test = policy.add_subcommand(
        "test", "Run the [[cases]] of a TOML file against the policy; exit 8 on a mismatch");
    test->add_option("file", *path, "Test file with [[cases]]")->type_name("FILE")->required();
    test->callback([&context, path] { run_test(context, *path); });
}

void register_keygen(CLI::App& policy, Context& context) {
    auto prefix = std::make_shared<std::string>("jitbox-policy");
    CLI::App* command = policy.add_subcommand(
        "keygen", "Create an Ed25519 key pair for signing project files: PREFIX.key and "
                  "PREFIX.pub");
    command
        ->add_option("--out", *prefix,
                     "Path prefix of the key files (default: "
                     "jitbox-policy)")
        ->type_name("PREFIX");
    command->callback([&context, prefix] { run_keygen(context, *prefix); });
}

void register_sign(CLI::App& policy, Context& context) {
    auto options = std::make_shared<SignOptions>();
    CLI::App* command =
        policy.add_subcommand("sign", "Sign a project file with a private key; writes FILE.sig");
    command->add_option("--key", options->key, "Private key from `jitbox policy keygen`")
        ->type_name("KEY")
        ->required();
    command
        ->add_option("file", options->file,
                     "File to sign (default: --config, $JITBOX_CONFIG or the nearest "
                     "jitbox.toml)")
        ->type_name("FILE");
    command->callback([&context, options] { run_sign(context, *options); });
}

void register_verify(CLI::App& policy, Context& context) {
    auto options = std::make_shared<VerifyOptions>();
    CLI::App* command = policy.add_subcommand(
        "verify", "Check that a trusted key signed a project file; exit 6 when not");
    command
        ->add_option("file", options->file,
                     "File to check (default: --config, $JITBOX_CONFIG or the nearest "
                     "jitbox.toml)")
        ->type_name("FILE");
    command
        ->add_option("--keys", options->keys_dir,
                     fmt::format("Folder of trusted public keys (default: {})", k_trusted_keys_dir))
        ->type_name("DIR");
    command->callback([&context, options] { run_verify(context, *options); });
}

} // namespace

void register_policy(CLI::App& app, Context& context) {
    CLI::App* policy = app.add_subcommand(
        "policy", "Check, explain and test the access policy; sign project files");
    policy->require_subcommand(1);
    register_check(*policy, context);
    register_explain(*policy, context);
    register_test(*policy, context);
    register_keygen(*policy, context);
    register_sign(*policy, context);
    register_verify(*policy, context);
}

} // namespace jitbox::cli
