#include "jitbox/policy/layers.hpp"

#include "jitbox/policy/signing.hpp"

#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace jitbox {
namespace {

// The system file of most tests. The max_ttl value is at line 15, column 11.
constexpr std::string_view k_system_text = R"(default_template = "db"

[templates.db]
image = "postgres:16"
network = "isolated"
ports = ["5432"]
read_only = true
cap_add = ["NET_BIND_SERVICE"]
mounts = [{ source = "/srv/fixtures", target = "/fixtures" }]
user = "999:999"
memory = "512MiB"
cpus = 1
pids_limit = 100
ttl = "30m"
max_ttl = "2h"

[templates.cache]
image = "redis:7"
)";

// SHA-256 of "system 357\n" followed by k_system_text, computed with Python's hashlib.
constexpr std::string_view k_system_only_digest =
    "f73324a46744571800292541e81e4e15e61a2f9526f37b534c4c8c12e0bdc0ce";

constexpr std::string_view k_require_signed = "\n[policy]\nrequire_signed = true\n";

using Keys = std::vector<std::pair<std::string, std::string>>;

// The keys of templates.db as the system file sets them, in the same order.
const Keys k_db_keys{
    {"image", "\"postgres:16\""},
    {"network", "\"isolated\""},
    {"ports", "[\"5432\"]"},
    {"read_only", "true"},
    {"cap_add", "[\"NET_BIND_SERVICE\"]"},
    {"mounts", "[{ source = \"/srv/fixtures\", target = \"/fixtures\" }]"},
    {"user", "\"999:999\""},
    {"memory", "\"512MiB\""},
    {"cpus", "1"},
    {"pids_limit", "100"},
    {"ttl", "\"30m\""},
    {"max_ttl", "\"2h\""},
};

// A project's `[templates.db]` table with the system's keys, where `changed` replaces values
// and appends new keys and the `removed` keys are left out. The table header is line 1.
std::string project_db(const Keys& changed, const std::set<std::string>& removed = {}) {
    std::string text = "[templates.db]\n";
    Keys keys = k_db_keys;
    for (const auto& [key, value] : changed) {
        auto found = std::find_if(keys.begin(), keys.end(),
                                  [&](const auto& entry) { return entry.first == key; });
        if (found == keys.end()) {
            keys.emplace_back(key, value);
        } else {
            found->second = value;
        }
    }
    for (const auto& [key, value] : keys) {
        if (removed.count(key) == 0) {
            text += key + " = " + value + "\n";
        }
    }
    return text;
}

using test::TempDir;
using test::write_file;

bool contains(const std::string& text, std::string_view fragment) {
    return text.find(fragment) != std::string::npos;
}

// A system folder (`etc/`) and a project folder in one temp folder. Files are owned by the
// user running the tests, so the request requires that owner instead of root.
struct Layout {
    TempDir dir;
    fs::path system = dir.path() / "etc" / "jitbox.toml";
    fs::path keys = dir.path() / "etc" / "trusted-keys";
    fs::path project_dir = dir.path() / "project";
    fs::path project = project_dir / "jitbox.toml";

    Layout() {
        fs::create_directories(project_dir);
        fs::create_directories(system.parent_path());
    }

    LayeredConfigRequest request() const {
        LayeredConfigRequest request;
        request.project.working_dir = project_dir;
        request.system_path = system;
        request.trusted_keys_dir = keys;
        request.required_owner = ::geteuid();
        return request;
    }

    LoadedConfig load() const {
        auto loaded = load_layered_config(request());
        INFO((loaded.ok() ? "" : loaded.error().message));
        REQUIRE(loaded.ok());
        return std::move(loaded).value();
    }

    Failure load_failure(ExitCode code = ExitCode::usage) const {
        const auto loaded = load_layered_config(request());
        REQUIRE_FALSE(loaded.ok());
        CHECK(loaded.error().code == code);
        return loaded.error();
    }

    // Makes a key pair, trusts its public key, and returns the private key's path.
    fs::path trust_new_key(const std::string& name) const {
        fs::create_directories(keys);
        const fs::path private_key = dir.path() / (name + ".key");
        REQUIRE(keygen(private_key, keys / (name + ".pub")).ok());
        return private_key;
    }
};

} // namespace

TEST_SUITE("policy layers") {
    TEST_CASE("system file is optional") {
        Layout layout;
        write_file(layout.project, project_db({}));
        const LoadedConfig loaded = layout.load();
        REQUIRE(loaded.layers.size() == 1);
        CHECK(loaded.layers[0].source == layout.project.string());
        CHECK(loaded.merged.templates.count("db") == 1);
        CHECK(loaded.merged.path == layout.project);
        CHECK(loaded.warnings.empty());
    }

    TEST_CASE("neither file uses the embedded default") {
        Layout layout;
        const LoadedConfig loaded = layout.load();
        REQUIRE(loaded.layers.size() == 1);
        CHECK(loaded.layers[0].source == "<default>");
        CHECK(loaded.merged.templates.count("scratch") == 1);
        CHECK(loaded.merged.default_template == "scratch");
        CHECK(loaded.merged.path.empty());
        CHECK(loaded.digest.hex().size() == 64);
    }

    TEST_CASE("system file owner and mode") {
        Layout layout;
        write_file(layout.system, k_system_text);
        LayeredConfigRequest request = layout.request();

        SUBCASE("owned by another user") {
            request.required_owner = ::geteuid() + 1;
            const auto loaded = load_layered_config(request);
            REQUIRE_FALSE(loaded.ok());
            CHECK(loaded.error().code == ExitCode::usage);
            const std::string& message = loaded.error().message;
            CHECK(contains(message, "the system policy " + layout.system.string()));
            CHECK(contains(message, "owned by uid " + std::to_string(::geteuid())));
            CHECK(contains(message, "must be owned by uid " + std::to_string(::geteuid() + 1)));
            CHECK(contains(message, "&& chmod go-w " + layout.system.string()));
        }
        SUBCASE("writable by group") {
            ::chmod(layout.system.c_str(), 0664);
            const auto loaded = load_layered_config(request);
            REQUIRE_FALSE(loaded.ok());
            CHECK(loaded.error().code == ExitCode::usage);
            CHECK(contains(loaded.error().message, "with mode 0664"));
            CHECK(contains(loaded.error().message, "not writable by group or others"));
        }
        SUBCASE("writable by others") {
            ::chmod(layout.system.c_str(), 0646);
            const auto loaded = load_layered_config(request);
            REQUIRE_FALSE(loaded.ok());
            CHECK(contains(loaded.error().message, "with mode 0646"));
        }
        SUBCASE("the default owner is root") {
            CHECK(LayeredConfigRequest().required_owner == 0);
            CHECK(LayeredConfigRequest().system_path == "/etc/jitbox/jitbox.toml");
            CHECK(LayeredConfigRequest().trusted_keys_dir == "/etc/jitbox/trusted-keys");
        }
        SUBCASE("read-only for group and others") {
            ::chmod(layout.system.c_str(), 0644);
            CHECK(load_layered_config(request).ok());
        }
    }

    TEST_CASE("system file must be a regular file") {
        Layout layout;
        fs::create_directories(layout.system);
        const Failure failure = layout.load_failure();
        CHECK(contains(failure.message, layout.system.string() + " is a folder"));
    }

    TEST_CASE("invalid system file") {
        Layout layout;
        write_file(layout.system, "[templates.db]\nimage = 5\n");
        const Failure failure = layout.load_failure();
        CHECK(contains(failure.message, layout.system.string() + ":2:9: templates.db.image"));
    }

    TEST_CASE("project template widening is rejected") {
        struct Case {
            const char* name;
            Keys changed;
            std::set<std::string> removed;
            std::string expected;
        };
        const std::vector<Case> cases{
            {"longer max_ttl", {{"max_ttl", "\"8h\""}}, {},
             "templates.db.max_ttl: 8h is longer than the 2h the system policy allows"},
            {"default max_ttl", {}, {"max_ttl"},
             "templates.db.max_ttl: 4h (the default) is longer than the 2h"},
            {"longer ttl", {{"ttl", "\"1h\""}}, {},
             "templates.db.ttl: 1h is longer than the 30m the system policy allows"},
            {"other image", {{"image", "\"postgres:17\""}}, {},
             "templates.db.image: \"postgres:17\" is not the image \"postgres:16\" that the "
             "system policy requires"},
            {"less isolated network", {{"network", "\"bridge\""}}, {},
             "templates.db.network: \"bridge\" is less isolated than the \"isolated\" the "
             "system policy allows"},
            {"extra capability", {{"cap_add", "[\"NET_BIND_SERVICE\", \"NET_ADMIN\"]"}}, {},
             "templates.db.cap_add[1]: NET_ADMIN is not among the capabilities the system "
             "policy adds (NET_BIND_SERVICE)"},
            {"extra mount",
             {{"mounts", "[{ source = \"/srv/fixtures\", target = \"/fixtures\" }, "
                         "{ source = \"/home\", target = \"/home\" }]"}},
             {},
             "templates.db.mounts[1]: the mount of /home at /home is not among the system "
             "policy's mounts"},
            {"writable mount",
             {{"mounts", "[{ source = \"/srv/fixtures\", target = \"/fixtures\", writable = "
                         "true }]"}},
             {},
             "templates.db.mounts[0]: the mount at /fixtures is writable, but the system "
             "policy mounts it read-only"},
            {"read_only off", {{"read_only", "false"}}, {},
             "templates.db.read_only: false turns off the read-only root filesystem"},
            {"read_only left out", {}, {"read_only"},
             "templates.db.read_only: false (the default) turns off"},
            {"more memory", {{"memory", "\"1GiB\""}}, {},
             "templates.db.memory: 1GiB is more than the 512MiB the system policy allows"},
            {"memory removed", {}, {"memory"},
             "templates.db.memory: no limit is set, but the system policy sets memory to 512MiB"},
            {"more cpus", {{"cpus", "1.5"}}, {},
             "templates.db.cpus: 1.5 is more than the 1 the system policy allows"},
            {"cpus removed", {}, {"cpus"},
             "templates.db.cpus: no limit is set, but the system policy sets cpus to 1"},
            {"more pids", {{"pids_limit", "200"}}, {},
             "templates.db.pids_limit: 200 is more than the 100 the system policy allows"},
            {"pids removed", {}, {"pids_limit"},
             "templates.db.pids_limit: no limit is set, but the system policy sets pids_limit "
             "to 100"},
            {"other user", {{"user", "\"0:0\""}}, {},
             "templates.db.user: \"0:0\" is not the user \"999:999\" that the system policy "
             "requires"},
            {"user removed", {}, {"user"},
             "templates.db.user: the image's default user is not the user \"999:999\""},
            {"extra port", {{"ports", "[\"5432\", \"6432\"]"}}, {},
             "templates.db.ports[1]: port 127.0.0.1::6432/tcp is not among the ports the "
             "system policy publishes"},
            {"port on every address", {{"ports", "[\"0.0.0.0::5432\"]"}}, {},
             "templates.db.ports[0]: port 0.0.0.0::5432/tcp is not among"},
            {"privileged",
             {{"privileged", "true"}},
             {},
             "templates.db.privileged: true asks for a privileged container"},
            {"host pid",
             {{"pid", "\"host\""}},
             {},
             "templates.db.pid: \"host\" shares the host's PID namespace"},
            {"host ipc",
             {{"ipc", "\"host\""}},
             {},
             "templates.db.ipc: \"host\" shares the host's IPC namespace"},
            {"host network",
             {{"network", "\"host\""}, {"ports", "[]"}},
             {},
             "templates.db.network: \"host\" is less isolated than the \"isolated\""},
            {"device",
             {{"devices", "[\"/dev/fuse\"]"}},
             {},
             "templates.db.devices[0]: device /dev/fuse:/dev/fuse:rwm is not among"},
            {"capabilities kept",
             {{"cap_drop", "[\"NET_RAW\"]"}},
             {},
             "templates.db.cap_drop: ALL is not dropped, but the system policy drops it"},
        };
        for (const Case& test : cases) {
            CAPTURE(test.name);
            Layout layout;
            write_file(layout.system, k_system_text);
            write_file(layout.project, project_db(test.changed, test.removed));
            const Failure failure = layout.load_failure();
            CHECK(contains(failure.message, test.expected));
            CHECK(contains(failure.message, "(" + layout.system.string() + ":"));
        }
    }

    TEST_CASE("project AWS template keeps the system's account and network") {
        constexpr std::string_view system_text = R"([templates.ro]
provider = "aws-sts"
role_arn = "arn:aws:iam::123456789012:role/ReadOnly"
region = "eu-central-1"
ttl = "1h"

[templates.vm]
provider = "aws-ec2"
image_id = "ami-0123456789abcdef0"
instance_type = "t3.micro"
subnet_id = "subnet-0123"
security_group_ids = ["sg-0123", "sg-0456"]
root_volume_gib = 16
)";
        struct Case {
            const char* name;
            std::string project;
            std::string expected; // empty: the project file loads
        };
        const std::string ro = "[templates.ro]\nprovider = \"aws-sts\"\nttl = \"30m\"\n";
        const std::string vm = "[templates.vm]\nprovider = \"aws-ec2\"\n"
                               "image_id = \"ami-0123456789abcdef0\"\n"
                               "instance_type = \"t3.micro\"\nsubnet_id = \"subnet-0123\"\n";
        const std::vector<Case> cases{
            {"same role, shorter ttl",
             ro + "role_arn = \"arn:aws:iam::123456789012:role/ReadOnly\"\n"
                  "region = \"eu-central-1\"\n",
             ""},
            {"other role",
             ro + "role_arn = \"arn:aws:iam::123456789012:role/Admin\"\n"
                  "region = \"eu-central-1\"\n",
             "templates.ro.role_arn: \"arn:aws:iam::123456789012:role/Admin\" is not the role"},
            {"own endpoint",
             ro + "role_arn = \"arn:aws:iam::123456789012:role/ReadOnly\"\n"
                  "region = \"eu-central-1\"\nendpoint_url = \"http://127.0.0.1:9\"\n",
             "templates.ro.endpoint_url: \"http://127.0.0.1:9\" is not the endpoint \"\""},
            {"fewer groups, smaller disk",
             vm + "security_group_ids = [\"sg-0456\"]\nroot_volume_gib = 8\n", ""},
            {"extra group", vm + "security_group_ids = [\"sg-0123\", \"sg-0789\"]\n"
                                 "root_volume_gib = 16\n",
             "templates.vm.security_group_ids[1]: sg-0789 is not among the security groups"},
            {"bigger disk", vm + "root_volume_gib = 64\n",
             "templates.vm.root_volume_gib: 64 GiB is more than the 16 GiB"},
            {"other instance type",
             "[templates.vm]\nprovider = \"aws-ec2\"\nimage_id = \"ami-0123456789abcdef0\"\n"
             "instance_type = \"m5.24xlarge\"\nsubnet_id = \"subnet-0123\"\n"
             "root_volume_gib = 16\n",
             "templates.vm.instance_type: \"m5.24xlarge\" is not the instance type"},
        };
        for (const Case& test : cases) {
            CAPTURE(test.name);
            Layout layout;
            write_file(layout.system, system_text);
            write_file(layout.project, test.project);
            if (test.expected.empty()) {
                CHECK(layout.load().merged.templates.size() == 2);
            } else {
                CHECK(contains(layout.load_failure().message, test.expected));
            }
        }
    }

    TEST_CASE("widening message names both positions") {
        Layout layout;
        write_file(layout.system, k_system_text);
        write_file(layout.project, project_db({{"max_ttl", "\"8h\""}}));
        const Failure failure = layout.load_failure();
        // max_ttl is the 12th key of the project table, so its value is at line 13.
        CHECK(failure.message == layout.project.string() +
                                     ":13:11: templates.db.max_ttl: 8h is longer than the 2h "
                                     "the system policy allows (" +
                                     layout.system.string() + ":15:11)");
    }

    TEST_CASE("every widening is listed in file order") {
        Layout layout;
        write_file(layout.system, k_system_text);
        write_file(layout.project, project_db({{"ttl", "\"1h\""}, {"memory", "\"1GiB\""}}) +
                                       "\n[templates.web]\nimage = \"nginx:1\"\n");
        const std::string message = layout.load_failure().message;
        const std::string project = layout.project.string();
        const auto memory = message.find(project + ":9:10: templates.db.memory: 1GiB");
        const auto ttl = message.find("; " + project + ":12:7: templates.db.ttl: 1h");
        const auto web = message.find("; " + project + ":15:1: templates.web: template \"web\"");
        CHECK(memory == 0);
        REQUIRE(ttl != std::string::npos);
        REQUIRE(web != std::string::npos);
        CHECK(ttl < web);
    }

    TEST_CASE("project template narrowing is accepted") {
        struct Case {
            const char* name;
            Keys changed;
            std::set<std::string> removed;
        };
        const std::vector<Case> cases{
            {"identical", {}, {}},
            {"shorter ttls", {{"ttl", "\"10m\""}, {"max_ttl", "\"1h\""}}, {}},
            {"no network", {{"network", "\"none\""}}, {"ports"}},
            {"no capabilities", {{"cap_add", "[]"}}, {}},
            {"no mounts", {{"mounts", "[]"}}, {}},
            {"lower limits", {{"memory", "\"256MiB\""}, {"cpus", "0.5"}, {"pids_limit", "50"}}, {}},
            {"a chosen host port", {{"ports", "[\"15432:5432\"]"}}, {}},
            {"other command and env",
             {{"command", "[\"postgres\"]"}, {"env", "{ A = \"1\" }"}},
             {}},
        };
        for (const Case& test : cases) {
            CAPTURE(test.name);
            Layout layout;
            write_file(layout.system, k_system_text);
            write_file(layout.project, project_db(test.changed, test.removed));
            const LoadedConfig loaded = layout.load();
            REQUIRE(loaded.merged.templates.count("db") == 1);
            CHECK(loaded.merged.templates.at("db").origin.rfind(layout.project.string(), 0) == 0);
        }
    }

    TEST_CASE("narrowed template replaces the system's") {
        Layout layout;
        write_file(layout.system, k_system_text);
        write_file(layout.project, project_db({{"ttl", "\"10m\""}}));
        const LoadedConfig loaded = layout.load();
        CHECK(loaded.merged.templates.at("db").ttl == 10min);
        REQUIRE(loaded.merged.templates.count("cache") == 1);
        CHECK(loaded.merged.templates.at("cache").origin.rfind(layout.system.string(), 0) == 0);
    }

    TEST_CASE("unknown project template") {
        Layout layout;
        write_file(layout.system, k_system_text);
        write_file(layout.project, "[templates.web]\nimage = \"nginx:1\"\n");
        const Failure failure = layout.load_failure();
        CHECK(failure.message == layout.project.string() +
                                     ":1:1: templates.web: template \"web\" is not defined by "
                                     "the system policy " +
                                     layout.system.string() +
                                     " (defined there: cache, db), use one of those names or "
                                     "ask an administrator to add it");
    }

    TEST_CASE("project adds templates when allowed") {
        Layout layout;
        write_file(layout.system, k_system_text);
        write_file(layout.project, "[templates.web]\nimage = \"nginx:1\"\n");
        LayeredConfigRequest request = layout.request();
        request.project_adds_templates = true;
        const auto loaded = load_layered_config(request);
        INFO((loaded.ok() ? "" : loaded.error().message));
        REQUIRE(loaded.ok());
        CHECK(loaded->merged.templates.count("web") == 1);
        CHECK(loaded->merged.templates.count("db") == 1);
        CHECK(loaded->merged.templates.count("cache") == 1);
    }

    TEST_CASE("added templates do not skip narrowing") {
        Layout layout;
        write_file(layout.system, k_system_text);
        write_file(layout.project, "[templates.web]\nimage = \"nginx:1\"\n\n" +
                                       project_db({{"image", "\"mysql:8\""}}));
        LayeredConfigRequest request = layout.request();
        request.project_adds_templates = true;
        const auto loaded = load_layered_config(request);
        REQUIRE_FALSE(loaded.ok());
        CHECK(loaded.error().code == ExitCode::usage);
        CHECK(loaded.error().message.find("templates.db.image") != std::string::npos);
    }

    TEST_CASE("guardrails come from the system file") {
        Layout layout;
        write_file(layout.system,
                   std::string(k_system_text) + "\n[guardrails]\nprivileged = false\n");
        const LoadedConfig loaded = layout.load();
        CHECK(loaded.merged.guardrails.present());
        CHECK(loaded.merged.guardrails.privileged == false);
    }

    TEST_CASE("guardrails in a project file are rejected") {
        Layout layout;
        write_file(layout.project, "[guardrails]\nprivileged = true\n");
        const Failure failure = layout.load_failure();
        CHECK(contains(failure.message, layout.project.string() + ":1:1: guardrails: "));
        CHECK(contains(failure.message, "read only from the system policy"));
    }

    TEST_CASE("system without templates keeps project templates") {
        Layout layout;
        write_file(layout.system, "[[roles]]\nname = \"all\"\nmembers = [\"group:wheel\"]\n"
                                  "templates = [\"*\"]\n");
        write_file(layout.project, "[templates.web]\nimage = \"nginx:1\"\nnetwork = \"bridge\"\n"
                                   "max_ttl = \"8h\"\n");
        const LoadedConfig loaded = layout.load();
        REQUIRE(loaded.merged.templates.size() == 1);
        CHECK(loaded.merged.templates.at("web").max_ttl == 8h);
    }

    TEST_CASE("no project file uses the system templates") {
        Layout layout;
        write_file(layout.system, k_system_text);
        const LoadedConfig loaded = layout.load();
        CHECK(loaded.merged.templates.size() == 2);
        CHECK(loaded.merged.default_template == "db");
        CHECK(loaded.merged.path == layout.system);
        REQUIRE(loaded.layers.size() == 1);
        CHECK(loaded.layers[0].source == layout.system.string());
    }

    TEST_CASE("no templates uses embedded default") {
        Layout layout;
        write_file(layout.system, "[policy]\nmax_ttl = \"8h\"\n");
        const LoadedConfig loaded = layout.load();
        CHECK(loaded.merged.templates.count("scratch") == 1);
        CHECK(loaded.merged.default_template == "scratch");
        REQUIRE(loaded.layers.size() == 1);
        CHECK(loaded.layers[0].source == layout.system.string());
    }

    TEST_CASE("layers are ordered system then project") {
        Layout layout;
        write_file(layout.system, std::string(k_system_text) +
                                      "\n[[roles]]\nname = \"admins\"\nmembers = "
                                      "[\"group:wheel\"]\ntemplates = [\"*\"]\n");
        write_file(layout.project, project_db({}) + "\n[[roles]]\nname = \"dev\"\nmembers = "
                                                    "[\"group:dev\"]\ntemplates = [\"db\"]\n");
        const LoadedConfig loaded = layout.load();
        REQUIRE(loaded.layers.size() == 2);
        CHECK(loaded.layers[0].source == layout.system.string());
        CHECK(loaded.layers[1].source == layout.project.string());
        REQUIRE(loaded.layers[0].policy.roles.size() == 1);
        CHECK(loaded.layers[0].policy.roles[0].name == "admins");
        REQUIRE(loaded.layers[1].policy.roles.size() == 1);
        CHECK(loaded.layers[1].policy.roles[0].name == "dev");
    }

    TEST_CASE("default_template project before system") {
        Layout layout;
        write_file(layout.system, k_system_text);

        SUBCASE("project sets it") {
            write_file(layout.project,
                       "default_template = \"cache\"\n\n[templates.cache]\nimage = \"redis:7\"\n");
            CHECK(layout.load().merged.default_template == "cache");
        }
        SUBCASE("project leaves it unset") {
            write_file(layout.project, "[templates.cache]\nimage = \"redis:7\"\n");
            CHECK(layout.load().merged.default_template == "db");
        }
    }

    TEST_CASE("project file same as system file") {
        Layout layout;
        write_file(layout.system, k_system_text);
        LayeredConfigRequest request = layout.request();
        request.project.explicit_path = layout.system;
        const auto loaded = load_layered_config(request);
        REQUIRE(loaded.ok());
        REQUIRE(loaded->layers.size() == 1);
        CHECK(loaded->digest.hex() == k_system_only_digest);
    }

    TEST_CASE("digest covers the bytes of each layer") {
        Layout layout;
        write_file(layout.system, k_system_text);
        CHECK(layout.load().digest.hex() == k_system_only_digest);

        write_file(layout.project, project_db({}));
        const std::string with_project = layout.load().digest.hex();
        CHECK(with_project != k_system_only_digest);
        CHECK(layout.load().digest.hex() == with_project);

        SUBCASE("one project byte changes it") {
            write_file(layout.project, project_db({{"ttl", "\"20m\""}}));
            CHECK(layout.load().digest.hex() != with_project);
        }
        SUBCASE("a comment changes it") {
            write_file(layout.project, project_db({}) + "# reviewed\n");
            CHECK(layout.load().digest.hex() != with_project);
        }
        SUBCASE("one system byte changes it") {
            write_file(layout.system, std::string(k_system_text) + "\n");
            CHECK(layout.load().digest.hex() != with_project);
        }
    }

    TEST_CASE("digest includes the role of each file") {
        Layout as_system;
        Layout as_project;
        write_file(as_system.system, k_system_text);
        write_file(as_project.project, k_system_text);
        CHECK(as_system.load().digest.hex() == k_system_only_digest);
        CHECK(as_project.load().digest.hex() != k_system_only_digest);
    }

    TEST_CASE("digest of the embedded default") {
        Layout first;
        Layout second;
        CHECK(first.load().digest.hex() == second.load().digest.hex());
        write_file(second.system, "[policy]\nmax_ttl = \"8h\"\n");
        CHECK(second.load().digest.hex() != first.load().digest.hex());
    }

    TEST_CASE("trusted key requires a signed project file") {
        Layout layout;
        const fs::path private_key = layout.trust_new_key("admin");
        write_file(layout.project, project_db({}));

        SUBCASE("unsigned") {
            const Failure failure = layout.load_failure(ExitCode::denied);
            CHECK(failure.message ==
                  layout.project.string() + " is not signed by a trusted key: signature file " +
                      layout.project.string() + ".sig is missing (sign it with `jitbox policy " +
                      "sign --key KEY " + layout.project.string() + "`)");
        }
        SUBCASE("signed") {
            REQUIRE(sign(private_key, layout.project).ok());
            CHECK(layout.load().merged.templates.count("db") == 1);
        }
        SUBCASE("changed after signing") {
            REQUIRE(sign(private_key, layout.project).ok());
            write_file(layout.project, project_db({{"ttl", "\"20m\""}}));
            const Failure failure = layout.load_failure(ExitCode::denied);
            CHECK(contains(failure.message, "changed since it was signed"));
        }
        SUBCASE("signed by an untrusted key") {
            const fs::path other = layout.dir.path() / "other.key";
            REQUIRE(keygen(other, layout.dir.path() / "other.pub").ok());
            REQUIRE(sign(other, layout.project).ok());
            const Failure failure = layout.load_failure(ExitCode::denied);
            CHECK(contains(failure.message, "which is not among the trusted keys"));
        }
        SUBCASE("no project file needs no signature") {
            fs::remove(layout.project);
            CHECK(layout.load().layers[0].source == "<default>");
        }
    }

    TEST_CASE("signature checked before parsing") {
        Layout layout;
        layout.trust_new_key("admin");
        write_file(layout.project, "not toml at all [\n");
        const Failure failure = layout.load_failure(ExitCode::denied);
        CHECK(contains(failure.message, "is not signed by a trusted key"));
    }

    TEST_CASE("require_signed without trusted keys") {
        Layout layout;
        write_file(layout.system, std::string(k_system_text) + std::string(k_require_signed));
        write_file(layout.project, project_db({}));
        const Failure failure = layout.load_failure(ExitCode::denied);
        CHECK(contains(failure.message, layout.project.string() +
                                            " is not signed by a trusted key: there are no "
                                            "trusted keys in " +
                                            layout.keys.string()));
    }

    TEST_CASE("require_signed with a trusted key") {
        Layout layout;
        write_file(layout.system, std::string(k_system_text) + std::string(k_require_signed));
        const fs::path private_key = layout.trust_new_key("admin");
        write_file(layout.project, project_db({}));
        CHECK(layout.load_failure(ExitCode::denied).message.find(".sig is missing") !=
              std::string::npos);
        REQUIRE(sign(private_key, layout.project).ok());
        CHECK(layout.load().layers.size() == 2);
    }

    TEST_CASE("require_signed in project file warns") {
        Layout layout;
        write_file(layout.project, project_db({}) + std::string(k_require_signed));
        const LoadedConfig loaded = layout.load();
        CHECK(loaded.layers.size() == 1);
        REQUIRE(loaded.warnings.size() == 1);
        CHECK(contains(loaded.warnings[0], "require_signed has no effect in a project file"));
    }

    TEST_CASE("skipped trusted keys become warnings") {
        Layout layout;
        const fs::path private_key = layout.trust_new_key("admin");
        write_file(layout.keys / "broken.pub", "not a key\n");
        write_file(layout.project, project_db({}));
        REQUIRE(sign(private_key, layout.project).ok());
        const LoadedConfig loaded = layout.load();
        REQUIRE(loaded.warnings.size() == 1);
        CHECK(contains(loaded.warnings[0], "skipped trusted key " +
                                               (layout.keys / "broken.pub").string()));
    }

    TEST_CASE("writable trusted-keys folder is rejected") {
        Layout layout;
        layout.trust_new_key("admin");
        fs::permissions(layout.keys, fs::perms::others_write, fs::perm_options::add);
        const Failure failure = layout.load_failure();
        CHECK(contains(failure.message, "the trusted-keys folder " + layout.keys.string()));
    }
}

} // namespace jitbox
