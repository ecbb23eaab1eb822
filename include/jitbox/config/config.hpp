#pragma once

#include "jitbox/policy/rules.hpp"
#include "jitbox/util/result.hpp"
#include "jitbox/util/time.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace jitbox {

enum class NetworkMode {
    none,     // no network interface but loopback
    isolated, // a private bridge network created for this sandbox alone
    bridge,   // the engine's default bridge, shared with other containers
    host,     // the host's own network namespace: no isolation at all
};

/// A host device passed into the container, from docker's `HOST[:CONTAINER[:PERMISSIONS]]`.
struct DeviceMapping {
    std::string host_path;           // absolute, below /dev
    std::string container_path;      // absolute; the host path when not given
    std::string permissions = "rwm"; // the cgroup permissions: read, write, mknod
    std::string origin;              // "FILE:LINE:COLUMN" of the value, for messages
};

/// A bind mount from the host into the sandbox, read-only unless `writable`.
struct Mount {
    std::filesystem::path source; // absolute, resolved against the config file's folder
    std::string target;
    bool writable = false;
    /// `allow_sensitive`: the template asks to mount a sensitive host path (see
    /// policy/mounts.hpp). After load_layered_config it is true only where a policy allows it.
    bool allow_sensitive = false;
    std::string origin; // "FILE:LINE:COLUMN" of the `source` value, for messages
};

/// A port to publish, from the docker-style `[[ip:]host_port:]container_port[/protocol]`.
struct PortSpec {
    std::string host_ip = "127.0.0.1"; // loopback unless the template names another address
    std::string host_port;             // empty: the engine picks a free port
    std::string container_port;
    std::string protocol = "tcp";
};

/// A secret that `up` generates for a docker sandbox from the OS random source, keeps in the
/// keyring until the sandbox ends, and passes into the container as an environment variable.
struct GeneratedSecret {
    std::string name; // the environment variable, such as "POSTGRES_PASSWORD"
    int length = 32;  // characters, each from [A-Za-z0-9]
};

/// A container health check, sent to the engine as the container's Healthcheck in place of the
/// image's own. Unset durations and retries take the engine's defaults, which Docker documents
/// for HEALTHCHECK as 30s, 30s, 0s and 3.
struct HealthCheck {
    std::vector<std::string> test; // ["CMD", program, args...], ["CMD-SHELL", command] or
                                   // ["NONE"], which turns the image's health check off
    std::optional<Seconds> interval;
    std::optional<Seconds> timeout;
    std::optional<Seconds> start_period;
    std::optional<int> retries;
};

/// The keys of templates with provider "aws-sts" or "aws-ec2". Empty strings mean unset.
struct AwsSettings {
    std::string region;       // unset: AWS_REGION, AWS_DEFAULT_REGION, then the profile's
    std::string endpoint_url; // unset: AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, then AWS's

    // aws-sts
    std::string role_arn;
    std::string session_policy; // an IAM policy document in JSON, passed to STS as it is
    std::string mfa_serial;     // the MFA device's ARN or serial number

    // aws-ec2
    std::string image_id;
    std::string instance_type;
    std::string subnet_id;
    std::vector<std::string> security_group_ids;
    std::string key_name;
    std::optional<int> root_volume_gib;
};

/// One `[templates.NAME]` table, validated and with defaults filled in.
struct Template {
    std::string name;
    std::string provider = "docker";
    std::string image;
    std::vector<std::string> command; // empty: the image's own command
    std::map<std::string, std::string> env;
    std::string workdir;
    std::string user;
    std::string shell; // the program `jitbox shell` runs; empty: /bin/sh
    std::optional<double> cpus;
    std::optional<std::int64_t> memory_bytes;
    std::optional<std::int64_t> pids_limit;
    NetworkMode network = NetworkMode::none;
    std::vector<PortSpec> ports;
    bool read_only = false;
    std::vector<std::string> cap_add;
    /// The capabilities removed from the engine's default set before cap_add applies. The
    /// default ["ALL"] leaves the container cap_add alone.
    std::vector<std::string> cap_drop{"ALL"};
    bool privileged = false; // every capability and device of the host
    std::string pid;         // "" (the engine's own PID namespace for the container) or "host"
    std::string ipc;         // "" (the engine's default), "private", "none" or "host"
    std::vector<DeviceMapping> devices;
    std::vector<Mount> mounts;
    std::map<std::string, std::string> labels;
    std::vector<GeneratedSecret> secrets; // `[templates.NAME.secrets]`, sorted by name
    AwsSettings aws;
    std::optional<Seconds> stop_timeout; // unset: remove at once, with no grace period
    std::optional<HealthCheck> healthcheck; // unset: the image's health check, if any
    Seconds ttl{30 * 60};
    Seconds max_ttl{4 * 60 * 60};
    std::string origin; // "FILE:LINE:COLUMN" of the table, for messages
};

/// The loaded configuration. `path` is empty when the embedded default applies.
struct Config {
    std::filesystem::path path;
    std::string default_template; // used by `jitbox up` without a name; empty when unset
    std::string keyring_backend;  // `[keyring] backend`: "auto", "secret-service", "kernel",
                                  // "file", or empty when unset (as "auto")
    std::map<std::string, Template> templates;
    Policy policy; // `[policy]`, `[[roles]]` and `[[deny]]`
    /// `[guardrails]`. load_layered_config takes it from the system file only and rejects a
    /// project file that sets it.
    Guardrails guardrails;
};

/// The sources of the configuration, in order of precedence.
struct ConfigRequest {
    std::optional<std::filesystem::path> explicit_path; // --config
    std::optional<std::filesystem::path> env_path;      // JITBOX_CONFIG
    std::filesystem::path working_dir;                  // searched upwards for jitbox.toml
};

inline constexpr const char* k_config_file_name = "jitbox.toml";

/// Finds the configuration file: --config, then JITBOX_CONFIG (ignored when empty), then the
/// nearest jitbox.toml in the working folder or a parent. Returns an empty path when there is
/// none, so the embedded default applies. An explicitly named file that does not exist, and a
/// jitbox.toml found by the search that another user owns, are failures (ExitCode::usage).
Result<std::filesystem::path> find_config(const ConfigRequest& request);

/// Loads and validates the configuration named by `request`, or the embedded default.
Result<Config> load_config(const ConfigRequest& request);

/// Parses and validates configuration text. `path` names the source in messages (empty:
/// `<default>`) and anchors relative mount sources (empty: the current folder). Every failure
/// is one line, `FILE:LINE:COLUMN: KEY: problem and fix`, with ExitCode::usage.
Result<Config> parse_config(std::string_view text, const std::filesystem::path& path);

/// The configuration used when no file is found: default_config_text(), parsed.
Config default_config();

/// The embedded default configuration as TOML, so `jitbox templates` can show it.
std::string_view default_config_text();

/// The configuration spelling of `mode`: "none", "isolated", "bridge" or "host".
std::string_view network_mode_name(NetworkMode mode);

/// Parses a size such as `512MiB`, `2GiB`, `1.5g`, `100000000`, greater than zero. Units: B,
/// k/K/KiB, m/M/MiB, g/G/GiB, t/T/TiB (powers of 1024) and KB, MB, GB, TB (powers of 1000),
/// optionally after one space. A fraction needs a unit and the result is truncated to bytes.
Result<std::int64_t> parse_size(std::string_view text);

/// Writes a size in the largest of GiB, MiB and KiB that divides it, else in bytes: "512MiB".
std::string format_size(std::int64_t bytes);

/// Parses a port in docker's short form, such as `5432`, `15432:5432` or `0.0.0.0:53:53/udp`.
/// Ports are 1 to 65535, ranges are not supported, an IPv6 host address goes in brackets
/// (`[::1]:8080:80`) and the protocol is tcp, udp or sctp.
Result<PortSpec> parse_port(std::string_view text);

/// Parses a device in docker's `--device` form, such as `/dev/fuse` or
/// `/dev/sdc:/dev/xvdc:rwm`. The host path is absolute and below /dev, the container path is
/// absolute, and the permissions are a non-empty subset of "rwm" in any order.
Result<DeviceMapping> parse_device(std::string_view text);

/// The optimal string alignment distance (restricted Damerau-Levenshtein): the fewest
/// insertions, deletions, substitutions and swaps of two adjacent characters that turn `from`
/// into `to`, with no character edited twice.
std::size_t edit_distance(std::string_view from, std::string_view to);

/// The known name closest to `name` by edit_distance, or empty when every known name is more
/// than max(1, a third of the shorter of the two lengths) edits away. Ties go to the earlier
/// name in `known`.
std::string closest_name(std::string_view name, const std::vector<std::string>& known);

} // namespace jitbox
