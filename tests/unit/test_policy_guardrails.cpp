#include "jitbox/policy/guardrails.hpp"

#include "jitbox/audit/stats.hpp"

#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace jitbox {
namespace {

Template make_template() {
    Template spec;
    spec.name = "db";
    spec.image = "postgres:16";
    spec.origin = "jitbox.toml:1:1";
    return spec;
}

Guardrails make_guardrails() {
    Guardrails guardrails;
    guardrails.origin = "/etc/jitbox/jitbox.toml:1:1";
    return guardrails;
}

void set(Guardrails& guardrails, const std::string& key, int line) {
    guardrails.origins[key] = fmt::format("/etc/jitbox/jitbox.toml:{}:1", line);
}

GuardrailVerdict check(const Guardrails& guardrails, const Template& spec,
                       GuardrailDefaults defaults = GuardrailDefaults::permissive,
                       std::optional<Seconds> ttl = std::nullopt, int live = 0,
                       std::vector<UserHome> homes = {}) {
    GuardrailRequest request;
    request.spec = &spec;
    request.ttl = ttl;
    request.live_sandboxes = live;
    request.other_homes = std::move(homes);
    return check_guardrails(guardrails, defaults, request);
}

bool contains(const std::string& text, std::string_view fragment) {
    return text.find(fragment) != std::string::npos;
}

} // namespace

TEST_SUITE("policy guardrails") {
    TEST_CASE("normalize_image_reference forms") {
        CHECK(normalize_image_reference("busybox") == "docker.io/library/busybox:latest");
        CHECK(normalize_image_reference("busybox:1.36") == "docker.io/library/busybox:1.36");
        CHECK(normalize_image_reference("team/app") == "docker.io/team/app:latest");
        CHECK(normalize_image_reference("index.docker.io/busybox:1") ==
              "docker.io/library/busybox:1");
        CHECK(normalize_image_reference("localhost/app") == "localhost/app:latest");
        CHECK(normalize_image_reference("registry.example.com:5000/team/app:1.4") ==
              "registry.example.com:5000/team/app:1.4");
        CHECK(normalize_image_reference("busybox@sha256:abcd") ==
              "docker.io/library/busybox@sha256:abcd");
    }

    TEST_CASE("image_pattern_matches") {
        CHECK(image_pattern_matches("docker.io/library/*", "busybox:1.36"));
        CHECK(image_pattern_matches("busybox:*", "busybox:1.36"));
        CHECK(image_pattern_matches("busybox:*", "docker.io/library/busybox:1.36"));
        CHECK(image_pattern_matches("busybox", "busybox:1.36"));
        CHECK(image_pattern_matches("registry.example.com/*", "registry.example.com/a/b:1"));
        CHECK_FALSE(image_pattern_matches("busybox:1.35", "busybox:1.36"));
        CHECK_FALSE(image_pattern_matches("docker.io/library/*", "team/app:1"));
        CHECK_FALSE(image_pattern_matches("busybox:*", "evil.example.com/busybox:1"));
        CHECK_FALSE(image_pattern_matches("registry.example.com/*", "registry.example.org/a:1"));
    }

    TEST_CASE("no guardrails table allows everything") {
        Template spec = make_template();
        spec.privileged = true;
        spec.network = NetworkMode::host;
        const GuardrailVerdict verdict = check(Guardrails{}, spec);
        CHECK(verdict.allowed);
        CHECK(verdict.rule.empty());
        CHECK_FALSE(verdict.effective.memory_bytes);
    }

    TEST_CASE("denials name the guardrail and its origin") {
        struct Case {
            std::string name;
            std::function<void(Guardrails&, Template&)> setup;
            std::string rule;
            std::string fragment;
        };
        const std::vector<Case> cases{
            {"image",
             [](Guardrails& g, Template&) {
                 g.images = std::vector<std::string>{"busybox:*"};
                 set(g, "images", 2);
             },
             "deny rule guardrails.images (/etc/jitbox/jitbox.toml:2:1)",
             "uses image \"docker.io/library/postgres:16\" (allowed: busybox:*)"},
            {"privileged",
             [](Guardrails& g, Template& t) {
                 g.privileged = false;
                 set(g, "privileged", 3);
                 t.privileged = true;
             },
             "deny rule guardrails.privileged (/etc/jitbox/jitbox.toml:3:1)",
             "asks for a privileged container"},
            {"host network",
             [](Guardrails& g, Template& t) {
                 g.host_namespaces = false;
                 set(g, "host_namespaces", 4);
                 t.network = NetworkMode::host;
             },
             "deny rule guardrails.host_namespaces (/etc/jitbox/jitbox.toml:4:1)",
             "network = \"host\""},
            {"host pid",
             [](Guardrails& g, Template& t) {
                 g.host_namespaces = false;
                 set(g, "host_namespaces", 4);
                 t.pid = "host";
             },
             "deny rule guardrails.host_namespaces", "pid = \"host\""},
            {"device",
             [](Guardrails& g, Template& t) {
                 g.devices = false;
                 set(g, "devices", 5);
                 t.devices = {DeviceMapping{"/dev/fuse", "/dev/fuse", "rwm", "x.toml:9:3"}};
             },
             "deny rule guardrails.devices", "passes host device /dev/fuse (x.toml:9:3)"},
            {"capability",
             [](Guardrails& g, Template& t) {
                 g.capabilities = std::vector<std::string>{"NET_BIND_SERVICE"};
                 set(g, "capabilities", 6);
                 t.cap_add = {"SYS_ADMIN"};
             },
             "deny rule guardrails.capabilities", "adds capability SYS_ADMIN"},
            {"kept default capabilities",
             [](Guardrails& g, Template& t) {
                 g.capabilities = std::vector<std::string>{};
                 set(g, "capabilities", 6);
                 t.cap_drop = {"NET_RAW"};
             },
             "deny rule guardrails.capabilities", "keeps the engine's default capabilities"},
            {"memory above ceiling",
             [](Guardrails& g, Template& t) {
                 g.max_memory = 256LL << 20;
                 set(g, "max_memory", 7);
                 t.memory_bytes = 1LL << 30;
             },
             "deny rule guardrails.max_memory", "sets memory = 1GiB (ceiling: 256MiB)"},
            {"cpus above ceiling",
             [](Guardrails& g, Template& t) {
                 g.max_cpus = 1.0;
                 set(g, "max_cpus", 8);
                 t.cpus = 2.0;
             },
             "deny rule guardrails.max_cpus", "sets cpus = 2 (ceiling: 1)"},
            {"pids above ceiling",
             [](Guardrails& g, Template& t) {
                 g.max_pids = 64;
                 set(g, "max_pids", 9);
                 t.pids_limit = 65;
             },
             "deny rule guardrails.max_pids", "sets pids_limit = 65 (ceiling: 64)"},
        };
        for (const Case& c : cases) {
            CAPTURE(c.name);
            Guardrails guardrails = make_guardrails();
            Template spec = make_template();
            c.setup(guardrails, spec);
            const GuardrailVerdict verdict = check(guardrails, spec);
            CHECK_FALSE(verdict.allowed);
            CHECK(verdict.rule.rfind(c.rule, 0) == 0);
            CHECK(verdict.rule.rfind(k_deny_rule_prefix, 0) == 0);
            CAPTURE(verdict.message);
            CHECK(contains(verdict.message, c.fragment));
            CHECK(contains(verdict.message, "template \"db\""));
        }
    }

    TEST_CASE("ttl above max_ttl is denied") {
        Guardrails guardrails = make_guardrails();
        guardrails.max_ttl = Seconds(2h);
        set(guardrails, "max_ttl", 10);
        const GuardrailVerdict verdict =
            check(guardrails, make_template(), GuardrailDefaults::permissive, Seconds(3h));
        CHECK_FALSE(verdict.allowed);
        CHECK(verdict.rule == "deny rule guardrails.max_ttl (/etc/jitbox/jitbox.toml:10:1)");
        CHECK(contains(verdict.message, "was requested for 3h (ceiling: 2h)"));
    }

    TEST_CASE("max_ttl lowers the template's ttl and max_ttl") {
        Guardrails guardrails = make_guardrails();
        guardrails.max_ttl = Seconds(20min);
        set(guardrails, "max_ttl", 10);
        const GuardrailVerdict verdict = check(guardrails, make_template());
        CHECK(verdict.allowed);
        CHECK(verdict.effective.ttl == Seconds(20min));
        CHECK(verdict.effective.max_ttl == Seconds(20min));
    }

    TEST_CASE("live sandboxes per user") {
        Guardrails guardrails = make_guardrails();
        guardrails.max_live_per_user = 2;
        set(guardrails, "max_live_per_user", 11);
        CHECK(check(guardrails, make_template(), GuardrailDefaults::permissive, {}, 1).allowed);
        const GuardrailVerdict verdict =
            check(guardrails, make_template(), GuardrailDefaults::permissive, {}, 2);
        CHECK_FALSE(verdict.allowed);
        CHECK(contains(verdict.message, "would be live sandbox 3 of this user (ceiling: 2)"));
    }

    TEST_CASE("ceilings fill missing limits") {
        Guardrails guardrails = make_guardrails();
        guardrails.max_memory = 512LL << 20;
        guardrails.max_cpus = 1.5;
        guardrails.max_pids = 128;
        set(guardrails, "max_memory", 7);
        set(guardrails, "max_cpus", 8);
        set(guardrails, "max_pids", 9);
        Template spec = make_template();
        spec.pids_limit = 64;
        const GuardrailVerdict verdict = check(guardrails, spec);
        REQUIRE(verdict.allowed);
        CHECK(verdict.effective.memory_bytes == 512LL << 20);
        CHECK(verdict.effective.cpus == 1.5);
        CHECK(verdict.effective.pids_limit == 64);
    }

    TEST_CASE("mount sources outside the allowed folders") {
        test::TempDir dir;
        fs::create_directories(dir.path() / "allowed" / "data");
        fs::create_directories(dir.path() / "other");
        fs::create_directory_symlink(dir.path() / "other", dir.path() / "allowed" / "link");
        Guardrails guardrails = make_guardrails();
        guardrails.mount_sources = std::vector<std::string>{(dir.path() / "allowed").string()};
        set(guardrails, "mount_sources", 3);

        Template inside = make_template();
        inside.mounts = {Mount{dir.path() / "allowed" / "data", "/data"}};
        CHECK(check(guardrails, inside).allowed);

        Template outside = make_template();
        outside.mounts = {Mount{dir.path() / "other", "/data"}};
        const GuardrailVerdict denied = check(guardrails, outside);
        CHECK_FALSE(denied.allowed);
        CHECK(denied.rule.rfind("deny rule guardrails.mount_sources (/etc/jitbox", 0) == 0);

        Template linked = make_template();
        linked.mounts = {Mount{dir.path() / "allowed" / "link", "/data"}};
        CHECK_FALSE(check(guardrails, linked).allowed);
    }

    TEST_CASE("always-forbidden mount sources") {
        Guardrails guardrails = make_guardrails();
        guardrails.mount_sources = std::vector<std::string>{"/"};
        set(guardrails, "mount_sources", 3);
        const std::vector<UserHome> homes{{"bob", "/srv/homes/bob"}};
        for (const fs::path& source :
             {fs::path("/"), fs::path("/etc"), fs::path("/etc/ssl"), fs::path("/proc"),
              fs::path("/sys/fs"), fs::path("/var/run/docker.sock"), fs::path("/srv/homes"),
              fs::path("/srv/homes/bob/.ssh")}) {
            CAPTURE(source);
            Template spec = make_template();
            Mount mount{source, "/data"};
            mount.allow_sensitive = true;
            mount.origin = "jitbox.toml:4:12";
            spec.mounts = {mount};
            const GuardrailVerdict verdict =
                check(guardrails, spec, GuardrailDefaults::permissive, {}, 0, homes);
            CHECK_FALSE(verdict.allowed);
            CHECK(verdict.rule == "deny rule guardrails.mount_sources (built in)");
            CHECK(contains(verdict.message, "jitbox.toml:4:12"));
        }
    }

    TEST_CASE("strict defaults deny unset guardrails") {
        Template spec = make_template();
        spec.memory_bytes = 256LL << 20;
        spec.cpus = 1;
        spec.pids_limit = 64;
        const GuardrailVerdict no_images = check(Guardrails{}, spec, GuardrailDefaults::strict);
        CHECK_FALSE(no_images.allowed);
        CHECK(no_images.rule == "deny rule guardrails.images (the enforced-mode default)");

        Guardrails guardrails = make_guardrails();
        guardrails.images = std::vector<std::string>{"postgres:*"};
        set(guardrails, "images", 2);
        CHECK(check(guardrails, spec, GuardrailDefaults::strict).allowed);

        Template privileged = spec;
        privileged.privileged = true;
        CHECK(check(guardrails, privileged, GuardrailDefaults::strict).rule ==
              "deny rule guardrails.privileged (the enforced-mode default)");

        Template unlimited = spec;
        unlimited.memory_bytes.reset();
        const GuardrailVerdict verdict = check(guardrails, unlimited, GuardrailDefaults::strict);
        CHECK_FALSE(verdict.allowed);
        CHECK(contains(verdict.message, "sets no memory"));
    }

    TEST_CASE("other_users_homes leaves out the caller") {
        const std::vector<UserHome> homes = other_users_homes(::getuid(), "");
        for (const UserHome& entry : homes) {
            CHECK(entry.home.is_absolute());
            CHECK(entry.home != entry.home.root_path());
        }
    }
}

} // namespace jitbox
