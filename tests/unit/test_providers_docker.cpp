#include "jitbox/net/http.hpp"
#include "jitbox/providers/docker.hpp"
#include "jitbox/providers/docker_container.hpp"

#include <algorithm>
#include <deque>
#include <doctest/doctest.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

using namespace jitbox;
using Json = nlohmann::json;

namespace {

// One scripted reply. With `chunks`, a streamed request receives the body in those pieces.
struct Reply {
    long status = 200;
    std::string body;
    std::map<std::string, std::string> headers;
    std::vector<std::string> chunks;
    std::optional<Failure> failure;
};

Reply reply(long status, std::string body = {}) {
    Reply scripted;
    scripted.status = status;
    scripted.body = std::move(body);
    return scripted;
}

Reply streamed_reply(std::vector<std::string> chunks) {
    Reply scripted;
    scripted.chunks = std::move(chunks);
    return scripted;
}

Reply transport_failure(std::string message) {
    Reply scripted;
    scripted.failure = Failure{ExitCode::provider, std::move(message)};
    return scripted;
}

// The engine's side of the fake: scripted replies per route and every request received.
struct FakeEngine {
    std::string api_version = "1.41";
    std::map<std::string, std::string> ping_headers;  // sent besides Api-Version
    std::map<std::string, std::deque<Reply>> replies; // "METHOD /path", no version, no query
    std::vector<HttpRequest> requests;

    void script(const std::string& route, Reply reply) {
        replies[route].push_back(std::move(reply));
    }

    std::vector<std::string> routes() const;
    const HttpRequest* find(const std::string& route) const;
};

std::string route_of(const HttpRequest& request) {
    std::string path = request.target.substr(0, request.target.find('?'));
    if (path.starts_with("/v1.")) {
        path = path.substr(path.find('/', 1));
    }
    return request.method + " " + path;
}

std::vector<std::string> FakeEngine::routes() const {
    std::vector<std::string> result;
    for (const HttpRequest& request : requests) {
        result.push_back(route_of(request));
    }
    return result;
}

const HttpRequest* FakeEngine::find(const std::string& route) const {
    for (const HttpRequest& request : requests) {
        if (route_of(request) == route) {
            return &request;
        }
    }
    return nullptr;
}

class FakeClient final : public HttpClient {
public:
    explicit FakeClient(std::shared_ptr<FakeEngine> engine) : m_engine(std::move(engine)) {}

    Result<HttpResponse> send(const HttpRequest& request) override {
        HttpRequest recorded = request;
        recorded.on_body = nullptr;
        m_engine->requests.push_back(recorded);

        const std::string route = route_of(request);
        auto& queue = m_engine->replies[route];
        if (queue.empty() && route == "GET /_ping") {
            HttpResponse pong{200, "OK", m_engine->ping_headers};
            pong.headers["api-version"] = m_engine->api_version;
            return pong;
        }
        if (queue.empty()) {
            return HttpResponse{599, R"({"message":"no scripted reply for )" + route + "\"}", {}};
        }
        Reply reply = queue.front();
        queue.pop_front();
        return deliver(request, reply);
    }

    // Exec start replies without a stream, such as a 409 for a stopped container.
    Result<UpgradeResponse> upgrade(const HttpRequest& request) override {
        Result<HttpResponse> response = send(request);
        if (!response) {
            return response.error();
        }
        return UpgradeResponse{std::move(response).value(), nullptr};
    }

private:
    static Result<HttpResponse> deliver(const HttpRequest& request, const Reply& reply) {
        if (reply.failure) {
            return *reply.failure;
        }
        HttpResponse response{reply.status, {}, reply.headers};
        std::vector<std::string> pieces = reply.chunks;
        if (pieces.empty()) {
            pieces.push_back(reply.body);
        }
        const bool success = reply.status >= 200 && reply.status < 300;
        for (const std::string& piece : pieces) {
            if (request.on_body && (success || !request.stream_success_only)) {
                request.on_body(piece);
            } else {
                response.body += piece;
            }
        }
        return response;
    }

    std::shared_ptr<FakeEngine> m_engine;
};

// The provider over a FakeEngine, with a clock that only its sleeps move.
struct Harness {
    explicit Harness(RegistryAuthFn registry_auth = {}, std::string address = "unix:///fake.sock") {
        DockerProviderOptions options;
        options.registry_auth = std::move(registry_auth);
        options.sleep = [this](std::chrono::milliseconds delay) {
            slept += delay;
            now += delay;
        };
        options.now = [this] { return now; };
        provider = make_docker_provider(std::make_unique<FakeClient>(engine), std::move(address),
                                        std::move(options));
    }
    Harness(const Harness&) = delete;
    Harness& operator=(const Harness&) = delete;

    std::shared_ptr<FakeEngine> engine = std::make_shared<FakeEngine>();
    std::chrono::steady_clock::time_point now{};
    std::chrono::milliseconds slept{0};
    std::unique_ptr<Provider> provider;
    std::vector<std::string> progress_messages;
    ProgressFn progress = [this](const ProgressEvent& event) {
        progress_messages.push_back(describe(event));
    };

    // "TEXT" for a step, "ID: STATUS CURRENT/TOTAL" for a layer, "waiting: TEXT" for a wait.
    static std::string describe(const ProgressEvent& event) {
        switch (event.kind) {
        case ProgressEvent::Kind::step:
            return event.text;
        case ProgressEvent::Kind::layer:
            return event.layer + ": " + event.text + " " + std::to_string(event.current) + "/" +
                   std::to_string(event.total);
        case ProgressEvent::Kind::waiting:
            return "waiting: " + event.text;
        }
        return {};
    }
};

SandboxPlan make_plan() {
    SandboxPlan plan;
    plan.id = "0123456789abcdef";
    plan.name = "db";
    plan.owner = "alice";
    plan.spec.name = "db";
    plan.spec.image = "busybox:1.36";
    plan.spec.command = {"sleep", "300"};
    plan.spec.env = {{"POSTGRES_PASSWORD", "x"}, {"A", "1"}};
    plan.spec.workdir = "/work";
    plan.spec.user = "1000:1000";
    plan.spec.cpus = 1.5;
    plan.spec.memory_bytes = 512LL * 1024 * 1024;
    plan.spec.pids_limit = 256;
    plan.spec.network = NetworkMode::isolated;
    plan.spec.ports = {PortSpec{"127.0.0.1", "", "5432", "tcp"}};
    plan.spec.read_only = true;
    plan.spec.cap_add = {"NET_BIND_SERVICE"};
    plan.spec.mounts = {Mount{std::filesystem::temp_directory_path(), "/data", false}};
    plan.labels = {{k_label_sandbox, plan.id}, {k_label_owner, "alice"}, {"team", "db"}};
    return plan;
}

constexpr const char* k_inspect_body = R"({
    "Id": "c1",
    "NetworkSettings": {"Ports": {
        "5432/tcp": [{"HostIp": "127.0.0.1", "HostPort": "49153"}],
        "9000/tcp": null
    }}
})";

// Scripts every step of a successful create of make_plan().
void script_create(FakeEngine& engine) {
    engine.script("GET /images/busybox%3A1.36/json", reply(200, "{}"));
    engine.script("POST /networks/create", reply(201, R"({"Id":"n1","Warning":""})"));
    engine.script("POST /containers/create", reply(201, R"({"Id":"c1","Warnings":[]})"));
    engine.script("POST /containers/c1/start", reply(204));
    engine.script("GET /containers/c1/json", reply(200, k_inspect_body));
}

class TempDir {
public:
    TempDir() {
        std::random_device random;
        m_path = std::filesystem::temp_directory_path() /
                 ("jitbox-test-docker-" + std::to_string(random()));
        std::filesystem::create_directories(m_path);
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(m_path, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return m_path; }

    void touch(const std::string& name) const { std::ofstream(m_path / name) << "pem\n"; }

private:
    std::filesystem::path m_path;
};

EnvLookup env_of(std::map<std::string, std::string> values) {
    return [values = std::move(values)](const std::string& name) -> std::optional<std::string> {
        const auto found = values.find(name);
        if (found == values.end()) {
            return std::nullopt;
        }
        return found->second;
    };
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// The ping headers of Podman 4.3.1's service.
const std::map<std::string, std::string> k_podman_ping_headers = {
    {"libpod-api-version", "4.3.1"},
    {"server", "Libpod/4.3.1 (linux)"},
};

// A SocketSearch that finds exactly the sockets listed.
SocketSearch sockets_at(std::vector<std::string> paths, bool as_root = false) {
    SocketSearch search;
    search.is_socket = [paths = std::move(paths)](const std::string& path) {
        return std::find(paths.begin(), paths.end(), path) != paths.end();
    };
    search.as_root = as_root;
    return search;
}

// An inspect reply with a State; `health` empty means no health check.
Reply inspect_reply(const std::string& status, const std::string& health = "",
                    const std::string& output = "", int exit_code = 0) {
    Json state = {{"Status", status}, {"ExitCode", exit_code}};
    if (!health.empty()) {
        state["Health"] = {{"Status", health},
                           {"Log", Json::array({{{"ExitCode", 1}, {"Output", output}}})}};
    }
    return reply(200, Json{{"Id", "c1"}, {"State", state}}.dump());
}

// An inspect reply of a running container whose health check has not passed yet and runs every
// `interval_ns` nanoseconds.
Reply starting_reply(long long interval_ns) {
    Reply starting = inspect_reply("running", "starting");
    Json body = Json::parse(starting.body);
    body["Config"] = {{"Healthcheck", {{"Interval", interval_ns}}}};
    starting.body = body.dump();
    return starting;
}

// A plan that waits, scripted through the create steps; the caller scripts the polls.
SandboxPlan waiting_plan(Harness& harness, Seconds timeout) {
    script_create(*harness.engine);
    SandboxPlan plan = make_plan();
    plan.wait_timeout = timeout;
    return plan;
}

int count_of(const std::vector<std::string>& items, const std::string& item) {
    return static_cast<int>(std::count(items.begin(), items.end(), item));
}

} // namespace

TEST_SUITE("docker") {

    TEST_CASE("negotiation rejects an engine older than 1.40") {
        Harness harness;
        harness.engine->api_version = "1.38";

        const auto listed = harness.provider->list_labelled(ListScope::containers);

        REQUIRE_FALSE(listed.ok());
        CHECK(listed.error().code == ExitCode::provider);
        CHECK(listed.error().message ==
              "the Docker engine at unix:///fake.sock speaks API 1.38, older than the 1.40 jitbox "
              "needs; upgrade the engine (Docker 19.03 or newer)");
        CHECK(harness.engine->routes() == std::vector<std::string>{"GET /_ping"});
    }

    TEST_CASE("negotiation caps the version at 1.41") {
        Harness harness;
        harness.engine->api_version = "1.43";
        harness.engine->script("GET /containers/json", reply(200, "[]"));

        REQUIRE(harness.provider->list_labelled(ListScope::containers).ok());

        REQUIRE(harness.engine->requests.size() == 2);
        CHECK(harness.engine->requests[0].target == "/_ping");
        CHECK(harness.engine->requests[1].target.starts_with("/v1.41/containers/json?"));
    }

    TEST_CASE("negotiation uses an older supported version") {
        Harness harness;
        harness.engine->api_version = "1.40";
        harness.engine->script("GET /containers/json", reply(200, "[]"));

        REQUIRE(harness.provider->list_labelled(ListScope::containers).ok());

        REQUIRE(harness.engine->requests.size() == 2);
        CHECK(harness.engine->requests[1].target.starts_with("/v1.40/containers/json?"));
    }

    TEST_CASE("negotiation pings only once") {
        Harness harness;
        harness.engine->script("GET /containers/json", reply(200, "[]"));
        harness.engine->script("GET /containers/json", reply(200, "[]"));

        REQUIRE(harness.provider->list_labelled(ListScope::containers).ok());
        REQUIRE(harness.provider->list_labelled(ListScope::containers).ok());

        CHECK(harness.engine->routes() == std::vector<std::string>{"GET /_ping",
                                                                   "GET /containers/json",
                                                                   "GET /containers/json"});
    }

    TEST_CASE("ping failure names endpoint and fix") {
        Harness harness;
        harness.engine->script("GET /_ping",
                               transport_failure("cannot reach unix:///fake.sock: No such file or "
                                                 "directory (Couldn't connect to server)"));

        const auto first = harness.provider->list_labelled(ListScope::containers);
        harness.engine->script("GET /containers/json", reply(200, "[]"));
        const auto second = harness.provider->list_labelled(ListScope::containers);

        REQUIRE_FALSE(first.ok());
        CHECK(first.error().code == ExitCode::provider);
        CHECK(
            first.error().message ==
            "cannot reach the Docker engine at unix:///fake.sock: No such file or directory "
            "(Couldn't connect to server); start dockerd (for example `systemctl start docker`) or "
            "set DOCKER_HOST");
        CHECK(second.ok());
    }

    TEST_CASE("negotiation rejects a server without Api-Version") {
        Harness harness;
        harness.engine->script("GET /_ping", reply(200, "OK"));

        const auto listed = harness.provider->list_labelled(ListScope::containers);

        REQUIRE_FALSE(listed.ok());
        CHECK(contains(listed.error().message, "sent no Api-Version header"));
    }

    TEST_CASE("image reference splitting") {
        struct Case {
            std::string reference;
            std::string repository;
            std::string tag;
        };
        const std::vector<Case> cases = {
            {"postgres:16", "postgres", "16"},
            {"busybox", "busybox", "latest"},
            {"library/busybox:1.36", "library/busybox", "1.36"},
            {"reg.local:5000/a/b:1", "reg.local:5000/a/b", "1"},
            {"reg.local:5000/a/b", "reg.local:5000/a/b", "latest"},
            {"x@sha256:abc123", "x", "sha256:abc123"},
            {"reg.local:5000/x:1@sha256:abc123", "reg.local:5000/x", "sha256:abc123"},
        };
        for (const Case& item : cases) {
            CAPTURE(item.reference);
            const ImageReference split = split_image_reference(item.reference);
            CHECK(split.repository == item.repository);
            CHECK(split.tag == item.tag);
        }
    }

    TEST_CASE("create pulls a missing image") {
        Harness harness;
        SandboxPlan plan = make_plan();
        plan.spec.image = "reg.local:5000/a/b:1";
        harness.engine->script("GET /images/reg.local%3A5000%2Fa%2Fb%3A1/json",
                               reply(404, R"({"message":"No such image"})"));
        harness.engine->script("POST /images/create",
                               reply(200, "{\"status\":\"Pulling from a/b\",\"id\":\"1\"}\r\n"
                                          "{\"status\":\"Status: Downloaded newer image\"}\r\n"));
        script_create(*harness.engine);
        ResourceSet created;

        const auto result = harness.provider->create(plan, created, harness.progress);

        REQUIRE(result.ok());
        const HttpRequest* pull = harness.engine->find("POST /images/create");
        REQUIRE(pull != nullptr);
        CHECK(pull->target == "/v1.41/images/create?fromImage=reg.local%3A5000%2Fa%2Fb&tag=1");
        CHECK(pull->timeout.count() == 0);
        // "Pulling from" names the tag, and the status lines without an id concern the image.
        CHECK(harness.progress_messages ==
              std::vector<std::string>{"pulling image reg.local:5000/a/b:1"});
    }

    TEST_CASE("pull stream split across chunks") {
        Harness harness;
        harness.engine->script("GET /images/busybox%3A1.36/json", reply(404, "{}"));
        harness.engine->script("POST /images/create",
                               streamed_reply({"{\"status\":\"Downloa",
                                               "ding\",\"progress\":\"[==>  ]\",\"id\":\"ab\"}\n{",
                                               "\"status\":\"Pull complete\",\"id\":\"ab\"}",
                                               "\n{\"status\":\"Done\"}"}));
        script_create(*harness.engine);
        ResourceSet created;

        const auto result = harness.provider->create(make_plan(), created, harness.progress);

        REQUIRE(result.ok());
        CHECK(harness.progress_messages == std::vector<std::string>{"pulling image busybox:1.36",
                                                                    "ab: Downloading 0/0",
                                                                    "ab: Pull complete 0/0"});
    }

    TEST_CASE("pull error inside a 200 response fails") {
        Harness harness;
        harness.engine->script("GET /images/busybox%3A1.36/json", reply(404, "{}"));
        harness.engine->script(
            "POST /images/create",
            reply(200, "{\"status\":\"Pulling from library/busybox\"}\r\n"
                       "{\"errorDetail\":{\"message\":\"manifest for busybox:1.36 not found\"},"
                       "\"error\":\"manifest for busybox:1.36 not found\"}\r\n"));
        ResourceSet created;

        const auto result = harness.provider->create(make_plan(), created, harness.progress);

        REQUIRE_FALSE(result.ok());
        CHECK(result.error().code == ExitCode::provider);
        CHECK(result.error().message == "pulling image busybox:1.36 failed: manifest for "
                                        "busybox:1.36 not found; check the name "
                                        "and that the registry is reachable");
        CHECK(created.items.empty());
        CHECK(harness.engine->find("POST /networks/create") == nullptr);
    }

    TEST_CASE("pull with an error status fails") {
        Harness harness;
        harness.engine->script("GET /images/busybox%3A1.36/json", reply(404, "{}"));
        harness.engine->script(
            "POST /images/create",
            reply(404,
                  "{\"message\":\"pull access denied for busybox, repository does not exist\"}\n"));
        ResourceSet created;

        const auto result = harness.provider->create(make_plan(), created, harness.progress);

        REQUIRE_FALSE(result.ok());
        CHECK(result.error().message ==
              "pulling image busybox:1.36 failed (HTTP 404: pull access denied for busybox, "
              "repository "
              "does not exist); check the name and that the registry is reachable");
        CHECK(created.items.empty());
    }

    TEST_CASE("pull reports bytes per layer") {
        Harness harness;
        harness.engine->script("GET /images/busybox%3A1.36/json", reply(404, "{}"));
        harness.engine->script(
            "POST /images/create",
            reply(200, R"({"status":"Pulling fs layer","progressDetail":{},"id":"a1"}
{"status":"Downloading","progressDetail":{"current":100,"total":400},"id":"a1"}
{"status":"Downloading","progressDetail":{"current":-5,"total":"400"},"id":"a1"}
{"status":"Download complete","progressDetail":{},"id":"a1"}
{"status":"Already exists","progressDetail":{},"id":"b2"}
{"status":"Digest: sha256:0123"}
)"));
        script_create(*harness.engine);
        ResourceSet created;

        REQUIRE(harness.provider->create(make_plan(), created, harness.progress).ok());

        // Negative and non-integer byte counts read as 0.
        CHECK(harness.progress_messages ==
              std::vector<std::string>{"pulling image busybox:1.36", "a1: Pulling fs layer 0/0",
                                       "a1: Downloading 100/400", "a1: Downloading 0/0",
                                       "a1: Download complete 0/0", "b2: Already exists 0/0"});
    }

    TEST_CASE("pull sends registry credentials") {
        std::vector<std::string> requested_images;
        Harness harness([&requested_images](const std::string& image) -> Result<RegistryAuth> {
            requested_images.push_back(image);
            return RegistryAuth{"reg.local:5000", "eyJ1c2VybmFtZSI6ImEifQ==", "auths in x"};
        });
        SandboxPlan plan = make_plan();
        plan.spec.image = "reg.local:5000/a/b:1";
        harness.engine->script("GET /images/reg.local%3A5000%2Fa%2Fb%3A1/json", reply(404, "{}"));
        harness.engine->script("POST /images/create", reply(200, ""));
        script_create(*harness.engine);
        ResourceSet created;

        REQUIRE(harness.provider->create(plan, created, harness.progress).ok());

        CHECK(requested_images == std::vector<std::string>{"reg.local:5000/a/b:1"});
        const HttpRequest* pull = harness.engine->find("POST /images/create");
        REQUIRE(pull != nullptr);
        const std::pair<std::string, std::string> header{"X-Registry-Auth",
                                                         "eyJ1c2VybmFtZSI6ImEifQ=="};
        CHECK(std::count(pull->headers.begin(), pull->headers.end(), header) == 1);
        const HttpRequest* inspect =
            harness.engine->find("GET /images/reg.local%3A5000%2Fa%2Fb%3A1/json");
        REQUIRE(inspect != nullptr);
        CHECK(inspect->headers.empty());
    }

    TEST_CASE("pull without credentials names the registry") {
        Harness harness([](const std::string&) -> Result<RegistryAuth> {
            return RegistryAuth{"reg.local:5000", "", "no entry in /home/a/.docker/config.json"};
        });
        SandboxPlan plan = make_plan();
        plan.spec.image = "reg.local:5000/a/b:1";
        harness.engine->script("GET /images/reg.local%3A5000%2Fa%2Fb%3A1/json", reply(404, "{}"));
        harness.engine->script(
            "POST /images/create",
            reply(500, R"({"message":"unauthorized: authentication required"})"));
        ResourceSet created;

        const auto result = harness.provider->create(plan, created, harness.progress);

        REQUIRE_FALSE(result.ok());
        CHECK(result.error().code == ExitCode::provider);
        CHECK(result.error().message ==
              "pulling image reg.local:5000/a/b:1 failed (HTTP 500: unauthorized: authentication "
              "required); check the name and that the registry is reachable; jitbox sent no "
              "credentials for reg.local:5000 (no entry in /home/a/.docker/config.json), so if "
              "the registry needs them, run `docker login reg.local:5000` or set DOCKER_CONFIG");
        const HttpRequest* pull = harness.engine->find("POST /images/create");
        REQUIRE(pull != nullptr);
        CHECK(pull->headers.empty());
    }

    TEST_CASE("pull stops when the credentials cannot be read") {
        Harness harness([](const std::string&) -> Result<RegistryAuth> {
            return Failure{ExitCode::usage, "/x/config.json is not a JSON object"};
        });
        harness.engine->script("GET /images/busybox%3A1.36/json", reply(404, "{}"));
        ResourceSet created;

        const auto result = harness.provider->create(make_plan(), created, harness.progress);

        REQUIRE_FALSE(result.ok());
        CHECK(result.error().code == ExitCode::usage);
        CHECK(result.error().message ==
              "pulling image busybox:1.36 failed: /x/config.json is not a JSON object");
        CHECK(harness.engine->find("POST /images/create") == nullptr);
    }

    TEST_CASE("pull ends early when interrupted") {
        Harness harness;
        harness.engine->script("GET /images/busybox%3A1.36/json", reply(404, "{}"));
        harness.engine->script("POST /images/create",
                               streamed_reply({"{\"status\":\"Waiting\",\"id\":\"a1\"}\n"}));
        SandboxPlan plan = make_plan();
        plan.interrupted = [] { return true; };
        ResourceSet created;

        const auto result = harness.provider->create(plan, created, harness.progress);

        REQUIRE_FALSE(result.ok());
        CHECK(result.error().code == ExitCode::interrupted);
        CHECK(harness.engine->find("POST /containers/create") == nullptr);
    }

    TEST_CASE("create sends the template's health check") {
        Harness harness;
        script_create(*harness.engine);
        SandboxPlan plan = make_plan();
        plan.spec.healthcheck =
            HealthCheck{{"CMD", "pg_isready"}, Seconds(2), std::nullopt, Seconds(60), 5};
        ResourceSet created;

        REQUIRE(harness.provider->create(plan, created, harness.progress).ok());

        const HttpRequest* request = harness.engine->find("POST /containers/create");
        REQUIRE(request != nullptr);
        const Json body = Json::parse(request->body);
        CHECK(body["Healthcheck"] == Json::parse(R"({"Test":["CMD","pg_isready"],
            "Interval":2000000000,"StartPeriod":60000000000,"Retries":5})"));
    }

    TEST_CASE("create without a health check keeps the image's") {
        Harness harness;
        script_create(*harness.engine);
        ResourceSet created;

        REQUIRE(harness.provider->create(make_plan(), created, harness.progress).ok());

        const HttpRequest* request = harness.engine->find("POST /containers/create");
        REQUIRE(request != nullptr);
        CHECK_FALSE(Json::parse(request->body).contains("Healthcheck"));
    }

    TEST_CASE("wait returns once the container is healthy") {
        Harness harness;
        const SandboxPlan plan = waiting_plan(harness, Seconds(60));
        harness.engine->script("GET /containers/c1/json", inspect_reply("running", "starting"));
        harness.engine->script("GET /containers/c1/json", inspect_reply("running", "starting"));
        harness.engine->script("GET /containers/c1/json", inspect_reply("running", "healthy"));
        ResourceSet created;

        const auto result = harness.provider->create(plan, created, harness.progress);

        REQUIRE(result.ok());
        // The polls back off: 200 ms, then 400 ms, with a report every 100 ms.
        CHECK(harness.slept == std::chrono::milliseconds(600));
        CHECK(count_of(harness.progress_messages, "waiting: waiting for db to be ready") == 6);
        CHECK(created.ports.size() == 1);
    }

    TEST_CASE("wait runs Podman's health check once per interval") {
        Harness harness;
        harness.engine->ping_headers = k_podman_ping_headers;
        const SandboxPlan plan = waiting_plan(harness, Seconds(60));
        // Polls at 0, 200, 600, 1400, 3000 and 5000 ms. The interval is 1 s, so the checks run
        // at 1400 and 3000 ms.
        for (int i = 0; i < 5; ++i) {
            harness.engine->script("GET /containers/c1/json", starting_reply(1000000000));
        }
        harness.engine->script("GET /containers/c1/json", inspect_reply("running", "healthy"));
        for (int i = 0; i < 2; ++i) {
            harness.engine->script("GET /libpod/containers/c1/healthcheck",
                                   reply(200, R"({"Status":"healthy"})"));
        }
        ResourceSet created;

        REQUIRE(harness.provider->create(plan, created, harness.progress).ok());

        CHECK(count_of(harness.engine->routes(), "GET /libpod/containers/c1/healthcheck") == 2);
        const HttpRequest* run = harness.engine->find("GET /libpod/containers/c1/healthcheck");
        REQUIRE(run != nullptr);
        CHECK(run->target == "/v1.41/libpod/containers/c1/healthcheck");
    }

    TEST_CASE("wait on Docker leaves health checks to the engine") {
        Harness harness;
        const SandboxPlan plan = waiting_plan(harness, Seconds(60));
        harness.engine->script("GET /containers/c1/json", inspect_reply("running", "starting"));
        harness.engine->script("GET /containers/c1/json", inspect_reply("running", "healthy"));
        ResourceSet created;

        REQUIRE(harness.provider->create(plan, created, harness.progress).ok());

        CHECK(harness.engine->find("GET /libpod/containers/c1/healthcheck") == nullptr);
    }

    TEST_CASE("wait goes on when Podman's health check cannot run") {
        Harness harness;
        harness.engine->ping_headers = k_podman_ping_headers;
        const SandboxPlan plan = waiting_plan(harness, Seconds(60));
        // Polls at 0, 200 and 600 ms, and the check runs at 200 ms.
        harness.engine->script("GET /containers/c1/json", starting_reply(100000000));
        harness.engine->script("GET /containers/c1/json", starting_reply(100000000));
        harness.engine->script("GET /containers/c1/json", inspect_reply("running", "healthy"));
        harness.engine->script("GET /libpod/containers/c1/healthcheck",
                               reply(500, R"({"message":"container is not running"})"));
        ResourceSet created;

        REQUIRE(harness.provider->create(plan, created, harness.progress).ok());

        CHECK(count_of(harness.engine->routes(), "GET /libpod/containers/c1/healthcheck") == 1);
    }

    TEST_CASE("wait leaves Podman's first check one interval away") {
        Harness harness;
        harness.engine->ping_headers = k_podman_ping_headers;
        const SandboxPlan plan = waiting_plan(harness, Seconds(60));
        // No Interval: Podman's default of 30 s, so no check runs before the exit at 200 ms.
        harness.engine->script("GET /containers/c1/json", inspect_reply("running", "starting"));
        harness.engine->script("GET /containers/c1/json",
                               inspect_reply("exited", "starting", "", 3));
        ResourceSet created;

        const auto result = harness.provider->create(plan, created, harness.progress);

        REQUIRE_FALSE(result.ok());
        CHECK(result.error().code == ExitCode::not_ready);
        CHECK(harness.engine->find("GET /libpod/containers/c1/healthcheck") == nullptr);
    }

    TEST_CASE("wait without a health check needs a running container") {
        Harness harness;
        const SandboxPlan plan = waiting_plan(harness, Seconds(60));
        harness.engine->script("GET /containers/c1/json", inspect_reply("running"));
        ResourceSet created;

        REQUIRE(harness.provider->create(plan, created, harness.progress).ok());

        CHECK(harness.slept == std::chrono::milliseconds(0));
    }

    TEST_CASE("wait treats a disabled health check as none") {
        Harness harness;
        const SandboxPlan plan = waiting_plan(harness, Seconds(60));
        harness.engine->script("GET /containers/c1/json", inspect_reply("running", "none"));
        ResourceSet created;

        REQUIRE(harness.provider->create(plan, created, harness.progress).ok());
    }

    TEST_CASE("wait fails when the container is unhealthy") {
        Harness harness;
        const SandboxPlan plan = waiting_plan(harness, Seconds(60));
        harness.engine->script("GET /containers/c1/json",
                               inspect_reply("running", "unhealthy", "no response\n"));
        ResourceSet created;

        const auto result = harness.provider->create(plan, created, harness.progress);

        REQUIRE_FALSE(result.ok());
        CHECK(result.error().code == ExitCode::not_ready);
        CHECK(result.error().message == "container jitbox-db-01234567 is unhealthy: its health "
                                        "check printed \"no response\"");
        CHECK(created.items.size() == 2); // the caller removes the network and the container
    }

    TEST_CASE("wait fails when the container exits") {
        // "stopped" is Podman's state between the exit and its cleanup.
        for (const std::string status : {"exited", "dead", "stopped"}) {
            CAPTURE(status);
            Harness harness;
            const SandboxPlan plan = waiting_plan(harness, Seconds(60));
            harness.engine->script("GET /containers/c1/json", inspect_reply(status, "", "", 3));
            ResourceSet created;

            const auto result = harness.provider->create(plan, created, harness.progress);

            REQUIRE_FALSE(result.ok());
            CHECK(result.error().code == ExitCode::not_ready);
            CHECK(result.error().message ==
                  "container jitbox-db-01234567 exited with status 3 before it was ready");
        }
    }

    TEST_CASE("wait gives up at the timeout") {
        Harness harness;
        const SandboxPlan plan = waiting_plan(harness, Seconds(1));
        for (int i = 0; i < 10; ++i) {
            harness.engine->script("GET /containers/c1/json", inspect_reply("running", "starting"));
        }
        ResourceSet created;

        const auto result = harness.provider->create(plan, created, harness.progress);

        REQUIRE_FALSE(result.ok());
        CHECK(result.error().code == ExitCode::not_ready);
        CHECK(result.error().message ==
              "container jitbox-db-01234567 was not ready within 1s (--wait-timeout)");
        CHECK(harness.slept == std::chrono::milliseconds(1000));
    }

    TEST_CASE("wait ends when interrupted") {
        Harness harness;
        SandboxPlan plan = waiting_plan(harness, Seconds(60));
        harness.engine->script("GET /containers/c1/json", inspect_reply("running", "starting"));
        int polls = 0;
        plan.interrupted = [&polls] { return ++polls > 1; };
        ResourceSet created;

        const auto result = harness.provider->create(plan, created, harness.progress);

        REQUIRE_FALSE(result.ok());
        CHECK(result.error().code == ExitCode::interrupted);
    }

    TEST_CASE("resource_state inspects the recorded container") {
        Harness harness;
        harness.engine->script("GET /containers/c1/json", inspect_reply("exited"));
        harness.engine->script("GET /containers/c1/json", reply(404, R"({"message":"gone"})"));
        const ResourceSet resources{{{"network", "n1", "net"}, {"container", "c1", "box"}}, {}};

        const auto first = harness.provider->resource_state("0123456789abcdef", resources);
        const auto second = harness.provider->resource_state("0123456789abcdef", resources);

        REQUIRE(first.ok());
        CHECK(*first == "exited");
        REQUIRE(second.ok());
        CHECK(*second == "missing");
        CHECK(harness.engine->routes() == std::vector<std::string>{"GET /_ping",
                                                                   "GET /containers/c1/json",
                                                                   "GET /containers/c1/json"});
    }

    TEST_CASE("resource_state without a container lists by label") {
        Harness harness;
        harness.engine->script(
            "GET /containers/json",
            reply(200, R"([{"Id":"c9","State":"running","Labels":{"io.jitbox.sandbox":"abc"}}])"));

        const auto state = harness.provider->resource_state("abc", ResourceSet{});

        REQUIRE(state.ok());
        CHECK(*state == "running");
    }

    TEST_CASE("create request body") {
        Harness harness;
        script_create(*harness.engine);
        ResourceSet created;
        const SandboxPlan plan = make_plan();

        REQUIRE(harness.provider->create(plan, created, harness.progress).ok());

        const HttpRequest* request = harness.engine->find("POST /containers/create");
        REQUIRE(request != nullptr);
        CHECK(request->target == "/v1.41/containers/create?name=jitbox-db-01234567");
        CHECK(request->timeout == std::chrono::seconds(60));
        const Json body = Json::parse(request->body);
        CHECK(body["Image"] == "busybox:1.36");
        CHECK(body["Cmd"] == Json::array({"sleep", "300"}));
        CHECK(body["Env"] == Json::array({"A=1", "POSTGRES_PASSWORD=x"}));
        CHECK(body["WorkingDir"] == "/work");
        CHECK(body["User"] == "1000:1000");
        CHECK(body["Labels"]["io.jitbox.sandbox"] == plan.id);
        CHECK(body["Labels"]["team"] == "db");
        CHECK(body["ExposedPorts"].contains("5432/tcp"));
        const Json& host = body["HostConfig"];
        CHECK(host["CapDrop"] == Json::array({"ALL"}));
        CHECK(host["CapAdd"] == Json::array({"NET_BIND_SERVICE"}));
        CHECK(host["SecurityOpt"] == Json::array({"no-new-privileges"}));
        CHECK(host["PidsLimit"] == 256);
        CHECK(host["Memory"] == 512LL * 1024 * 1024);
        CHECK(host["MemorySwap"] == 512LL * 1024 * 1024);
        CHECK(host["NanoCpus"] == 1500000000LL);
        CHECK(host["ReadonlyRootfs"] == true);
        CHECK(host["NetworkMode"] == "jitbox-db-01234567");
        CHECK(host["Init"] == false);
        CHECK(host["RestartPolicy"]["Name"] == "no");
        CHECK(host["PortBindings"]["5432/tcp"] ==
              Json::parse(R"([{"HostIp":"127.0.0.1","HostPort":""}])"));
        REQUIRE(host["Mounts"].size() == 1);
        CHECK(host["Mounts"][0]["Type"] == "bind");
        CHECK(host["Mounts"][0]["Source"] == std::filesystem::temp_directory_path().string());
        CHECK(host["Mounts"][0]["Target"] == "/data");
        CHECK(host["Mounts"][0]["ReadOnly"] == true);
        CHECK(host["Privileged"] == false);
        CHECK(host["Devices"] == Json::array());
        CHECK_FALSE(host.contains("PidMode"));
        CHECK_FALSE(host.contains("IpcMode"));
    }

    TEST_CASE("create body with host access") {
        Harness harness;
        SandboxPlan plan = make_plan();
        plan.spec.network = NetworkMode::host;
        plan.spec.ports.clear();
        plan.spec.privileged = true;
        plan.spec.pid = "host";
        plan.spec.ipc = "none";
        plan.spec.cap_drop = {"NET_RAW", "MKNOD"};
        plan.spec.devices = {DeviceMapping{"/dev/fuse", "/dev/fuse", "rw", ""}};
        harness.engine->script("GET /images/busybox%3A1.36/json", reply(200, "{}"));
        harness.engine->script("POST /containers/create", reply(201, R"({"Id":"c1"})"));
        harness.engine->script("POST /containers/c1/start", reply(204));
        harness.engine->script("GET /containers/c1/json", reply(200, k_inspect_body));
        ResourceSet created;

        REQUIRE(harness.provider->create(plan, created, harness.progress).ok());

        CHECK(harness.engine->find("POST /networks/create") == nullptr);
        const HttpRequest* request = harness.engine->find("POST /containers/create");
        REQUIRE(request != nullptr);
        const Json host = Json::parse(request->body)["HostConfig"];
        CHECK(host["NetworkMode"] == "host");
        CHECK(host["Privileged"] == true);
        CHECK(host["PidMode"] == "host");
        CHECK(host["IpcMode"] == "none");
        CHECK(host["CapDrop"] == Json::array({"NET_RAW", "MKNOD"}));
        REQUIRE(host["Devices"].size() == 1);
        CHECK(host["Devices"][0]["PathOnHost"] == "/dev/fuse");
        CHECK(host["Devices"][0]["PathInContainer"] == "/dev/fuse");
        CHECK(host["Devices"][0]["CgroupPermissions"] == "rw");
    }

    TEST_CASE("create network request") {
        Harness harness;
        script_create(*harness.engine);
        ResourceSet created;

        REQUIRE(harness.provider->create(make_plan(), created, harness.progress).ok());

        const HttpRequest* request = harness.engine->find("POST /networks/create");
        REQUIRE(request != nullptr);
        const Json body = Json::parse(request->body);
        CHECK(body["Name"] == "jitbox-db-01234567");
        CHECK(body["Driver"] == "bridge");
        CHECK(body["CheckDuplicate"] == true);
        CHECK(body["Labels"]["io.jitbox.owner"] == "alice");
    }

    TEST_CASE("create records resources and ports") {
        Harness harness;
        script_create(*harness.engine);
        ResourceSet created;

        REQUIRE(harness.provider->create(make_plan(), created, harness.progress).ok());

        REQUIRE(created.items.size() == 2);
        CHECK(created.items[0].kind == "network");
        CHECK(created.items[0].id == "n1");
        CHECK(created.items[1].kind == "container");
        CHECK(created.items[1].id == "c1");
        CHECK(created.items[1].name == "jitbox-db-01234567");
        REQUIRE(created.ports.size() == 1);
        CHECK(created.ports[0].container_port == "5432/tcp");
        CHECK(created.ports[0].host_ip == "127.0.0.1");
        CHECK(created.ports[0].host_port == 49153);
        CHECK(harness.engine->routes() ==
              std::vector<std::string>{"GET /_ping", "GET /images/busybox%3A1.36/json",
                                       "POST /networks/create", "POST /containers/create",
                                       "POST /containers/c1/start", "GET /containers/c1/json"});
    }

    TEST_CASE("create network modes none and bridge") {
        Harness harness;
        SandboxPlan plan = make_plan();
        std::string expected_mode;
        SUBCASE("none") {
            plan.spec.network = NetworkMode::none;
            plan.spec.ports.clear();
            expected_mode = "none";
        }
        SUBCASE("bridge") {
            plan.spec.network = NetworkMode::bridge;
            expected_mode = "bridge";
        }
        script_create(*harness.engine);
        ResourceSet created;

        REQUIRE(harness.provider->create(plan, created, harness.progress).ok());

        CHECK(harness.engine->find("POST /networks/create") == nullptr);
        const HttpRequest* request = harness.engine->find("POST /containers/create");
        REQUIRE(request != nullptr);
        CHECK(Json::parse(request->body)["HostConfig"]["NetworkMode"] == expected_mode);
        REQUIRE(created.items.size() == 1);
        CHECK(created.items[0].kind == "container");
    }

    TEST_CASE("create failure records existing resources") {
        Harness harness;
        FakeEngine& engine = *harness.engine;
        engine.script("GET /images/busybox%3A1.36/json", reply(200, "{}"));
        std::vector<std::string> expected_kinds;
        std::string expected_text;
        SUBCASE("network conflict") {
            engine.script(
                "POST /networks/create",
                reply(409, R"({"message":"network with name jitbox-db-01234567 already exists"})"));
            expected_text =
                "creating network jitbox-db-01234567 failed (HTTP 409: network with name "
                "jitbox-db-01234567 already exists); remove the old network with "
                "`docker network rm jitbox-db-01234567`";
        }
        SUBCASE("container name conflict") {
            engine.script("POST /networks/create", reply(201, R"({"Id":"n1"})"));
            engine.script(
                "POST /containers/create",
                reply(409, R"({"message":"Conflict. The container name is already in use"})"));
            expected_kinds = {"network"};
            expected_text = "creating container jitbox-db-01234567 failed (HTTP 409: Conflict. The "
                            "container name is already in use); remove the old container with "
                            "`docker rm -f jitbox-db-01234567`";
        }
        SUBCASE("start fails") {
            engine.script("POST /networks/create", reply(201, R"({"Id":"n1"})"));
            engine.script("POST /containers/create", reply(201, R"({"Id":"c1"})"));
            engine.script("POST /containers/c1/start",
                          reply(500, "{\"message\":\"port is already allocated\"}\n"));
            expected_kinds = {"network", "container"};
            expected_text =
                "starting container jitbox-db-01234567 failed (HTTP 500: port is already "
                "allocated); fix the cause the engine names, such as a port already in "
                "use, or check the engine's log, for example with `journalctl -u docker`";
        }
        SUBCASE("container request times out") {
            engine.script("POST /networks/create", reply(201, R"({"Id":"n1"})"));
            engine.script("POST /containers/create",
                          transport_failure("cannot reach unix:///fake.sock: "
                                            "Operation timed out"));
            expected_kinds = {"network", "container"};
            expected_text = "creating container jitbox-db-01234567 failed: cannot reach "
                            "unix:///fake.sock: Operation timed out; check that dockerd is running "
                            "and responsive";
        }
        ResourceSet created;

        const auto result = harness.provider->create(make_plan(), created, harness.progress);

        REQUIRE_FALSE(result.ok());
        CHECK(result.error().code == ExitCode::provider);
        CHECK(result.error().message == expected_text);
        std::vector<std::string> kinds;
        for (const Resource& item : created.items) {
            kinds.push_back(item.kind);
        }
        CHECK(kinds == expected_kinds);
    }

    TEST_CASE("create rejects missing mount source") {
        Harness harness;
        SandboxPlan plan = make_plan();
        plan.spec.mounts = {Mount{"/nonexistent/jitbox-test-source", "/data", false}};
        ResourceSet created;

        const auto result = harness.provider->create(plan, created, harness.progress);

        REQUIRE_FALSE(result.ok());
        CHECK(result.error().code == ExitCode::usage);
        CHECK(contains(result.error().message, "/nonexistent/jitbox-test-source does not exist"));
        CHECK(harness.engine->requests.empty());
    }

    TEST_CASE("create rejects sensitive mount source") {
        Harness harness;
        SandboxPlan plan = make_plan();
        plan.spec.mounts = {Mount{"/etc", "/host-etc", false}};
        plan.spec.mounts[0].origin = "jitbox.toml:4:22";
        ResourceSet created;

        const auto result = harness.provider->create(plan, created, harness.progress);

        REQUIRE_FALSE(result.ok());
        CHECK(result.error().code == ExitCode::usage);
        CHECK(contains(result.error().message,
                       "jitbox.toml:4:22: mount source \"/etc\" is /etc, the host's system "
                       "configuration; remove the mount"));
        CHECK(harness.engine->requests.empty());
    }

    TEST_CASE("create mounts allowed sensitive source") {
        Harness harness;
        script_create(*harness.engine);
        SandboxPlan plan = make_plan();
        plan.spec.mounts = {Mount{"/etc", "/host-etc", false}};
        plan.spec.mounts[0].allow_sensitive = true;
        ResourceSet created;

        const auto result = harness.provider->create(plan, created, harness.progress);

        INFO((result.ok() ? "" : result.error().message));
        CHECK(result.ok());
    }

    TEST_CASE("create rejects ports without a network") {
        Harness harness;
        SandboxPlan plan = make_plan();
        plan.spec.network = NetworkMode::none;
        ResourceSet created;

        const auto result = harness.provider->create(plan, created, harness.progress);

        REQUIRE_FALSE(result.ok());
        CHECK(result.error().code == ExitCode::usage);
        CHECK(harness.engine->requests.empty());
    }

    TEST_CASE("destroy accepts gone and in-progress") {
        Harness harness;
        harness.engine->script(
            "DELETE /containers/c1",
            reply(409, R"({"message":"removal of container c1 is already in progress"})"));
        harness.engine->script("DELETE /networks/n1",
                               reply(404, R"({"message":"no such network"})"));
        ResourceSet resources;
        resources.items = {{"network", "n1", "jitbox-db-01234567"},
                           {"container", "c1", "jitbox-db-01234567"}};

        const auto result = harness.provider->destroy(resources, std::nullopt);

        CHECK(result.ok());
        CHECK(harness.engine->routes() == std::vector<std::string>{"GET /_ping",
                                                                   "DELETE /containers/c1",
                                                                   "DELETE /networks/n1"});
        CHECK(harness.engine->requests[1].target == "/v1.41/containers/c1?force=true&v=true");
    }

    TEST_CASE("destroy treats a missing container as removed") {
        Harness harness;
        harness.engine->script("DELETE /containers/c1",
                               reply(404, R"({"message":"No such container"})"));
        ResourceSet resources;
        resources.items = {{"container", "c1", "jitbox-db-01234567"}};

        CHECK(harness.provider->destroy(resources, std::nullopt).ok());
    }

    TEST_CASE("destroy stops before removing") {
        Harness harness;
        harness.engine->script("POST /containers/c1/stop", reply(304));
        harness.engine->script("DELETE /containers/c1", reply(204));
        ResourceSet resources;
        resources.items = {{"container", "c1", "jitbox-db-01234567"}};

        REQUIRE(harness.provider->destroy(resources, Seconds(10)).ok());

        REQUIRE(harness.engine->requests.size() == 3);
        CHECK(harness.engine->requests[1].target == "/v1.41/containers/c1/stop?t=10");
        CHECK(harness.engine->requests[1].timeout == std::chrono::seconds(40));
        CHECK(harness.engine->requests[2].method == "DELETE");
    }

    TEST_CASE("destroy joins failures on one line") {
        Harness harness;
        harness.engine->script("DELETE /containers/c1",
                               reply(500, "{\"message\":\"driver failed\\nremoving root\"}"));
        harness.engine->script("DELETE /networks/n1", reply(403, R"({"message":"not allowed"})"));
        ResourceSet resources;
        resources.items = {{"network", "n1", "net-a"}, {"container", "c1", "box-a"}};

        const auto result = harness.provider->destroy(resources, std::nullopt);

        REQUIRE_FALSE(result.ok());
        CHECK(result.error().code == ExitCode::provider);
        CHECK(result.error().message ==
              "could not remove container box-a (HTTP 500: driver failed removing root), network "
              "net-a (HTTP 403: not allowed); run the command again or remove them with "
              "`docker rm -f box-a` and `docker network rm net-a`");
    }

    TEST_CASE("destroy rejects an unsafe id") {
        Harness harness;
        harness.engine->script("DELETE /containers/c2", reply(204));
        ResourceSet resources;
        resources.items = {{"container", "c2", "b"}, {"container", "../images/x", "a"}};

        const auto result = harness.provider->destroy(resources, std::nullopt);

        REQUIRE_FALSE(result.ok());
        CHECK(contains(result.error().message, "\"../images/x\" is not a Docker id or name"));
        CHECK(harness.engine->routes() ==
              std::vector<std::string>{"GET /_ping", "DELETE /containers/c2"});
    }

    TEST_CASE("name conflicts on either engine") {
        struct Case {
            std::string label;
            std::map<std::string, std::string> ping_headers;
            std::string route;
            Reply conflict;
            std::string expected_hint;
        };
        const std::vector<Case> cases = {
            {"docker network",
             {},
             "POST /networks/create",
             reply(409, R"({"message":"network with name jitbox-db-01234567 already exists"})"),
             "remove the old network with `docker network rm jitbox-db-01234567`"},
            {"podman network", k_podman_ping_headers, "POST /networks/create",
             reply(500, R"({"cause":"network already exists","message":"network name )"
                        R"(jitbox-db-01234567 already used: network already exists",)"
                        R"("response":500})"),
             "remove the old network with `podman network rm jitbox-db-01234567`"},
            {"podman container", k_podman_ping_headers, "POST /containers/create",
             reply(500, R"({"cause":"that name is already in use","message":"container create: )"
                        R"(creating container storage: the container name \"jitbox-db-01234567\" )"
                        R"(is already in use by 0123: that name is already in use",)"
                        R"("response":500})"),
             "remove the old container with `podman rm -f jitbox-db-01234567`"},
        };
        for (const Case& item : cases) {
            CAPTURE(item.label);
            Harness harness;
            harness.engine->ping_headers = item.ping_headers;
            harness.engine->script("GET /images/busybox%3A1.36/json", reply(200, "{}"));
            if (item.route != "POST /networks/create") {
                harness.engine->script("POST /networks/create", reply(201, R"({"Id":"n1"})"));
            }
            harness.engine->script(item.route, item.conflict);
            ResourceSet created;

            const auto result = harness.provider->create(make_plan(), created, harness.progress);

            REQUIRE_FALSE(result.ok());
            CHECK(result.error().code == ExitCode::provider);
            CHECK(result.error().message.ends_with("; " + item.expected_hint));
        }
    }

    TEST_CASE("podman 500 without name conflict") {
        Harness harness;
        harness.engine->ping_headers = k_podman_ping_headers;
        harness.engine->script("GET /images/busybox%3A1.36/json", reply(200, "{}"));
        harness.engine->script("POST /networks/create",
                               reply(500, R"({"message":"plugin type=\"bridge\" failed"})"));
        ResourceSet created;

        const auto result = harness.provider->create(make_plan(), created, harness.progress);

        REQUIRE_FALSE(result.ok());
        CHECK(result.error().message ==
              "creating network jitbox-db-01234567 failed (HTTP 500: plugin type=\"bridge\" "
              "failed); check the Podman service's log, for example with `journalctl --user -u "
              "podman`");
    }

    TEST_CASE("podman removal commands in messages") {
        Harness harness;
        harness.engine->ping_headers = k_podman_ping_headers;
        harness.engine->script("DELETE /containers/c1",
                               reply(500, R"({"message":"removing storage: busy"})"));
        harness.engine->script("DELETE /networks/n1", reply(204));
        ResourceSet resources;
        resources.items = {{"network", "n1", "net-a"}, {"container", "c1", "box-a"}};

        const auto result = harness.provider->destroy(resources, std::nullopt);

        REQUIRE_FALSE(result.ok());
        CHECK(result.error().message ==
              "could not remove container box-a (HTTP 500: removing storage: busy); run the "
              "command again or remove them with `podman rm -f box-a`");
    }

    TEST_CASE("destroy names a network still in use") {
        struct Case {
            std::string label;
            std::map<std::string, std::string> ping_headers;
            Reply in_use;
            std::string expected_part;
        };
        const std::vector<Case> cases = {
            {"docker",
             {},
             reply(403, R"({"message":"error while removing network: network net-a id n1 has )"
                        R"(active endpoints"})"),
             "attached to it, so disconnect it first with `docker network disconnect net-a "
             "CONTAINER`"},
            {"podman", k_podman_ping_headers,
             reply(500, R"({"cause":"network is being used","message":"\"net-a\" has )"
                        R"(associated containers with it. Use -f to forcibly delete containers )"
                        R"(and pods: network is being used","response":500})"),
             "attached to it, so disconnect it first with `podman network disconnect net-a "
             "CONTAINER`"},
        };
        for (const Case& item : cases) {
            CAPTURE(item.label);
            Harness harness;
            harness.engine->ping_headers = item.ping_headers;
            harness.engine->script("DELETE /networks/n1", item.in_use);
            ResourceSet resources;
            resources.items = {{"network", "n1", "net-a"}};

            const auto result = harness.provider->destroy(resources, std::nullopt);

            REQUIRE_FALSE(result.ok());
            CHECK(contains(result.error().message, item.expected_part));
        }
    }

    TEST_CASE("ping failure at a Podman socket") {
        Harness harness({}, "unix:///run/user/1000/podman/podman.sock");
        harness.engine->script("GET /_ping",
                               transport_failure("cannot reach unix:///run/user/1000/podman/"
                                                 "podman.sock: Couldn't connect to server"));

        const auto listed = harness.provider->list_labelled(ListScope::containers);

        REQUIRE_FALSE(listed.ok());
        CHECK(listed.error().message ==
              "cannot reach the Podman service at unix:///run/user/1000/podman/podman.sock: "
              "Couldn't connect to server; start the Podman service (for example `systemctl "
              "--user start podman.socket`, or `systemctl start podman.socket` as root) or set "
              "DOCKER_HOST");
    }

    TEST_CASE("pull error in Podman's shape") {
        Harness harness;
        harness.engine->ping_headers = k_podman_ping_headers;
        harness.engine->script("GET /images/busybox%3A1.36/json",
                               reply(404, R"({"cause":"image not known","response":404})"));
        harness.engine->script(
            "POST /images/create",
            reply(200, "{\"progressDetail\":{},\"errorDetail\":{\"message\":\"reading manifest "
                       "1.36 in 127.0.0.1:9/busybox: manifest unknown\"},\"error\":\"reading "
                       "manifest 1.36 in 127.0.0.1:9/busybox: manifest unknown\"}\n"));
        ResourceSet created;

        const auto result = harness.provider->create(make_plan(), created, harness.progress);

        REQUIRE_FALSE(result.ok());
        CHECK(result.error().message ==
              "pulling image busybox:1.36 failed: reading manifest 1.36 in 127.0.0.1:9/busybox: "
              "manifest unknown; check the name and that the registry is reachable");
        CHECK(created.items.empty());
    }

    TEST_CASE("list_labelled maps containers and networks") {
        Harness harness;
        harness.engine->script("GET /containers/json", reply(200, R"([{
        "Id": "c1", "Names": ["/jitbox-db-01234567"], "State": "running",
        "Labels": {"io.jitbox.sandbox": "0123456789abcdef", "io.jitbox.name": "db"}
    }])"));
        harness.engine->script("GET /networks", reply(200, R"([{
        "Id": "n1", "Name": "jitbox-db-01234567",
        "Labels": {"io.jitbox.sandbox": "0123456789abcdef"}
    }])"));

        const auto listed = harness.provider->list_labelled(ListScope::all);

        REQUIRE(listed.ok());
        REQUIRE(listed->size() == 2);
        const LabelledResource& container = (*listed)[0];
        CHECK(container.resource.kind == "container");
        CHECK(container.resource.id == "c1");
        CHECK(container.resource.name == "jitbox-db-01234567");
        CHECK(container.state == "running");
        CHECK(container.labels.at("io.jitbox.name") == "db");
        const LabelledResource& network = (*listed)[1];
        CHECK(network.resource.kind == "network");
        CHECK(network.resource.name == "jitbox-db-01234567");
        CHECK(network.labels.at("io.jitbox.sandbox") == "0123456789abcdef");
        const std::string filters = "filters=%7B%22label%22%3A%5B%22io.jitbox.sandbox%22%5D%7D";
        CHECK(harness.engine->requests[1].target == "/v1.41/containers/json?all=1&" + filters);
        CHECK(harness.engine->requests[2].target == "/v1.41/networks?" + filters);
    }

    TEST_CASE("list_labelled containers only") {
        Harness harness;
        harness.engine->script("GET /containers/json", reply(200, "[]"));

        const auto listed = harness.provider->list_labelled(ListScope::containers);

        REQUIRE(listed.ok());
        CHECK(listed->empty());
        CHECK(harness.engine->find("GET /networks") == nullptr);
    }

    TEST_CASE("list_labelled reports an error status") {
        Harness harness;
        harness.engine->script("GET /containers/json", reply(500, R"({"message":"boom"})"));

        const auto listed = harness.provider->list_labelled(ListScope::containers);

        REQUIRE_FALSE(listed.ok());
        CHECK(listed.error().message ==
              "listing jitbox containers failed (HTTP 500: boom); check the "
              "engine's log, for example with `journalctl -u docker`");
    }

    TEST_CASE("docker_endpoint parses DOCKER_HOST") {
        struct Case {
            std::string host;
            std::map<std::string, std::string> env;
            std::string unix_socket;
            std::string base_url;
        };
        const std::vector<Case> cases = {
            {"unix:///var/run/docker.sock", {}, "/var/run/docker.sock", "http://localhost"},
            {"unix:///run/user/1000/podman/podman.sock",
             {},
             "/run/user/1000/podman/podman.sock",
             "http://localhost"},
            {"tcp://10.0.0.5:2375", {}, "", "http://10.0.0.5:2375"},
            {"tcp://engine.local", {}, "", "http://engine.local:2375"},
            {"tcp://[::1]:2375/", {}, "", "http://[::1]:2375"},
            {"tcp://engine:2376", {{"DOCKER_TLS_VERIFY", "0"}}, "", "http://engine:2376"},
        };
        for (const Case& item : cases) {
            CAPTURE(item.host);
            const auto endpoint = docker_endpoint(item.host, env_of(item.env));
            REQUIRE(endpoint.ok());
            CHECK(endpoint->unix_socket == item.unix_socket);
            CHECK(endpoint->base_url == item.base_url);
            CHECK(endpoint->ca_file.empty());
        }
    }

    TEST_CASE("engine socket candidates in order") {
        struct Case {
            std::string label;
            std::map<std::string, std::string> env;
            bool as_root;
            std::vector<std::string> expected;
        };
        const std::vector<Case> cases = {
            {"user with a runtime folder",
             {{"XDG_RUNTIME_DIR", "/run/user/1000"}},
             false,
             {"/var/run/docker.sock", "/run/user/1000/docker.sock",
              "/run/user/1000/podman/podman.sock"}},
            {"root with a runtime folder",
             {{"XDG_RUNTIME_DIR", "/run/user/0"}},
             true,
             {"/var/run/docker.sock", "/run/user/0/docker.sock", "/run/user/0/podman/podman.sock",
              "/run/podman/podman.sock"}},
            {"root without a runtime folder",
             {},
             true,
             {"/var/run/docker.sock", "/run/podman/podman.sock"}},
            {"user without a runtime folder", {}, false, {"/var/run/docker.sock"}},
            {"relative runtime folder",
             {{"XDG_RUNTIME_DIR", "run"}},
             false,
             {"/var/run/docker.sock"}},
        };
        for (const Case& item : cases) {
            CAPTURE(item.label);
            CHECK(engine_socket_candidates(env_of(item.env), item.as_root) == item.expected);
        }
    }

    TEST_CASE("find_docker_host takes the first socket that exists") {
        const std::map<std::string, std::string> env = {{"XDG_RUNTIME_DIR", "/run/user/1000"}};
        struct Case {
            std::vector<std::string> sockets;
            bool as_root;
            std::string expected;
        };
        const std::vector<Case> cases = {
            {{"/var/run/docker.sock", "/run/user/1000/podman/podman.sock"},
             false,
             "unix:///var/run/docker.sock"},
            {{"/run/user/1000/docker.sock", "/run/user/1000/podman/podman.sock"},
             false,
             "unix:///run/user/1000/docker.sock"},
            {{"/run/user/1000/podman/podman.sock", "/run/podman/podman.sock"},
             true,
             "unix:///run/user/1000/podman/podman.sock"},
            {{"/run/podman/podman.sock"}, true, "unix:///run/podman/podman.sock"},
        };
        for (const Case& item : cases) {
            CAPTURE(item.expected);
            const auto host = find_docker_host(env_of(env), sockets_at(item.sockets, item.as_root));
            REQUIRE(host.ok());
            CHECK(*host == item.expected);
        }
    }

    TEST_CASE("find_docker_host prefers a set DOCKER_HOST") {
        const auto search = sockets_at({"/var/run/docker.sock"});

        const auto set = find_docker_host(env_of({{"DOCKER_HOST", "tcp://engine:2375"}}), search);
        const auto empty = find_docker_host(env_of({{"DOCKER_HOST", ""}}), search);

        REQUIRE(set.ok());
        CHECK(*set == "tcp://engine:2375");
        REQUIRE(empty.ok());
        CHECK(*empty == "unix:///var/run/docker.sock");
    }

    TEST_CASE("find_docker_host skips rootful Podman for users") {
        const auto host = find_docker_host(env_of({}), sockets_at({"/run/podman/podman.sock"}));

        REQUIRE_FALSE(host.ok());
        CHECK(host.error().code == ExitCode::provider);
        CHECK_FALSE(contains(host.error().message, "/run/podman/podman.sock"));
    }

    TEST_CASE("find_docker_host names every place it tried") {
        const auto host =
            find_docker_host(env_of({{"XDG_RUNTIME_DIR", "/run/user/1000"}}), sockets_at({}, true));

        REQUIRE_FALSE(host.ok());
        CHECK(host.error().code == ExitCode::provider);
        CHECK(host.error().message ==
              "no engine socket found: DOCKER_HOST is unset and none of /var/run/docker.sock, "
              "/run/user/1000/docker.sock, /run/user/1000/podman/podman.sock, "
              "/run/podman/podman.sock exists; start Docker (for example `systemctl start "
              "docker`) or the Podman service (for example `systemctl --user start "
              "podman.socket`), or set DOCKER_HOST to the engine's address");
    }

    TEST_CASE("docker_endpoint rejects unsupported values") {
        struct Case {
            std::string host;
            std::string expected_part;
        };
        const std::vector<Case> cases = {
            {"ssh://me@engine", "uses ssh://, which jitbox does not support"},
            {"npipe:////./pipe/docker_engine", "uses npipe://, which jitbox does not support"},
            {"/var/run/docker.sock", "does not start with a scheme"},
            {"unix://relative.sock", "the socket path must be absolute"},
            {"tcp://", "the host is missing"},
            {"tcp://engine:99999", "the port must be a number from 1 to 65535"},
            {"tcp://engine:abc", "the port must be a number from 1 to 65535"},
            {"tcp://user@engine:2375", "only a host and a port may follow tcp://"},
            {"tcp://engine:2375/path", "only a host and a port may follow tcp://"},
            {"tcp://::1:2375", "an IPv6 address needs brackets"},
        };
        for (const Case& item : cases) {
            CAPTURE(item.host);
            const auto endpoint = docker_endpoint(item.host, env_of({}));
            REQUIRE_FALSE(endpoint.ok());
            CHECK(endpoint.error().code == ExitCode::usage);
            CHECK(contains(endpoint.error().message, "DOCKER_HOST \"" + item.host + "\""));
            CHECK(contains(endpoint.error().message, item.expected_part));
        }
    }

    TEST_CASE("docker_endpoint TLS files") {
        TempDir certs;
        const std::string folder = certs.path().string();

        SUBCASE("all files present") {
            certs.touch("ca.pem");
            certs.touch("cert.pem");
            certs.touch("key.pem");

            const auto endpoint =
                docker_endpoint("tcp://engine:2376",
                                env_of({{"DOCKER_TLS_VERIFY", "1"}, {"DOCKER_CERT_PATH", folder}}));

            REQUIRE(endpoint.ok());
            CHECK(endpoint->base_url == "https://engine:2376");
            CHECK(endpoint->ca_file == folder + "/ca.pem");
            CHECK(endpoint->cert_file == folder + "/cert.pem");
            CHECK(endpoint->key_file == folder + "/key.pem");
            CHECK(endpoint->verify_peer);
        }
        SUBCASE("default folder under HOME and default port") {
            std::filesystem::create_directories(certs.path() / ".docker");
            for (const char* file : {"ca.pem", "cert.pem", "key.pem"}) {
                std::ofstream(certs.path() / ".docker" / file) << "pem\n";
            }

            const auto endpoint = docker_endpoint(
                "tcp://engine", env_of({{"DOCKER_TLS_VERIFY", "1"}, {"HOME", folder}}));

            REQUIRE(endpoint.ok());
            CHECK(endpoint->base_url == "https://engine:2376");
            CHECK(endpoint->ca_file == folder + "/.docker/ca.pem");
        }
        SUBCASE("missing files are named") {
            certs.touch("ca.pem");

            const auto endpoint =
                docker_endpoint("tcp://engine:2376",
                                env_of({{"DOCKER_TLS_VERIFY", "1"}, {"DOCKER_CERT_PATH", folder}}));

            REQUIRE_FALSE(endpoint.ok());
            CHECK(endpoint.error().code == ExitCode::usage);
            CHECK(contains(endpoint.error().message,
                           folder + "/cert.pem, " + folder + "/key.pem are missing"));
            CHECK_FALSE(contains(endpoint.error().message, folder + "/ca.pem"));
        }
    }

    TEST_CASE("url_encode keeps unreserved characters only") {
        CHECK(url_encode("AZaz09-._~") == "AZaz09-._~");
        CHECK(url_encode("a b/c:d") == "a%20b%2Fc%3Ad");
        CHECK(url_encode("{\"\xC3\xA9\"}") == "%7B%22%C3%A9%22%7D");
    }

    TEST_CASE("describe names the endpoint") {
        HttpEndpoint socket;
        socket.unix_socket = "/var/run/docker.sock";
        socket.base_url = "http://localhost";
        HttpEndpoint tcp;
        tcp.base_url = "https://engine:2376";

        CHECK(socket.describe() == "unix:///var/run/docker.sock");
        CHECK(tcp.describe() == "https://engine:2376");
    }

    TEST_CASE("container exec sends the request body") {
        auto engine = std::make_shared<FakeEngine>();
        DockerContainer container(std::make_unique<FakeClient>(engine), "unix:///fake.sock", "c1");
        engine->script("POST /containers/c1/exec", reply(201, R"({"Id":"e1"})"));
        ExecRequest request;
        request.command = {"sh", "-c", "echo $A"};
        request.env = {"A=1", "SECRET=x"};
        request.workdir = "/srv";
        request.user = "1000:1000";
        request.tty = true;
        request.attach_stdin = true;

        const Result<std::string> id = container.create_exec(request);

        REQUIRE(id.ok());
        CHECK(*id == "e1");
        const HttpRequest* sent = engine->find("POST /containers/c1/exec");
        REQUIRE(sent != nullptr);
        CHECK(sent->target == "/v1.41/containers/c1/exec");
        const Json body = Json::parse(sent->body);
        CHECK(body["Cmd"] == Json::array({"sh", "-c", "echo $A"}));
        CHECK(body["Env"] == Json::array({"A=1", "SECRET=x"}));
        CHECK(body["WorkingDir"] == "/srv");
        CHECK(body["User"] == "1000:1000");
        CHECK(body["Tty"] == true);
        CHECK(body["AttachStdin"] == true);
        CHECK(body["AttachStdout"] == true);
        CHECK(body["AttachStderr"] == true);
    }

    TEST_CASE("container exec leaves defaults to the container") {
        auto engine = std::make_shared<FakeEngine>();
        DockerContainer container(std::make_unique<FakeClient>(engine), "unix:///fake.sock", "c1");
        engine->script("POST /containers/c1/exec", reply(201, R"({"Id":"e1"})"));
        ExecRequest request;
        request.command = {"true"};

        REQUIRE(container.create_exec(request).ok());

        const Json body = Json::parse(engine->find("POST /containers/c1/exec")->body);
        CHECK_FALSE(body.contains("WorkingDir"));
        CHECK_FALSE(body.contains("User"));
        CHECK(body["Tty"] == false);
        CHECK(body["AttachStdin"] == false);
    }

    TEST_CASE("container exec failures keep the engine's message") {
        auto engine = std::make_shared<FakeEngine>();
        DockerContainer container(std::make_unique<FakeClient>(engine), "unix:///fake.sock", "c1");
        ExecRequest request;
        request.command = {"true"};

        SUBCASE("a stopped container") {
            engine->script("POST /containers/c1/exec",
                           reply(409, R"({"message":"Container c1 is not running"})"));
            const Result<std::string> id = container.create_exec(request);
            REQUIRE_FALSE(id.ok());
            CHECK(id.error().code == ExitCode::provider);
            CHECK(id.error().message ==
                  "creating an exec instance in container c1 failed (HTTP 409: Container c1 is not "
                  "running); `jitbox status` shows the sandbox's state");
        }
        SUBCASE("a removed container") {
            engine->script("POST /containers/c1/exec",
                           reply(404, R"({"message":"No such container: c1"})"));
            const Result<std::string> id = container.create_exec(request);
            REQUIRE_FALSE(id.ok());
            CHECK(id.error().code == ExitCode::not_found);
        }
        SUBCASE("a reply without an id") {
            engine->script("POST /containers/c1/exec", reply(201, R"({"Id":"../x"})"));
            const Result<std::string> id = container.create_exec(request);
            REQUIRE_FALSE(id.ok());
            CHECK(contains(id.error().message, "the reply has no valid Id"));
        }
    }

    TEST_CASE("container exec start without a stream fails") {
        auto engine = std::make_shared<FakeEngine>();
        DockerContainer container(std::make_unique<FakeClient>(engine), "unix:///fake.sock", "c1");
        engine->script("POST /exec/e1/start",
                       reply(409, R"({"message":"container c1 is paused"})"));

        const auto stream = container.start_exec("e1", false);

        REQUIRE_FALSE(stream.ok());
        CHECK(stream.error().code == ExitCode::provider);
        CHECK(contains(stream.error().message, "HTTP 409: container c1 is paused"));
        const Json body = Json::parse(engine->find("POST /exec/e1/start")->body);
        CHECK(body == Json{{"Detach", false}, {"Tty", false}});
    }

    TEST_CASE("container exec state reads the inspect reply") {
        auto engine = std::make_shared<FakeEngine>();
        DockerContainer container(std::make_unique<FakeClient>(engine), "unix:///fake.sock", "c1");

        SUBCASE("exited") {
            engine->script("GET /exec/e1/json",
                           reply(200, R"({"Running":false,"ExitCode":3,"Pid":4242})"));
            const Result<ExecState> state = container.inspect_exec("e1");
            REQUIRE(state.ok());
            CHECK_FALSE(state->running);
            CHECK(state->exit_code == 3);
            CHECK(state->pid == 4242);
        }
        SUBCASE("running") {
            engine->script("GET /exec/e1/json",
                           reply(200, R"({"Running":true,"ExitCode":null,"Pid":7})"));
            const Result<ExecState> state = container.inspect_exec("e1");
            REQUIRE(state.ok());
            CHECK(state->running);
            CHECK_FALSE(state->exit_code.has_value());
        }
        SUBCASE("never started") {
            engine->script("GET /exec/e1/json",
                           reply(200, R"({"Running":false,"ExitCode":126,"Pid":0})"));
            const Result<ExecState> state = container.inspect_exec("e1");
            REQUIRE(state.ok());
            CHECK(state->exit_code == 126);
            CHECK(state->pid == 0);
        }
        SUBCASE("not an object") {
            engine->script("GET /exec/e1/json", reply(200, "[]"));
            CHECK_FALSE(container.inspect_exec("e1").ok());
        }
    }

    TEST_CASE("container resize sends rows and columns") {
        auto engine = std::make_shared<FakeEngine>();
        DockerContainer container(std::make_unique<FakeClient>(engine), "unix:///fake.sock", "c1");
        engine->script("POST /exec/e1/resize", reply(201));

        REQUIRE(container.resize_exec("e1", 40, 120).ok());

        CHECK(engine->find("POST /exec/e1/resize")->target == "/v1.41/exec/e1/resize?h=40&w=120");
    }

    TEST_CASE("container inspect reads status and tty") {
        auto engine = std::make_shared<FakeEngine>();
        DockerContainer container(std::make_unique<FakeClient>(engine), "unix:///fake.sock", "c1");
        engine->script("GET /containers/c1/json",
                       reply(200, R"({"State":{"Status":"running"},"Config":{"Tty":true}})"));

        const Result<ContainerState> state = container.inspect();

        REQUIRE(state.ok());
        CHECK(state->status == "running");
        CHECK(state->tty);
    }

    TEST_CASE("container logs query and streaming") {
        auto engine = std::make_shared<FakeEngine>();
        DockerContainer container(std::make_unique<FakeClient>(engine), "unix:///fake.sock", "c1");
        engine->script("GET /containers/c1/logs", streamed_reply({"ab", "cd"}));
        LogsRequest request;
        request.follow = true;
        request.tail = 5;
        request.since = TimePoint(std::chrono::seconds(1700000000));
        request.timestamps = true;
        std::string received;

        REQUIRE(container.stream_logs(request, [&received](std::string_view chunk) {
            received += chunk;
        }).ok());

        CHECK(received == "abcd");
        const HttpRequest* sent = engine->find("GET /containers/c1/logs");
        REQUIRE(sent != nullptr);
        CHECK(sent->target == "/v1.41/containers/c1/logs?stdout=1&stderr=1&follow=1&tail=5"
                              "&since=1700000000&timestamps=1");
        CHECK(sent->timeout.count() == 0);
        CHECK(sent->stall_timeout.count() == 0);
        CHECK(sent->stream_success_only);
    }

    TEST_CASE("container logs of a removed container") {
        auto engine = std::make_shared<FakeEngine>();
        DockerContainer container(std::make_unique<FakeClient>(engine), "unix:///fake.sock", "c1");
        engine->script("GET /containers/c1/logs",
                       reply(404, R"({"message":"No such container: c1"})"));

        const Result<void> streamed = container.stream_logs({}, [](std::string_view) {});

        REQUIRE_FALSE(streamed.ok());
        CHECK(streamed.error().code == ExitCode::not_found);
        CHECK(contains(streamed.error().message, "No such container: c1"));
    }

    TEST_CASE("container failure names Podman log") {
        auto engine = std::make_shared<FakeEngine>();
        engine->ping_headers = k_podman_ping_headers;
        DockerContainer container(std::make_unique<FakeClient>(engine), "unix:///fake.sock", "c1");
        engine->script("GET /containers/c1/json", reply(500, R"({"message":"storage busy"})"));

        const Result<ContainerState> state = container.inspect();

        REQUIRE_FALSE(state.ok());
        CHECK(state.error().message ==
              "inspecting container c1 failed (HTTP 500: storage busy); check the Podman "
              "service's log, for example with `journalctl --user -u podman`");
    }

    TEST_CASE("container ping failure at a Podman socket") {
        auto engine = std::make_shared<FakeEngine>();
        DockerContainer container(std::make_unique<FakeClient>(engine),
                                  "unix:///run/podman/podman.sock", "c1");
        engine->script("GET /_ping", transport_failure("cannot reach unix:///run/podman/"
                                                       "podman.sock: Permission denied"));

        const Result<ContainerState> state = container.inspect();

        REQUIRE_FALSE(state.ok());
        CHECK(state.error().code == ExitCode::provider);
        CHECK(state.error().message ==
              "cannot reach the Podman service at unix:///run/podman/podman.sock: Permission "
              "denied; use your own rootless Podman socket, $XDG_RUNTIME_DIR/podman/podman.sock, "
              "or set DOCKER_HOST");
    }

    TEST_CASE("container exec stopped on either engine") {
        struct Case {
            std::string label;
            std::map<std::string, std::string> ping_headers;
            Reply refused;
            std::string expected_hint;
        };
        const std::vector<Case> cases = {
            {"docker", {}, reply(409, R"({"message":"Container c1 is not running"})"),
             "`jitbox status` shows the sandbox's state"},
            {"podman", k_podman_ping_headers,
             reply(500, R"({"cause":"container state improper","message":"can only create exec )"
                        R"(sessions on running containers: container state improper",)"
                        R"("response":500})"),
             "the container is not running or is paused; `jitbox status` shows the sandbox's "
             "state"},
        };
        for (const Case& item : cases) {
            CAPTURE(item.label);
            auto engine = std::make_shared<FakeEngine>();
            engine->ping_headers = item.ping_headers;
            DockerContainer container(std::make_unique<FakeClient>(engine), "unix:///fake.sock",
                                      "c1");
            engine->script("POST /containers/c1/exec", item.refused);
            ExecRequest request;
            request.command = {"true"};

            const Result<std::string> id = container.create_exec(request);

            REQUIRE_FALSE(id.ok());
            CHECK(id.error().code == ExitCode::provider);
            CHECK(id.error().message.ends_with("; " + item.expected_hint));
        }
    }

    TEST_CASE("container exec unknown user on Podman") {
        struct Case {
            std::string label;
            std::string body;
            std::string expected_message;
        };
        const std::vector<Case> cases = {
            {"user",
             R"({"cause":"no matching entries in passwd file","message":"unable to find user )"
             R"(nobody-here: no matching entries in passwd file","response":500})",
             "unable to find user nobody-here: no matching entries in passwd file"},
            {"group",
             R"({"cause":"no matching entries in group file","message":"unable to find group )"
             R"(staff-x: no matching entries in group file","response":500})",
             "unable to find group staff-x: no matching entries in group file"},
        };
        for (const Case& item : cases) {
            CAPTURE(item.label);
            auto engine = std::make_shared<FakeEngine>();
            engine->ping_headers = k_podman_ping_headers;
            DockerContainer container(std::make_unique<FakeClient>(engine), "unix:///fake.sock",
                                      "c1");
            engine->script("POST /exec/e1/start", reply(500, item.body));

            const auto stream = container.start_exec("e1", false);

            REQUIRE_FALSE(stream.ok());
            CHECK(stream.error().code == ExitCode::cannot_execute);
            CHECK(stream.error().message == item.expected_message);
        }
    }

    TEST_CASE("container exec start other Podman 500") {
        auto engine = std::make_shared<FakeEngine>();
        engine->ping_headers = k_podman_ping_headers;
        DockerContainer container(std::make_unique<FakeClient>(engine), "unix:///fake.sock", "c1");
        engine->script("POST /exec/e1/start",
                       reply(500, R"({"message":"conmon failed: exit status 1"})"));

        const auto stream = container.start_exec("e1", false);

        REQUIRE_FALSE(stream.ok());
        CHECK(stream.error().code == ExitCode::provider);
        CHECK(contains(stream.error().message, "HTTP 500: conmon failed: exit status 1"));
    }

    TEST_CASE("container logs follow cancelled early") {
        auto engine = std::make_shared<FakeEngine>();
        DockerContainer container(std::make_unique<FakeClient>(engine), "unix:///fake.sock", "c1");
        // What HttpClient::send returns when `cancelled` ends the transfer before the headers.
        engine->script("GET /containers/c1/logs", reply(0));
        LogsRequest request;
        std::string received;
        const auto on_chunk = [&received](std::string_view chunk) { received += chunk; };

        SUBCASE("with --follow the log just ends") {
            request.follow = true;
            CHECK(container.stream_logs(request, on_chunk).ok());
            CHECK(received.empty());
        }
        SUBCASE("without --follow it is a failure") {
            CHECK_FALSE(container.stream_logs(request, on_chunk).ok());
        }
    }

} // TEST_SUITE
