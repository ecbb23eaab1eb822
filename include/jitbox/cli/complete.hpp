#pragma once

// Shell completion. The scripts in completions/ run the hidden `jitbox __complete WORD...` and
// offer what it prints, so subcommands and options come from the CLI11 command tree itself and
// cannot drift from it.

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace jitbox::cli {

/// The first argument that runs the completion engine in place of a subcommand.
inline constexpr std::string_view k_complete_command = "__complete";

/// One word the shell may insert, with a one-line description for zsh and fish.
struct CompletionCandidate {
    std::string value;
    std::string description;
};

/// The kind of candidates that the shell offers for the word under the cursor.
enum class CompletionKind {
    candidates,  // the listed candidates, which may be none
    files,       // the shell's own file name completion
    directories, // the shell's own folder name completion
};

struct Completion {
    CompletionKind kind = CompletionKind::candidates;
    std::vector<CompletionCandidate> candidates;
};

/// The sources of template and sandbox names. `templates` receives the value of a `--config`
/// found among the words, or an empty string.
struct CompletionSources {
    std::function<std::vector<CompletionCandidate>(const std::string& config_path)> templates;
    std::function<std::vector<CompletionCandidate>()> sandboxes;
};

/// Completes the last of `words`, which are the command line after the program name up to the
/// cursor. The last word is the one being typed and may be empty. Candidates are those that
/// start with it. An option value written as `--format=js` gets candidates of the same form.
Completion complete_command_line(const CLI::App& root, const std::vector<std::string>& words,
                                 const CompletionSources& sources);

/// The text that `__complete` prints: one candidate a line, with a tab before its description
/// when it has one, or the single line `:files` or `:directories`.
std::string format_completion(const Completion& completion);

/// Runs `jitbox __complete WORD...` on the command tree `root`. Template names come from the
/// configuration and sandbox names from the state folder's records. It never contacts the
/// engine, the keyring or the audit log, and it always returns 0. On any failure it prints
/// nothing, so completion never writes errors into a prompt.
int run_complete(const CLI::App& root, const std::vector<std::string>& words);

} // namespace jitbox::cli
