// The text of `jitbox --version`: what this build contains, for bug reports and scripts.

#include "commands.hpp"

#include "jitbox/providers/docker.hpp"

#include <curl/curl.h>
#include <keyutils.h>
#include <libsecret/secret.h>
#include <openssl/crypto.h>

#include <fmt/ranges.h>

namespace jitbox::cli {

namespace {

// The backends that open_secret_store tries for `auto`, in its order.
const std::vector<std::string> k_keyring_backends = {"secret-service", "kernel", "file"};

// keyutils reports "keyutils-1.6.3"; the prefix repeats the library's name.
std::string keyutils_version() {
    std::string_view text = keyutils_version_string;
    constexpr std::string_view k_prefix = "keyutils-";
    if (text.starts_with(k_prefix)) {
        text.remove_prefix(k_prefix.size());
    }
    return std::string(text);
}

nlohmann::json library_versions() {
    const curl_version_info_data* curl = curl_version_info(CURLVERSION_NOW);
    return {
        {"libcurl", curl->version},
        {"libcurl_tls", curl->ssl_version != nullptr ? curl->ssl_version : ""},
        {"libsecret",
         fmt::format("{}.{}.{}", SECRET_MAJOR_VERSION, SECRET_MINOR_VERSION, SECRET_MICRO_VERSION)},
        {"keyutils", keyutils_version()},
        {"openssl", OpenSSL_version(OPENSSL_VERSION)},
    };
}

} // namespace

std::string version_text(bool json) {
    const nlohmann::json libraries = library_versions();
    if (json) {
        nlohmann::json object = {
            {"version", JITBOX_VERSION},
            {"mode", enforced::run_mode_name()},
            {"providers", k_built_in_providers},
            {"docker_api", {{"min", k_docker_min_api}, {"max", k_docker_max_api}}},
            {"keyring_backends", k_keyring_backends},
            {"libraries", libraries},
        };
        return object.dump(2);
    }
    std::vector<std::string> lines = {
        fmt::format("jitbox {}", JITBOX_VERSION),
        fmt::format("mode: {}", enforced::run_mode_name()),
        fmt::format("providers: {}", fmt::join(k_built_in_providers, ", ")),
        fmt::format("docker engine API: {} to {}", k_docker_min_api, k_docker_max_api),
        fmt::format("keyring backends: {}", fmt::join(k_keyring_backends, ", ")),
    };
    for (const auto& [name, version] : libraries.items()) {
        lines.push_back(fmt::format("{}: {}", name, version.get<std::string>()));
    }
    return fmt::format("{}", fmt::join(lines, "\n"));
}

} // namespace jitbox::cli
