#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <utility>

namespace jitbox {

/// How much `-v` asked for: 0 is silent, 1 explains each decision, 2 adds every API request.
int log_verbosity();
void set_log_verbosity(int level);

/// Prints `jitbox: debug: ...` on stderr when the verbosity is at least `level`. Callers pass
/// no secrets: request lines carry the method, path and status, never headers or bodies.
template <typename... Args>
void log_debug(int level, fmt::format_string<Args...> format, Args&&... args) {
    if (log_verbosity() >= level) {
        fmt::print(stderr, "jitbox: debug: {}\n", fmt::format(format, std::forward<Args>(args)...));
    }
}

} // namespace jitbox
