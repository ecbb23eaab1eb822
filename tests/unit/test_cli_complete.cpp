#include "jitbox/cli/complete.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace jitbox::cli {
namespace {

// A command tree shaped like jitbox's: global options that fall through, positionals typed
// NAME, FILE and DIR, a value set, a hidden subcommand and a command after `--`.
struct TestApp {
    CLI::App root{"test", "jitbox"};
    std::string config;
    bool json = false;
    std::string template_name;
    std::string ttl;
    std::string new_name;
    std::vector<std::string> names;
    std::string format = "env";
    std::string key;
    std::vector<std::string> command;
    std::string keys_dir;
    std::string env_value;
    std::string hidden;
    int verbosity = 0;
    bool all = false;

    TestApp() {
        root.fallthrough();
        root.add_option("--config", config, "Configuration file")->type_name("FILE");
        root.add_flag("--json", json, "Print data as JSON");
        root.add_flag("-v,--verbose", verbosity, "Explain each step");

        CLI::App* up = root.add_subcommand("up", "Create a sandbox");
        up->add_option("template", template_name, "Template");
        up->add_option("--ttl", ttl, "Lifetime")->type_name("DURATION");
        up->add_option("--name", new_name, "Sandbox name")->type_name("NAME");

        CLI::App* down = root.add_subcommand("down", "Remove sandboxes");
        down->add_option("names", names, "Sandboxes")->type_name("NAME");
        down->add_flag("--all", all, "Remove all");

        CLI::App* creds = root.add_subcommand("creds", "Keyring items");
        CLI::App* show = creds->add_subcommand("show", "Print values");
        show->add_option("name", new_name, "Sandbox")->type_name("NAME");
        show->add_option("key", key, "Item")->type_name("KEY");
        show->add_option("--format", format, "Output format")
            ->check(CLI::IsMember({"env", "json", "credential-process"}))
            ->type_name("FORMAT");
        creds->add_subcommand("list", "List items");

        CLI::App* exec = root.add_subcommand("exec", "Run a command");
        exec->add_option("name", new_name, "Sandbox")->type_name("NAME");
        exec->add_option("command", command, "Command")->type_name("CMD...");
        exec->add_option("-e", env_value, "Variable")->type_name("K=V");

        CLI::App* verify = root.add_subcommand("verify", "Check a file");
        verify->add_option("--keys", keys_dir, "Key folder")->type_name("DIR");
        verify->add_option("file", keys_dir, "File")->type_name("FILE");

        CLI::App* reap = root.add_subcommand("__reap", "");
        reap->group("");
        reap->add_option("name", hidden);
    }
};

struct Sources {
    std::string config_seen = "(not asked)";

    CompletionSources make() {
        return {[this](const std::string& config_path) {
                    config_seen = config_path;
                    return std::vector<CompletionCandidate>{
                        {"alpha", "busybox:1.36"}, {"beta", ""}, {"db", "postgres:16"}};
                },
                [] {
                    return std::vector<CompletionCandidate>{{"alpha-1", "alpha, 9m"},
                                                            {"db-1", "db, 45m"}};
                }};
    }
};

std::vector<std::string> values_of(const Completion& completion) {
    std::vector<std::string> values;
    for (const auto& candidate : completion.candidates) {
        values.push_back(candidate.value);
    }
    return values;
}

std::vector<std::string> complete(const std::vector<std::string>& words) {
    TestApp app;
    Sources sources;
    const Completion completion = complete_command_line(app.root, words, sources.make());
    REQUIRE(completion.kind == CompletionKind::candidates);
    return values_of(completion);
}

CompletionKind kind_of(const std::vector<std::string>& words) {
    TestApp app;
    Sources sources;
    return complete_command_line(app.root, words, sources.make()).kind;
}

using Values = std::vector<std::string>;

TEST_SUITE("cli complete") {
    TEST_CASE("subcommands with descriptions, hidden ones left out") {
        TestApp app;
        Sources sources;
        const Completion completion = complete_command_line(app.root, {""}, sources.make());
        CHECK(values_of(completion) == Values{"up", "down", "creds", "exec", "verify"});
        CHECK(completion.candidates.front().description == "Create a sandbox");
        CHECK(complete({"d"}) == Values{"down"});
        CHECK(complete({}) == complete({""}));
        CHECK(complete({"__"}).empty());
    }

    TEST_CASE("nested subcommands") {
        CHECK(complete({"creds", ""}) == Values{"show", "list"});
        CHECK(complete({"creds", "s"}) == Values{"show"});
    }

    TEST_CASE("templates for a positional named template") {
        CHECK(complete({"up", ""}) == Values{"alpha", "beta", "db"});
        CHECK(complete({"up", "b"}) == Values{"beta"});
        // Only one template: the next word has nothing to offer.
        CHECK(complete({"up", "alpha", ""}).empty());
    }

    TEST_CASE("sandboxes for NAME, but not for --name") {
        CHECK(complete({"down", ""}) == Values{"alpha-1", "db-1"});
        CHECK(complete({"down", "alpha-1", ""}) == Values{"alpha-1", "db-1"});
        CHECK(complete({"creds", "show", "d"}) == Values{"db-1"});
        CHECK(complete({"creds", "show", "db-1", ""}).empty()); // KEY
        CHECK(complete({"up", "--name", ""}).empty());
        CHECK(complete({"exec", ""}) == Values{"alpha-1", "db-1"});
    }

    TEST_CASE("global options before the subcommand") {
        CHECK(complete({"--json", "down", ""}) == Values{"alpha-1", "db-1"});
        CHECK(complete({"-v", "up", ""}) == Values{"alpha", "beta", "db"});
        CHECK(complete({"-vv", "up", ""}) == Values{"alpha", "beta", "db"});
        CHECK(complete({"--config", "other.toml", "up", ""}) == Values{"alpha", "beta", "db"});
    }

    TEST_CASE("a --config value reaches the template source") {
        TestApp app;
        SUBCASE("separate word") {
            Sources sources;
            complete_command_line(app.root, {"--config", "ci.toml", "up", ""}, sources.make());
            CHECK(sources.config_seen == "ci.toml");
        }
        SUBCASE("after =") {
            Sources sources;
            complete_command_line(app.root, {"up", "--config=ci.toml", ""}, sources.make());
            CHECK(sources.config_seen == "ci.toml");
        }
        SUBCASE("none") {
            Sources sources;
            complete_command_line(app.root, {"up", ""}, sources.make());
            CHECK(sources.config_seen.empty());
        }
    }

    TEST_CASE("options of the subcommand, then the global ones") {
        CHECK(complete({"up", "--"}) ==
              Values{"--help", "--ttl", "--name", "--config", "--json", "--verbose"});
        CHECK(complete({"up", "-"}) ==
              Values{"--help", "-h", "--ttl", "--name", "--config", "--json", "--verbose", "-v"});
        CHECK(complete({"up", "--t"}) == Values{"--ttl"});
        CHECK(complete({"--"}) == Values{"--help", "--config", "--json", "--verbose"});
    }

    TEST_CASE("option values") {
        CHECK(complete({"creds", "show", "x", "--format", ""}) ==
              Values{"env", "json", "credential-process"});
        CHECK(complete({"creds", "show", "x", "--format", "c"}) == Values{"credential-process"});
        CHECK(complete({"creds", "show", "x", "--format=j"}) == Values{"--format=json"});
        CHECK(complete({"up", "--ttl", ""}).empty());
        CHECK(complete({"up", "--ttl=", ""}) == Values{"alpha", "beta", "db"});
        CHECK(complete({"up", "--ttl", "5m", ""}) == Values{"alpha", "beta", "db"});
        CHECK(complete({"up", "--nosuch=x"}).empty());
        CHECK(kind_of({"--config", ""}) == CompletionKind::files);
        CHECK(kind_of({"up", "--config=", ""}) == CompletionKind::candidates);
        CHECK(kind_of({"verify", "--keys", ""}) == CompletionKind::directories);
        CHECK(kind_of({"verify", ""}) == CompletionKind::files);
    }

    TEST_CASE("a short option with its value attached takes no next word") {
        CHECK(complete({"exec", "-eK=V", ""}) == Values{"alpha-1", "db-1"});
        CHECK(complete({"exec", "-e", "K=V", ""}) == Values{"alpha-1", "db-1"});
        CHECK(complete({"exec", "-e", ""}).empty());
    }

    TEST_CASE("the words after -- are a command") {
        CHECK(kind_of({"exec", "db-1", "--", ""}) == CompletionKind::files);
        CHECK(kind_of({"exec", "db-1", "--", "ls", "-"}) == CompletionKind::files);
    }

    TEST_CASE("format_completion output") {
        Completion completion;
        completion.candidates = {{"up", "Create a sandbox"}, {"db", ""}};
        CHECK(format_completion(completion) == "up\tCreate a sandbox\ndb\n");
        CHECK(format_completion(Completion{}).empty());
        CHECK(format_completion(Completion{CompletionKind::files, {}}) == ":files\n");
        CHECK(format_completion(Completion{CompletionKind::directories, {}}) == ":directories\n");
    }
}

} // namespace
} // namespace jitbox::cli
