// One-line messages for command lines that CLI11 rejects, naming the word the user typed and
// the closest known subcommand or option.

#include "commands.hpp"

#include <fmt/ranges.h>

#include <optional>

namespace jitbox::cli {

namespace {

// The deepest subcommand that CLI11 had entered when it stopped.
const CLI::App& deepest_command(const CLI::App& app) {
    const CLI::App* command = &app;
    while (!command->get_subcommands().empty()) {
        command = command->get_subcommands().front();
    }
    return *command;
}

// "jitbox policy" for the subcommand policy of jitbox.
std::string command_path(const CLI::App& command) {
    std::string path = command.get_name();
    for (const CLI::App* parent = command.get_parent(); parent != nullptr;
         parent = parent->get_parent()) {
        path = parent->get_name() + " " + path;
    }
    return path;
}

// The first word that no command took. CLI11 leaves an unknown option with the parent that
// `command` falls through to, so the parents are searched too.
std::optional<std::string> first_unexpected_word(const CLI::App& command) {
    for (const CLI::App* level = &command; level != nullptr; level = level->get_parent()) {
        const auto extras = level->remaining();
        if (!extras.empty()) {
            return extras.front();
        }
    }
    return std::nullopt;
}

std::vector<std::string> subcommand_names(const CLI::App& command) {
    std::vector<std::string> names;
    for (const CLI::App* sub : command.get_subcommands([](const CLI::App* candidate) {
             return !candidate->get_group().empty(); // hidden ones have an empty group
         })) {
        names.push_back(sub->get_name());
    }
    return names;
}

// "--ttl" and the other long options that `command` and the parents it falls through to take.
std::vector<std::string> long_option_names(const CLI::App& command) {
    std::vector<std::string> names;
    for (const CLI::App* level = &command; level != nullptr; level = level->get_parent()) {
        for (const CLI::Option* option : level->get_options()) {
            for (const auto& name : option->get_lnames()) {
                names.push_back("--" + name);
            }
        }
    }
    return names;
}

// ` (did you mean "WORD"?)` for the closest of `known`, or nothing.
std::string did_you_mean(std::string_view typed, const std::vector<std::string>& known,
                         std::string_view prefix = "") {
    const std::string closest = closest_name(typed, known);
    return closest.empty() ? "" : fmt::format(" (did you mean \"{}{}\"?)", prefix, closest);
}

std::string describe_unknown_option(const CLI::App& command, const std::string& word) {
    const std::string path = command_path(command);
    const std::string name = word.substr(0, word.find('='));
    // Short options are one letter, so every other letter would be one edit away.
    const std::string suggestion =
        name.rfind("--", 0) == 0 ? did_you_mean(name, long_option_names(command)) : "";
    return fmt::format("unknown option \"{}\" for `{}`{}; see `{} --help`", name, path, suggestion,
                       path);
}

std::string describe_unknown_command(const CLI::App& command, const std::string& word) {
    const std::string path = command_path(command);
    // The words after "jitbox", such as "policy " for the subcommands of policy.
    const std::string parents =
        command.get_parent() == nullptr ? "" : path.substr(path.find(' ') + 1) + " ";
    return fmt::format("unknown command \"{}{}\"{}; see `{} --help` for the list", parents, word,
                       did_you_mean(word, subcommand_names(command), parents), path);
}

} // namespace

std::string describe_parse_error(const CLI::App& app, const CLI::ParseError& error) {
    const CLI::App& command = deepest_command(app);
    const std::string path = command_path(command);
    const auto names = subcommand_names(command);
    const auto word = first_unexpected_word(command);

    if (word && word->size() > 1 && word->front() == '-') {
        return describe_unknown_option(command, *word);
    }
    if (word && !names.empty()) {
        return describe_unknown_command(command, *word);
    }
    if (!word && !names.empty() && command.get_require_subcommand_min() > 0) {
        return fmt::format("`{}` needs a command: {}; see `{} --help`", path,
                           fmt::join(names, ", "), path);
    }
    return fmt::format("{}; see `{} --help`", error.what(), path);
}

} // namespace jitbox::cli
