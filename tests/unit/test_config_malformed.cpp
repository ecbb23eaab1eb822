// Malformed configuration and policy files, loaded the way every command loads them. Each case
// writes a project file, and a system file where it needs one, into a temp folder. Then
// load_layered_config must fail with exactly the expected line and exit code.

#include "jitbox/policy/layers.hpp"
#include "temp_dir.hpp"

#include <cstring>
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace fs = std::filesystem;

namespace jitbox {
namespace {

using test::TempDir;
using test::write_file;

// The start of most cases: a valid docker template whose next key is on line 3.
const std::string k_head = "[templates.db]\nimage = \"busybox:1.36\"\n";
const std::string k_sts_head = "[templates.db]\nprovider = \"aws-sts\"\n"
                               "role_arn = \"arn:aws:iam::123456789012:role/dev\"\n";
const std::string k_ec2_head = "[templates.db]\nprovider = \"aws-ec2\"\n"
                               "image_id = \"ami-0123456789abcdef0\"\ninstance_type = \"t3.micro\"\n";

struct MalformedCase {
    std::string name;
    std::string text; // the project file, written to $D/jitbox.toml
    // The whole expected message. "$D" stands for the temp folder.
    std::string error;
    ExitCode code = ExitCode::usage;
    std::string system_text;                         // the system file, when not empty
    mode_t mode = 0644;                              // of the project file
    std::vector<std::pair<std::string, std::string>> links; // $D/NAME -> TARGET
};

std::string replace_folder(std::string text, const std::string& folder) {
    for (std::size_t at = text.find("$D"); at != std::string::npos; at = text.find("$D", at)) {
        text.replace(at, 2, folder);
        at += folder.size();
    }
    return text;
}

LayeredConfigRequest request_in(const fs::path& dir) {
    LayeredConfigRequest request;
    request.project.explicit_path = dir / "jitbox.toml";
    request.project.working_dir = dir;
    request.system_path = dir / "system.toml";
    request.trusted_keys_dir = dir / "trusted-keys";
    request.required_owner = ::geteuid();
    request.home = dir / "home";
    return request;
}

std::vector<MalformedCase> malformed_cases() {
    return {
        // ---- wrong types ----
        {"default_template not a string", "default_template = 5\n",
         "$D/jitbox.toml:1:20: default_template: expected a string, found integer"},
        {"command not an array", k_head + "command = \"sleep 1\"\n",
         "$D/jitbox.toml:3:11: templates.db.command: expected an array of strings, found string"},
        {"pids_limit as a string", k_head + "pids_limit = \"64\"\n",
         "$D/jitbox.toml:3:14: templates.db.pids_limit: expected an integer, found string"},
        {"templates not a table", "templates = 3\n",
         "$D/jitbox.toml:1:13: templates: expected a table, found integer"},
        {"ttl as a number", k_head + "ttl = 30\n",
         "$D/jitbox.toml:3:7: templates.db.ttl: expected a duration string such as \"30m\", "
         "found integer"},
        {"require_signed as a string", "[policy]\nrequire_signed = \"yes\"\n",
         "$D/jitbox.toml:2:18: policy.require_signed: expected a boolean (true or false), found "
         "string"},

        // ---- duplicate keys and redefined tables ----
        {"duplicate key", k_head + "image = \"redis:7\"\n",
         "$D/jitbox.toml:3:9: invalid TOML: Error while parsing key-value pair: cannot redefine "
         "existing string 'image'"},
        {"redefined table", k_head + "[templates.db]\nimage = \"redis:7\"\n",
         "$D/jitbox.toml:3:1: invalid TOML: Error while parsing table header: cannot redefine "
         "existing table 'templates.db'"},
        {"policy table defined twice", "[policy]\nmax_ttl = \"1h\"\n[policy]\n",
         "$D/jitbox.toml:3:1: invalid TOML: Error while parsing table header: cannot redefine "
         "existing table 'policy'"},

        // ---- out-of-range integers ----
        {"zero pids_limit", k_head + "pids_limit = 0\n",
         "$D/jitbox.toml:3:14: templates.db.pids_limit: invalid pids_limit 0: use an integer of "
         "at least 1, such as 256"},
        {"integer beyond 64 bits", k_head + "pids_limit = 9223372036854775808\n",
         "$D/jitbox.toml:3:33: invalid TOML: Error while parsing decimal integer: "
         "'9223372036854775808' is not representable in 64 bits"},
        {"too many cpus", k_head + "cpus = 2000\n",
         "$D/jitbox.toml:3:8: templates.db.cpus: invalid cpus 2000: use a number greater than 0 "
         "and at most 1024, such as 1.5"},
        {"secret too short", k_head + "[templates.db.secrets]\nTOKEN = { length = 8 }\n",
         "$D/jitbox.toml:4:20: templates.db.secrets.TOKEN.length: invalid length 8: use 16 to "
         "256 characters, such as 32"},
        {"max_active zero",
         k_head + "[[roles]]\nname = \"dev\"\nmembers = [\"group:dev\"]\ntemplates = [\"db\"]\n"
                  "max_active = 0\n",
         "$D/jitbox.toml:7:14: roles[0].max_active: invalid max_active 0: use an integer from 1 "
         "to 10000"},

        // ---- durations and sizes ----
        {"duration in words", k_head + "ttl = \"90 minutes\"\n",
         "$D/jitbox.toml:3:7: templates.db.ttl: invalid duration \"90 minutes\": use a number "
         "with a unit (d, h, m, s), such as 30m or 1h30m"},
        {"zero ttl", k_head + "ttl = \"0s\"\n",
         "$D/jitbox.toml:3:7: templates.db.ttl: invalid duration \"0s\": use a duration greater "
         "than zero, such as 30m"},
        {"fractional duration", k_head + "max_ttl = \"1.5h\"\n",
         "$D/jitbox.toml:3:11: templates.db.max_ttl: invalid duration \"1.5h\": use whole "
         "numbers, such as 1h30m instead of 1.5h"},
        {"ttl above max_ttl", k_head + "ttl = \"2h\"\nmax_ttl = \"1h\"\n",
         "$D/jitbox.toml:3:7: templates.db.ttl: ttl 2h is longer than max_ttl 1h, lower ttl or "
         "raise max_ttl"},
        {"unknown size unit", k_head + "memory = \"1gb\"\n",
         "$D/jitbox.toml:3:10: templates.db.memory: invalid size \"1gb\": use a positive number "
         "with a unit (B, KiB, MiB, GiB, TiB or KB, MB, GB, TB), such as 512MiB"},
        {"memory below minimum", k_head + "memory = \"4MiB\"\n",
         "$D/jitbox.toml:3:10: templates.db.memory: memory of 4194304 bytes is below the minimum "
         "of 6MiB (6291456 bytes) that the Docker engine accepts"},

        // ---- names ----
        {"upper-case template name", "[templates.DB]\nimage = \"a\"\n",
         "$D/jitbox.toml:1:12: templates.DB: invalid template name \"DB\": use 1 to 63 "
         "lower-case letters, digits, '_', '.' or '-', starting with a letter or digit"},
        {"undefined default_template", "default_template = \"dbb\"\n" + k_head,
         "$D/jitbox.toml:1:20: default_template: template \"dbb\" is not defined (did you mean "
         "\"db\"?)"},
        {"role name starting with a dash",
         "[[roles]]\nname = \"-dev\"\nmembers = [\"group:dev\"]\ntemplates = [\"*\"]\n",
         "$D/jitbox.toml:2:8: roles[0].name: invalid name \"-dev\": use 1 to 63 letters, "
         "digits, '_', '.' or '-', starting with a letter or digit"},
        {"image reference with a path", k_head + "[templates.web]\nimage = \"../containers/x\"\n",
         "$D/jitbox.toml:4:9: templates.web.image: invalid image \"../containers/x\": use a "
         "Docker image reference of lower-case path components with an optional registry, tag "
         "and digest, such as \"postgres:16\" or \"registry.example.com:5000/team/app:1.4\""},

        // ---- unknown keys ----
        {"misspelled template key", k_head + "memroy = \"1GiB\"\n",
         "$D/jitbox.toml:3:1: templates.db.memroy: unknown key \"memroy\" (did you mean "
         "\"memory\"?)"},
        {"misspelled top-level key", "templtes = {}\n",
         "$D/jitbox.toml:1:1: templtes: unknown key \"templtes\" (did you mean \"templates\"?)"},
        {"misspelled policy key", "[policy]\nmax_tll = \"1h\"\n",
         "$D/jitbox.toml:2:1: policy.max_tll: unknown key \"max_tll\" (did you mean "
         "\"max_ttl\"?)"},
        {"misspelled mount key",
         k_head + "mounts = [{ source = \"data\", target = \"/data\", writeable = true }]\n",
         "$D/jitbox.toml:3:48: templates.db.mounts[0].writeable: unknown key \"writeable\" (did "
         "you mean \"writable\"?)"},

        // ---- ports ----
        {"port out of range", k_head + "network = \"isolated\"\nports = [\"99999\"]\n",
         "$D/jitbox.toml:4:10: templates.db.ports[0]: invalid port \"99999\": container port "
         "\"99999\" is not a number from 1 to 65535"},
        {"host name in a port", k_head + "network = \"bridge\"\nports = [\"db.local:80:80\"]\n",
         "$D/jitbox.toml:4:10: templates.db.ports[0]: invalid port \"db.local:80:80\": host "
         "address \"db.local\" is not an IPv4 or IPv6 address, such as 127.0.0.1 or [::1]"},
        {"ports without a network", k_head + "ports = [\"5432\"]\n",
         "$D/jitbox.toml:3:9: templates.db.ports: publishing ports needs a network, set network "
         "= \"isolated\" or \"bridge\""},

        // ---- mounts ----
        {"relative mount target", k_head + "mounts = [{ source = \"data\", target = \"data\" }]\n",
         "$D/jitbox.toml:3:39: templates.db.mounts[0].target: invalid mount target \"data\": use "
         "an absolute path below /, such as \"/fixtures\""},
        {"mount source with tilde", k_head + "mounts = [{ source = \"~/x\", target = \"/x\" }]\n",
         "$D/jitbox.toml:3:22: templates.db.mounts[0].source: invalid mount source \"~/x\": '~' "
         "is not expanded, use an absolute path or one relative to the config file's folder"},
        {"docker socket",
         k_head + "mounts = [{ source = \"/var/run/docker.sock\", target = \"/s\" }]\n",
         "$D/jitbox.toml:3:22: templates.db.mounts[0].source: mount source "
         "\"/var/run/docker.sock\" is a socket, such as the Docker engine's, through which the "
         "sandbox could control the host; remove the mount, or set allow_sensitive = true on it "
         "and allow_sensitive_mounts = true in [policy]"},
        {"root file system", k_head + "mounts = [{ source = \"/\", target = \"/host\" }]\n",
         "$D/jitbox.toml:3:22: templates.db.mounts[0].source: mount source \"/\" is the host's "
         "root file system; remove the mount, or set allow_sensitive = true on it and "
         "allow_sensitive_mounts = true in [policy]"},
        {"etc through dot-dot",
         k_head + "mounts = [{ source = \"../../../../../../../../etc\", target = \"/e\" }]\n",
         "$D/jitbox.toml:3:22: templates.db.mounts[0].source: mount source \"/etc\" is /etc, "
         "the host's system configuration; remove the mount, or set allow_sensitive = true on "
         "it and allow_sensitive_mounts = true in [policy]"},
        {"file inside /etc", k_head + "mounts = [{ source = \"/etc/shadow\", target = \"/s\" }]\n",
         "$D/jitbox.toml:3:22: templates.db.mounts[0].source: mount source \"/etc/shadow\" is "
         "inside /etc, the host's system configuration; remove the mount, or set "
         "allow_sensitive = true on it and allow_sensitive_mounts = true in [policy]"},
        {"proc through a symbolic link",
         k_head + "mounts = [{ source = \"kernel\", target = \"/k\" }]\n",
         "$D/jitbox.toml:3:22: templates.db.mounts[0].source: mount source \"$D/kernel\" "
         "resolves to /proc, which is /proc, the host's process and kernel information; remove "
         "the mount, or set allow_sensitive = true on it and allow_sensitive_mounts = true in "
         "[policy]",
         ExitCode::usage,
         "",
         0644,
         {{"kernel", "/proc"}}},
        {"own home folder", k_head + "mounts = [{ source = \"home\", target = \"/h\" }]\n",
         "$D/jitbox.toml:3:22: templates.db.mounts[0].source: mount source \"$D/home\" is your "
         "home folder, with your SSH keys and credentials; remove the mount, or set "
         "allow_sensitive = true on it and allow_sensitive_mounts = true in [policy]"},
        {"another user's home",
         k_head + "mounts = [{ source = \"/home/someone-else/.ssh\", target = \"/s\" }]\n",
         "$D/jitbox.toml:3:22: templates.db.mounts[0].source: mount source "
         "\"/home/someone-else/.ssh\" is inside another user's home folder; remove the mount, "
         "or set allow_sensitive = true on it and allow_sensitive_mounts = true in [policy]"},
        {"folder that contains the docker socket",
         k_head + "mounts = [{ source = \"/var\", target = \"/v\" }]\n",
         "$D/jitbox.toml:3:22: templates.db.mounts[0].source: mount source \"/var\" is a folder "
         "that contains /var/run/docker.sock, the Docker engine's socket; remove the mount, or "
         "set allow_sensitive = true on it and allow_sensitive_mounts = true in [policy]"},
        {"allow_sensitive without the policy switch",
         k_head + "mounts = [{ source = \"/dev\", target = \"/d\", allow_sensitive = true }]\n",
         "$D/jitbox.toml:3:22: templates.db.mounts[0].source: mount source \"/dev\" is /dev, "
         "the host's devices, and it sets allow_sensitive = true, but no policy sets "
         "allow_sensitive_mounts = true; set it in [policy] or remove the mount"},
        {"system policy forbids sensitive mounts",
         "[policy]\nallow_sensitive_mounts = true\n" + k_head +
             "mounts = [{ source = \"/boot\", target = \"/b\", allow_sensitive = true }]\n",
         "$D/jitbox.toml:5:22: templates.db.mounts[0].source: mount source \"/boot\" is /boot, "
         "the host's kernel and boot loader, and the system policy forbids sensitive mounts with "
         "allow_sensitive_mounts = false ($D/system.toml:2:26); remove the mount or ask an "
         "administrator",
         ExitCode::denied,
         "[policy]\nallow_sensitive_mounts = false\n"},
        {"allow_sensitive not a boolean",
         k_head + "mounts = [{ source = \"/dev\", target = \"/d\", allow_sensitive = 1 }]\n",
         "$D/jitbox.toml:3:63: templates.db.mounts[0].allow_sensitive: expected a boolean (true "
         "or false), found integer"},

        // ---- roles and deny rules ----
        {"role without members", "[[roles]]\nname = \"dev\"\ntemplates = [\"*\"]\n",
         "$D/jitbox.toml:1:1: roles[0]: missing required key \"members\", such as members = "
         "[\"group:dev\"]"},
        {"unknown member kind",
         "[[roles]]\nname = \"dev\"\nmembers = [\"team:dev\"]\ntemplates = [\"*\"]\n",
         "$D/jitbox.toml:3:12: roles[0].members[0]: invalid member \"team:dev\": use "
         "user:NAME, group:NAME or uid:NUMBER"},
        {"unknown action",
         "[[roles]]\nname = \"dev\"\nmembers = [\"group:dev\"]\ntemplates = [\"*\"]\n"
         "actions = [\"delete\"]\n",
         "$D/jitbox.toml:5:12: roles[0].actions[0]: unknown action \"delete\": use up, down, "
         "extend, exec, status-all or down-others"},
        {"deny glob matching no template",
         k_head + "[[deny]]\nname = \"prod\"\ntemplates = [\"prod-*\"]\n",
         "$D/jitbox.toml:5:14: deny[0].templates[0]: template glob \"prod-*\" matches no "
         "template defined in this file (templates: db)"},
        {"hours without minutes",
         "[[deny]]\nname = \"night\"\nwhen = { hours = \"8-19\" }\n",
         "$D/jitbox.toml:3:18: deny[0].when.hours: invalid hours \"8-19\": use HH:MM-HH:MM with "
         "times from 00:00 to 24:00, such as \"08:00-19:00\""},
        {"duplicate role name",
         "[[roles]]\nname = \"dev\"\nmembers = [\"group:dev\"]\ntemplates = [\"*\"]\n"
         "[[roles]]\nname = \"dev\"\nmembers = [\"group:ops\"]\ntemplates = [\"*\"]\n",
         "$D/jitbox.toml:6:8: roles[1].name: duplicate name \"dev\": the [[roles]] at "
         "$D/jitbox.toml:1:1 has it already, rename one of them"},

        // ---- AWS keys ----
        {"bad region", k_sts_head + "region = \"europe\"\n",
         "$D/jitbox.toml:4:10: templates.db.region: invalid region \"europe\": use an AWS region "
         "name, such as \"eu-central-1\""},
        {"role ARN with a short account",
         "[templates.db]\nprovider = \"aws-sts\"\nrole_arn = \"arn:aws:iam::12:role/dev\"\n",
         "$D/jitbox.toml:3:12: templates.db.role_arn: invalid role_arn "
         "\"arn:aws:iam::12:role/dev\": use an IAM role ARN, such as "
         "\"arn:aws:iam::123456789012:role/dev\""},
        {"endpoint URL with credentials",
         k_sts_head + "endpoint_url = \"https://user:pw@sts.example.com\"\n",
         "$D/jitbox.toml:4:16: templates.db.endpoint_url: invalid endpoint_url "
         "\"https://user:pw@sts.example.com\": remove the user name and password, credentials "
         "come from the AWS profile"},
        {"endpoint URL with a control character",
         k_sts_head + "endpoint_url = \"https://sts.example.com/a\\u0001b\"\n",
         "$D/jitbox.toml:4:16: templates.db.endpoint_url: invalid endpoint_url "
         "\"https://sts.example.com/a\\x01b\": remove the white space, control and non-ASCII "
         "characters (percent-encode them)"},
        {"subnet id with upper case", k_ec2_head + "subnet_id = \"subnet-XYZ\"\n",
         "$D/jitbox.toml:5:13: templates.db.subnet_id: invalid subnet id \"subnet-XYZ\": use "
         "\"subnet-\" and up to 32 lower-case hex digits, such as \"subnet-0123456789abcdef0\""},
        {"AWS key in a docker template",
         k_head + "role_arn = \"arn:aws:iam::123456789012:role/dev\"\n",
         "$D/jitbox.toml:3:12: templates.db.role_arn: key \"role_arn\" is for aws-sts templates, "
         "not for provider \"docker\", remove it"},
        {"root volume too large", k_ec2_head + "root_volume_gib = 20000\n",
         "$D/jitbox.toml:5:19: templates.db.root_volume_gib: invalid root_volume_gib 20000: use "
         "1 to 16384 GiB"},

        // ---- the file itself ----
        {"group-writable project file", k_head,
         "config file \"$D/jitbox.toml\" has mode 0664 and is writable by group or others, so "
         "other users could change its templates and policy (run `chmod go-w $D/jitbox.toml`)",
         ExitCode::usage,
         "",
         0664},
        {"world-writable project file", k_head,
         "config file \"$D/jitbox.toml\" has mode 0646 and is writable by group or others, so "
         "other users could change its templates and policy (run `chmod go-w $D/jitbox.toml`)",
         ExitCode::usage,
         "",
         0646},
        {"error after a byte-order mark and CRLF",
         "\xEF\xBB\xBF[templates.db]\r\nimage = \"busybox:1.36\"\r\nttl = \"x\"\r\n",
         "$D/jitbox.toml:3:7: templates.db.ttl: invalid duration \"x\": use a number with a unit "
         "(d, h, m, s), such as 30m or 1h30m"},
    };
}

void write_case(const MalformedCase& entry, const fs::path& dir) {
    write_file(dir / "jitbox.toml", entry.text);
    REQUIRE(::chmod((dir / "jitbox.toml").c_str(), entry.mode) == 0);
    if (!entry.system_text.empty()) {
        write_file(dir / "system.toml", entry.system_text);
    }
    fs::create_directories(dir / "home");
    for (const auto& [name, target] : entry.links) {
        fs::create_symlink(target, dir / name);
    }
}

TEST_SUITE("config malformed") {
    TEST_CASE("malformed files fail with one line and an exit code") {
        const std::vector<MalformedCase> cases = malformed_cases();
        CHECK(cases.size() >= 40);
        for (const MalformedCase& entry : cases) {
            SUBCASE(entry.name.c_str()) {
                const TempDir dir;
                write_case(entry, dir.path());
                const auto loaded = load_layered_config(request_in(dir.path()));
                REQUIRE_FALSE(loaded.ok());
                const std::string expected = replace_folder(entry.error, dir.path().string());
                CHECK(loaded.error().message == expected);
                CHECK(loaded.error().code == entry.code);
                CHECK(loaded.error().message.find('\n') == std::string::npos);
            }
        }
    }

    TEST_CASE("project file in a shared folder") {
        struct Case {
            std::string label;
            mode_t folder_mode;
            bool rejected;
        };
        const std::vector<Case> cases{
            {"world-writable", 0777, true},
            {"group-writable", 0770, true},
            {"world-writable with sticky bit", 01777, false},
            {"private", 0700, false},
        };
        for (const Case& c : cases) {
            CAPTURE(c.label);
            const TempDir dir;
            const fs::path shared = dir.path() / "shared";
            fs::create_directories(shared / "project");
            write_file(shared / "project" / "jitbox.toml",
                       "[templates.db]\nimage = \"busybox:1.36\"\n");
            REQUIRE(::chmod((shared / "project" / "jitbox.toml").c_str(), 0644) == 0);
            REQUIRE(::chmod(shared.c_str(), c.folder_mode) == 0);
            LayeredConfigRequest request = request_in(dir.path());
            request.project.explicit_path = shared / "project" / "jitbox.toml";

            const auto loaded = load_layered_config(request);
            ::chmod(shared.c_str(), 0700);

            if (!c.rejected) {
                CHECK_MESSAGE(loaded.ok(), (loaded.ok() ? "" : loaded.error().message));
                continue;
            }
            REQUIRE_FALSE(loaded.ok());
            CHECK(loaded.error().code == ExitCode::usage);
            CHECK(loaded.error().message ==
                  fmt::format("config file \"{0}/project/jitbox.toml\" is in folder \"{0}\" of "
                              "mode {1:04o}, which group or others may write and which lacks the "
                              "sticky bit, so other users could replace the file (run `chmod "
                              "go-w {0}`, or move the file to a folder only you can write)",
                              shared.string(), c.folder_mode));
        }
    }

    TEST_CASE("project file through a link into a shared folder") {
        const TempDir dir;
        const fs::path shared = dir.path() / "shared";
        fs::create_directories(shared);
        write_file(shared / "jitbox.toml", "[templates.db]\nimage = \"busybox:1.36\"\n");
        REQUIRE(::chmod((shared / "jitbox.toml").c_str(), 0644) == 0);
        REQUIRE(::chmod(shared.c_str(), 0777) == 0);
        fs::create_symlink(shared / "jitbox.toml", dir.path() / "jitbox.toml");

        const auto loaded = load_layered_config(request_in(dir.path()));
        ::chmod(shared.c_str(), 0700);

        REQUIRE_FALSE(loaded.ok());
        CHECK(loaded.error().message.find("is in folder \"" + shared.string() + "\"") !=
              std::string::npos);
    }

    TEST_CASE("byte-order mark and CRLF line ends load") {
        const TempDir dir;
        write_file(dir.path() / "jitbox.toml",
                   "\xEF\xBB\xBF"
                   "default_template = \"db\"\r\n"
                   "\r\n"
                   "[templates.db]\r\n"
                   "image = \"busybox:1.36\"\r\n"
                   "command = [\"sleep\", \"1\"]\r\n"
                   "ttl = \"10m\"\r\n");
        const auto loaded = load_layered_config(request_in(dir.path()));
        INFO((loaded.ok() ? "" : loaded.error().message));
        REQUIRE(loaded.ok());
        const Template& db = loaded->merged.templates.at("db");
        CHECK(loaded->merged.default_template == "db");
        CHECK(db.image == "busybox:1.36");
        CHECK(db.command == std::vector<std::string>{"sleep", "1"});
        CHECK(db.ttl == Seconds(600));
    }

    TEST_CASE("sensitive mount loads when both switches are set") {
        const TempDir dir;
        write_file(dir.path() / "jitbox.toml",
                   "[policy]\nallow_sensitive_mounts = true\n" + k_head +
                       "mounts = [{ source = \"/etc/ssl/certs\", target = \"/certs\", "
                       "allow_sensitive = true }]\n");
        fs::create_directories(dir.path() / "home");
        const auto loaded = load_layered_config(request_in(dir.path()));
        INFO((loaded.ok() ? "" : loaded.error().message));
        REQUIRE(loaded.ok());
        const Mount& mount = loaded->merged.templates.at("db").mounts.at(0);
        CHECK(mount.allow_sensitive);
    }

    TEST_CASE("socket file mount is rejected") {
        const TempDir dir;
        const fs::path socket_path = dir.path() / "engine.sock";
        const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        REQUIRE(fd >= 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, socket_path.c_str(), sizeof(address.sun_path) - 1);
        REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0);
        ::close(fd);
        write_file(dir.path() / "jitbox.toml",
                   k_head + "mounts = [{ source = \"engine.sock\", target = \"/s\" }]\n");

        const auto loaded = load_layered_config(request_in(dir.path()));
        REQUIRE_FALSE(loaded.ok());
        CHECK(loaded.error().code == ExitCode::usage);
        CHECK(loaded.error().message.find("engine.sock\" is a socket") != std::string::npos);
    }

    TEST_CASE("mount inside own home is allowed") {
        const TempDir dir;
        fs::create_directories(dir.path() / "home" / "project" / "fixtures");
        write_file(dir.path() / "jitbox.toml",
                   k_head + "mounts = [{ source = \"home/project/fixtures\", target = \"/f\" }]\n");
        const auto loaded = load_layered_config(request_in(dir.path()));
        INFO((loaded.ok() ? "" : loaded.error().message));
        CHECK(loaded.ok());
    }
}

} // namespace
} // namespace jitbox
