// Template globs: `*`, `?` and bracket sets over the characters of template names.

#include "jitbox/policy/glob.hpp"

#include <fmt/format.h>

namespace jitbox {
namespace {

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

// Returns the position just past the `]` that closes the set opening at `open`, or npos.
std::size_t find_set_end(std::string_view glob, std::size_t open) {
    const std::size_t close = glob.find(']', open + 1);
    return close == std::string_view::npos ? close : close + 1;
}

// The position of the first member of the set opening at `open`, after any `!`.
std::size_t first_set_member(std::string_view glob, std::size_t open) {
    return open + 1 < glob.size() && glob[open + 1] == '!' ? open + 2 : open + 1;
}

// True when `c` is in the set `glob[open, end)`, which starts with `[` and ends with `]`. A
// `-` between two members makes a range, and a `-` first or last is a member itself.
bool set_contains(std::string_view glob, std::size_t open, std::size_t end, char c) {
    const bool negated = glob[open + 1] == '!';
    const std::size_t last = end - 1; // the closing `]`
    bool found = false;
    std::size_t i = first_set_member(glob, open);
    while (i < last) {
        if (i + 2 < last && glob[i + 1] == '-') {
            found = found || (glob[i] <= c && c <= glob[i + 2]);
            i += 3;
        } else {
            found = found || glob[i] == c;
            ++i;
        }
    }
    return found != negated;
}

std::string invalid_char_problem(std::string_view glob, char c) {
    return fmt::format("invalid template glob \"{}\": '{}' cannot occur in a template name, "
                       "which uses a-z, 0-9, '_', '.' and '-'",
                       glob, c);
}

// Checks the set `glob[open, end)` the way set_contains reads it.
std::string set_problem(std::string_view glob, std::size_t open, std::size_t end) {
    const std::size_t last = end - 1;
    std::size_t i = first_set_member(glob, open);
    if (i == last) {
        return fmt::format("invalid template glob \"{}\": the set at offset {} is empty", glob,
                           open);
    }
    while (i < last) {
        const bool range = i + 2 < last && glob[i + 1] == '-';
        const std::size_t members = range ? 3 : 1;
        for (std::size_t k = i; k < i + members; k += 2) {
            if (!is_name_char(glob[k])) {
                return invalid_char_problem(glob, glob[k]);
            }
        }
        if (range && glob[i] > glob[i + 2]) {
            return fmt::format("invalid template glob \"{}\": the range {}-{} is reversed", glob,
                               glob[i], glob[i + 2]);
        }
        i += members;
    }
    return {};
}

} // namespace

std::string glob_problem(std::string_view glob) {
    if (glob.empty()) {
        return "invalid template glob \"\": use a template name or a pattern such as \"db-*\"";
    }
    for (std::size_t i = 0; i < glob.size(); ++i) {
        const char c = glob[i];
        if (c == '[') {
            const std::size_t end = find_set_end(glob, i);
            if (end == std::string_view::npos) {
                return fmt::format("invalid template glob \"{}\": the '[' at offset {} has no "
                                   "closing ']'",
                                   glob, i);
            }
            std::string problem = set_problem(glob, i, end);
            if (!problem.empty()) {
                return problem;
            }
            i = end - 1;
        } else if (c != '*' && c != '?' && !is_name_char(c)) {
            return invalid_char_problem(glob, c);
        }
    }
    return {};
}

// Walks glob and name together. On a mismatch after a `*`, the match restarts one character
// further into the name from the last `*`, which is enough because a later `*` can absorb
// whatever an earlier one would have.
bool glob_matches(std::string_view glob, std::string_view name) {
    std::size_t g = 0;
    std::size_t n = 0;
    std::size_t star = std::string_view::npos;
    std::size_t star_name = 0;
    while (n < name.size()) {
        if (g < glob.size() && glob[g] == '*') {
            star = g++;
            star_name = n;
            continue;
        }
        if (g < glob.size() && glob[g] == '[') {
            const std::size_t end = find_set_end(glob, g);
            if (end != std::string_view::npos && set_contains(glob, g, end, name[n])) {
                g = end;
                ++n;
                continue;
            }
        } else if (g < glob.size() && (glob[g] == '?' || glob[g] == name[n])) {
            ++g;
            ++n;
            continue;
        }
        if (star == std::string_view::npos) {
            return false;
        }
        g = star + 1;
        n = ++star_name;
    }
    while (g < glob.size() && glob[g] == '*') {
        ++g;
    }
    return g == glob.size();
}

bool is_glob_pattern(std::string_view glob) {
    return glob.find_first_of("*?[") != std::string_view::npos;
}

} // namespace jitbox
