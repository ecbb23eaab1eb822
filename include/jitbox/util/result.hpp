#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace jitbox {

/// Process exit codes. README, `jitbox --help` and scripts rely on these numbers, so a code is
/// never renumbered or reused for another meaning.
enum class ExitCode : int {
    success = 0,
    internal = 1,    // a bug or an unexpected system failure
    usage = 2,       // bad command line or configuration
    provider = 3,    // the engine or cloud API failed or could not be reached
    not_found = 4,   // no sandbox of that name in this user's state
    name_in_use = 5, // a sandbox of that name already exists
    denied = 6,      // refused by policy, including a ttl above the template's max_ttl
    locked = 7,      // the keyring holds the credentials but is locked
    checks_failed = 8, // `policy check --strict` found warnings, or a `policy test` case failed
                       // or `audit verify` found a broken hash chain
    partial_teardown = 9, // resources of the sandbox still exist after teardown; it is retried
    not_running = 10, // `status --check`: the sandbox exists but is expired, being created or
                      // removed, or its container or instance is not running
    not_ready = 11,   // `up --wait`: the sandbox exited, became unhealthy or was not ready in
                      // time, and was removed again
    exec_failed = 125,       // `jitbox exec` failed before running the command
    cannot_execute = 126,    // `jitbox exec`: the command exists but cannot be run
    command_not_found = 127, // `jitbox exec`: no such command
    interrupted = 130, // stopped by SIGINT, SIGTERM or SIGHUP; what was created is removed
};

/// A failure as the user sees it: one line of text and the exit code it ends the process with.
struct Failure {
    ExitCode code = ExitCode::internal;
    std::string message;
};

template <typename... Args>
Failure make_failure(ExitCode code, fmt::format_string<Args...> format, Args&&... args) {
    return Failure{code, fmt::format(format, std::forward<Args>(args)...)};
}

/// A value or the failure that prevented it. Low layers return this; commands turn a failure
/// into an Error exception, which `main` maps to the exit code.
template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : m_state(std::move(value)) {}
    Result(Failure failure) : m_state(std::move(failure)) {}

    bool ok() const { return std::holds_alternative<T>(m_state); }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<T>(m_state); }
    const T& value() const& { return std::get<T>(m_state); }
    T&& value() && { return std::get<T>(std::move(m_state)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const Failure& error() const { return std::get<Failure>(m_state); }

private:
    std::variant<T, Failure> m_state;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Failure failure) : m_failure(std::move(failure)), m_ok(false) {}

    bool ok() const { return m_ok; }
    explicit operator bool() const { return m_ok; }
    const Failure& error() const { return m_failure; }

private:
    Failure m_failure;
    bool m_ok = true;
};

/// The one exception type that commands throw; `main` catches it and exits with its code.
class Error : public std::runtime_error {
public:
    explicit Error(Failure failure)
        : std::runtime_error(failure.message), m_code(failure.code) {}
    Error(ExitCode code, const std::string& message) : std::runtime_error(message), m_code(code) {}

    ExitCode code() const { return m_code; }

private:
    ExitCode m_code;
};

/// Returns the value of `result`, or throws its failure as an Error.
template <typename T>
T value_or_throw(Result<T> result) {
    if (!result) {
        throw Error(result.error());
    }
    return std::move(result).value();
}

inline void throw_if_failed(const Result<void>& result) {
    if (!result) {
        throw Error(result.error());
    }
}

} // namespace jitbox
