// `jitbox creds`: the keyring items of your sandboxes. `list` never shows values; `show` prints
// them on request; `clear` removes them. Each first purges expired items from the keyring.

#include "commands.hpp"

#include "jitbox/util/log.hpp"

#include <algorithm>
#include <set>

namespace jitbox::cli {

namespace {

enum class CredsFormat { env, json, credential_process };

CredsFormat parse_format(const std::string& text) {
    if (text == "json") {
        return CredsFormat::json;
    }
    return text == "credential-process" ? CredsFormat::credential_process : CredsFormat::env;
}

struct CredsOptions {
    std::string name;
    std::string key;
    std::string format; // empty: json with --json, else env
    bool all = false;
    bool mfa_stdin = false;
};

Failure locked_failure(std::string_view backend, std::string_view sandbox) {
    return make_failure(ExitCode::locked,
                        "keyring {} is locked, so the credentials of \"{}\" cannot be read. "
                        "Unlock its default collection (logging in to the desktop usually does, "
                        "or run `secret-tool unlock`), then retry",
                        backend, sandbox);
}

// Returns the value of `result`, or throws: ExitCode::locked with the backend's name for a
// locked keyring, the result's own failure otherwise.
template <typename T> T value_or_locked(Result<T> result, std::string_view backend) {
    if (!result && result.error().code == ExitCode::locked) {
        throw Error(ExitCode::locked, fmt::format("keyring {}: {}", backend,
                                                  result.error().message));
    }
    return value_or_throw(std::move(result));
}

// Opens a backend and removes its expired items first, so no command shows a stale one.
SecretStore& open_purged(Context& context, std::string_view backend) {
    SecretStore* store = value_or_throw(context.secret_stores().open(backend));
    (void)value_or_locked(store->purge_expired(SystemClock().now()), store->name());
    return *store;
}

// Returns the record of sandbox `name`, whose id keys its items, and fails when it has none or
// its template generates no secrets.
SandboxRecord record_with_items(Context& context, const std::string& name) {
    auto record = value_or_throw(context.store().find(name));
    if (!record) {
        throw Error(ExitCode::not_found,
                    fmt::format("no sandbox named \"{}\" in this state folder; `jitbox creds "
                                "list` shows the items of the sandboxes there are",
                                name));
    }
    if (record->secret_backend.empty()) {
        throw Error(ExitCode::not_found,
                    fmt::format("sandbox \"{}\" has no keyring items: its template \"{}\" "
                                "generates no secrets",
                                name, record->template_name));
    }
    return std::move(*record);
}

// The names of this state folder's sandboxes by id. Keyrings are shared by every state folder
// of the user, so an item whose id is not here belongs to another folder.
std::map<std::string, std::string> names_by_id(Context& context) {
    std::map<std::string, std::string> names;
    for (const auto& record : value_or_throw(context.store().list())) {
        names[record.id] = record.name;
    }
    return names;
}

// Every backend that may hold items: those the records name, and the chosen one.
std::vector<SecretStore*> all_backends(Context& context) {
    std::set<std::string> names;
    for (const auto& record : value_or_throw(context.store().list())) {
        if (!record.secret_backend.empty()) {
            names.insert(record.secret_backend);
        }
    }
    std::vector<SecretStore*> stores;
    auto chosen = context.secret_stores().open("");
    if (chosen) {
        names.erase(std::string((*chosen)->name()));
        stores.push_back(&open_purged(context, ""));
    } else if (names.empty()) {
        throw Error(chosen.error());
    }
    for (const auto& name : names) {
        stores.push_back(&open_purged(context, name));
    }
    return stores;
}

Failure no_items(const std::string& name, std::string_view backend) {
    return make_failure(ExitCode::not_found,
                        "sandbox \"{}\" has no items in keyring {}; `jitbox creds list` shows "
                        "the items there are",
                        name, backend);
}


bool is_shell_name(std::string_view key) {
    const auto is_name_char = [](char c) {
        return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
               (c >= '0' && c <= '9');
    };
    return !key.empty() && !(key.front() >= '0' && key.front() <= '9') &&
           std::all_of(key.begin(), key.end(), is_name_char);
}

void print_env(const std::string& name, const std::map<std::string, std::string>& values) {
    for (const auto& [key, value] : values) {
        if (!is_shell_name(key)) {
            throw Error(ExitCode::usage,
                        fmt::format("item {} of sandbox \"{}\" is not a shell variable name, "
                                    "show it with --format json",
                                    key, name));
        }
    }
    for (const auto& [key, value] : values) {
        fmt::print("export {}={}\n", key, shell_quote(value));
    }
}

// The JSON that the AWS CLI and SDKs expect from a `credential_process` program: version 1,
// with Expiration so that they ask again before it passes.
void print_credential_process(const AwsSession& session) {
    const aws::Credentials& credentials = session.credentials;
    const nlohmann::json document = {{"Version", 1},
                                     {"AccessKeyId", credentials.access_key_id},
                                     {"SecretAccessKey", credentials.secret_access_key},
                                     {"SessionToken", credentials.session_token},
                                     {"Expiration", format_rfc3339(*credentials.expiration)}};
    fmt::print("{}\n", document.dump());
}

// An aws-sts sandbox shows its session, renewed when it is near its end, as the variables
// `jitbox env` prints.
void show_aws_session(Context& context, const CredsOptions& options, CredsFormat format) {
    const AwsSession session =
        current_aws_session(context, options.name, make_mfa_source(options.mfa_stdin));
    if (format == CredsFormat::credential_process) {
        if (!options.key.empty()) {
            throw Error(ExitCode::usage, "--format credential-process prints the whole session; "
                                         "leave out the key");
        }
        print_credential_process(session);
        return;
    }
    std::map<std::string, std::string> values;
    for (auto& [name, value] : aws_session_variables(session)) {
        if (options.key.empty() || options.key == name) {
            values[name] = std::move(value);
        }
    }
    if (values.empty()) {
        throw Error(ExitCode::not_found,
                    fmt::format("the AWS session of \"{}\" has no value {}; its keys are "
                                "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, "
                                "AWS_SESSION_EXPIRATION, AWS_REGION and AWS_DEFAULT_REGION",
                                options.name, options.key));
    }
    if (format == CredsFormat::json) {
        fmt::print("{}\n", nlohmann::json(values).dump(2));
    } else {
        print_env(options.name, values);
    }
}

void run_show(Context& context, CredsOptions options) {
    options.name = context.resolve_sandbox_name(options.name);
    std::string format_name = options.format;
    if (format_name.empty()) {
        format_name = context.options().json ? "json" : "env";
    }
    const CredsFormat format = parse_format(format_name);
    const auto record = value_or_throw(context.store().find(options.name));
    if (record && record->provider == "aws-sts") {
        show_aws_session(context, options, format);
        return;
    }
    if (format == CredsFormat::credential_process) {
        throw Error(ExitCode::usage,
                    fmt::format("--format credential-process needs an aws-sts sandbox, and "
                                "\"{}\" is {}",
                                options.name,
                                record ? "a " + record->provider + " sandbox" : "not a sandbox"));
    }
    const SandboxRecord with_items = record_with_items(context, options.name);
    SecretStore& store = open_purged(context, with_items.secret_backend);
    const auto values = read_sandbox_values(store, with_items, options.key);
    switch (format) {
    case CredsFormat::env:
        print_env(options.name, values);
        break;
    case CredsFormat::json:
        fmt::print("{}\n", nlohmann::json(values).dump(2));
        break;
    case CredsFormat::credential_process:
        break; // refused above
    }
}

// Lists the items of this state folder's sandboxes. Another folder's items are left out,
// because their ids mean nothing here and `creds show` could not reach them by name.
void run_list(Context& context) {
    const TimePoint now = SystemClock().now();
    const auto names = names_by_id(context);
    nlohmann::json array = nlohmann::json::array();
    std::vector<std::vector<std::string>> rows = {{"SANDBOX", "KEY", "EXPIRES IN", "BACKEND"}};
    std::size_t elsewhere = 0;
    for (SecretStore* store : all_backends(context)) {
        for (const auto& info : value_or_locked(store->list(), store->name())) {
            const auto name = names.find(info.sandbox_id);
            if (name == names.end()) {
                ++elsewhere;
                continue;
            }
            array.push_back({{"sandbox", name->second},
                             {"sandbox_id", info.sandbox_id},
                             {"key", info.key},
                             {"expires_at", format_rfc3339(info.expires_at)},
                             {"backend", store->name()}});
            rows.push_back({name->second, info.key, format_time_left(info.expires_at, now),
                            std::string(store->name())});
        }
    }
    log_debug(1, "left out {} keyring items of sandboxes without a record here", elsewhere);
    if (context.options().json) {
        fmt::print("{}\n", array.dump(2));
        return;
    }
    print_table(rows);
}

// Removes the items of one sandbox, or with --all those of every sandbox in this state folder.
// Another state folder's live items stay, and open_purged has removed every expired item.
// NOTE: the live items of a sandbox whose record is gone, such as after its state folder was
// deleted, look like another folder's and stay until they expire.
void run_clear(Context& context, CredsOptions options) {
    if (options.all == !options.name.empty()) {
        throw Error(ExitCode::usage, "name the sandbox whose items to remove, or give --all");
    }
    if (!options.all) {
        options.name = context.resolve_sandbox_name(options.name);
        const SandboxRecord record = record_with_items(context, options.name);
        SecretStore& store = open_purged(context, record.secret_backend);
        const auto removed = value_or_locked(store.remove_sandbox(record.id), store.name());
        if (removed == 0) {
            throw Error(no_items(options.name, store.name()));
        }
        context.notice("removed {} items of {} from keyring {}", removed, options.name,
                       store.name());
        return;
    }
    const auto names = names_by_id(context);
    for (SecretStore* store : all_backends(context)) {
        std::set<std::string> sandbox_ids;
        for (const auto& info : value_or_locked(store->list(), store->name())) {
            if (names.count(info.sandbox_id) > 0) {
                sandbox_ids.insert(info.sandbox_id);
            }
        }
        for (const auto& sandbox_id : sandbox_ids) {
            const auto removed = value_or_locked(store->remove_sandbox(sandbox_id), store->name());
            context.notice("removed {} items of {} from keyring {}", removed, names.at(sandbox_id),
                           store->name());
        }
    }
}

} // namespace

std::map<std::string, std::string>
read_sandbox_values(SecretStore& store, const SandboxRecord& record, const std::string& key) {
    const std::string& name = record.name;
    std::vector<std::string> keys{key};
    if (key.empty()) {
        keys.clear();
        for (const auto& info : value_or_locked(store.list(), store.name())) {
            if (info.sandbox_id == record.id) {
                keys.push_back(info.key);
            }
        }
    }
    std::map<std::string, std::string> values;
    for (const auto& wanted : keys) {
        auto lookup = value_or_locked(store.get(record.id, wanted), store.name());
        if (lookup.status == LookupStatus::locked) {
            throw Error(locked_failure(store.name(), name));
        }
        if (lookup.status == LookupStatus::found) {
            values[wanted] = std::move(lookup.value);
        }
    }
    if (values.empty() || (!key.empty() && values.count(key) == 0)) {
        throw Error(key.empty() ? no_items(name, store.name())
                                : make_failure(ExitCode::not_found,
                                               "sandbox \"{}\" has no item {} in keyring {}",
                                               name, key, store.name()));
    }
    return values;
}

void register_creds(CLI::App& app, Context& context) {
    auto options = std::make_shared<CredsOptions>();
    CLI::App* creds = app.add_subcommand("creds", "List, show or remove the keyring items of "
                                                  "your sandboxes");
    creds->require_subcommand(1);

    CLI::App* list = creds->add_subcommand("list", "List the items of this state folder's "
                                                   "sandboxes by sandbox, key, expiry and "
                                                   "backend, without values");
    list->callback([&context] { run_list(context); });

    CLI::App* show = creds->add_subcommand("show", "Print the values of a sandbox's items");
    show->add_option("name", options->name, "Sandbox")->required()->type_name("NAME");
    show->add_option("key", options->key, "Only this item (default: all of them)")
        ->type_name("KEY");
    show->add_option("--format", options->format,
                     "env: `export KEY='value'` lines for eval; json: one object; "
                     "credential-process: the JSON of AWS's credential_process setting "
                     "(aws-sts sandboxes) (default: json with --json, else env)")
        ->check(CLI::IsMember({"env", "json", "credential-process"}))
        ->type_name("FORMAT");
    show->add_flag("--mfa-stdin", options->mfa_stdin,
                   "Read the MFA code, when an aws-sts session needs renewal, from standard input "
                   "(default: ask on the terminal)");
    show->callback([&context, options] { run_show(context, *options); });

    CLI::App* clear = creds->add_subcommand("clear", "Remove a sandbox's items from the "
                                                     "keyring; the sandbox keeps running");
    clear->add_option("name", options->name, "Sandbox")->type_name("NAME");
    clear->add_flag("--all", options->all,
                    "Remove the items of every sandbox in this state folder");
    clear->callback([&context, options] { run_clear(context, *options); });
}

} // namespace jitbox::cli
