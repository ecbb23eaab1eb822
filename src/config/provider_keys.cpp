// The template keys that only one provider uses, and the checks that keep each template to
// its own provider's keys.

#include "provider_keys.hpp"

#include "jitbox/secrets/store.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <regex>
#include <span>

namespace jitbox::config_detail {
namespace {

constexpr int k_min_secret_length = 16;
constexpr int k_max_secret_length = 256;
constexpr std::int64_t k_max_root_volume_gib = 16384; // 16 TiB, the size limit of a gp3 volume

// AssumeRole's DurationSeconds accepts 900 to 43200 seconds. A role's MaxSessionDuration may
// lower the upper bound, and only STS itself can check that.
constexpr Seconds k_min_sts_duration{15 * 60};
constexpr Seconds k_max_sts_duration{12 * 60 * 60};

// ---- which provider a key belongs to ----

constexpr auto k_docker_keys = std::to_array<std::string_view>(
    {"image",   "command",      "env",        "workdir",    "user",  "shell",
     "cpus",    "memory",       "pids_limit", "network",    "ports", "read_only",
     "cap_add", "cap_drop",     "privileged", "pid",        "ipc",   "devices",
     "mounts",  "stop_timeout", "secrets",    "healthcheck"});
constexpr auto k_aws_keys = std::to_array<std::string_view>({"region", "endpoint_url"});
constexpr auto k_aws_sts_keys =
    std::to_array<std::string_view>({"role_arn", "session_policy", "mfa_serial"});
constexpr auto k_aws_ec2_keys = std::to_array<std::string_view>(
    {"image_id", "instance_type", "subnet_id", "security_group_ids", "key_name",
     "root_volume_gib"});

// Keys that only some providers use. A key in none of these groups, such as ttl or labels,
// applies to every provider.
struct KeyGroup {
    std::span<const std::string_view> keys;
    std::string_view providers; // the providers that use them, as written in messages
};

const std::array<KeyGroup, 4> k_key_groups{{
    {k_docker_keys, "docker"},
    {k_aws_keys, "aws-sts and aws-ec2"},
    {k_aws_sts_keys, "aws-sts"},
    {k_aws_ec2_keys, "aws-ec2"},
}};

const KeyGroup* group_of(std::string_view key) {
    for (const KeyGroup& group : k_key_groups) {
        if (std::find(group.keys.begin(), group.keys.end(), key) != group.keys.end()) {
            return &group;
        }
    }
    return nullptr;
}

bool group_includes(const KeyGroup& group, std::string_view provider) {
    if (group.providers == provider) {
        return true;
    }
    return group.providers == "aws-sts and aws-ec2" && provider.substr(0, 4) == "aws-";
}

struct RequiredKey {
    std::string_view provider;
    std::string_view key;
    std::string_view hint;
};

constexpr std::array<RequiredKey, 4> k_required_keys{{
    {"docker", "image", "name the container image, such as image = \"postgres:16\""},
    {"aws-sts", "role_arn",
     "name the IAM role to assume, such as role_arn = \"arn:aws:iam::123456789012:role/dev\""},
    {"aws-ec2", "image_id", "name the AMI to start, such as image_id = \"ami-0123456789abcdef0\""},
    {"aws-ec2", "instance_type", "name the instance type, such as instance_type = \"t3.micro\""},
}};

// ---- values ----

bool matches(const std::string& text, const char* pattern) {
    return std::regex_match(text, std::regex(pattern));
}

std::string read_matching(const Field& field, const char* pattern, std::string_view noun,
                          std::string_view hint) {
    const std::string& text = read_string(field);
    if (!matches(text, pattern)) {
        fail(field, fmt::format("invalid {} \"{}\": {}", noun, text, hint));
    }
    return text;
}

// An AWS resource id: the prefix and lower-case hex digits. AWS issues 8 or 17 digits today;
// shorter ids are accepted because private clouds and examples use them.
std::string read_resource_id(const Field& field, std::string_view prefix) {
    const std::string pattern = fmt::format("{}-[0-9a-f]{{1,32}}", prefix);
    const std::string& text = read_string(field);
    if (!std::regex_match(text, std::regex(pattern))) {
        fail(field, fmt::format("invalid {} id \"{}\": use \"{}-\" and up to 32 lower-case hex "
                                "digits, such as \"{}-0123456789abcdef0\"",
                                prefix, text, prefix, prefix));
    }
    return text;
}

// Returns the problem with the authority (host and optional port) of an endpoint URL.
std::string authority_problem(std::string_view authority) {
    if (authority.find('@') != std::string_view::npos) {
        return "remove the user name and password, credentials come from the AWS profile";
    }
    std::string_view host = authority;
    std::string_view port;
    if (!authority.empty() && authority.front() == '[') {
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos) {
            return "close the IPv6 address with ']'";
        }
        host = authority.substr(1, close - 1);
        if (close + 1 < authority.size()) {
            if (authority[close + 1] != ':') {
                return "put ':' and the port after the IPv6 address";
            }
            port = authority.substr(close + 2);
        }
    } else if (const std::size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        port = authority.substr(colon + 1);
    }
    if (host.empty()) {
        return "name a host, such as https://sts.eu-central-1.amazonaws.com";
    }
    if (authority.front() != '[' && !matches(std::string(host), "[A-Za-z0-9.-]+")) {
        return "the host has characters other than letters, digits, '.' and '-'";
    }
    int number = 0;
    const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), number);
    const bool port_set = authority.back() == ':' || !port.empty();
    if (port_set && (error != std::errc{} || end != port.data() + port.size() || number < 1 ||
                     number > 65535)) {
        return "the port must be a number from 1 to 65535";
    }
    return {};
}

std::string endpoint_url_problem(std::string_view url) {
    std::string_view rest;
    for (const std::string_view scheme : {"https://", "http://"}) {
        if (url.substr(0, scheme.size()) == scheme) {
            rest = url.substr(scheme.size());
        }
    }
    if (rest.empty()) {
        return "use an http:// or https:// URL with a host, such as "
               "\"https://sts.eu-central-1.amazonaws.com\"";
    }
    if (rest.find_first_of("?#") != std::string_view::npos) {
        return "remove the query and fragment, jitbox adds its own";
    }
    // The URL becomes the request line and the signed path, so it keeps to printable ASCII.
    if (std::any_of(rest.begin(), rest.end(), [](char c) { return c <= ' ' || c >= '\x7f'; })) {
        return "remove the white space, control and non-ASCII characters (percent-encode them)";
    }
    return authority_problem(rest.substr(0, rest.find('/')));
}

std::string secret_name_problem(std::string_view name) {
    const bool env_style = matches(std::string(name), "[A-Za-z_][A-Za-z0-9_]*");
    if (!env_style || !is_valid_secret_key(name)) {
        return fmt::format("invalid secret name \"{}\": use an environment variable name of at "
                           "most 128 letters, digits and '_', not starting with a digit, such "
                           "as POSTGRES_PASSWORD",
                           name);
    }
    return {};
}

void read_secret_length(const Field& field, GeneratedSecret& secret) {
    const std::int64_t length = read_integer(field);
    if (length < k_min_secret_length || length > k_max_secret_length) {
        fail(field, fmt::format("invalid length {}: use {} to {} characters, such as 32", length,
                                k_min_secret_length, k_max_secret_length));
    }
    secret.length = static_cast<int>(length);
}

constexpr std::array<KeyRule<GeneratedSecret>, 1> k_secret_keys{{
    {"length", read_secret_length},
}};

} // namespace

std::vector<GeneratedSecret> read_generated_secrets(const Field& field) {
    std::vector<GeneratedSecret> secrets;
    for (const auto& [name, node] : entries_in_file_order(read_table(field))) {
        const Field entry{*node, append_key(field.key_path, name->str()), field.source};
        if (const std::string problem = secret_name_problem(name->str()); !problem.empty()) {
            fail_at(field.source, name->source(), entry.key_path, problem);
        }
        if (!node->is_table()) {
            fail_type(entry, "a table such as { length = 32 }");
        }
        GeneratedSecret secret;
        secret.name = std::string(name->str());
        read_keys(entry, k_secret_keys, secret);
        secrets.push_back(std::move(secret));
    }
    std::sort(secrets.begin(), secrets.end(),
              [](const auto& left, const auto& right) { return left.name < right.name; });
    return secrets;
}

void read_aws_region(const Field& field, AwsSettings& aws) {
    aws.region = read_matching(field, "[a-z]{2}(-[a-z]+)+-[0-9]+", "region",
                               "use an AWS region name, such as \"eu-central-1\"");
}

void read_aws_endpoint_url(const Field& field, AwsSettings& aws) {
    const std::string& url = read_string(field);
    if (const std::string problem = endpoint_url_problem(url); !problem.empty()) {
        fail(field, fmt::format("invalid endpoint_url \"{}\": {}", url, problem));
    }
    aws.endpoint_url = url;
}

void read_aws_role_arn(const Field& field, AwsSettings& aws) {
    aws.role_arn = read_matching(
        field, R"(arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]+)", "role_arn",
        "use an IAM role ARN, such as \"arn:aws:iam::123456789012:role/dev\"");
}

void read_aws_session_policy(const Field& field, AwsSettings& aws) {
    const std::string& text = read_string(field);
    const nlohmann::json policy = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!policy.is_object()) {
        fail(field, "invalid session_policy: use an IAM policy document as a JSON object, such "
                    "as '{\"Version\": \"2012-10-17\", \"Statement\": [...]}'");
    }
    aws.session_policy = text;
}

void read_aws_mfa_serial(const Field& field, AwsSettings& aws) {
    // The SerialNumber pattern of the STS AssumeRole API.
    aws.mfa_serial = read_matching(
        field, R"([\w+=/:,.@-]{9,256})", "mfa_serial",
        "use the MFA device's ARN, such as \"arn:aws:iam::123456789012:mfa/alice\", or the "
        "serial number of a hardware device");
}

void read_aws_image_id(const Field& field, AwsSettings& aws) {
    aws.image_id = read_resource_id(field, "ami");
}

void read_aws_instance_type(const Field& field, AwsSettings& aws) {
    aws.instance_type = read_matching(field, "[a-z0-9-]+\\.[a-z0-9-]+", "instance_type",
                                      "use an EC2 instance type, such as \"t3.micro\"");
}

void read_aws_subnet_id(const Field& field, AwsSettings& aws) {
    aws.subnet_id = read_resource_id(field, "subnet");
}

void read_aws_security_group_ids(const Field& field, AwsSettings& aws) {
    aws.security_group_ids = read_each(field, "an array of strings such as [\"sg-0123abcd\"]",
                                       [](const Field& element) {
                                           return read_resource_id(element, "sg");
                                       });
}

void read_aws_key_name(const Field& field, AwsSettings& aws) {
    aws.key_name = read_matching(field, "[\\x20-\\x7e]{1,255}", "key_name",
                                 "use the name of an EC2 key pair, 1 to 255 ASCII characters");
}

void read_aws_root_volume_gib(const Field& field, AwsSettings& aws) {
    const std::int64_t size = read_integer(field);
    if (size < 1 || size > k_max_root_volume_gib) {
        fail(field, fmt::format("invalid root_volume_gib {}: use 1 to {} GiB", size,
                                k_max_root_volume_gib));
    }
    aws.root_volume_gib = static_cast<int>(size);
}

namespace {

Field field_of_key(const Field& table, std::string_view key) {
    const toml::node* node = read_table(table).get(key);
    return node == nullptr ? table : Field{*node, append_key(table.key_path, key), table.source};
}

void check_sts_duration(const Field& field, std::string_view key, Seconds duration) {
    if (duration >= k_min_sts_duration && duration <= k_max_sts_duration) {
        return;
    }
    fail(field_of_key(field, key),
         fmt::format("{} {} is outside the 15m to 12h that AWS STS accepts for a session "
                     "(DurationSeconds 900 to 43200), use a {} within that range",
                     key, format_duration(duration), key));
}

} // namespace

void check_provider_keys(const Field& field, const Template& result) {
    const toml::table& table = read_table(field);
    for (const auto& [key, node] : entries_in_file_order(table)) {
        const KeyGroup* group = group_of(key->str());
        if (group == nullptr || group_includes(*group, result.provider)) {
            continue;
        }
        fail(field_of_key(field, key->str()),
             fmt::format("key \"{}\" is for {} templates, not for provider \"{}\", remove it",
                         key->str(), group->providers, result.provider));
    }
    for (const RequiredKey& required : k_required_keys) {
        if (required.provider == result.provider && !table.contains(required.key)) {
            fail(field, fmt::format("missing required key \"{}\", {}", required.key,
                                    required.hint));
        }
    }
    if (result.provider == "aws-sts") {
        check_sts_duration(field, "ttl", result.ttl);
        check_sts_duration(field, "max_ttl", result.max_ttl);
    }
}

} // namespace jitbox::config_detail
