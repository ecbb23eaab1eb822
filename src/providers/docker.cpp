#include "jitbox/providers/docker.hpp"

#include "docker_api.hpp"
#include "docker_engine.hpp"
#include "docker_json.hpp"
#include "jitbox/policy/mounts.hpp"
#include "jitbox/util/fault.hpp"
#include "jitbox/util/log.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace jitbox {

using docker_api::http_failure;
using docker_api::is_path_token;
using docker_api::make_request;
using docker_engine::EngineKind;
using docker_engine::EngineTerms;
using docker_json::engine_message;
using docker_json::Json;
using docker_json::member;
using docker_json::one_line;
using docker_json::string_field;
using docker_json::trim;

ImageReference split_image_reference(std::string_view reference) {
    std::string_view repository = reference;
    std::string_view tag;
    if (const auto at = reference.find('@'); at != std::string_view::npos) {
        repository = reference.substr(0, at);
        tag = reference.substr(at + 1);
    }

    // A colon after the last slash starts a tag, while one before it belongs to a registry port.
    const auto slash = repository.rfind('/');
    const auto colon = repository.rfind(':');
    if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
        if (tag.empty()) {
            tag = repository.substr(colon + 1);
        }
        repository = repository.substr(0, colon);
    }
    return ImageReference{std::string(repository), tag.empty() ? "latest" : std::string(tag)};
}

namespace {

// Time the engine may take after the stop grace period to kill the container and reply.
constexpr auto k_stop_reply_margin = std::chrono::seconds(30);
constexpr std::size_t k_short_id_length = 8;

constexpr std::string_view k_pull_hint = "check the name and that the registry is reachable";

// ---- JSON and message helpers -------------------------------------------------------------

// Invalid UTF-8 in a template value becomes U+FFFD instead of an exception.
std::string to_body(const Json& body) {
    return body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

void report(const ProgressFn& progress, std::string message) {
    if (progress) {
        progress(progress_step(std::move(message)));
    }
}

// ---- Request bodies -------------------------------------------------------------------------

std::string resource_name(const SandboxPlan& plan) {
    return fmt::format("jitbox-{}-{}", plan.name, plan.id.substr(0, k_short_id_length));
}

std::map<std::string, std::string> sandbox_labels(const SandboxPlan& plan) {
    std::map<std::string, std::string> labels = plan.labels;
    labels.emplace(k_label_sandbox, plan.id); // list_labelled finds resources by this label
    return labels;
}

std::string port_key(const PortSpec& port) {
    return port.container_port + "/" + port.protocol;
}

Json port_bindings(const std::vector<PortSpec>& ports) {
    Json bindings = Json::object();
    for (const PortSpec& port : ports) {
        bindings[port_key(port)].push_back(
            {{"HostIp", port.host_ip}, {"HostPort", port.host_port}});
    }
    return bindings;
}

Json exposed_ports(const std::vector<PortSpec>& ports) {
    Json exposed = Json::object();
    for (const PortSpec& port : ports) {
        exposed[port_key(port)] = Json::object();
    }
    return exposed;
}

Json bind_mounts(const std::vector<Mount>& mounts) {
    Json list = Json::array();
    for (const Mount& mount : mounts) {
        list.push_back({{"Type", "bind"},
                        {"Source", mount.source.string()},
                        {"Target", mount.target},
                        {"ReadOnly", !mount.writable}});
    }
    return list;
}

Json env_list(const std::map<std::string, std::string>& env) {
    Json list = Json::array();
    for (const auto& [name, value] : env) {
        list.push_back(name + "=" + value);
    }
    return list;
}

// The template's variables plus the generated secrets. The secrets go into this request body
// only; the configuration rejects a name that is in both.
Json container_env(const SandboxPlan& plan) {
    Json list = env_list(plan.spec.env);
    for (const auto& [name, value] : plan.secret_env) {
        list.push_back(name + "=" + value);
    }
    return list;
}

Json device_list(const std::vector<DeviceMapping>& devices) {
    Json list = Json::array();
    for (const DeviceMapping& device : devices) {
        list.push_back({{"PathOnHost", device.host_path},
                        {"PathInContainer", device.container_path},
                        {"CgroupPermissions", device.permissions}});
    }
    return list;
}

Json host_config(const Template& spec, const std::string& network_mode) {
    Json config = {
        {"CapDrop", spec.cap_drop},
        {"CapAdd", spec.cap_add},
        {"Privileged", spec.privileged},
        {"Devices", device_list(spec.devices)},
        {"SecurityOpt", Json::array({"no-new-privileges"})},
        {"ReadonlyRootfs", spec.read_only},
        {"NetworkMode", network_mode},
        {"PortBindings", port_bindings(spec.ports)},
        {"Mounts", bind_mounts(spec.mounts)},
        {"Init", false},
        {"RestartPolicy", {{"Name", "no"}}},
    };
    if (!spec.pid.empty()) {
        config["PidMode"] = spec.pid;
    }
    if (!spec.ipc.empty()) {
        config["IpcMode"] = spec.ipc;
    }
    if (spec.pids_limit) {
        config["PidsLimit"] = *spec.pids_limit;
    }
    if (spec.memory_bytes) {
        // MemorySwap is memory plus swap, so the same value allows no swap at all.
        config["Memory"] = *spec.memory_bytes;
        config["MemorySwap"] = *spec.memory_bytes;
    }
    if (spec.cpus) {
        config["NanoCpus"] = std::llround(*spec.cpus * 1e9);
    }
    return config;
}

std::int64_t nanoseconds(Seconds duration) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(duration).count();
}

// The engine takes durations in nanoseconds, and 0 or an absent member means its default.
Json health_config(const HealthCheck& check) {
    Json config = {{"Test", check.test}};
    if (check.interval) {
        config["Interval"] = nanoseconds(*check.interval);
    }
    if (check.timeout) {
        config["Timeout"] = nanoseconds(*check.timeout);
    }
    if (check.start_period) {
        config["StartPeriod"] = nanoseconds(*check.start_period);
    }
    if (check.retries) {
        config["Retries"] = *check.retries;
    }
    return config;
}

Json container_body(const SandboxPlan& plan, const std::string& network_mode) {
    const Template& spec = plan.spec;
    Json body = {
        {"Image", spec.image},
        {"Env", container_env(plan)},
        {"Labels", sandbox_labels(plan)},
        {"HostConfig", host_config(spec, network_mode)},
    };
    if (!spec.command.empty()) {
        body["Cmd"] = spec.command;
    }
    if (!spec.workdir.empty()) {
        body["WorkingDir"] = spec.workdir;
    }
    if (!spec.user.empty()) {
        body["User"] = spec.user;
    }
    if (!spec.ports.empty()) {
        body["ExposedPorts"] = exposed_ports(spec.ports);
    }
    if (spec.healthcheck) {
        body["Healthcheck"] = health_config(*spec.healthcheck);
    }
    return body;
}

// ---- Plan validation ------------------------------------------------------------------------

std::string describe_template(const Template& spec) {
    if (spec.origin.empty()) {
        return fmt::format("template \"{}\"", spec.name);
    }
    return fmt::format("template \"{}\" ({})", spec.name, spec.origin);
}

Result<void> validate_mount(const Template& spec, const Mount& mount) {
    const std::string source = mount.source.string();
    if (!mount.source.is_absolute()) {
        return make_failure(ExitCode::usage,
                            "{}: mount source \"{}\" is not an absolute path; "
                            "give the full path",
                            describe_template(spec), source);
    }
    if (!mount.target.starts_with('/')) {
        return make_failure(ExitCode::usage,
                            "{}: mount target \"{}\" is not an absolute path; "
                            "give the full path inside the sandbox",
                            describe_template(spec), mount.target);
    }

    std::error_code error;
    const bool exists = std::filesystem::exists(mount.source, error);
    if (error) {
        return make_failure(ExitCode::usage, "{}: cannot check mount source {}: {}",
                            describe_template(spec), source, error.message());
    }
    if (!exists) {
        return make_failure(ExitCode::usage,
                            "{}: mount source {} does not exist; create it or "
                            "change the mount",
                            describe_template(spec), source);
    }

    // Loading the configuration checked this too. Checking again just before the request
    // catches a symbolic link that was changed since.
    if (!mount.allow_sensitive) {
        const std::string reason = sensitive_mount_reason(mount.source, current_user_home());
        if (!reason.empty()) {
            return make_failure(ExitCode::usage,
                                "{}: mount source \"{}\" {}; remove the mount, or set "
                                "allow_sensitive = true on it and allow_sensitive_mounts = true "
                                "in [policy]",
                                mount.origin.empty() ? describe_template(spec) : mount.origin,
                                source, reason);
        }
    }
    return {};
}

Result<void> validate_plan(const SandboxPlan& plan) {
    const Template& spec = plan.spec;
    if (trim(spec.image).empty()) {
        return make_failure(ExitCode::usage, "{} has no image; set `image`",
                            describe_template(spec));
    }
    if (plan.id.empty() || !is_path_token(resource_name(plan))) {
        return make_failure(ExitCode::internal,
                            "sandbox name \"{}\" or id \"{}\" cannot form a Docker name", plan.name,
                            plan.id);
    }
    if (!spec.ports.empty() && spec.network == NetworkMode::none) {
        return make_failure(ExitCode::usage,
                            "{} publishes ports but has network \"none\"; set "
                            "network to \"isolated\" or \"bridge\"",
                            describe_template(spec));
    }
    for (const Mount& mount : spec.mounts) {
        if (Result<void> valid = validate_mount(spec, mount); !valid) {
            return valid;
        }
    }
    return {};
}

// ---- The provider ---------------------------------------------------------------------------

class DockerProvider final : public Provider {
public:
    DockerProvider(std::unique_ptr<HttpClient> client, std::string endpoint,
                   DockerProviderOptions options)
        : m_api(std::move(client), std::move(endpoint)), m_options(std::move(options)) {
        if (!m_options.sleep) {
            m_options.sleep = [](std::chrono::milliseconds delay) {
                std::this_thread::sleep_for(delay);
            };
        }
        if (!m_options.now) {
            m_options.now = [] { return std::chrono::steady_clock::now(); };
        }
    }

    Result<void> create(const SandboxPlan& plan, ResourceSet& created,
                        const ProgressFn& progress) override;
    Result<void> destroy(const ResourceSet& resources,
                         std::optional<Seconds> stop_timeout) override;
    Result<std::vector<LabelledResource>> list_labelled(ListScope scope) override;
    Result<std::string> resource_state(const std::string& sandbox_id,
                                       const ResourceSet& resources) override;

private:
    Result<void> negotiate() { return m_api.negotiate(); }
    Result<HttpResponse> exchange(HttpRequest request) {
        return m_api.exchange(std::move(request));
    }
    Result<HttpResponse> send(std::string_view action, HttpRequest request) {
        return m_api.send(action, std::move(request));
    }
    const EngineTerms& terms() const { return m_api.terms(); }
    std::string default_hint(long status) const { return m_api.default_hint(status); }

    Result<void> ensure_image(const SandboxPlan& plan, const ProgressFn& progress);
    Result<void> pull_image(const SandboxPlan& plan, const ProgressFn& progress);
    Result<std::string> pull_auth_header(const std::string& image, std::string& hint);
    Result<void> create_network(const SandboxPlan& plan, const std::string& name,
                                ResourceSet& created);
    Result<std::string> create_container(const SandboxPlan& plan, const std::string& name,
                                         const std::string& network_mode, ResourceSet& created,
                                         const ProgressFn& progress);
    Result<void> start_container(const std::string& id, const std::string& name);
    Result<Json> inspect_container(const std::string& id, const std::string& name);
    Result<std::vector<PublishedPort>> inspect_ports(const std::string& id,
                                                     const std::string& name);
    Result<void> wait_until_ready(const std::string& id, const std::string& name,
                                  const SandboxPlan& plan, const ProgressFn& progress);
    Result<bool> poll_ready(const std::string& id, const std::string& name,
                            std::optional<std::chrono::steady_clock::time_point>& next_check);
    void run_podman_health_check(const std::string& id, const std::string& name,
                                 const Json& details,
                                 std::optional<std::chrono::steady_clock::time_point>& next_check);

    Result<void> remove_container(const Resource& container, std::optional<Seconds> stop_timeout);
    void stop_container(const std::string& target, Seconds stop_timeout);
    Result<void> remove_network(const Resource& network);

    Result<std::vector<LabelledResource>> list_containers(const std::string& filters);
    Result<std::vector<LabelledResource>> list_networks(const std::string& filters);

    docker_api::EngineApi m_api;
    DockerProviderOptions m_options;
};

Result<void> DockerProvider::create(const SandboxPlan& plan, ResourceSet& created,
                                    const ProgressFn& progress) {
    if (Result<void> valid = validate_plan(plan); !valid) {
        return valid;
    }
    if (Result<void> ready = negotiate(); !ready) {
        return ready;
    }
    if (Result<void> image = ensure_image(plan, progress); !image) {
        return image;
    }

    const std::string name = resource_name(plan);
    std::string network_mode = plan.spec.network == NetworkMode::none ? "none" : "bridge";
    if (plan.spec.network == NetworkMode::host) {
        network_mode = "host";
    }
    if (plan.spec.network == NetworkMode::isolated) {
        if (Result<void> network = create_network(plan, name, created); !network) {
            return network;
        }
        network_mode = name;
    }

    const Result<std::string> id = create_container(plan, name, network_mode, created, progress);
    if (!id) {
        return id.error();
    }
    if (Result<void> started = start_container(*id, name); !started) {
        return started;
    }
    Result<std::vector<PublishedPort>> ports = inspect_ports(*id, name);
    if (!ports) {
        return ports.error();
    }
    created.ports = std::move(*ports);
    if (plan.wait_timeout) {
        return wait_until_ready(*id, name, plan, progress);
    }
    return {};
}

// A short name such as "busybox:1.36" means docker.io/library/busybox:1.36 to Docker. Podman 4.3
// finds it under that name too, and also as localhost/busybox:1.36, the name that `podman build`,
// `podman import` and `podman load` give local images. Both pull a missing short name from
// docker.io, so the same template works on either engine.
Result<void> DockerProvider::ensure_image(const SandboxPlan& plan, const ProgressFn& progress) {
    const std::string& image = plan.spec.image;
    const std::string action = fmt::format("inspecting image {}", image);
    const Result<HttpResponse> response =
        send(action, make_request("GET", "/images/" + url_encode(image) + "/json"));
    if (!response) {
        return response.error();
    }
    if (response->status == 200) {
        return {};
    }
    if (response->status != 404) {
        return http_failure(action, *response, default_hint(response->status));
    }
    return pull_image(plan, progress);
}

// Returns the X-Registry-Auth value for `image`, empty when there is no credential, and sets
// `hint` to what a failed pull should suggest about credentials.
Result<std::string> DockerProvider::pull_auth_header(const std::string& image, std::string& hint) {
    hint = std::string(k_pull_hint);
    if (!m_options.registry_auth) {
        return std::string();
    }
    Result<RegistryAuth> auth = m_options.registry_auth(image);
    if (!auth) {
        return auth.error();
    }
    if (auth->header.empty()) {
        hint = fmt::format("{}; jitbox sent no credentials for {} ({}), so if the registry needs "
                           "them, run `docker login {}` or set DOCKER_CONFIG",
                           k_pull_hint, auth->registry, auth->source, auth->registry);
    } else {
        hint = fmt::format("{}; check the credentials for {} from {}", k_pull_hint, auth->registry,
                           auth->source);
    }
    return auth->header;
}

Result<void> DockerProvider::pull_image(const SandboxPlan& plan, const ProgressFn& progress) {
    const std::string& image = plan.spec.image;
    const std::string action = fmt::format("pulling image {}", image);
    std::string hint;
    Result<std::string> auth_header = pull_auth_header(image, hint);
    if (!auth_header) {
        return make_failure(auth_header.error().code, "{} failed: {}", action,
                            auth_header.error().message);
    }
    report(progress, action);

    const ImageReference reference = split_image_reference(image);
    HttpRequest request = make_request("POST", fmt::format("/images/create?fromImage={}&tag={}",
                                                           url_encode(reference.repository),
                                                           url_encode(reference.tag)));
    request.timeout = std::chrono::milliseconds::zero(); // the transport's low-speed limit applies
    if (!auth_header->empty()) {
        request.headers.emplace_back("X-Registry-Auth", *auth_header);
    }
    docker_json::PullStream stream(progress);
    // An interrupted `up` ends the transfer; the engine may finish the pull on its own.
    request.on_body = [&stream, &plan](std::string_view chunk) {
        stream.feed(chunk);
        return !plan.interrupted();
    };

    fault_point("docker.image.pull.before");
    const Result<HttpResponse> response = send(action, std::move(request));
    fault_point("docker.image.pull.after");
    if (plan.interrupted()) {
        return make_failure(ExitCode::interrupted, "interrupted while {}", action);
    }
    if (!response) {
        return response.error();
    }
    stream.finish();
    if (response->status != 200) {
        const std::string message = stream.error().empty() ? "no message" : stream.error();
        return make_failure(ExitCode::provider, "{} failed (HTTP {}: {}); {}", action,
                            response->status, message, hint);
    }
    // The engine reports a failed pull inside a 200 response, as an object with `error`. Podman
    // 4.3 does so too, in the same shape, and its progress lines carry `status` and `id` as
    // Docker's do.
    if (!stream.error().empty()) {
        return make_failure(ExitCode::provider, "{} failed: {}; {}", action, stream.error(), hint);
    }
    return {};
}

Result<void> DockerProvider::create_network(const SandboxPlan& plan, const std::string& name,
                                            ResourceSet& created) {
    const Json body = {{"Name", name},
                       {"Driver", "bridge"},
                       {"CheckDuplicate", true},
                       {"Labels", sandbox_labels(plan)}};
    const std::string action = fmt::format("creating network {}", name);
    fault_point("docker.network.create.before");
    const Result<HttpResponse> response =
        send(action, make_request("POST", "/networks/create", to_body(body)));
    fault_point("docker.network.create.after");
    if (!response) {
        // The engine may have created it before the connection failed, so it is recorded by
        // name for cleanup. Removing a network that does not exist counts as success.
        created.items.push_back(Resource{"network", name, name});
        return response.error();
    }
    if (response->status != 201) {
        const std::string hint =
            docker_engine::is_name_conflict(*response)
                ? fmt::format("remove the old network with `{} network rm {}`", terms().cli, name)
                : default_hint(response->status);
        return http_failure(action, *response, hint);
    }

    const std::string id = string_field(Json::parse(response->body, nullptr, false), "Id");
    created.items.push_back(Resource{"network", is_path_token(id) ? id : name, name});
    return {};
}

std::string container_create_hint(const EngineTerms& terms, const HttpResponse& response,
                                  const std::string& name) {
    if (docker_engine::is_name_conflict(response)) {
        return fmt::format("remove the old container with `{} rm -f {}`", terms.cli, name);
    }
    if (response.status == 404) {
        return "the image was removed while the sandbox was being created; run the command again";
    }
    return docker_api::default_hint(terms, response.status);
}

Result<std::string> DockerProvider::create_container(const SandboxPlan& plan,
                                                     const std::string& name,
                                                     const std::string& network_mode,
                                                     ResourceSet& created,
                                                     const ProgressFn& progress) {
    const std::string action = fmt::format("creating container {}", name);
    const std::string body = to_body(container_body(plan, network_mode));
    fault_point("docker.container.create.before");
    const Result<HttpResponse> response =
        send(action, make_request("POST", "/containers/create?name=" + url_encode(name), body));
    fault_point("docker.container.create.after");
    if (!response) {
        // As for networks: it may exist, so it is recorded by name for cleanup.
        created.items.push_back(Resource{"container", name, name});
        return response.error();
    }
    if (response->status != 201) {
        return http_failure(action, *response, container_create_hint(terms(), *response, name));
    }

    const Json reply = Json::parse(response->body, nullptr, false);
    const std::string id = string_field(reply, "Id");
    const std::string target = is_path_token(id) ? id : name;
    created.items.push_back(Resource{"container", target, name});

    // Such as "Memory limited without swap" on kernels without swap accounting.
    for (const Json& warning : member(reply, "Warnings")) {
        if (warning.is_string()) {
            report(progress, "engine warning: " + one_line(warning.get<std::string>()));
        }
    }
    return target;
}

Result<void> DockerProvider::start_container(const std::string& id, const std::string& name) {
    const std::string action = fmt::format("starting container {}", name);
    fault_point("docker.container.start.before");
    const Result<HttpResponse> response =
        send(action, make_request("POST", fmt::format("/containers/{}/start", url_encode(id))));
    fault_point("docker.container.start.after");
    if (!response) {
        return response.error();
    }
    if (response->status == 204 || response->status == 304) {
        return {};
    }
    const std::string hint = response->status == 500
                                 ? fmt::format("fix the cause the engine names, such as a port "
                                               "already in use, or {}",
                                               terms().log_hint)
                                 : default_hint(response->status);
    return http_failure(action, *response, hint);
}

Result<Json> DockerProvider::inspect_container(const std::string& id, const std::string& name) {
    const std::string action = fmt::format("inspecting container {}", name);
    const Result<HttpResponse> response =
        send(action, make_request("GET", fmt::format("/containers/{}/json", url_encode(id))));
    if (!response) {
        return response.error();
    }
    if (response->status != 200) {
        return http_failure(action, *response, default_hint(response->status));
    }

    Json details = Json::parse(response->body, nullptr, false);
    if (!details.is_object()) {
        return make_failure(ExitCode::provider, "{} failed: the reply is not a JSON object; {}",
                            action, terms().log_hint);
    }
    return details;
}

Result<std::vector<PublishedPort>> DockerProvider::inspect_ports(const std::string& id,
                                                                 const std::string& name) {
    const Result<Json> details = inspect_container(id, name);
    if (!details) {
        return details.error();
    }
    return docker_json::published_ports(member(member(*details, "NetworkSettings"), "Ports"));
}

// ---- Readiness ------------------------------------------------------------------------------

// Returns true once the container runs and, when it has a health check, reports healthy.
// Fails with ExitCode::not_ready when it has stopped or is unhealthy. `next_check` is the time
// of the next health check that jitbox runs itself on Podman (see run_podman_health_check).
Result<bool>
DockerProvider::poll_ready(const std::string& id, const std::string& name,
                           std::optional<std::chrono::steady_clock::time_point>& next_check) {
    const Result<Json> details = inspect_container(id, name);
    if (!details) {
        return details.error();
    }
    const docker_json::ContainerReadiness state = docker_json::container_readiness(*details);
    // Podman 4.3 reports "stopped" for a container whose process has exited until the cleanup
    // that conmon starts has run, and for good when that cleanup fails. Docker has no such state.
    if (state.status == "exited" || state.status == "dead" || state.status == "stopped") {
        return make_failure(ExitCode::not_ready,
                            "container {} exited with status {} before it was ready", name,
                            state.exit_code);
    }
    if (state.health == "unhealthy") {
        return make_failure(ExitCode::not_ready,
                            "container {} is unhealthy: its health check printed \"{}\"", name,
                            state.health_output.empty() ? "nothing" : state.health_output);
    }
    // "none" is the health status of a container whose health check is turned off.
    const bool checked = !state.health.empty() && state.health != "none";
    const bool ready = state.status == "running" && (!checked || state.health == "healthy");
    if (!ready && checked && state.status == "running" && m_api.engine() == EngineKind::podman) {
        run_podman_health_check(id, name, *details, next_check);
    }
    return ready;
}

// Podman 4.3 schedules health checks with systemd timers. Where the service cannot reach systemd,
// it logs "unable to get systemd connection to add healthchecks" and never runs a check, so the
// status stays "starting". While `up --wait` waits, jitbox therefore runs the check through
// Podman's GET /libpod/containers/{id}/healthcheck once per the container's interval
// (Config.Healthcheck.Interval, in nanoseconds; Podman's default is 30 s), the first one an
// interval after the wait begins, as the engines time their first check after the start. The
// next poll reads the result. A failed run is logged, and the wait goes on until its timeout.
// NOTE: where systemd runs Podman's checks as well, the check runs up to twice per interval
// during the wait, so `retries` failures can come sooner than retries times the interval.
void DockerProvider::run_podman_health_check(
    const std::string& id, const std::string& name, const Json& details,
    std::optional<std::chrono::steady_clock::time_point>& next_check) {
    constexpr std::chrono::seconds k_podman_default_interval{30};
    const auto now = m_options.now();
    if (next_check && now < *next_check) {
        return;
    }
    const Json& interval = member(member(member(details, "Config"), "Healthcheck"), "Interval");
    std::chrono::nanoseconds period = k_podman_default_interval;
    if (interval.is_number_integer() && interval.get<long long>() > 0) {
        period = std::chrono::nanoseconds(interval.get<long long>());
    }
    const bool first = !next_check;
    next_check = now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(period);
    if (first) {
        return;
    }

    const std::string action = fmt::format("running the health check of container {}", name);
    log_debug(1, "{} through Podman's API, which runs no check without systemd", action);
    const Result<HttpResponse> response =
        send(action,
             make_request("GET", fmt::format("/libpod/containers/{}/healthcheck", url_encode(id))));
    if (!response) {
        log_debug(1, "{}", response.error().message);
    } else if (response->status != 200) {
        log_debug(1, "{} failed (HTTP {}: {})", action, response->status,
                  engine_message(response->body));
    }
}

// Polls the container's state with backoff until it is ready, and reports the wait about ten
// times a second so that a spinner turns.
Result<void> DockerProvider::wait_until_ready(const std::string& id, const std::string& name,
                                              const SandboxPlan& plan, const ProgressFn& progress) {
    constexpr std::chrono::milliseconds k_first_poll{200};
    constexpr std::chrono::milliseconds k_max_poll{2000};
    constexpr std::chrono::milliseconds k_report_interval{100};
    const auto deadline = m_options.now() + *plan.wait_timeout;
    const std::string waiting = fmt::format("waiting for {} to be ready", plan.name);
    std::chrono::milliseconds poll = k_first_poll;
    std::optional<std::chrono::steady_clock::time_point> next_health_check;
    while (true) {
        Result<bool> ready = poll_ready(id, name, next_health_check);
        if (!ready || *ready) {
            return ready ? Result<void>() : Result<void>(ready.error());
        }
        if (m_options.now() >= deadline) {
            return make_failure(ExitCode::not_ready,
                                "container {} was not ready within {} (--wait-timeout)", name,
                                format_duration(*plan.wait_timeout));
        }
        const auto next_poll = std::min(m_options.now() + poll, deadline);
        while (m_options.now() < next_poll) {
            if (plan.interrupted()) {
                return make_failure(ExitCode::interrupted, "interrupted while {}", waiting);
            }
            if (progress) {
                progress(progress_waiting(waiting));
            }
            m_options.sleep(k_report_interval);
        }
        poll = std::min(poll * 2, k_max_poll);
    }
}

// ---- Teardown -------------------------------------------------------------------------------

std::string display_name(const Resource& resource) {
    return resource.name.empty() ? resource.id : resource.name;
}

Result<void> DockerProvider::destroy(const ResourceSet& resources,
                                     std::optional<Seconds> stop_timeout) {
    if (resources.items.empty()) {
        return {};
    }
    if (Result<void> ready = negotiate(); !ready) {
        return ready;
    }

    std::vector<std::string> problems;
    std::vector<std::string> commands;
    const auto note_failure = [&](const Resource& resource, const Failure& failure,
                                  std::string_view command) {
        problems.push_back(
            fmt::format("{} {} ({})", resource.kind, display_name(resource), failure.message));
        commands.push_back(fmt::format("`{} {}`", command, display_name(resource)));
    };

    // Containers go first because a network cannot be removed while a container uses it.
    for (auto item = resources.items.rbegin(); item != resources.items.rend(); ++item) {
        if (item->kind != "container") {
            continue;
        }
        if (Result<void> removed = remove_container(*item, stop_timeout); !removed) {
            note_failure(*item, removed.error(), fmt::format("{} rm -f", terms().cli));
        }
    }
    for (auto item = resources.items.rbegin(); item != resources.items.rend(); ++item) {
        if (item->kind == "network") {
            if (Result<void> removed = remove_network(*item); !removed) {
                note_failure(*item, removed.error(), fmt::format("{} network rm", terms().cli));
            }
        } else if (item->kind != "container") {
            problems.push_back(fmt::format("{} {} (not a kind of Docker resource)", item->kind,
                                           display_name(*item)));
        }
    }

    if (problems.empty()) {
        return {};
    }
    if (commands.empty()) {
        return make_failure(ExitCode::provider, "could not remove {}", fmt::join(problems, ", "));
    }
    return make_failure(ExitCode::provider,
                        "could not remove {}; run the command again or remove them with {}",
                        fmt::join(problems, ", "), fmt::join(commands, " and "));
}

Result<std::string> path_target(const Resource& resource) {
    const std::string& target = resource.id.empty() ? resource.name : resource.id;
    if (!is_path_token(target)) {
        return make_failure(ExitCode::internal, "the recorded id \"{}\" is not a Docker id or name",
                            one_line(target));
    }
    return url_encode(target);
}

// The stop result is ignored because the forced removal that follows kills the container
// anyway, and the removal's result is the one that counts.
void DockerProvider::stop_container(const std::string& target, Seconds stop_timeout) {
    HttpRequest request =
        make_request("POST", fmt::format("/containers/{}/stop?t={}", target, stop_timeout.count()));
    request.timeout = stop_timeout + k_stop_reply_margin;
    fault_point("docker.container.stop.before");
    static_cast<void>(exchange(std::move(request)));
    fault_point("docker.container.stop.after");
}

Result<void> DockerProvider::remove_container(const Resource& container,
                                              std::optional<Seconds> stop_timeout) {
    const Result<std::string> target = path_target(container);
    if (!target) {
        return target.error();
    }
    if (stop_timeout) {
        stop_container(*target, *stop_timeout);
    }

    fault_point("docker.container.remove.before");
    const Result<HttpResponse> response =
        exchange(make_request("DELETE", fmt::format("/containers/{}?force=true&v=true", *target)));
    fault_point("docker.container.remove.after");
    if (!response) {
        return response.error();
    }
    if (response->status == 204 || response->status == 404 ||
        docker_engine::is_removal_in_progress(*response)) {
        return {};
    }
    return make_failure(ExitCode::provider, "HTTP {}: {}", response->status,
                        engine_message(response->body));
}

Result<void> DockerProvider::remove_network(const Resource& network) {
    const Result<std::string> target = path_target(network);
    if (!target) {
        return target.error();
    }

    fault_point("docker.network.remove.before");
    const Result<HttpResponse> response =
        exchange(make_request("DELETE", fmt::format("/networks/{}", *target)));
    fault_point("docker.network.remove.after");
    if (!response) {
        return response.error();
    }
    if (response->status == 204 || response->status == 404) {
        return {};
    }
    if (docker_engine::is_network_in_use(*response)) {
        return make_failure(ExitCode::provider,
                            "HTTP {}: {}; a container that is not part of the sandbox is attached "
                            "to it, so disconnect it first with `{} network disconnect {} "
                            "CONTAINER`",
                            response->status, engine_message(response->body), terms().cli,
                            display_name(network));
    }
    return make_failure(ExitCode::provider, "HTTP {}: {}", response->status,
                        engine_message(response->body));
}

// ---- Listing --------------------------------------------------------------------------------

// Reads a list reply with `read_entries`, docker_json::container_list or network_list.
Result<std::vector<LabelledResource>> list_reply(
    const EngineTerms& terms, std::string_view action, const Result<HttpResponse>& response,
    std::optional<std::vector<LabelledResource>> (*read_entries)(std::string_view)) {
    if (!response) {
        return response.error();
    }
    if (response->status != 200) {
        return http_failure(action, *response, docker_api::default_hint(terms, response->status));
    }
    auto entries = read_entries(response->body);
    if (!entries) {
        return make_failure(ExitCode::provider, "{} failed: the reply is not a JSON array; {}",
                            action, terms.log_hint);
    }
    return std::move(entries).value();
}

Result<std::vector<LabelledResource>> DockerProvider::list_containers(const std::string& filters) {
    constexpr std::string_view k_action = "listing jitbox containers";
    HttpRequest request = make_request("GET", "/containers/json?all=1&filters=" + filters);
    return list_reply(terms(), k_action, send(k_action, std::move(request)),
                      docker_json::container_list);
}

Result<std::vector<LabelledResource>> DockerProvider::list_networks(const std::string& filters) {
    constexpr std::string_view k_action = "listing jitbox networks";
    HttpRequest request = make_request("GET", "/networks?filters=" + filters);
    return list_reply(terms(), k_action, send(k_action, std::move(request)),
                      docker_json::network_list);
}

// One inspect of the recorded container, for `status --check`.
Result<std::string> DockerProvider::resource_state(const std::string& sandbox_id,
                                                   const ResourceSet& resources) {
    const auto container =
        std::find_if(resources.items.begin(), resources.items.end(),
                     [](const Resource& item) { return item.kind == "container"; });
    if (container == resources.items.end()) {
        return Provider::resource_state(sandbox_id, resources);
    }
    const Result<std::string> target = path_target(*container);
    if (!target) {
        return target.error();
    }
    const std::string action = fmt::format("inspecting container {}", display_name(*container));
    const Result<HttpResponse> response =
        send(action, make_request("GET", fmt::format("/containers/{}/json", *target)));
    if (!response) {
        return response.error();
    }
    if (response->status == 404) {
        return std::string("missing");
    }
    if (response->status != 200) {
        return http_failure(action, *response, default_hint(response->status));
    }
    const Json details = Json::parse(response->body, nullptr, false);
    const std::string status = docker_json::container_readiness(details).status;
    return status.empty() ? std::string("unknown") : status;
}

Result<std::vector<LabelledResource>> DockerProvider::list_labelled(ListScope scope) {
    const Json filters = {{"label", Json::array({k_label_sandbox})}};
    const std::string encoded = url_encode(filters.dump());

    Result<std::vector<LabelledResource>> containers = list_containers(encoded);
    if (!containers || scope == ListScope::containers) {
        return containers;
    }
    Result<std::vector<LabelledResource>> networks = list_networks(encoded);
    if (!networks) {
        return networks;
    }
    containers->insert(containers->end(), networks->begin(), networks->end());
    return containers;
}

} // namespace

std::unique_ptr<Provider> make_docker_provider(std::unique_ptr<HttpClient> client,
                                               std::string endpoint_description,
                                               DockerProviderOptions options) {
    return std::make_unique<DockerProvider>(std::move(client), std::move(endpoint_description),
                                            std::move(options));
}

} // namespace jitbox
