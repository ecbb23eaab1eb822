// The hidden `__complete` command: candidates for the word under the cursor, from the CLI11
// command tree, the configuration's templates and the state folder's records.

#include "jitbox/cli/complete.hpp"

#include "commands.hpp"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>

namespace jitbox::cli {

namespace {

namespace fs = std::filesystem;

// The position that the walk over the finished words reached.
struct WalkState {
    const CLI::App* command = nullptr;
    std::size_t positionals = 0;          // positional words given to `command`
    const CLI::Option* pending = nullptr; // an option whose value is the next word
    bool after_separator = false;         // a `--` was given, so every word is positional
    std::string config_path;              // the value of a --config among the words
};

bool starts_with(std::string_view text, std::string_view prefix) {
    return text.substr(0, prefix.size()) == prefix;
}

bool is_visible(const CLI::App& command) {
    // CLI11 hides a subcommand from --help by an empty group.
    return !command.get_group().empty();
}

bool takes_value(const CLI::Option& option) {
    return option.get_type_size_max() > 0 && option.get_expected_max() > 0;
}

// The option of `command` or of a parent it falls through to, named by `word` such as
// "--config" or "-v".
const CLI::Option* find_option(const CLI::App* command, const std::string& word) {
    for (; command != nullptr; command = command->get_parent()) {
        for (const CLI::Option* option : command->get_options()) {
            if (option->nonpositional() && option->check_name(word)) {
                return option;
            }
        }
    }
    return nullptr;
}

const CLI::App* find_subcommand(const CLI::App& command, const std::string& name) {
    for (const CLI::App* sub : command.get_subcommands([](const CLI::App*) { return true; })) {
        if (sub->check_name(name)) {
            return sub;
        }
    }
    return nullptr;
}

// The positional option that the positional word at `index` fills, if any.
const CLI::Option* positional_at(const CLI::App& command, std::size_t index) {
    std::size_t first = 0;
    for (const CLI::Option* option : command.get_options()) {
        if (option->nonpositional() || !option->get_positional()) {
            continue;
        }
        const auto count = static_cast<std::size_t>(std::max(1, option->get_items_expected_max()));
        if (index < first + count) {
            return option;
        }
        first += count;
    }
    return nullptr;
}

// Reads one option word, with its value after `=` or, for a short option, attached.
void walk_option(WalkState& state, const std::string& word) {
    const bool is_long = starts_with(word, "--");
    const bool is_cluster = !is_long && word.size() > 2; // -vv, or -e with its value attached
    const std::size_t equals = is_long ? word.find('=') : std::string::npos;
    const std::string name = is_cluster ? word.substr(0, 2) : word.substr(0, equals);

    const CLI::Option* option = find_option(state.command, name);
    if (option == nullptr || !takes_value(*option) || is_cluster) {
        return;
    }
    if (equals == std::string::npos) {
        state.pending = option;
        return;
    }
    if (option->check_lname("config")) {
        state.config_path = word.substr(equals + 1);
    }
}

// Reads one finished word: an option's value, `--`, an option, a subcommand or a positional.
void walk_word(WalkState& state, const std::string& word) {
    if (state.pending != nullptr) {
        if (state.pending->check_lname("config")) {
            state.config_path = word;
        }
        state.pending = nullptr;
        return;
    }
    if (state.after_separator) {
        ++state.positionals;
        return;
    }
    if (word == "--") {
        state.after_separator = true;
        return;
    }
    if (word.size() > 1 && starts_with(word, "-")) {
        walk_option(state, word);
        return;
    }
    const CLI::App* sub = state.positionals == 0 ? find_subcommand(*state.command, word) : nullptr;
    if (sub != nullptr) {
        state.command = sub;
        return;
    }
    ++state.positionals;
}

WalkState walk_words(const CLI::App& root, const std::vector<std::string>& words) {
    WalkState state;
    state.command = &root;
    for (const std::string& word : words) {
        walk_word(state, word);
    }
    return state;
}

// The name part of CLI11's type name, such as "FILE" in "FILE" or "FORMAT" in
// "FORMAT:{env,json}".
std::string type_name_of(const CLI::Option& option) {
    const std::string full = option.get_type_name();
    return full.substr(0, full.find(':'));
}

// The allowed values that a CLI::IsMember check adds to the type name, as in
// "FORMAT:{env,json,credential-process}".
std::vector<std::string> member_values(const CLI::Option& option) {
    const std::string full = option.get_type_name();
    const std::size_t open = full.find(":{");
    const std::size_t close = full.find('}', open);
    if (open == std::string::npos || close == std::string::npos) {
        return {};
    }
    std::vector<std::string> values;
    std::istringstream list(full.substr(open + 2, close - open - 2));
    for (std::string value; std::getline(list, value, ',');) {
        values.push_back(value);
    }
    return values;
}

// Candidates for the value of `option`, a positional or the argument of a named option. The
// option's type name decides them. NAME is an existing sandbox, except for `--name`, which names
// a new one. CMD... is the local command that `exec` runs, and the shell completes it as a file
// name.
Completion complete_value(const CLI::Option& option, const WalkState& state,
                          const CompletionSources& sources) {
    Completion completion;
    const std::string type = type_name_of(option);
    if (const auto values = member_values(option); !values.empty()) {
        for (const auto& value : values) {
            completion.candidates.push_back({value, ""});
        }
    } else if (type == "FILE" || type == "PREFIX" || type == "CMD...") {
        completion.kind = CompletionKind::files;
    } else if (type == "DIR") {
        completion.kind = CompletionKind::directories;
    } else if (option.get_name() == "template") {
        completion.candidates = sources.templates(state.config_path);
    } else if (type == "NAME" && !option.check_lname("name")) {
        completion.candidates = sources.sandboxes();
    }
    return completion;
}

// Every spelling of the options that `command` accepts, its own first, then those of the
// parents it falls through to. A name that both define, such as --help, is listed once.
std::vector<CompletionCandidate> option_candidates(const CLI::App& command) {
    std::vector<CompletionCandidate> candidates;
    auto add = [&candidates](const std::string& name, const CLI::Option& option) {
        const bool listed = std::any_of(candidates.begin(), candidates.end(),
                                        [&name](const auto& known) { return known.value == name; });
        if (!listed) {
            candidates.push_back({name, option.get_description()});
        }
    };
    for (const CLI::App* level = &command; level != nullptr; level = level->get_parent()) {
        for (const CLI::Option* option : level->get_options()) {
            for (const auto& name : option->get_lnames()) {
                add("--" + name, *option);
            }
            for (const auto& name : option->get_snames()) {
                add("-" + name, *option);
            }
        }
    }
    return candidates;
}

std::vector<CompletionCandidate> subcommand_candidates(const CLI::App& command) {
    std::vector<CompletionCandidate> candidates;
    for (const CLI::App* sub : command.get_subcommands(
             [](const CLI::App* candidate) { return is_visible(*candidate); })) {
        candidates.push_back({sub->get_name(), sub->get_description()});
    }
    return candidates;
}

// Candidates for the word being typed, `current`, which is not an option's value.
Completion complete_argument(const WalkState& state, const std::string& current,
                             const CompletionSources& sources) {
    Completion completion;
    if (!state.after_separator && starts_with(current, "-")) {
        completion.candidates = option_candidates(*state.command);
        return completion;
    }
    if (!state.after_separator && state.positionals == 0) {
        completion.candidates = subcommand_candidates(*state.command);
        if (!completion.candidates.empty()) {
            return completion;
        }
    }
    if (const CLI::Option* option = positional_at(*state.command, state.positionals)) {
        return complete_value(*option, state, sources);
    }
    return completion;
}

void keep_prefixed(Completion& completion, std::string_view prefix) {
    auto& candidates = completion.candidates;
    candidates.erase(std::remove_if(candidates.begin(), candidates.end(),
                                    [prefix](const CompletionCandidate& candidate) {
                                        return !starts_with(candidate.value, prefix);
                                    }),
                     candidates.end());
}

std::vector<CompletionCandidate> configured_templates(const std::string& config_path) {
    GlobalOptions options;
    options.config_path = config_path;
    const Context context(options);
    LayeredConfigRequest request;
    request.project = context.project_request();
    auto loaded = load_layered_config(request);
    if (!loaded) {
        return {};
    }
    const Config& config = loaded->merged;
    std::vector<CompletionCandidate> candidates;
    for (const auto& [name, spec] : config.templates) {
        std::string description = spec.provider == "docker" ? spec.image : spec.provider;
        if (name == config.default_template) {
            description += " (default)";
        }
        candidates.push_back({name, description});
    }
    return candidates;
}

// Reads the records directly rather than through StateStore::open, which would create the
// folder, and skips any record it cannot read.
std::vector<CompletionCandidate> recorded_sandboxes() {
    auto dir = default_state_dir();
    std::error_code error;
    if (!dir || !fs::is_directory(*dir / "sandboxes", error)) {
        return {};
    }
    const TimePoint now = SystemClock().now();
    std::vector<CompletionCandidate> candidates;
    for (const auto& entry : fs::directory_iterator(*dir / "sandboxes", error)) {
        if (entry.path().extension() != ".json") {
            continue;
        }
        std::ifstream file(entry.path());
        const std::string text((std::istreambuf_iterator<char>(file)),
                               std::istreambuf_iterator<char>());
        auto record = record_from_json(text);
        if (!record) {
            continue;
        }
        candidates.push_back(
            {record->name, fmt::format("{}, {}", record->template_name,
                                       format_time_left(record->expires_at, now))});
    }
    std::sort(candidates.begin(), candidates.end(),
              [](const auto& left, const auto& right) { return left.value < right.value; });
    return candidates;
}

} // namespace

Completion complete_command_line(const CLI::App& root, const std::vector<std::string>& words,
                                 const CompletionSources& sources) {
    if (words.empty()) {
        return complete_command_line(root, {""}, sources);
    }
    const std::vector<std::string> finished(words.begin(), words.end() - 1);
    const std::string& current = words.back();
    const WalkState state = walk_words(root, finished);

    if (state.pending != nullptr) {
        Completion completion = complete_value(*state.pending, state, sources);
        keep_prefixed(completion, current);
        return completion;
    }
    const std::size_t equals = current.find('=');
    if (!state.after_separator && starts_with(current, "--") && equals != std::string::npos) {
        const CLI::Option* option = find_option(state.command, current.substr(0, equals));
        if (option == nullptr || !takes_value(*option)) {
            return {};
        }
        Completion completion = complete_value(*option, state, sources);
        const std::string prefix = current.substr(0, equals + 1);
        for (auto& candidate : completion.candidates) {
            candidate.value = prefix + candidate.value;
        }
        keep_prefixed(completion, current);
        return completion;
    }
    Completion completion = complete_argument(state, current, sources);
    keep_prefixed(completion, current);
    return completion;
}

std::string format_completion(const Completion& completion) {
    switch (completion.kind) {
    case CompletionKind::files:
        return ":files\n";
    case CompletionKind::directories:
        return ":directories\n";
    case CompletionKind::candidates:
        break;
    }
    std::string text;
    for (const auto& candidate : completion.candidates) {
        text += candidate.value;
        if (!candidate.description.empty()) {
            text += '\t' + candidate.description;
        }
        text += '\n';
    }
    return text;
}

int run_complete(const CLI::App& root, const std::vector<std::string>& words) {
    try {
        const CompletionSources sources{configured_templates, recorded_sandboxes};
        fmt::print("{}", format_completion(complete_command_line(root, words, sources)));
    } catch (const std::exception&) {
        // Completion stays silent, because an error would appear in the user's prompt.
    }
    return 0;
}

} // namespace jitbox::cli
