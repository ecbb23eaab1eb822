#include "jitbox/secrets/store.hpp"

#include "jitbox/state/store.hpp"
#include "jitbox/util/log.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

namespace jitbox {

namespace {

constexpr std::string_view k_auto = "auto";
constexpr std::string_view k_env_choice = "JITBOX_KEYRING";

// Length of the UTF-8 sequence that starts with `lead`, or 0 when `lead` cannot start one.
std::size_t utf8_sequence_length(unsigned char lead) {
    if (lead < 0x80) {
        return 1;
    }
    if (lead >= 0xC2 && lead <= 0xDF) {
        return 2;
    }
    if (lead >= 0xE0 && lead <= 0xEF) {
        return 3;
    }
    if (lead >= 0xF0 && lead <= 0xF4) {
        return 4;
    }
    return 0;
}

// True for well-formed UTF-8 (RFC 3629): no overlong forms, surrogates or code points above
// U+10FFFF.
bool is_valid_utf8(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size()) {
        const auto lead = static_cast<unsigned char>(text[i]);
        const std::size_t length = utf8_sequence_length(lead);
        if (length == 0 || i + length > text.size()) {
            return false;
        }
        for (std::size_t k = 1; k < length; ++k) {
            if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) {
                return false;
            }
        }
        if (length > 1) {
            const auto second = static_cast<unsigned char>(text[i + 1]);
            if ((lead == 0xE0 && second < 0xA0) || (lead == 0xED && second > 0x9F) ||
                (lead == 0xF0 && second < 0x90) || (lead == 0xF4 && second > 0x8F)) {
                return false;
            }
        }
        i += length;
    }
    return true;
}

std::string known_backends(const std::vector<SecretBackendOpener>& backends) {
    std::vector<std::string> names;
    names.reserve(backends.size());
    for (const auto& backend : backends) {
        names.push_back(backend.name);
    }
    return fmt::format("{}, {}", k_auto, fmt::join(names, ", "));
}

// The requested backend name and where the request came from.
struct Request {
    std::string name;
    std::string source;
    ChoiceSource from = ChoiceSource::configuration;
};

Request resolve_request(std::string_view choice, const EnvLookup& env, ChoiceSource from) {
    if (auto from_env = env(std::string(k_env_choice)); from_env && !from_env->empty()) {
        return {*from_env, std::string(k_env_choice), ChoiceSource::configuration};
    }
    if (!choice.empty()) {
        const bool recorded = from == ChoiceSource::record;
        return {std::string(choice), recorded ? "the sandbox's record" : "the configuration", from};
    }
    return {std::string(k_auto), "default", ChoiceSource::configuration};
}

// A backend that the user named and that does not work is a configuration error (exit 2),
// because only a change of the setting or of the machine helps. One that a record names keeps
// the backend's own code: the user chose nothing there.
Result<OpenedSecretStore> open_named(const Request& request, const SecretBackendOpener& backend) {
    auto store = backend.open(WhenLocked::open_anyway);
    if (!store) {
        const bool user_choice =
            request.from == ChoiceSource::configuration && store.error().code != ExitCode::locked;
        return make_failure(user_choice ? ExitCode::usage : store.error().code,
                            "secret store \"{}\" (chosen by {}) does not work: {}. Fix it, or "
                            "set {}=auto to use the first backend that works",
                            backend.name, request.source, store.error().message, k_env_choice);
    }
    OpenedSecretStore opened;
    opened.store = std::move(*store);
    opened.reason = fmt::format("{}, chosen by {}", backend.name, request.source);
    opened.probes.push_back({backend.name, true, ""});
    return opened;
}

Result<OpenedSecretStore> open_first_usable(const std::vector<SecretBackendOpener>& backends) {
    OpenedSecretStore opened;
    std::vector<std::string> skipped;
    for (const auto& backend : backends) {
        auto store = backend.open(WhenLocked::fail);
        if (!store) {
            log_debug(1, "secret store {} is not usable: {}", backend.name,
                      store.error().message);
            opened.probes.push_back({backend.name, false, store.error().message});
            skipped.push_back(fmt::format("{}: {}", backend.name, store.error().message));
            continue;
        }
        opened.store = std::move(*store);
        opened.probes.push_back({backend.name, true, ""});
        opened.reason = skipped.empty()
                            ? fmt::format("auto: chose {}, the first backend", backend.name)
                            : fmt::format("auto: chose {} because {}", backend.name,
                                          fmt::join(skipped, "; "));
        return opened;
    }
    return make_failure(ExitCode::internal,
                        "no secret store works: {}. Start a Secret Service (such as "
                        "gnome-keyring-daemon), or set XDG_RUNTIME_DIR for the file store",
                        fmt::join(skipped, "; "));
}

} // namespace

std::string_view to_string(LookupStatus status) {
    switch (status) {
    case LookupStatus::found:
        return "found";
    case LookupStatus::not_found:
        return "not_found";
    case LookupStatus::locked:
        return "locked";
    }
    return "unknown";
}

Result<void> validate_secret_sandbox(std::string_view sandbox_id) {
    if (!is_valid_sandbox_name(sandbox_id)) {
        return make_failure(ExitCode::usage,
                            "invalid sandbox id \"{}\" for a secret: use "
                            "[a-z0-9][a-z0-9-]{{0,62}}",
                            sandbox_id);
    }
    return {};
}

Result<void> validate_secret_name(std::string_view sandbox_id, std::string_view key) {
    if (auto valid = validate_secret_sandbox(sandbox_id); !valid) {
        return valid;
    }
    if (!is_valid_secret_key(key)) {
        return make_failure(ExitCode::usage,
                            "invalid secret key \"{}\" of sandbox {}: use 1 to {} of the "
                            "characters A-Z a-z 0-9 . _ -",
                            key, sandbox_id, k_max_secret_key_bytes);
    }
    return {};
}

Result<void> validate_secret_item(const SecretItem& item, TimePoint now) {
    if (auto valid = validate_secret_name(item.sandbox_id, item.key); !valid) {
        return valid;
    }
    // The kernel backend writes the name into a header line, so it must be a plain name.
    if (!item.sandbox_name.empty() && !is_valid_sandbox_name(item.sandbox_name)) {
        return make_failure(ExitCode::usage,
                            "invalid sandbox name \"{}\" of secret {} of sandbox {}: use "
                            "[a-z0-9][a-z0-9-]{{0,62}}",
                            item.sandbox_name, item.key, item.sandbox_id);
    }
    if (item.value.empty()) {
        return make_failure(ExitCode::usage, "the value of secret {} of sandbox {} is empty",
                            item.key, item.sandbox_id);
    }
    if (item.value.size() > k_max_secret_bytes) {
        return make_failure(ExitCode::usage,
                            "the value of secret {} of sandbox {} is {} bytes long; the maximum "
                            "is {}",
                            item.key, item.sandbox_id, item.value.size(), k_max_secret_bytes);
    }
    if (item.value.find('\0') != std::string::npos || !is_valid_utf8(item.value)) {
        return make_failure(ExitCode::usage,
                            "the value of secret {} of sandbox {} is not UTF-8 text without NUL "
                            "bytes; encode binary values, for example as base64",
                            item.key, item.sandbox_id);
    }
    if (item.expires_at <= now) {
        return make_failure(ExitCode::usage,
                            "secret {} of sandbox {} expires at {}, which is not in the future",
                            item.key, item.sandbox_id, format_rfc3339(item.expires_at));
    }
    return {};
}

Result<OpenedSecretStore> choose_secret_store(std::string_view choice, const EnvLookup& env,
                                              const std::vector<SecretBackendOpener>& backends,
                                              ChoiceSource from) {
    const Request request = resolve_request(choice, env, from);
    if (request.name == k_auto) {
        return open_first_usable(backends);
    }
    auto named = std::find_if(backends.begin(), backends.end(),
                              [&](const auto& backend) { return backend.name == request.name; });
    if (named == backends.end()) {
        return make_failure(ExitCode::usage,
                            "unknown secret store \"{}\" (chosen by {}); known: {}",
                            request.name, request.source, known_backends(backends));
    }
    return open_named(request, *named);
}

Result<OpenedSecretStore> open_secret_store(std::string_view choice, const EnvLookup& env,
                                            ChoiceSource from) {
    static const SystemClock clock;
    std::vector<SecretBackendOpener> backends{
        {"secret-service",
         [&env](WhenLocked when_locked) {
             return open_secret_service_store(env, clock, when_locked);
         }},
        {"kernel", [](WhenLocked) { return open_kernel_secret_store(clock); }},
        {"file",
         [&env](WhenLocked) -> Result<std::unique_ptr<SecretStore>> {
             auto file = default_secrets_file(env);
             if (!file) {
                 return file.error();
             }
             return open_file_secret_store(*file, clock);
         }},
    };
    auto opened = choose_secret_store(choice, env, backends, from);
    if (opened) {
        log_debug(1, "secret store: {}", opened->reason);
    }
    return opened;
}

} // namespace jitbox
