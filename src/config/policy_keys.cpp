// Reading the access policy from jitbox.toml: `[policy]`, `[[roles]]` and `[[deny]]`. Like the
// template keys, each table has one list of known keys, and rules that involve several keys
// are checked once the whole table is read.

#include "policy_keys.hpp"

#include "jitbox/policy/glob.hpp"
#include "jitbox/policy/window.hpp"

namespace jitbox::config_detail {
namespace {

constexpr std::int64_t k_max_active_limit = 10000;
constexpr std::size_t k_max_rule_name_length = 63;
constexpr int k_minutes_per_day = 24 * 60;

// ---- names, members, actions and templates ----

bool is_valid_rule_name(std::string_view name) {
    const auto is_alphanumeric = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    };
    if (name.empty() || name.size() > k_max_rule_name_length || !is_alphanumeric(name.front())) {
        return false;
    }
    return std::all_of(name.begin(), name.end(), [&](char c) {
        return is_alphanumeric(c) || c == '_' || c == '.' || c == '-';
    });
}

std::string read_rule_name(const Field& field) {
    const std::string& name = read_string(field);
    if (!is_valid_rule_name(name)) {
        fail(field, fmt::format("invalid name \"{}\": use 1 to 63 letters, digits, '_', '.' or "
                                "'-', starting with a letter or digit",
                                name));
    }
    return name;
}

Member read_member(const Field& field) {
    const auto member = parse_member(read_string(field));
    if (!member) {
        fail(field, member.error().message);
    }
    return *member;
}

std::vector<Member> read_members(const Field& field) {
    return read_each(field, "an array of strings such as [\"group:dev\"]", read_member);
}

Action read_action(const Field& field) {
    const std::string& name = read_string(field);
    const auto action = parse_action(name);
    if (!action) {
        fail(field, fmt::format("unknown action \"{}\": use up, down, extend, exec, status-all or "
                                "down-others",
                                name));
    }
    return *action;
}

std::set<Action> read_actions(const Field& field) {
    const std::vector<Action> actions =
        read_each(field, "an array of strings such as [\"up\", \"down\"]", read_action);
    return {actions.begin(), actions.end()};
}

std::string read_glob(const Field& field) {
    const std::string& glob = read_string(field);
    const std::string problem = glob_problem(glob);
    if (!problem.empty()) {
        fail(field, problem);
    }
    return glob;
}

std::vector<std::string> read_globs(const Field& field) {
    return read_each(field, "an array of strings such as [\"db-*\"]", read_glob);
}

Seconds read_positive_duration(const Field& field) {
    return read_duration(field, ZeroDuration::rejected);
}

std::string label_key_problem(std::string_view key) {
    return key.empty() ? "a label key must not be empty" : "";
}

// ---- when ----

// Parses "HH:MM" into minutes after midnight, from 0 to 1440 (24:00).
std::optional<int> parse_clock_time(std::string_view text) {
    const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
    if (text.size() != 5 || text[2] != ':' || !is_digit(text[0]) || !is_digit(text[1]) ||
        !is_digit(text[3]) || !is_digit(text[4])) {
        return std::nullopt;
    }
    const int hour = (text[0] - '0') * 10 + (text[1] - '0');
    const int minute = (text[3] - '0') * 10 + (text[4] - '0');
    if (minute > 59 || hour > 24 || (hour == 24 && minute != 0)) {
        return std::nullopt;
    }
    return hour * 60 + minute;
}

// Parses "HH:MM-HH:MM" into the minutes of its start and end.
std::optional<std::pair<int, int>> parse_clock_range(std::string_view text) {
    const std::size_t dash = text.find('-');
    if (dash == std::string_view::npos) {
        return std::nullopt;
    }
    const auto start = parse_clock_time(text.substr(0, dash));
    const auto end = parse_clock_time(text.substr(dash + 1));
    if (!start || !end) {
        return std::nullopt;
    }
    return std::pair{*start, *end};
}

// Four digits in a row, a 'T' or a '/' occur in dates but never in "HH:MM-HH:MM".
bool contains_date(std::string_view text) {
    std::size_t digits_in_row = 0;
    for (const char c : text) {
        digits_in_row = (c >= '0' && c <= '9') ? digits_in_row + 1 : 0;
        if (digits_in_row >= 4 || c == 'T' || c == 't' || c == '/') {
            return true;
        }
    }
    return false;
}

bool contains_utc_offset(std::string_view text) {
    return text.find_first_of("+Zz") != std::string_view::npos ||
           std::count(text.begin(), text.end(), '-') > 1;
}

void read_hours(const Field& field, TimeWindow& window) {
    const std::string& text = read_string(field, "a string such as \"08:00-19:00\"");
    if (contains_date(text)) {
        fail(field, fmt::format("invalid hours \"{}\": hours are times of day without a date, "
                                "choose days with days = [\"mon\", \"tue\"]",
                                text));
    }
    if (contains_utc_offset(text)) {
        fail(field, fmt::format("invalid hours \"{}\": hours are local times without a UTC "
                                "offset, set the zone with timezone = \"Europe/Berlin\"",
                                text));
    }
    const auto range = parse_clock_range(text);
    if (!range) {
        fail(field, fmt::format("invalid hours \"{}\": use HH:MM-HH:MM with times from 00:00 to "
                                "24:00, such as \"08:00-19:00\"",
                                text));
    }
    const auto [start, end] = *range;
    if (start == k_minutes_per_day) {
        fail(field, fmt::format("invalid hours \"{}\": a window cannot start at 24:00, start "
                                "it at 00:00 of the next day",
                                text));
    }
    if (start == end) {
        fail(field, fmt::format("invalid hours \"{}\": the start equals the end, leave hours "
                                "out for the whole day",
                                text));
    }
    window.start_minute = start;
    window.end_minute = end;
}

int read_day(const Field& field) {
    const std::string& name = read_string(field);
    for (std::size_t i = 0; i < k_day_names.size(); ++i) {
        if (k_day_names[i] == name) {
            return static_cast<int>(i);
        }
    }
    fail(field, fmt::format("unknown day \"{}\": use mon, tue, wed, thu, fri, sat or sun", name));
}

void read_days(const Field& field, TimeWindow& window) {
    const std::vector<int> days =
        read_each(field, "an array of strings such as [\"mon\", \"tue\"]", read_day);
    if (days.empty()) {
        fail(field, "an empty days list matches no day, list days or leave days out for every "
                    "day");
    }
    window.days = {days.begin(), days.end()};
}

void read_timezone(const Field& field, TimeWindow& window) {
    const std::string& name = read_string(field, "a time zone name such as \"Europe/Berlin\"");
    if (!is_known_time_zone(name)) {
        fail(field, fmt::format("unknown time zone \"{}\": use a name from the tz database, such "
                                "as \"Europe/Berlin\" or \"UTC\"",
                                name));
    }
    window.timezone = name;
}

constexpr std::array<KeyRule<TimeWindow>, 3> k_when_keys{{
    {"days", read_days},
    {"hours", read_hours},
    {"timezone", read_timezone},
}};

TimeWindow read_when(const Field& field) {
    TimeWindow window;
    read_keys(field, k_when_keys, window);
    const toml::table& table = read_table(field);
    if (!table.contains("days") && !table.contains("hours")) {
        fail(field, "a window needs days, hours or both, such as "
                    "{ days = [\"mon\"], hours = \"08:00-19:00\" }");
    }
    return window;
}

// ---- keys that roles and deny rules share ----

template <typename Rule> void read_name_key(const Field& field, Rule& rule) {
    rule.name = read_rule_name(field);
}

template <typename Rule> void read_actions_key(const Field& field, Rule& rule) {
    rule.actions = read_actions(field);
}

template <typename Rule> void read_when_key(const Field& field, Rule& rule) {
    rule.conditions.when = read_when(field);
}

template <typename Rule> void read_template_labels_key(const Field& field, Rule& rule) {
    rule.conditions.template_labels = read_string_table(field, label_key_problem);
}

template <typename Rule> void read_max_requested_ttl_key(const Field& field, Rule& rule) {
    rule.conditions.max_requested_ttl = read_positive_duration(field);
}

template <typename Rule> void read_attributes_key(const Field& field, Rule& rule) {
    rule.conditions.attributes = read_string_table(field, env_key_problem);
}

// ---- roles ----

void read_role_members(const Field& field, Role& role) {
    role.members = read_members(field);
    if (role.members.empty()) {
        fail(field, "a role with no members applies to nobody, list at least one, such as "
                    "\"group:dev\"");
    }
}

void read_role_templates(const Field& field, Role& role) {
    role.templates = read_globs(field);
    if (role.templates.empty()) {
        fail(field, "a role with no templates allows nothing, list names or globs, such as "
                    "[\"db-*\"] or [\"*\"] for every template");
    }
}

void read_role_actions(const Field& field, Role& role) {
    read_actions_key(field, role);
    if (role.actions.empty()) {
        fail(field, "a role with no actions allows nothing, leave actions out to allow every "
                    "action");
    }
}

void read_max_active(const Field& field, Role& role) {
    const std::int64_t value = read_integer(field);
    if (value < 1 || value > k_max_active_limit) {
        fail(field, fmt::format("invalid max_active {}: use an integer from 1 to {}", value,
                                k_max_active_limit));
    }
    role.max_active = static_cast<int>(value);
}

const auto k_role_keys = std::to_array<KeyRule<Role>>({
    {"name", read_name_key<Role>},
    {"members", read_role_members},
    {"templates", read_role_templates},
    {"actions", read_role_actions},
    {"ttl", [](const Field& f, Role& r) { r.ttl = read_positive_duration(f); }},
    {"max_ttl", [](const Field& f, Role& r) { r.max_ttl = read_positive_duration(f); }},
    {"max_active", read_max_active},
    {"require_reason", [](const Field& f, Role& r) { r.require_reason = read_bool(f); }},
    {"break_glass", [](const Field& f, Role& r) { r.break_glass = read_bool(f); }},
    {"break_glass_max_ttl",
     [](const Field& f, Role& r) { r.break_glass_max_ttl = read_positive_duration(f); }},
    {"when", read_when_key<Role>},
    {"template_labels", read_template_labels_key<Role>},
    {"max_requested_ttl", read_max_requested_ttl_key<Role>},
    {"attributes", read_attributes_key<Role>},
});

Field field_of(const Field& table_field, std::string_view key) {
    return Field{*read_table(table_field).get(key), append_key(table_field.key_path, key),
                 table_field.source};
}

void require_key(const Field& field, std::string_view key, std::string_view example) {
    if (!read_table(field).contains(key)) {
        fail(field, fmt::format("missing required key \"{}\", such as {}", key, example));
    }
}

void check_role(const Field& field, const Role& role) {
    require_key(field, "name", "name = \"dev\"");
    require_key(field, "members", "members = [\"group:dev\"]");
    require_key(field, "templates", "templates = [\"db-*\"], or [\"*\"] for every template");
    if (role.ttl && role.max_ttl && *role.ttl > *role.max_ttl) {
        fail(field_of(field, "ttl"),
             fmt::format("ttl {} is longer than max_ttl {}, lower ttl or raise max_ttl",
                         format_duration(*role.ttl), format_duration(*role.max_ttl)));
    }
    if (role.break_glass_max_ttl && !role.break_glass) {
        fail(field_of(field, "break_glass_max_ttl"),
             "break_glass_max_ttl only applies with break_glass = true in the same role, set "
             "that or remove break_glass_max_ttl");
    }
}

// ---- deny rules ----

const auto k_deny_keys = std::to_array<KeyRule<DenyRule>>({
    {"name", read_name_key<DenyRule>},
    {"templates", [](const Field& f, DenyRule& d) { d.templates = read_globs(f); }},
    {"members", [](const Field& f, DenyRule& d) { d.members = read_members(f); }},
    {"unless_members", [](const Field& f, DenyRule& d) { d.unless_members = read_members(f); }},
    {"actions", read_actions_key<DenyRule>},
    {"reason", [](const Field& f, DenyRule& d) { d.reason = read_string(f); }},
    {"when", read_when_key<DenyRule>},
    {"template_labels", read_template_labels_key<DenyRule>},
    {"max_requested_ttl", read_max_requested_ttl_key<DenyRule>},
    {"attributes", read_attributes_key<DenyRule>},
});

// ---- arrays of rules ----

// Reads each table of the array in `field` with `read_rule`, and rejects a name that an
// earlier rule of the array has, pointing at the later name.
template <typename Rule>
std::vector<Rule> read_rules(const Field& field, std::string_view header,
                             Rule (*read_rule)(const Field&)) {
    const auto rules =
        read_each(field, fmt::format("an array of tables ([[{}]])", header), read_rule);
    std::map<std::string, std::string> origins;
    const toml::array& array = read_array(field, "an array of tables");
    for (std::size_t i = 0; i < rules.size(); ++i) {
        const auto [first, inserted] = origins.emplace(rules[i].name, rules[i].origin);
        if (!inserted) {
            const Field element{array[i], fmt::format("{}[{}]", field.key_path, i), field.source};
            fail(field_of(element, "name"),
                 fmt::format("duplicate name \"{}\": the [[{}]] at {} has it already, rename "
                             "one of them",
                             rules[i].name, header, first->second));
        }
    }
    return rules;
}

Role read_role(const Field& field) {
    Role role;
    role.origin = format_position(field.source, field.node.source());
    read_keys(field, k_role_keys, role);
    check_role(field, role);
    return role;
}

DenyRule read_deny(const Field& field) {
    DenyRule rule;
    rule.origin = format_position(field.source, field.node.source());
    read_keys(field, k_deny_keys, rule);
    require_key(field, "name", "name = \"prod-only-sre\"");
    return rule;
}

// ---- [policy] ----

void read_policy_max_ttl(const Field& field, Policy& policy) {
    policy.max_ttl = read_positive_duration(field);
    policy.max_ttl_origin = format_position(field.source, field.node.source());
}

std::string read_attribute_name(const Field& field) {
    const std::string& name = read_string(field);
    const std::string problem = env_key_problem(name);
    if (!problem.empty()) {
        fail(field, problem);
    }
    return name;
}

void read_attributes_from_env(const Field& field, Policy& policy) {
    policy.attribute_env =
        read_each(field, "an array of strings such as [\"CI\"]", read_attribute_name);
}

void read_require_signed(const Field& field, Policy& policy) {
    policy.require_signed = read_bool(field);
}

void read_allow_sensitive_mounts(const Field& field, Policy& policy) {
    policy.allow_sensitive_mounts = read_bool(field);
    policy.allow_sensitive_mounts_origin = format_position(field.source, field.node.source());
}

constexpr std::array<KeyRule<Policy>, 4> k_policy_keys{{
    {"max_ttl", read_policy_max_ttl},
    {"attributes_from_env", read_attributes_from_env},
    {"require_signed", read_require_signed},
    {"allow_sensitive_mounts", read_allow_sensitive_mounts},
}};

// ---- templates named by rules ----

// True when `glob` matches one of `sorted_names`. Only names that start with the glob's
// literal prefix (the characters before its first '*', '?' or '[') can match, so the search
// covers just that range of the sorted names. An exact name costs one binary search.
bool matches_any_name(std::string_view glob, const std::vector<std::string>& sorted_names) {
    const std::string_view prefix = glob.substr(0, glob.find_first_of("*?["));
    auto name = std::lower_bound(
        sorted_names.begin(), sorted_names.end(), prefix,
        [](const std::string& left, std::string_view right) { return left < right; });
    for (; name != sorted_names.end() && name->compare(0, prefix.size(), prefix) == 0; ++name) {
        if (glob_matches(glob, *name)) {
            return true;
        }
    }
    return false;
}

void check_template_globs(const Field& rule, const std::vector<std::string>& globs,
                          const std::vector<std::string>& template_names) {
    for (std::size_t i = 0; i < globs.size(); ++i) {
        const std::string& glob = globs[i];
        if (matches_any_name(glob, template_names)) {
            continue;
        }
        const Field templates = field_of(rule, "templates");
        const Field element{*read_array(templates, "an array").get(i),
                            fmt::format("{}[{}]", templates.key_path, i), rule.source};
        if (is_glob_pattern(glob)) {
            fail(element, fmt::format("template glob \"{}\" matches no template defined in this "
                                      "file (templates: {})",
                                      glob, join_names(template_names)));
        }
        fail(element, fmt::format("template \"{}\" is not defined in this file ({})", glob,
                                  suggest_name(glob, template_names)));
    }
}

// `template_names` must be sorted, as the keys of Config::templates are.
template <typename Rule>
void check_rule_templates(const Field& root, std::string_view key, const std::vector<Rule>& rules,
                          const std::vector<std::string>& template_names) {
    if (rules.empty()) {
        return;
    }
    const Field array = field_of(root, key);
    for (std::size_t i = 0; i < rules.size(); ++i) {
        const Field rule{*read_array(array, "an array").get(i),
                         fmt::format("{}[{}]", array.key_path, i), root.source};
        check_template_globs(rule, rules[i].templates, template_names);
    }
}

} // namespace

void read_policy_settings(const Field& field, Config& config) {
    read_keys(field, k_policy_keys, config.policy);
}

void read_roles(const Field& field, Config& config) {
    config.policy.roles = read_rules(field, "roles", read_role);
}

void read_denies(const Field& field, Config& config) {
    config.policy.denies = read_rules(field, "deny", read_deny);
}

void check_policy_templates(const Field& root, const Config& config) {
    if (config.templates.empty()) {
        return;
    }
    std::vector<std::string> names;
    for (const auto& [name, unused] : config.templates) {
        names.push_back(name);
    }
    check_rule_templates(root, "roles", config.policy.roles, names);
    check_rule_templates(root, "deny", config.policy.denies, names);
}

} // namespace jitbox::config_detail
