// jitbox_secret_probe: drives the secret store API from the command line for
// tests/integration/test_keyring.sh. It opens the store as jitbox would (JITBOX_KEYRING, then
// --keyring, then auto), reports the chosen backend on stderr, and runs one command:
//
//   choose                           prints the backend name, then the reason, on stdout
//   put SANDBOX KEY EXPIRES          reads the value from stdin (one trailing newline dropped);
//                                    EXPIRES is a duration from now (90s, 5m) or RFC 3339
//   get SANDBOX KEY                  prints found, not_found or locked; then the value if found
//   list                             prints "SANDBOX KEY EXPIRES" lines
//   remove SANDBOX KEY               prints removed or absent
//   remove-sandbox SANDBOX           prints the number removed
//   purge [NOW]                      prints the number removed; NOW is RFC 3339, default now
//
// Values pass only through stdin and stdout, never through arguments or stderr. Failures print
// one line on stderr and exit 1; usage errors exit 2.

#include "jitbox/secrets/store.hpp"
#include "jitbox/util/log.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

namespace {

using namespace jitbox;

struct Arguments {
    std::string keyring;
    std::vector<std::string> words; // the command and its operands
};

[[noreturn]] void usage_error(const std::string& message) {
    fmt::print(stderr, "jitbox_secret_probe: {}\n", message);
    fmt::print(stderr, "usage: jitbox_secret_probe [-v] [--keyring=NAME] choose | put SANDBOX "
                       "KEY EXPIRES | get SANDBOX KEY | list | remove SANDBOX KEY | "
                       "remove-sandbox SANDBOX | purge [NOW]\n");
    std::exit(2);
}

Arguments parse_arguments(int argc, char** argv) {
    Arguments arguments;
    for (int i = 1; i < argc; ++i) {
        std::string word = argv[i];
        if (word == "-v") {
            set_log_verbosity(1);
        } else if (word.rfind("--keyring=", 0) == 0) {
            arguments.keyring = word.substr(10);
        } else {
            arguments.words.push_back(word);
        }
    }
    if (arguments.words.empty()) {
        usage_error("missing command");
    }
    return arguments;
}

void expect_operands(const Arguments& arguments, std::size_t min, std::size_t max) {
    const std::size_t count = arguments.words.size() - 1;
    if (count < min || count > max) {
        usage_error(fmt::format("wrong number of operands for {}", arguments.words[0]));
    }
}

[[noreturn]] void fail(const Failure& failure) {
    fmt::print(stderr, "jitbox_secret_probe: error: {}\n", failure.message);
    std::exit(failure.code == ExitCode::usage ? 2 : 1);
}

template <typename T>
T value_or_exit(Result<T> result) {
    if (!result) {
        fail(result.error());
    }
    return std::move(result).value();
}

void exit_if_failed(const Result<void>& result) {
    if (!result) {
        fail(result.error());
    }
}

TimePoint parse_expiry(const std::string& text) {
    if (auto duration = parse_duration(text)) {
        return SystemClock().now() + *duration;
    }
    return value_or_exit(parse_rfc3339(text));
}

std::string read_value_from_stdin() {
    std::string value{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
    if (!value.empty() && value.back() == '\n') {
        value.pop_back();
    }
    return value;
}

int run(SecretStore& store, const OpenedSecretStore& opened, const Arguments& arguments) {
    const std::string& command = arguments.words[0];
    const auto& words = arguments.words;
    if (command == "choose") {
        expect_operands(arguments, 0, 0);
        fmt::print("{}\n{}\n", store.name(), opened.reason);
    } else if (command == "put") {
        expect_operands(arguments, 3, 3);
        SecretItem item{words[1], words[2], read_value_from_stdin(), parse_expiry(words[3]), ""};
        exit_if_failed(store.put(item));
    } else if (command == "get") {
        expect_operands(arguments, 2, 2);
        auto lookup = value_or_exit(store.get(words[1], words[2]));
        fmt::print("{}\n", to_string(lookup.status));
        if (lookup.status == LookupStatus::found) {
            fmt::print("{}\n", lookup.value);
        }
    } else if (command == "list") {
        expect_operands(arguments, 0, 0);
        for (const auto& info : value_or_exit(store.list())) {
            fmt::print("{} {} {}\n", info.sandbox_id, info.key, format_rfc3339(info.expires_at));
        }
    } else if (command == "remove") {
        expect_operands(arguments, 2, 2);
        fmt::print("{}\n", value_or_exit(store.remove(words[1], words[2])) ? "removed" : "absent");
    } else if (command == "remove-sandbox") {
        expect_operands(arguments, 1, 1);
        fmt::print("{}\n", value_or_exit(store.remove_sandbox(words[1])));
    } else if (command == "purge") {
        expect_operands(arguments, 0, 1);
        const TimePoint now =
            words.size() > 1 ? value_or_exit(parse_rfc3339(words[1])) : SystemClock().now();
        fmt::print("{}\n", value_or_exit(store.purge_expired(now)));
    } else {
        usage_error(fmt::format("unknown command \"{}\"", command));
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    const Arguments arguments = parse_arguments(argc, argv);
    EnvLookup env = [](const std::string& name) -> std::optional<std::string> {
        const char* value = std::getenv(name.c_str());
        return value == nullptr ? std::nullopt : std::optional<std::string>(value);
    };
    auto opened = value_or_exit(open_secret_store(arguments.keyring, env));
    fmt::print(stderr, "jitbox_secret_probe: store {} ({})\n", opened.store->name(),
               opened.reason);
    return run(*opened.store, opened, arguments);
}
