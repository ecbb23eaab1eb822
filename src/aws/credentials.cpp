#include "jitbox/aws/credentials.hpp"

#include "jitbox/enforced/mode.hpp"

#include "ini.hpp"

#include <fmt/format.h>
#include <pwd.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace jitbox::aws {
namespace {

namespace fs = std::filesystem;

constexpr std::array<const char*, 11> k_variables{
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",           "AWS_PROFILE",
    "AWS_REGION",        "AWS_DEFAULT_REGION",    "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
    "AWS_ENDPOINT_URL",  "AWS_ENDPOINT_URL_STS",  "AWS_ENDPOINT_URL_EC2",
};

// Settings that make the AWS tools assume a role or sign in through SSO before they would read
// static keys from the credentials file.
constexpr std::array<std::string_view, 4> k_role_settings{
    "role_arn",
    "web_identity_token_file",
    "sso_session",
    "sso_start_url",
};

// The setting that makes the AWS tools run a program, after the credentials file but before
// static keys in the config file.
constexpr std::array<std::string_view, 1> k_process_settings{"credential_process"};

constexpr std::string_view k_default_profile = "default";

// One of the two shared files, with the variable that moves it, for messages.
struct ProfileFile {
    fs::path path;
    std::string_view variable;
    std::optional<IniFile> file;

    std::string display() const {
        return path.empty() ? fmt::format("${}", variable) : path.string();
    }
};

std::optional<std::string> variable(const Environment& environment, const std::string& name) {
    const auto found = environment.variables.find(name);
    if (found == environment.variables.end() || found->second.empty()) {
        return std::nullopt;
    }
    return found->second;
}

// Expands a leading `~` to the home folder, as the AWS tools do for these variables.
fs::path expand_home(const std::string& path, const fs::path& home) {
    if (path == "~") {
        return home;
    }
    if (path.starts_with("~/")) {
        return home / path.substr(2);
    }
    return path;
}

Result<ProfileFile> load_profile_file(const Environment& environment, std::string_view name,
                                      std::string_view file_name) {
    ProfileFile profile_file;
    profile_file.variable = name;
    if (const auto overridden = variable(environment, std::string(name))) {
        profile_file.path = expand_home(*overridden, environment.home);
    } else if (!environment.home.empty()) {
        profile_file.path = environment.home / ".aws" / file_name;
    } else {
        return profile_file; // no home folder, so there is no default file to read
    }

    const std::string fix = fmt::format("make it readable, or set {} to another file", name);
    auto read = read_ini_file(profile_file.path, fix);
    if (!read) {
        return read.error();
    }
    profile_file.file = std::move(read).value();
    return profile_file;
}

const IniSection* credentials_section(const ProfileFile& credentials, std::string_view profile) {
    return credentials.file ? credentials.file->find(profile) : nullptr;
}

// Finds `[profile NAME]` in the config file, or `[default]` for the default profile.
const IniSection* config_section(const ProfileFile& config, std::string_view profile) {
    if (!config.file) {
        return nullptr;
    }
    if (profile == k_default_profile) {
        if (const IniSection* section = config.file->find(k_default_profile)) {
            return section;
        }
    }
    for (const IniSection& section : config.file->sections) {
        const std::string_view name = section.name;
        if (name.size() > 8 && name.starts_with("profile") && (name[7] == ' ' || name[7] == '\t')) {
            std::string_view rest = name.substr(8);
            while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) {
                rest.remove_prefix(1);
            }
            if (rest == profile) {
                return &section;
            }
        }
    }
    return nullptr;
}

template <std::size_t N>
Result<void> reject_unsupported(const IniSection* section, const ProfileFile& file,
                                std::string_view profile,
                                const std::array<std::string_view, N>& settings) {
    if (section == nullptr) {
        return {};
    }
    for (const std::string_view setting : settings) {
        if (const IniSetting* found = section->find(setting)) {
            return make_failure(
                ExitCode::usage,
                "{}:{}: AWS profile \"{}\" gets its credentials through {}, which jitbox does not "
                "support yet; use a profile with aws_access_key_id and aws_secret_access_key, or "
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                file.display(), found->line, profile, setting);
        }
    }
    return {};
}

Failure key_failure(const ProfileFile& file, int line, std::string_view problem,
                    const IniSection& section) {
    return make_failure(ExitCode::usage, "{}:{}: {} under [{}]", file.display(), line, problem,
                        section.name);
}

// Reads the static keys of a profile section. Returns none when the section has neither key.
Result<std::optional<Credentials>> read_static_keys(const IniSection* section,
                                                    const ProfileFile& file) {
    if (section == nullptr) {
        return std::optional<Credentials>{};
    }
    const IniSetting* id = section->find("aws_access_key_id");
    const IniSetting* secret = section->find("aws_secret_access_key");
    const IniSetting* token = section->find("aws_session_token");

    if (id == nullptr && secret == nullptr) {
        if (token != nullptr) {
            return key_failure(file, token->line,
                               "aws_session_token is set without aws_access_key_id and "
                               "aws_secret_access_key; add both",
                               *section);
        }
        return std::optional<Credentials>{};
    }
    if (secret == nullptr) {
        return key_failure(file, id->line,
                           "aws_access_key_id is set without aws_secret_access_key; add "
                           "aws_secret_access_key",
                           *section);
    }
    if (id == nullptr) {
        return key_failure(file, secret->line,
                           "aws_secret_access_key is set without aws_access_key_id; add "
                           "aws_access_key_id",
                           *section);
    }
    if (id->value.empty()) {
        return key_failure(file, id->line, "aws_access_key_id is empty; set its value", *section);
    }
    if (secret->value.empty()) {
        return key_failure(file, secret->line, "aws_secret_access_key is empty; set its value",
                           *section);
    }
    return std::optional<Credentials>(
        Credentials{id->value, secret->value, token ? token->value : std::string{}, std::nullopt});
}

Result<std::optional<Credentials>> environment_credentials(const Environment& environment) {
    const auto id = variable(environment, "AWS_ACCESS_KEY_ID");
    const auto secret = variable(environment, "AWS_SECRET_ACCESS_KEY");
    if (id && secret) {
        return std::optional<Credentials>(Credentials{
            *id, *secret, variable(environment, "AWS_SESSION_TOKEN").value_or(""), std::nullopt});
    }
    if (id || secret) {
        const char* set = id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY";
        const char* unset = id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID";
        return make_failure(ExitCode::usage,
                            "{} is set but {} is not; set both, or unset {} to use the AWS "
                            "profile \"{}\"",
                            set, unset, set, selected_profile(environment));
    }
    return std::optional<Credentials>{};
}

Failure missing_credentials_failure(const Environment& environment, std::string_view profile,
                                    const ProfileFile& credentials, const ProfileFile& config,
                                    bool profile_found) {
    if (profile_found) {
        return make_failure(ExitCode::usage,
                            "AWS profile \"{}\" has no aws_access_key_id and "
                            "aws_secret_access_key in {} or {}; add them under [{}] in {}",
                            profile, credentials.display(), config.display(), profile,
                            credentials.display());
    }
    if (variable(environment, "AWS_PROFILE")) {
        return make_failure(ExitCode::usage,
                            "AWS profile \"{}\" (from AWS_PROFILE) not found in {} or {}; add "
                            "[{}] to {}, or set AWS_PROFILE to an existing profile",
                            profile, credentials.display(), config.display(), profile,
                            credentials.display());
    }
    return make_failure(ExitCode::usage,
                        "no AWS credentials found: set AWS_ACCESS_KEY_ID and "
                        "AWS_SECRET_ACCESS_KEY, or add aws_access_key_id and "
                        "aws_secret_access_key under [default] in {}",
                        credentials.display());
}

Result<std::optional<std::string>> checked_region(std::string value, std::string_view source) {
    if (!is_valid_region(value)) {
        return make_failure(ExitCode::usage,
                            "{}: invalid AWS region \"{}\"; use a region code such as us-east-1",
                            source, value);
    }
    return std::optional<std::string>(std::move(value));
}

} // namespace

bool is_valid_region(std::string_view region) {
    if (region.empty()) {
        return false;
    }
    for (const char c : region) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
            return false;
        }
    }
    return true;
}

Environment Environment::from_process() {
    Environment environment;
    if (enforced::is_enforced()) {
        // Only the base credentials of the installation, read by the jitbox account. The
        // process environment contains no AWS_* variable in this mode.
        environment.variables["AWS_SHARED_CREDENTIALS_FILE"] = enforced::k_aws_credentials_path;
        environment.variables["AWS_CONFIG_FILE"] = enforced::k_aws_config_path;
        environment.home = enforced::k_state_dir;
        return environment;
    }
    for (const char* name : k_variables) {
        if (const char* value = std::getenv(name)) {
            environment.variables[name] = value;
        }
    }

    if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
        environment.home = home;
        return environment;
    }
    std::array<char, 4096> buffer{};
    passwd entry{};
    passwd* found = nullptr;
    if (::getpwuid_r(::getuid(), &entry, buffer.data(), buffer.size(), &found) == 0 &&
        found != nullptr && found->pw_dir != nullptr) {
        environment.home = found->pw_dir;
    }
    return environment;
}

std::string selected_profile(const Environment& environment) {
    return variable(environment, "AWS_PROFILE").value_or(std::string(k_default_profile));
}

Result<BaseCredentials> find_base_credentials(const Environment& environment) {
    // Enforced mode reads only its fixed files (see Environment::from_process) here.
    const enforced::ElevatedScope elevated;
    auto from_environment = environment_credentials(environment);
    if (!from_environment) {
        return from_environment.error();
    }
    if (*from_environment) {
        return BaseCredentials{std::move(**from_environment), "the environment"};
    }

    const std::string profile = selected_profile(environment);
    auto credentials = load_profile_file(environment, "AWS_SHARED_CREDENTIALS_FILE", "credentials");
    if (!credentials) {
        return credentials.error();
    }
    auto config = load_profile_file(environment, "AWS_CONFIG_FILE", "config");
    if (!config) {
        return config.error();
    }
    const IniSection* in_credentials = credentials_section(*credentials, profile);
    const IniSection* in_config = config_section(*config, profile);

    // The checks below follow the order of botocore's default credential chain.
    for (const auto& [section, file] :
         {std::pair{in_credentials, &*credentials}, std::pair{in_config, &*config}}) {
        if (auto rejected = reject_unsupported(section, *file, profile, k_role_settings);
            !rejected) {
            return rejected.error();
        }
    }

    auto from_credentials = read_static_keys(in_credentials, *credentials);
    if (!from_credentials) {
        return from_credentials.error();
    }
    if (*from_credentials) {
        return BaseCredentials{
            std::move(**from_credentials),
            fmt::format("profile \"{}\" in {}", profile, credentials->display())};
    }

    for (const auto& [section, file] :
         {std::pair{in_credentials, &*credentials}, std::pair{in_config, &*config}}) {
        if (auto rejected = reject_unsupported(section, *file, profile, k_process_settings);
            !rejected) {
            return rejected.error();
        }
    }

    auto from_config = read_static_keys(in_config, *config);
    if (!from_config) {
        return from_config.error();
    }
    if (*from_config) {
        return BaseCredentials{std::move(**from_config),
                               fmt::format("profile \"{}\" in {}", profile, config->display())};
    }

    // NOTE: the EC2 instance metadata service is deliberately absent from this chain. It is to
    // be tried only when configuration requests it, and no configuration key does so yet.
    return missing_credentials_failure(environment, profile, *credentials, *config,
                                       in_credentials != nullptr || in_config != nullptr);
}

Result<std::optional<std::string>> find_region(const Environment& environment) {
    for (const char* name : {"AWS_REGION", "AWS_DEFAULT_REGION"}) {
        if (auto region = variable(environment, name)) {
            return checked_region(std::move(*region), name);
        }
    }

    auto config = load_profile_file(environment, "AWS_CONFIG_FILE", "config");
    if (!config) {
        return config.error();
    }
    const IniSection* section = config_section(*config, selected_profile(environment));
    if (section == nullptr) {
        return std::optional<std::string>{};
    }
    const IniSetting* region = section->find("region");
    if (region == nullptr || region->value.empty()) {
        return std::optional<std::string>{};
    }
    return checked_region(region->value, fmt::format("{}:{}", config->display(), region->line));
}

} // namespace jitbox::aws
