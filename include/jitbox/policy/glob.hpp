#pragma once

#include <string>
#include <string_view>

namespace jitbox {

/// Checks a template glob: `*` matches any run of characters, `?` one character, `[abc]`,
/// `[a-z]` and `[!abc]` one character of a set. Other characters match themselves and must be
/// ones a template name can contain (a-z, 0-9, '_', '.', '-'). Returns the problem as one
/// sentence, or an empty string when the glob is valid.
std::string glob_problem(std::string_view glob);

/// True when the valid glob `glob` matches all of `name`. It backtracks only to the last `*`,
/// so no glob takes exponential time, and it allocates nothing.
bool glob_matches(std::string_view glob, std::string_view name);

/// True when `glob` contains `*`, `?` or `[`, so it is more than an exact name.
bool is_glob_pattern(std::string_view glob);

} // namespace jitbox
