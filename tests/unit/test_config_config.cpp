#include "jitbox/config/config.hpp"

#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace jitbox {
namespace {

using test::TempDir;
using test::write_file;

Config parse_valid(std::string_view text, const fs::path& path = "jitbox.toml") {
    auto config = parse_config(text, path);
    INFO((config.ok() ? "" : config.error().message));
    REQUIRE(config.ok());
    return std::move(config).value();
}

// Parses `text` as "jitbox.toml", expecting a failure, and returns its message.
std::string parse_failure(std::string_view text) {
    const auto config = parse_config(text, "jitbox.toml");
    REQUIRE_FALSE(config.ok());
    CHECK(config.error().code == ExitCode::usage);
    return config.error().message;
}

bool starts_with(const std::string& text, std::string_view prefix) {
    return text.rfind(prefix, 0) == 0;
}

bool contains(const std::string& text, std::string_view fragment) {
    return text.find(fragment) != std::string::npos;
}

constexpr std::string_view k_full_example = R"([templates.db]
provider = "docker"
image = "postgres:16"
command = ["postgres", "-c", "fsync=off"]
env = { POSTGRES_DB = "app" }
workdir = "/srv"
user = "999:999"
shell = "/bin/bash"
cpus = 1.5
memory = "512MiB"
pids_limit = 256
network = "isolated"
ports = ["5432"]
read_only = true
cap_add = []
mounts = [{ source = "./fixtures", target = "/fixtures" }]
labels = { team = "payments" }
stop_timeout = "0s"
ttl = "30m"
max_ttl = "4h"
)";

} // namespace

TEST_SUITE("config") {

TEST_CASE("parse_config loads the full example") {
    const Config config = parse_valid(k_full_example, "/srv/project/jitbox.toml");
    CHECK(config.path == "/srv/project/jitbox.toml");
    CHECK(config.default_template.empty());
    REQUIRE(config.templates.size() == 1);
    REQUIRE(config.templates.count("db") == 1);

    const Template& db = config.templates.at("db");
    CHECK(db.name == "db");
    CHECK(db.origin == "/srv/project/jitbox.toml:1:1");
    CHECK(db.provider == "docker");
    CHECK(db.image == "postgres:16");
    CHECK(db.command == std::vector<std::string>{"postgres", "-c", "fsync=off"});
    CHECK(db.env == std::map<std::string, std::string>{{"POSTGRES_DB", "app"}});
    CHECK(db.workdir == "/srv");
    CHECK(db.user == "999:999");
    CHECK(db.shell == "/bin/bash");
    REQUIRE(db.cpus.has_value());
    CHECK(*db.cpus == doctest::Approx(1.5));
    CHECK(db.memory_bytes == 512 * 1024 * 1024);
    CHECK(db.pids_limit == 256);
    CHECK(db.network == NetworkMode::isolated);
    REQUIRE(db.ports.size() == 1);
    CHECK(db.ports[0].host_ip == "127.0.0.1");
    CHECK(db.ports[0].host_port.empty());
    CHECK(db.ports[0].container_port == "5432");
    CHECK(db.ports[0].protocol == "tcp");
    CHECK(db.read_only);
    CHECK(db.cap_add.empty());
    REQUIRE(db.mounts.size() == 1);
    CHECK(db.mounts[0].source == "/srv/project/fixtures");
    CHECK(db.mounts[0].target == "/fixtures");
    CHECK_FALSE(db.mounts[0].writable);
    CHECK(db.labels == std::map<std::string, std::string>{{"team", "payments"}});
    CHECK(db.stop_timeout == Seconds::zero());
    CHECK(db.ttl == 30min);
    CHECK(db.max_ttl == 4h);
}

TEST_CASE("parse_config fills template defaults") {
    const Config config = parse_valid("[templates.web]\nimage = \"nginx:1.25\"\n");
    const Template& web = config.templates.at("web");
    CHECK(web.provider == "docker");
    CHECK(web.command.empty());
    CHECK(web.network == NetworkMode::none);
    CHECK_FALSE(web.read_only);
    CHECK_FALSE(web.cpus.has_value());
    CHECK_FALSE(web.memory_bytes.has_value());
    CHECK_FALSE(web.pids_limit.has_value());
    CHECK_FALSE(web.stop_timeout.has_value());
    CHECK(web.ttl == 30min);
    CHECK(web.max_ttl == 4h);
}

TEST_CASE("parse_config normalises values") {
    const Config config = parse_valid(R"(default_template = "my.db"
[templates."my.db"]
image = "postgres:16"
cpus = 2
memory = 8388608
cap_add = ["CAP_NET_ADMIN", "SYS_PTRACE"]
network = "bridge"
ports = ["0.0.0.0::5432/udp", "127.0.0.1:15432:05432"]
mounts = [
    { source = "/data/../data/", target = "/data/", writable = true },
    { source = "fixtures/./sql", target = "/sql" },
]
)",
                                      "/home/user/project/jitbox.toml");
    CHECK(config.default_template == "my.db");
    const Template& db = config.templates.at("my.db");
    CHECK(*db.cpus == doctest::Approx(2.0));
    CHECK(db.memory_bytes == 8388608);
    CHECK(db.cap_add == std::vector<std::string>{"NET_ADMIN", "SYS_PTRACE"});
    CHECK(db.network == NetworkMode::bridge);
    REQUIRE(db.ports.size() == 2);
    CHECK(db.ports[0].host_ip == "0.0.0.0");
    CHECK(db.ports[0].protocol == "udp");
    CHECK(db.ports[1].host_port == "15432");
    CHECK(db.ports[1].container_port == "5432");
    REQUIRE(db.mounts.size() == 2);
    CHECK(db.mounts[0].source == "/data");
    CHECK(db.mounts[0].target == "/data");
    CHECK(db.mounts[0].writable);
    CHECK(db.mounts[1].source == "/home/user/project/fixtures/sql");
}

TEST_CASE("parse_config resolves relative mount sources") {
    SUBCASE("against the folder of an absolute config path") {
        const std::string text = "[templates.t]\nimage = \"a\"\n"
                                 "mounts = [{ source = \"../shared\", target = \"/s\" }]\n";
        const Config config = parse_valid(text, "/srv/project/jitbox.toml");
        CHECK(config.templates.at("t").mounts.at(0).source == "/srv/shared");
    }
    SUBCASE("against the current folder for a relative config path") {
        const Config config = parse_valid(
            "[templates.t]\nimage = \"a\"\nmounts = [{ source = \"data\", target = \"/d\" }]\n",
            "conf/jitbox.toml");
        CHECK(config.templates.at("t").mounts.at(0).source == fs::current_path() / "conf/data");
    }
}

TEST_CASE("parse_config accepts a byte-order mark and CRLF") {
    const std::string text = "\xEF\xBB\xBF"
                             "default_template = \"db\"\r\n"
                             "\r\n"
                             "[templates.db]\r\n"
                             "image = \"postgres:16\"\r\n"
                             "command = [\"a\", \"b\"]\r\n"
                             "ttl = \"1h\"\r\n";
    const Config config = parse_valid(text);
    const Template& db = config.templates.at("db");
    CHECK(db.image == "postgres:16");
    CHECK(db.command == std::vector<std::string>{"a", "b"});
    CHECK(db.ttl == 1h);
    CHECK(db.origin == "jitbox.toml:3:1");
}

TEST_CASE("parse_config accepts an empty file") {
    const Config config = parse_valid("");
    CHECK(config.templates.empty());
    CHECK(config.default_template.empty());
}

TEST_CASE("parse_config error messages") {
    struct Case {
        std::string name;
        std::string text;
        std::string prefix;   // FILE:LINE:COLUMN: KEY:
        std::string fragment; // part of the message after the prefix
    };
    const std::string head = "[templates.db]\nimage = \"postgres:16\"\n";
    const std::vector<Case> cases{
        {"unknown template key with suggestion", head + "imgae = \"x\"\n",
         "jitbox.toml:3:1: templates.db.imgae: ",
         "unknown key \"imgae\" (did you mean \"image\"?)"},
        {"unknown template key without suggestion", head + "frobnicate = 1\n",
         "jitbox.toml:3:1: templates.db.frobnicate: ", "(known: provider, image, command, env"},
        {"unknown top-level key", "defualt_template = \"db\"\n" + head,
         "jitbox.toml:1:1: defualt_template: ", "did you mean \"default_template\"?"},
        {"unknown mount key", head + "mounts = [{ source = \"a\", target = \"/a\", rw = true }]\n",
         "jitbox.toml:3:42: templates.db.mounts[0].rw: ", "unknown key \"rw\""},
        {"wrong type", head + "cpus = \"2\"\n", "jitbox.toml:3:8: templates.db.cpus: ",
         "expected a number, found string"},
        {"wrong element type", head + "command = [\"sleep\", 5]\n",
         "jitbox.toml:3:21: templates.db.command[1]: ", "expected a string, found integer"},
        {"templates not a table", "templates = 5\n", "jitbox.toml:1:13: templates: ",
         "expected a table, found integer"},
        {"bad duration", head + "ttl = \"5x\"\n", "jitbox.toml:3:7: templates.db.ttl: ",
         "invalid duration \"5x\": use a number with a unit (d, h, m, s)"},
        {"duration as integer", head + "ttl = 300\n", "jitbox.toml:3:7: templates.db.ttl: ",
         "expected a duration string such as \"30m\", found integer"},
        {"zero ttl", head + "ttl = \"0s\"\n", "jitbox.toml:3:7: templates.db.ttl: ",
         "use a duration greater than zero"},
        {"zero max_ttl", head + "max_ttl = \"0m\"\n", "jitbox.toml:3:11: templates.db.max_ttl: ",
         "use a duration greater than zero"},
        {"ttl above default max_ttl", head + "ttl = \"5h\"\n",
         "jitbox.toml:3:7: templates.db.ttl: ",
         "ttl 5h is longer than max_ttl 4h (the default), lower ttl or raise max_ttl"},
        {"ttl above max_ttl", head + "ttl = \"2h\"\nmax_ttl = \"1h\"\n",
         "jitbox.toml:3:7: templates.db.ttl: ", "ttl 2h is longer than max_ttl 1h,"},
        {"default ttl above max_ttl", head + "max_ttl = \"10m\"\n",
         "jitbox.toml:3:11: templates.db.max_ttl: ", "ttl 30m (the default) is longer than"},
        {"bad port", head + "network = \"isolated\"\nports = [\"5432\", \"99999\"]\n",
         "jitbox.toml:4:18: templates.db.ports[1]: ", "invalid port \"99999\": container port"},
        {"ports with network none", head + "ports = [\"5432\"]\n",
         "jitbox.toml:3:9: templates.db.ports: ",
         "set network = \"isolated\" or \"bridge\""},
        {"reserved label", head + "labels = { \"io.jitbox.owner\" = \"me\" }\n",
         "jitbox.toml:3:12: templates.db.labels.\"io.jitbox.owner\": ",
         "keys starting with \"io.jitbox.\" are set by jitbox"},
        {"bad template name", "[templates.DB]\nimage = \"a\"\n", "jitbox.toml:1:12: templates.DB: ",
         "invalid template name \"DB\": use 1 to 63 lower-case letters"},
        {"template name with leading dash", "[templates.-db]\nimage = \"a\"\n",
         "jitbox.toml:1:12: templates.-db: ", "starting with a letter or digit"},
        {"missing image", "[templates.db]\nuser = \"1\"\n", "jitbox.toml:1:1: templates.db: ",
         "missing required key \"image\""},
        {"unsupported provider", head + "provider = \"podman\"\n",
         "jitbox.toml:3:12: templates.db.provider: ",
         "unsupported provider \"podman\" (supported: docker, aws-sts, aws-ec2)"},
        {"image with a space", "[templates.db]\nimage = \"postgres 16\"\n",
         "jitbox.toml:2:9: templates.db.image: ", "invalid image \"postgres 16\""},
        {"empty image", "[templates.db]\nimage = \"\"\n", "jitbox.toml:2:9: templates.db.image: ",
         "must not be empty"},
        {"env key with equals sign", head + "env = { \"A=B\" = \"c\" }\n",
         "jitbox.toml:3:9: templates.db.env.\"A=B\": ", "invalid environment variable name"},
        {"env value not a string", head + "env = { PORT = 5432 }\n",
         "jitbox.toml:3:16: templates.db.env.PORT: ", "expected a string, found integer"},
        {"relative workdir", head + "workdir = \"srv\"\n",
         "jitbox.toml:3:11: templates.db.workdir: ", "use an absolute path"},
        {"relative shell", head + "shell = \"bash\"\n", "jitbox.toml:3:9: templates.db.shell: ",
         "invalid shell \"bash\": use the absolute path of one program"},
        {"shell with arguments", head + "shell = \"/bin/bash -l\"\n",
         "jitbox.toml:3:9: templates.db.shell: ", "without arguments, such as \"/bin/bash\""},
        {"empty shell", head + "shell = \"\"\n", "jitbox.toml:3:9: templates.db.shell: ",
         "invalid shell \"\""},
        {"shell not a string", head + "shell = [\"/bin/sh\"]\n",
         "jitbox.toml:3:9: templates.db.shell: ", "expected a string"},
        {"zero cpus", head + "cpus = 0\n", "jitbox.toml:3:8: templates.db.cpus: ",
         "greater than 0 and at most 1024"},
        {"too many cpus", head + "cpus = 1024.5\n", "jitbox.toml:3:8: templates.db.cpus: ",
         "at most 1024"},
        {"nan cpus", head + "cpus = nan\n", "jitbox.toml:3:8: templates.db.cpus: ",
         "invalid cpus"},
        {"memory below minimum", head + "memory = \"4MiB\"\n",
         "jitbox.toml:3:10: templates.db.memory: ", "below the minimum of 6MiB"},
        {"memory bad size", head + "memory = \"lots\"\n",
         "jitbox.toml:3:10: templates.db.memory: ", "invalid size \"lots\""},
        {"memory wrong type", head + "memory = true\n", "jitbox.toml:3:10: templates.db.memory: ",
         "expected a size such as \"512MiB\" or an integer number of bytes, found boolean"},
        {"zero pids_limit", head + "pids_limit = 0\n",
         "jitbox.toml:3:14: templates.db.pids_limit: ", "use an integer of at least 1"},
        {"unknown network", head + "network = \"container:db\"\n",
         "jitbox.toml:3:11: templates.db.network: ",
         "unknown network \"container:db\": use \"none\", \"isolated\", \"bridge\" or "
         "\"host\""},
        {"ports on the host network", head + "network = \"host\"\nports = [\"80\"]\n",
         "jitbox.toml:4:9: templates.db.ports: ", "network = \"host\" publishes every port"},
        {"unknown pid mode", head + "pid = \"container:db\"\n",
         "jitbox.toml:3:7: templates.db.pid: ",
         "unknown pid namespace \"container:db\": use private, host"},
        {"unknown ipc mode", head + "ipc = \"shareable\"\n", "jitbox.toml:3:7: templates.db.ipc: ",
         "unknown ipc namespace \"shareable\": use private, none, host"},
        {"device outside /dev", head + "devices = [\"/etc/passwd\"]\n",
         "jitbox.toml:3:12: templates.db.devices[0]: ",
         "invalid device \"/etc/passwd\": the host path must be a normal absolute path below"},
        {"device permissions", head + "devices = [\"/dev/fuse:/dev/fuse:rx\"]\n",
         "jitbox.toml:3:12: templates.db.devices[0]: ", "the permissions must be one or more of r"},
        {"device with four parts", head + "devices = [\"/dev/a:/dev/b:r:w\"]\n",
         "jitbox.toml:3:12: templates.db.devices[0]: ", "more than three ':'-separated parts"},
        {"cap_drop lower case", head + "cap_drop = [\"all\"]\n",
         "jitbox.toml:3:13: templates.db.cap_drop[0]: ", "invalid capability \"all\""},
        {"privileged not a bool", head + "privileged = \"yes\"\n",
         "jitbox.toml:3:14: templates.db.privileged: ", ""},
        {"guardrails image pattern with space", "[guardrails]\nimages = [\"a b\"]\n",
         "jitbox.toml:2:11: guardrails.images[0]: ", "invalid image pattern \"a b\""},
        {"guardrails relative mount source", "[guardrails]\nmount_sources = [\"srv\"]\n",
         "jitbox.toml:2:18: guardrails.mount_sources[0]: ", "use an absolute folder"},
        {"guardrails max_pids zero", "[guardrails]\nmax_pids = 0\n",
         "jitbox.toml:2:12: guardrails.max_pids: ", "invalid max_pids 0"},
        {"guardrails max_live_per_user zero", "[guardrails]\nmax_live_per_user = 0\n",
         "jitbox.toml:2:21: guardrails.max_live_per_user: ", "invalid max_live_per_user 0"},
        {"guardrails unknown key", "[guardrails]\nprivilegd = false\n",
         "jitbox.toml:2:1: guardrails.privilegd: ", "did you mean \"privileged\"?"},
        {"lower-case capability", head + "cap_add = [\"net_admin\"]\n",
         "jitbox.toml:3:12: templates.db.cap_add[0]: ", "invalid capability \"net_admin\""},
        {"bare CAP_ capability", head + "cap_add = [\"CAP_\"]\n",
         "jitbox.toml:3:12: templates.db.cap_add[0]: ", "invalid capability \"CAP_\""},
        {"relative mount target", head + "mounts = [{ source = \"a\", target = \"b\" }]\n",
         "jitbox.toml:3:36: templates.db.mounts[0].target: ", "invalid mount target \"b\""},
        {"mount target root", head + "mounts = [{ source = \"a\", target = \"/\" }]\n",
         "jitbox.toml:3:36: templates.db.mounts[0].target: ", "use an absolute path below /"},
        {"mount source with tilde", head + "mounts = [{ source = \"~/a\", target = \"/a\" }]\n",
         "jitbox.toml:3:22: templates.db.mounts[0].source: ", "'~' is not expanded"},
        {"mount without target", head + "mounts = [{ source = \"a\" }]\n",
         "jitbox.toml:3:11: templates.db.mounts[0]: ", "missing required key \"target\""},
        {"mount not a table", head + "mounts = [\"./a:/a\"]\n",
         "jitbox.toml:3:11: templates.db.mounts[0]: ", "expected a table, found string"},
        {"read_only not a boolean", head + "read_only = \"yes\"\n",
         "jitbox.toml:3:13: templates.db.read_only: ", "expected a boolean (true or false)"},
        {"undefined default_template", "default_template = \"dbb\"\n" + head,
         "jitbox.toml:1:20: default_template: ",
         "template \"dbb\" is not defined (did you mean \"db\"?)"},
        {"default_template without templates", "default_template = \"x\"\n",
         "jitbox.toml:1:20: default_template: ", "(known: none)"},
        {"error inside a dotted template name",
         "[templates.\"my.db\"]\nimage = \"a\"\nttl = \"x\"\n",
         "jitbox.toml:3:7: templates.\"my.db\".ttl: ", "invalid duration \"x\""},
        {"secret name with a dash", head + "secrets = { \"DB-PASS\" = {} }\n",
         "jitbox.toml:3:13: templates.db.secrets.DB-PASS: ",
         "invalid secret name \"DB-PASS\": use an environment variable name"},
        {"secret name starting with a digit", head + "secrets = { 1PASS = {} }\n",
         "jitbox.toml:3:13: templates.db.secrets.1PASS: ", "not starting with a digit"},
        {"secret length too short", head + "secrets = { PASS = { length = 15 } }\n",
         "jitbox.toml:3:31: templates.db.secrets.PASS.length: ",
         "invalid length 15: use 16 to 256 characters"},
        {"secret length too long", head + "secrets = { PASS = { length = 257 } }\n",
         "jitbox.toml:3:31: templates.db.secrets.PASS.length: ", "use 16 to 256 characters"},
        {"secret length not an integer", head + "secrets = { PASS = { length = \"32\" } }\n",
         "jitbox.toml:3:31: templates.db.secrets.PASS.length: ",
         "expected an integer, found string"},
        {"unknown secret key", head + "secrets = { PASS = { size = 32 } }\n",
         "jitbox.toml:3:22: templates.db.secrets.PASS.size: ", "unknown key \"size\""},
        {"secret not a table", head + "secrets = { PASS = 32 }\n",
         "jitbox.toml:3:20: templates.db.secrets.PASS: ",
         "expected a table such as { length = 32 }, found integer"},
        {"secret also in env", head + "env = { PASS = \"x\" }\nsecrets = { PASS = {} }\n",
         "jitbox.toml:4:20: templates.db.secrets.PASS: ",
         "\"PASS\" is also set in env, remove it from env or from secrets"},
        {"unknown keyring backend", "[keyring]\nbackend = \"gnome\"\n",
         "jitbox.toml:2:11: keyring.backend: ",
         "unknown keyring backend \"gnome\": use auto, secret-service, kernel, file"},
        {"unknown keyring key", "[keyring]\nbakend = \"file\"\n", "jitbox.toml:2:1: keyring.bakend: ",
         "did you mean \"backend\"?"},
        {"TOML syntax error", "[templates.db\nimage = \"a\"\n", "jitbox.toml:1:",
         "invalid TOML: "},
        {"TOML duplicate key", head + "image = \"b\"\n", "jitbox.toml:3:",
         "invalid TOML: "},
    };
    for (const Case& c : cases) {
        CAPTURE(c.name);
        const std::string message = parse_failure(c.text);
        CAPTURE(message);
        CHECK(starts_with(message, c.prefix));
        CHECK(contains(message, c.fragment));
        CHECK_FALSE(contains(message, "\n"));
    }
}

TEST_CASE("parse_config accepts image references") {
    const std::string hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const std::vector<std::string> images{
        "postgres:16",
        "registry.example.com:5000/team/app:1.4",
        "localhost:5000", // path "localhost" with tag "5000"
        "a/b/c",
        "ghcr.io/o/r@sha256:" + hex64,
        "x__y",
        "x--y",
        "a:" + std::string(128, 't'), // longest tag
    };
    for (const std::string& image : images) {
        CAPTURE(image);
        const Config config = parse_valid("[templates.db]\nimage = \"" + image + "\"\n");
        CHECK(config.templates.at("db").image == image);
    }
}

TEST_CASE("parse_config rejects invalid image references") {
    const std::vector<std::string> images{
        "Postgres",
        "a//b",
        "a/",
        "/a",
        "a:",
        "a:-x",
        "a@sha256:abc", // digest shorter than 32 hex digits
        "a___b",
        "-a",
        "a.",
        "a b",
        "host:port/x", // a registry port must be digits
        "a:" + std::string(129, 't'),
    };
    for (const std::string& image : images) {
        CAPTURE(image);
        const std::string message = parse_failure("[templates.db]\nimage = \"" + image + "\"\n");
        CAPTURE(message);
        CHECK(starts_with(message, "jitbox.toml:2:9: templates.db.image: "));
        CHECK(contains(message, "invalid image \"" + image + "\""));
    }
}

TEST_CASE("parse_config reads generated secrets") {
    const Config config = parse_valid(R"([templates.db]
image = "postgres:16"
env = { POSTGRES_DB = "app" }
[templates.db.secrets]
ZETA_TOKEN = { length = 256 }
POSTGRES_PASSWORD = {}
_SHORT = { length = 16 }
)");
    const Template& db = config.templates.at("db");
    REQUIRE(db.secrets.size() == 3);
    CHECK(db.secrets[0].name == "POSTGRES_PASSWORD");
    CHECK(db.secrets[0].length == 32);
    CHECK(db.secrets[1].name == "ZETA_TOKEN");
    CHECK(db.secrets[1].length == 256);
    CHECK(db.secrets[2].name == "_SHORT");
    CHECK(db.secrets[2].length == 16);
}

TEST_CASE("parse_config reads health checks") {
    const Config config = parse_valid(R"([templates.db]
image = "postgres:16"
healthcheck = { test = ["CMD", "pg_isready", "-U", "postgres"], interval = "2s", timeout = "5s", start_period = "1m", retries = 10 }
[templates.shell]
image = "busybox:1.36"
healthcheck = { test = "test -f /tmp/ready" }
[templates.off]
image = "busybox:1.36"
healthcheck = { test = ["NONE"] }
[templates.plain]
image = "busybox:1.36"
)");
    const Template& db = config.templates.at("db");
    REQUIRE(db.healthcheck.has_value());
    CHECK(db.healthcheck->test == std::vector<std::string>{"CMD", "pg_isready", "-U", "postgres"});
    CHECK(db.healthcheck->interval == Seconds(2));
    CHECK(db.healthcheck->timeout == Seconds(5));
    CHECK(db.healthcheck->start_period == Seconds(60));
    CHECK(db.healthcheck->retries == 10);

    const Template& shell = config.templates.at("shell");
    REQUIRE(shell.healthcheck.has_value());
    CHECK(shell.healthcheck->test == std::vector<std::string>{"CMD-SHELL", "test -f /tmp/ready"});
    CHECK_FALSE(shell.healthcheck->interval.has_value());
    CHECK_FALSE(shell.healthcheck->retries.has_value());

    CHECK(config.templates.at("off").healthcheck->test == std::vector<std::string>{"NONE"});
    CHECK_FALSE(config.templates.at("plain").healthcheck.has_value());
}

TEST_CASE("parse_config rejects invalid health checks") {
    struct Case {
        std::string name;
        std::string value;    // the healthcheck value on line 3
        std::string prefix;   // FILE:LINE:COLUMN: KEY:
        std::string fragment; // part of the message after the prefix
    };
    const std::vector<Case> cases{
        {"missing test", "{ interval = \"2s\" }",
         "jitbox.toml:3:15: templates.db.healthcheck: ", "missing required key \"test\""},
        {"unknown key", "{ test = [\"NONE\"], intervall = \"2s\" }",
         "jitbox.toml:3:34: templates.db.healthcheck.intervall: ",
         "unknown key \"intervall\" (did you mean \"interval\"?)"},
        {"unknown kind", "{ test = [\"RUN\", \"true\"] }",
         "jitbox.toml:3:24: templates.db.healthcheck.test: ",
         "the first element is \"RUN\", use \"CMD\", \"CMD-SHELL\" or \"NONE\""},
        {"CMD without program", "{ test = [\"CMD\"] }",
         "jitbox.toml:3:24: templates.db.healthcheck.test: ", "\"CMD\" needs a program"},
        {"CMD-SHELL with two commands", "{ test = [\"CMD-SHELL\", \"a\", \"b\"] }",
         "jitbox.toml:3:24: templates.db.healthcheck.test: ", "with 3 elements"},
        {"empty shell command", "{ test = \"\" }",
         "jitbox.toml:3:24: templates.db.healthcheck.test: ", "the health check command is empty"},
        {"test of wrong type", "{ test = 5 }",
         "jitbox.toml:3:24: templates.db.healthcheck.test: ", "expected an array of strings"},
        {"zero interval", "{ test = [\"NONE\"], interval = \"0s\" }",
         "jitbox.toml:3:45: templates.db.healthcheck.interval: ",
         "use a duration greater than zero"},
        {"negative retries", "{ test = [\"NONE\"], retries = -1 }",
         "jitbox.toml:3:44: templates.db.healthcheck.retries: ", "invalid retries -1"},
        {"not a table", "\"pg_isready\"",
         "jitbox.toml:3:15: templates.db.healthcheck: ", "expected a table, found string"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.name);
        const std::string text =
            "[templates.db]\nimage = \"postgres:16\"\nhealthcheck = " + c.value + "\n";
        const std::string message = parse_failure(text);
        CHECK_MESSAGE(starts_with(message, c.prefix), message);
        CHECK_MESSAGE(contains(message, c.fragment), message);
    }
}

TEST_CASE("parse_config rejects a health check for aws templates") {
    const std::string message = parse_failure(R"([templates.role]
provider = "aws-sts"
role_arn = "arn:aws:iam::123456789012:role/dev"
healthcheck = { test = ["NONE"] }
)");
    CHECK_MESSAGE(starts_with(message, "jitbox.toml:4:"), message);
    CHECK_MESSAGE(contains(message, "healthcheck"), message);
}

TEST_CASE("parse_config reads the keyring backend") {
    for (const std::string backend : {"auto", "secret-service", "kernel", "file"}) {
        CAPTURE(backend);
        const Config config = parse_valid("[keyring]\nbackend = \"" + backend + "\"\n");
        CHECK(config.keyring_backend == backend);
    }
    CHECK(parse_valid("").keyring_backend.empty());
}

TEST_CASE("parse_config reads aws-sts templates") {
    const Config config = parse_valid(R"([templates.dev]
provider = "aws-sts"
role_arn = "arn:aws:iam::123456789012:role/path/dev"
session_policy = '{"Version": "2012-10-17", "Statement": []}'
mfa_serial = "arn:aws:iam::123456789012:mfa/alice"
region = "eu-central-1"
endpoint_url = "http://127.0.0.1:4566/"
ttl = "15m"
max_ttl = "12h"
)");
    const Template& dev = config.templates.at("dev");
    CHECK(dev.provider == "aws-sts");
    CHECK(dev.image.empty());
    CHECK(dev.aws.role_arn == "arn:aws:iam::123456789012:role/path/dev");
    CHECK(dev.aws.session_policy == R"({"Version": "2012-10-17", "Statement": []})");
    CHECK(dev.aws.mfa_serial == "arn:aws:iam::123456789012:mfa/alice");
    CHECK(dev.aws.region == "eu-central-1");
    CHECK(dev.aws.endpoint_url == "http://127.0.0.1:4566/");
    CHECK(dev.ttl == 15min);
    CHECK(dev.max_ttl == 12h);
}

TEST_CASE("parse_config reads aws-ec2 templates") {
    const Config config = parse_valid(R"([templates.vm]
provider = "aws-ec2"
image_id = "ami-0123456789abcdef0"
instance_type = "t3.micro"
subnet_id = "subnet-0123abcd"
security_group_ids = ["sg-0123abcd", "sg-0123456789abcdef0"]
key_name = "alice laptop"
root_volume_gib = 16384
region = "us-gov-west-1"
endpoint_url = "https://[::1]:8443"
labels = { team = "payments" }
)");
    const Template& vm = config.templates.at("vm");
    CHECK(vm.aws.image_id == "ami-0123456789abcdef0");
    CHECK(vm.aws.instance_type == "t3.micro");
    CHECK(vm.aws.subnet_id == "subnet-0123abcd");
    CHECK(vm.aws.security_group_ids ==
          std::vector<std::string>{"sg-0123abcd", "sg-0123456789abcdef0"});
    CHECK(vm.aws.key_name == "alice laptop");
    CHECK(vm.aws.root_volume_gib == 16384);
    CHECK(vm.aws.region == "us-gov-west-1");
    CHECK(vm.aws.endpoint_url == "https://[::1]:8443");
    CHECK(vm.labels == std::map<std::string, std::string>{{"team", "payments"}});
}

TEST_CASE("parse_config rejects keys of other providers and bad AWS values") {
    struct Case {
        std::string name;
        std::string text;
        std::string prefix;   // FILE:LINE:COLUMN: KEY:
        std::string fragment; // part of the message after the prefix
    };
    const std::string sts =
        "[templates.s]\nprovider = \"aws-sts\"\nrole_arn = \"arn:aws:iam::123456789012:role/r\"\n";
    const std::string ec2 = "[templates.e]\nprovider = \"aws-ec2\"\nimage_id = \"ami-01234567\"\n"
                            "instance_type = \"t3.micro\"\n";
    const std::string docker = "[templates.d]\nimage = \"busybox\"\n";
    const std::vector<Case> cases{
        {"image on aws-sts", sts + "image = \"busybox\"\n", "jitbox.toml:4:9: templates.s.image: ",
         "key \"image\" is for docker templates, not for provider \"aws-sts\", remove it"},
        {"key before provider", "[templates.s]\nports = [\"80\"]\nprovider = \"aws-sts\"\n",
         "jitbox.toml:2:9: templates.s.ports: ", "key \"ports\" is for docker templates"},
        {"mounts on aws-ec2", ec2 + "mounts = []\n", "jitbox.toml:5:10: templates.e.mounts: ",
         "not for provider \"aws-ec2\""},
        {"cap_add on aws-ec2", ec2 + "cap_add = []\n", "jitbox.toml:5:11: templates.e.cap_add: ",
         "key \"cap_add\" is for docker templates"},
        {"shell on aws-ec2", ec2 + "shell = \"/bin/sh\"\n", "jitbox.toml:5:9: templates.e.shell: ",
         "key \"shell\" is for docker templates"},
        {"secrets on aws-sts", sts + "secrets = { PASS = {} }\n",
         "jitbox.toml:4:11: templates.s.secrets: ", "key \"secrets\" is for docker templates"},
        {"role_arn on docker", docker + "role_arn = \"arn:aws:iam::123456789012:role/r\"\n",
         "jitbox.toml:3:12: templates.d.role_arn: ",
         "key \"role_arn\" is for aws-sts templates, not for provider \"docker\""},
        {"region on docker", docker + "region = \"eu-west-1\"\n",
         "jitbox.toml:3:10: templates.d.region: ", "is for aws-sts and aws-ec2 templates"},
        {"image_id on aws-sts", sts + "image_id = \"ami-01234567\"\n",
         "jitbox.toml:4:12: templates.s.image_id: ", "is for aws-ec2 templates"},
        {"mfa_serial on aws-ec2", ec2 + "mfa_serial = \"GAHT12345678\"\n",
         "jitbox.toml:5:14: templates.e.mfa_serial: ", "is for aws-sts templates"},
        {"aws-sts without role_arn", "[templates.s]\nprovider = \"aws-sts\"\n",
         "jitbox.toml:1:1: templates.s: ", "missing required key \"role_arn\""},
        {"aws-ec2 without image_id",
         "[templates.e]\nprovider = \"aws-ec2\"\ninstance_type = \"t3.micro\"\n",
         "jitbox.toml:1:1: templates.e: ", "missing required key \"image_id\""},
        {"aws-ec2 without instance_type",
         "[templates.e]\nprovider = \"aws-ec2\"\nimage_id = \"ami-01234567\"\n",
         "jitbox.toml:1:1: templates.e: ", "missing required key \"instance_type\""},
        {"aws-sts ttl too short", sts + "ttl = \"14m\"\n", "jitbox.toml:4:7: templates.s.ttl: ",
         "ttl 14m is outside the 15m to 12h that AWS STS accepts for a session "
         "(DurationSeconds 900 to 43200)"},
        {"aws-sts max_ttl too long", sts + "max_ttl = \"13h\"\n",
         "jitbox.toml:4:11: templates.s.max_ttl: ", "max_ttl 13h is outside the 15m to 12h"},
        {"bad role_arn", "[templates.s]\nprovider = \"aws-sts\"\nrole_arn = \"arn:aws:iam::1234:role/r\"\n",
         "jitbox.toml:3:12: templates.s.role_arn: ",
         "invalid role_arn \"arn:aws:iam::1234:role/r\": use an IAM role ARN"},
        {"role_arn of a user", "[templates.s]\nprovider = \"aws-sts\"\n"
                               "role_arn = \"arn:aws:iam::123456789012:user/r\"\n",
         "jitbox.toml:3:12: templates.s.role_arn: ", "invalid role_arn"},
        {"session_policy not JSON", sts + "session_policy = \"{\"\n",
         "jitbox.toml:4:18: templates.s.session_policy: ",
         "invalid session_policy: use an IAM policy document as a JSON object"},
        {"session_policy an array", sts + "session_policy = \"[]\"\n",
         "jitbox.toml:4:18: templates.s.session_policy: ", "as a JSON object"},
        {"short mfa_serial", sts + "mfa_serial = \"abc\"\n",
         "jitbox.toml:4:14: templates.s.mfa_serial: ", "invalid mfa_serial \"abc\""},
        {"bad region", sts + "region = \"Frankfurt\"\n", "jitbox.toml:4:10: templates.s.region: ",
         "invalid region \"Frankfurt\": use an AWS region name"},
        {"endpoint_url ftp", sts + "endpoint_url = \"ftp://host\"\n",
         "jitbox.toml:4:16: templates.s.endpoint_url: ", "use an http:// or https:// URL"},
        {"endpoint_url without host", sts + "endpoint_url = \"https:///path\"\n",
         "jitbox.toml:4:16: templates.s.endpoint_url: ", "name a host"},
        {"endpoint_url with user info", sts + "endpoint_url = \"https://u:p@host\"\n",
         "jitbox.toml:4:16: templates.s.endpoint_url: ", "remove the user name and password"},
        {"endpoint_url with query", sts + "endpoint_url = \"https://host/?a=b\"\n",
         "jitbox.toml:4:16: templates.s.endpoint_url: ", "remove the query and fragment"},
        {"endpoint_url with fragment", sts + "endpoint_url = \"https://host#x\"\n",
         "jitbox.toml:4:16: templates.s.endpoint_url: ", "remove the query and fragment"},
        {"endpoint_url bad port", sts + "endpoint_url = \"http://host:99999\"\n",
         "jitbox.toml:4:16: templates.s.endpoint_url: ", "port must be a number from 1 to 65535"},
        {"bad image_id", "[templates.e]\nprovider = \"aws-ec2\"\nimage_id = \"ami-XYZ\"\n",
         "jitbox.toml:3:12: templates.e.image_id: ",
         "invalid ami id \"ami-XYZ\": use \"ami-\" and up to 32 lower-case hex digits"},
        {"bad instance_type",
         "[templates.e]\nprovider = \"aws-ec2\"\nimage_id = \"ami-01234567\"\n"
         "instance_type = \"large\"\n",
         "jitbox.toml:4:17: templates.e.instance_type: ", "invalid instance_type \"large\""},
        {"bad subnet_id", ec2 + "subnet_id = \"sub-01234567\"\n",
         "jitbox.toml:5:13: templates.e.subnet_id: ", "invalid subnet id \"sub-01234567\""},
        {"bad security group", ec2 + "security_group_ids = [\"sg-01234567\", \"sg-1x\"]\n",
         "jitbox.toml:5:38: templates.e.security_group_ids[1]: ", "invalid sg id \"sg-1x\""},
        {"security groups not an array", ec2 + "security_group_ids = \"sg-01234567\"\n",
         "jitbox.toml:5:22: templates.e.security_group_ids: ", "expected an array of strings"},
        {"empty key_name", ec2 + "key_name = \"\"\n", "jitbox.toml:5:12: templates.e.key_name: ",
         "invalid key_name \"\""},
        {"zero root_volume_gib", ec2 + "root_volume_gib = 0\n",
         "jitbox.toml:5:19: templates.e.root_volume_gib: ",
         "invalid root_volume_gib 0: use 1 to 16384 GiB"},
        {"huge root_volume_gib", ec2 + "root_volume_gib = 16385\n",
         "jitbox.toml:5:19: templates.e.root_volume_gib: ", "use 1 to 16384 GiB"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.name);
        const std::string message = parse_failure(c.text);
        CAPTURE(message);
        CHECK(starts_with(message, c.prefix));
        CHECK(contains(message, c.fragment));
        CHECK_FALSE(contains(message, "\n"));
    }
}

TEST_CASE("parse_config reports the first error in file order") {
    const std::string message = parse_failure(
        "[templates.zeta]\nimage = \"a\"\nttl = \"bad\"\n[templates.alpha]\nimgae = \"a\"\n");
    CHECK(starts_with(message, "jitbox.toml:3:7: templates.zeta.ttl: "));
}

TEST_CASE("parse_config names the embedded default as <default>") {
    const auto config = parse_config("[templates.db]\nttl = \"x\"\n", fs::path());
    REQUIRE_FALSE(config.ok());
    CHECK(starts_with(config.error().message, "<default>:2:7: templates.db.ttl: "));
}

TEST_CASE("default_config values") {
    const Config config = default_config();
    CHECK(config.path.empty());
    CHECK(config.default_template == "scratch");
    REQUIRE(config.templates.size() == 1);
    const Template& scratch = config.templates.at("scratch");
    CHECK(scratch.origin.rfind("<default>:", 0) == 0);
    CHECK(scratch.provider == "docker");
    CHECK(scratch.image == "busybox:1.36");
    CHECK(scratch.command == std::vector<std::string>{"sleep", "infinity"});
    CHECK(scratch.network == NetworkMode::none);
    CHECK(scratch.read_only);
    CHECK(scratch.cap_add.empty());
    CHECK(scratch.user == "65534:65534");
    CHECK(scratch.pids_limit == 64);
    CHECK(scratch.memory_bytes == 256 * 1024 * 1024);
    REQUIRE(scratch.cpus.has_value());
    CHECK(*scratch.cpus == doctest::Approx(1.0));
    CHECK(scratch.ttl == 30min);
    CHECK(scratch.max_ttl == 4h);
    CHECK(scratch.labels.empty());
    CHECK(scratch.workdir.empty());
    CHECK(scratch.mounts.empty());
    CHECK(scratch.ports.empty());
}

TEST_CASE("default_config_text parses") {
    CHECK(contains(std::string(default_config_text()), "[templates.scratch]"));
    CHECK(parse_config(default_config_text(), "jitbox.toml").ok());
}

TEST_CASE("network_mode_name spellings") {
    CHECK(network_mode_name(NetworkMode::none) == "none");
    CHECK(network_mode_name(NetworkMode::isolated) == "isolated");
    CHECK(network_mode_name(NetworkMode::bridge) == "bridge");
    CHECK(network_mode_name(NetworkMode::host) == "host");
}

TEST_CASE("parse_config reads host access keys") {
    const Config config = parse_valid(R"([templates.db]
image = "postgres:16"
network = "host"
privileged = true
pid = "host"
ipc = "none"
cap_drop = ["ALL", "CAP_NET_RAW"]
devices = ["/dev/fuse", "/dev/sdc:/dev/xvdc:r"]
)");
    const Template& db = config.templates.at("db");
    CHECK(db.network == NetworkMode::host);
    CHECK(db.privileged);
    CHECK(db.pid == "host");
    CHECK(db.ipc == "none");
    CHECK(db.cap_drop == std::vector<std::string>{"ALL", "NET_RAW"});
    REQUIRE(db.devices.size() == 2);
    CHECK(db.devices[0].host_path == "/dev/fuse");
    CHECK(db.devices[0].container_path == "/dev/fuse");
    CHECK(db.devices[0].permissions == "rwm");
    CHECK(db.devices[0].origin == "jitbox.toml:8:12");
    CHECK(db.devices[1].container_path == "/dev/xvdc");
    CHECK(db.devices[1].permissions == "r");
}

TEST_CASE("parse_config host access defaults") {
    const Config config =
        parse_valid("[templates.db]\nimage = \"postgres:16\"\npid = \"private\"\n");
    const Template& db = config.templates.at("db");
    CHECK_FALSE(db.privileged);
    CHECK(db.pid.empty());
    CHECK(db.ipc.empty());
    CHECK(db.cap_drop == std::vector<std::string>{"ALL"});
    CHECK(db.devices.empty());
}

TEST_CASE("parse_config reads guardrails") {
    const Config config = parse_valid(R"([guardrails]
images = ["docker.io/library/*", "busybox:*"]
mount_sources = ["/srv/data/"]
privileged = false
host_namespaces = false
devices = false
capabilities = ["CAP_NET_BIND_SERVICE"]
max_memory = "1GiB"
max_cpus = 2
max_pids = 512
max_ttl = "8h"
max_live_per_user = 3
)");
    const Guardrails& guardrails = config.guardrails;
    CHECK(guardrails.present());
    CHECK(guardrails.origin == "jitbox.toml:1:1");
    CHECK(guardrails.images == std::vector<std::string>{"docker.io/library/*", "busybox:*"});
    CHECK(guardrails.mount_sources == std::vector<std::string>{"/srv/data"});
    CHECK(guardrails.privileged == false);
    CHECK(guardrails.host_namespaces == false);
    CHECK(guardrails.devices == false);
    CHECK(guardrails.capabilities == std::vector<std::string>{"NET_BIND_SERVICE"});
    CHECK(guardrails.max_memory == 1024LL * 1024 * 1024);
    CHECK(guardrails.max_cpus == 2.0);
    CHECK(guardrails.max_pids == 512);
    CHECK(guardrails.max_ttl == 8h);
    CHECK(guardrails.max_live_per_user == 3);
    CHECK(guardrails.origins.at("images") == "jitbox.toml:2:10");
    CHECK(guardrails.origins.at("max_ttl") == "jitbox.toml:11:11");
}

TEST_CASE("parse_config without guardrails") {
    const Config config = parse_valid("");
    CHECK_FALSE(config.guardrails.present());
    CHECK_FALSE(config.guardrails.images);
}

TEST_CASE("parse_device forms") {
    const auto plain = parse_device("/dev/fuse");
    REQUIRE(plain.ok());
    CHECK(plain->container_path == "/dev/fuse");
    CHECK(plain->permissions == "rwm");
    const auto renamed = parse_device("/dev/sdc:/dev/xvdc:mw");
    REQUIRE(renamed.ok());
    CHECK(renamed->container_path == "/dev/xvdc");
    CHECK(renamed->permissions == "mw");
    for (const std::string_view bad : {"dev/fuse", "/dev/", "/dev/../etc/shadow", "/dev/a:rel",
                                       "/dev/a:/dev/a:", "/dev/a:/dev/a:rr", "/dev/a b"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_device(bad).ok());
    }
}

TEST_CASE("parse_size values") {
    struct Case {
        std::string text;
        std::int64_t expected;
    };
    const std::vector<Case> cases{
        {"1", 1},
        {"100000000", 100000000},
        {"512B", 512},
        {"1k", 1024},
        {"1K", 1024},
        {"1KiB", 1024},
        {"1KB", 1000},
        {"512MiB", 512LL * 1024 * 1024},
        {"512 MiB", 512LL * 1024 * 1024},
        {"512m", 512LL * 1024 * 1024},
        {"3MB", 3000000},
        {"2GiB", 2LL * 1024 * 1024 * 1024},
        {"1.5g", 1536LL * 1024 * 1024},
        {"0.5KiB", 512},
        {"2GB", 2000000000},
        {"1TiB", 1024LL * 1024 * 1024 * 1024},
        {"1TB", 1000LL * 1000 * 1000 * 1000},
        {"4t", 4LL * 1024 * 1024 * 1024 * 1024},
    };
    for (const Case& c : cases) {
        CAPTURE(c.text);
        const auto size = parse_size(c.text);
        REQUIRE(size.ok());
        CHECK(*size == c.expected);
    }
}

TEST_CASE("parse_size rejects invalid sizes") {
    struct Case {
        std::string text;
        std::string fragment;
    };
    const std::vector<Case> cases{
        {"", "use a positive number with a unit"},
        {"MiB", "use a positive number with a unit"},
        {"5XB", "use a positive number with a unit"},
        {"5mib", "use a positive number with a unit"},
        {"5  MiB", "use a positive number with a unit"},
        {"1.MiB", "use a positive number with a unit"},
        {".5MiB", "use a positive number with a unit"},
        {"-1g", "remove the sign"},
        {"+1g", "remove the sign"},
        {"0", "greater than zero"},
        {"0MiB", "greater than zero"},
        {"0.0000001KiB", "greater than zero"},
        {"1.5", "a number of bytes must be whole"},
        {"1.5B", "a number of bytes must be whole"},
        {"9223372036854775807", "too large"},
        {"99999999999999999999", "too large"},
        {"8388608TiB", "too large"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.text);
        const auto size = parse_size(c.text);
        REQUIRE_FALSE(size.ok());
        CHECK(size.error().code == ExitCode::usage);
        CHECK(starts_with(size.error().message, "invalid size \"" + c.text + "\": "));
        CHECK(contains(size.error().message, c.fragment));
    }
}

TEST_CASE("parse_port forms") {
    struct Case {
        std::string text;
        PortSpec expected;
    };
    const std::vector<Case> cases{
        {"5432", {"127.0.0.1", "", "5432", "tcp"}},
        {"15432:5432", {"127.0.0.1", "15432", "5432", "tcp"}},
        {"127.0.0.1:15432:5432", {"127.0.0.1", "15432", "5432", "tcp"}},
        {"0.0.0.0::5432", {"0.0.0.0", "", "5432", "tcp"}},
        {"53/udp", {"127.0.0.1", "", "53", "udp"}},
        {"0.0.0.0:53:53/udp", {"0.0.0.0", "53", "53", "udp"}},
        {"9000/sctp", {"127.0.0.1", "", "9000", "sctp"}},
        {"[::1]:8080:80", {"::1", "8080", "80", "tcp"}},
        {"[::]::80/tcp", {"::", "", "80", "tcp"}},
        {"1", {"127.0.0.1", "", "1", "tcp"}},
        {"65535:065535", {"127.0.0.1", "65535", "65535", "tcp"}},
    };
    for (const Case& c : cases) {
        CAPTURE(c.text);
        const auto port = parse_port(c.text);
        INFO((port.ok() ? "" : port.error().message));
        REQUIRE(port.ok());
        CHECK(port->host_ip == c.expected.host_ip);
        CHECK(port->host_port == c.expected.host_port);
        CHECK(port->container_port == c.expected.container_port);
        CHECK(port->protocol == c.expected.protocol);
    }
}

TEST_CASE("parse_port rejects invalid ports") {
    struct Case {
        std::string text;
        std::string fragment;
    };
    const std::vector<Case> cases{
        {"", "use [[HOST_IP:]HOST_PORT:]CONTAINER_PORT[/PROTOCOL]"},
        {"/tcp", "use [[HOST_IP:]HOST_PORT:]CONTAINER_PORT[/PROTOCOL]"},
        {"0", "container port \"0\" is not a number from 1 to 65535"},
        {"65536", "container port \"65536\""},
        {"-1", "port ranges are not supported"},
        {"+80", "container port \"+80\""},
        {"http", "container port \"http\""},
        {"8000-8010", "port ranges are not supported"},
        {"15432:", "container port \"\""},
        {"0:5432", "host port \"0\""},
        {"x:5432", "host port \"x\""},
        {"1.2.3:80:80", "host address \"1.2.3\" is not an IPv4 or IPv6 address"},
        {":80:80", "host address \"\""},
        {"localhost:80:80", "host address \"localhost\""},
        {"::1:8080:80", "use [[HOST_IP:]HOST_PORT:]CONTAINER_PORT[/PROTOCOL]"},
        {"[::1:8080:80", "use [[HOST_IP:]HOST_PORT:]CONTAINER_PORT[/PROTOCOL]"},
        {"[::1]:1:2:3", "use [[HOST_IP:]HOST_PORT:]CONTAINER_PORT[/PROTOCOL]"},
        {"53/icmp", "unknown protocol \"icmp\", use tcp, udp or sctp"},
        {"53/UDP", "unknown protocol \"UDP\""},
        {"53/", "unknown protocol \"\""},
    };
    for (const Case& c : cases) {
        CAPTURE(c.text);
        const auto port = parse_port(c.text);
        REQUIRE_FALSE(port.ok());
        CHECK(port.error().code == ExitCode::usage);
        CHECK(starts_with(port.error().message, "invalid port \"" + c.text + "\": "));
        CHECK(contains(port.error().message, c.fragment));
    }
}

TEST_CASE("closest_name suggestions") {
    const std::vector<std::string> known{"image", "ttl", "max_ttl", "memory", "default_template"};
    CHECK(closest_name("imgae", known) == "image");
    CHECK(closest_name("image", known) == "image");
    CHECK(closest_name("tll", known) == "ttl");
    CHECK(closest_name("maxttl", known) == "max_ttl");
    CHECK(closest_name("memroy", known) == "memory");
    CHECK(closest_name("defualt_tempalte", known) == "default_template");
    CHECK(closest_name("frobnicate", known).empty());
    CHECK(closest_name("x", known).empty());
    CHECK(closest_name("imgae", {}).empty());
}

TEST_CASE("edit_distance counts an adjacent swap as one edit") {
    struct Case {
        std::string from;
        std::string to;
        std::size_t distance;
    };
    const std::vector<Case> cases{
        {"", "", 0},
        {"", "up", 2},
        {"status", "status", 0},
        {"stauts", "status", 1}, // one swap, where Levenshtein counts two substitutions
        {"imgae", "image", 1},
        {"statsu", "status", 1},
        {"tatus", "status", 1},
        {"statuss", "status", 1},
        {"stXtus", "status", 1},
        {"ab", "ba", 1},
        {"abc", "ca", 3}, // no character is edited twice, so not 2
        {"kitten", "sitting", 3},
        {"defualt_tempalte", "default_template", 2},
    };
    for (const auto& c : cases) {
        CAPTURE(c.from);
        CAPTURE(c.to);
        CHECK(edit_distance(c.from, c.to) == c.distance);
        CHECK(edit_distance(c.to, c.from) == c.distance);
    }
}

TEST_CASE("closest_name allows one edit per three characters") {
    const std::vector<std::string> commands{"up", "down", "status", "extend", "templates",
                                            "policy", "gc", "reap", "audit", "creds", "env",
                                            "exec"};
    CHECK(closest_name("stauts", commands) == "status");
    CHECK(closest_name("polcy", commands) == "policy");
    CHECK(closest_name("tempaltes", commands) == "templates");
    CHECK(closest_name("dwon", commands) == "down");
    CHECK(closest_name("upp", commands) == "up");
    // Two edits turn any two-letter word into "up", so a short typo suggests nothing.
    CHECK(closest_name("xx", commands).empty());
    CHECK(closest_name("st", commands).empty());
    CHECK(closest_name("stat", commands).empty()); // two edits short of "status"
    CHECK(closest_name("", commands).empty());
    // A tie goes to the name listed first.
    CHECK(closest_name("exe", {"exec", "exet"}) == "exec");
    CHECK(closest_name("exe", {"exet", "exec"}) == "exet");
}

TEST_CASE("find_config precedence") {
    TempDir dir;
    const fs::path explicit_file = dir.path() / "explicit.toml";
    const fs::path env_file = dir.path() / "env.toml";
    const fs::path found_file = dir.path() / k_config_file_name;
    write_file(explicit_file, "");
    write_file(env_file, "");
    write_file(found_file, "");

    ConfigRequest request;
    request.working_dir = dir.path();
    SUBCASE("--config wins over JITBOX_CONFIG and the search") {
        request.explicit_path = explicit_file;
        request.env_path = env_file;
        CHECK(*find_config(request) == explicit_file);
    }
    SUBCASE("JITBOX_CONFIG wins over the search") {
        request.env_path = env_file;
        CHECK(*find_config(request) == env_file);
    }
    SUBCASE("an empty JITBOX_CONFIG is ignored") {
        request.env_path = fs::path();
        CHECK(*find_config(request) == found_file);
    }
    SUBCASE("the search finds jitbox.toml in the working folder") {
        CHECK(*find_config(request) == found_file);
    }
}

TEST_CASE("find_config searches parent folders") {
    TempDir dir;
    const fs::path nested = dir.path() / "a" / "b" / "c";
    fs::create_directories(nested);
    ConfigRequest request;
    request.working_dir = nested;

    SUBCASE("the nearest jitbox.toml wins") {
        write_file(dir.path() / "a" / k_config_file_name, "");
        write_file(dir.path() / k_config_file_name, "");
        CHECK(*find_config(request) == dir.path() / "a" / k_config_file_name);
    }
    SUBCASE("a folder named jitbox.toml is skipped") {
        fs::create_directories(dir.path() / "a" / "b" / k_config_file_name);
        write_file(dir.path() / k_config_file_name, "");
        CHECK(*find_config(request) == dir.path() / k_config_file_name);
    }
    SUBCASE("a relative working folder is made absolute") {
        write_file(dir.path() / "a" / k_config_file_name, "");
        const fs::path previous = fs::current_path();
        fs::current_path(dir.path() / "a");
        request.working_dir = "b/c/..";
        const auto found = find_config(request);
        fs::current_path(previous);
        CHECK(*found == dir.path() / "a" / k_config_file_name);
    }
    SUBCASE("no jitbox.toml gives an empty path") {
        for (fs::path folder = dir.path(); folder != folder.parent_path();
             folder = folder.parent_path()) {
            INFO("a jitbox.toml above the temp folder breaks this test: " << folder);
            REQUIRE_FALSE(fs::exists(folder.parent_path() / k_config_file_name));
        }
        const auto found = find_config(request);
        REQUIRE(found.ok());
        CHECK(found->empty());
    }
}

TEST_CASE("find_config rejects a missing named file") {
    ConfigRequest request;
    SUBCASE("--config") {
        request.explicit_path = "./x.toml";
        const auto found = find_config(request);
        REQUIRE_FALSE(found.ok());
        CHECK(found.error().code == ExitCode::usage);
        CHECK(found.error().message == "config file \"./x.toml\" not found (check --config)");
    }
    SUBCASE("JITBOX_CONFIG") {
        request.env_path = "/nonexistent/jitbox.toml";
        const auto found = find_config(request);
        REQUIRE_FALSE(found.ok());
        CHECK(found.error().message ==
              "config file \"/nonexistent/jitbox.toml\" not found (check JITBOX_CONFIG)");
    }
    SUBCASE("a folder") {
        TempDir dir;
        request.explicit_path = dir.path();
        const auto found = find_config(request);
        REQUIRE_FALSE(found.ok());
        CHECK(contains(found.error().message, "is a folder, not a file (check --config)"));
    }
}

TEST_CASE("find_config rejects a found file owned by another user") {
    if (::geteuid() != 0) {
        MESSAGE("skipped: changing a file's owner needs root");
        return;
    }
    TempDir dir;
    const fs::path file = dir.path() / k_config_file_name;
    write_file(file, "");
    REQUIRE(::chown(file.c_str(), 65534, 65534) == 0);
    ConfigRequest request;
    request.working_dir = dir.path();

    const auto found = find_config(request);
    REQUIRE_FALSE(found.ok());
    CHECK(contains(found.error().message, "is owned by another user (uid 65534)"));
    CHECK(contains(found.error().message, "--config"));

    request.explicit_path = file;
    CHECK(find_config(request).ok());
}

TEST_CASE("load_config reads the file") {
    TempDir dir;
    const fs::path file = dir.path() / k_config_file_name;
    write_file(file, std::string(k_full_example));
    ConfigRequest request;
    request.working_dir = dir.path() / "sub";
    fs::create_directories(request.working_dir);

    const auto config = load_config(request);
    INFO((config.ok() ? "" : config.error().message));
    REQUIRE(config.ok());
    CHECK(config->path == file);
    const Template& db = config->templates.at("db");
    CHECK(db.origin == file.string() + ":1:1");
    CHECK(db.mounts.at(0).source == dir.path() / "fixtures");
}

TEST_CASE("load_config errors name the file as given") {
    TempDir dir;
    write_file(dir.path() / "bad.toml", "[templates.db]\nimage = \"a\"\nttl = \"5x\"\n");
    const fs::path previous = fs::current_path();
    fs::current_path(dir.path());
    ConfigRequest request;
    request.explicit_path = "./bad.toml";
    const auto config = load_config(request);
    fs::current_path(previous);

    REQUIRE_FALSE(config.ok());
    CHECK(config.error().code == ExitCode::usage);
    CHECK(starts_with(config.error().message, "./bad.toml:3:7: templates.db.ttl: "));
}

TEST_CASE("load_config without a file uses the default") {
    TempDir dir;
    ConfigRequest request;
    request.working_dir = dir.path();
    const auto config = load_config(request);
    REQUIRE(config.ok());
    CHECK(config->path.empty());
    CHECK(config->default_template == "scratch");
    CHECK(config->templates.count("scratch") == 1);
}

TEST_CASE("load_config reports an unreadable file") {
    if (::geteuid() == 0) {
        MESSAGE("skipped: root reads files regardless of their mode");
        return;
    }
    TempDir dir;
    const fs::path file = dir.path() / "locked.toml";
    write_file(file, "");
    fs::permissions(file, fs::perms::none);
    ConfigRequest request;
    request.explicit_path = file;

    const auto config = load_config(request);
    REQUIRE_FALSE(config.ok());
    CHECK(config.error().code == ExitCode::usage);
    CHECK(config.error().message ==
          "failed to read config file \"" + file.string() + "\": Permission denied");
}

} // TEST_SUITE("config")

} // namespace jitbox
