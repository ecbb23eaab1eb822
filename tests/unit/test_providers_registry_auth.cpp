#include "jitbox/providers/registry_auth.hpp"
#include "jitbox/util/base64.hpp"
#include "temp_dir.hpp"

#include <algorithm>
#include <cstdlib>
#include <doctest/doctest.h>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <utility>
#include <vector>

using namespace jitbox;
using Json = nlohmann::json;

namespace {

// A credential helper that replies from a map by server and records each call.
struct FakeHelpers {
    std::map<std::string, std::string> replies; // "NAME SERVER" -> the helper's stdout
    std::vector<std::string> calls;
    std::optional<Failure> failure;

    CredentialHelperFn function() {
        return [this](const std::string& name,
                      const std::string& server) -> Result<std::optional<std::string>> {
            calls.push_back(name + " " + server);
            if (failure) {
                return *failure;
            }
            const auto found = replies.find(name + " " + server);
            if (found == replies.end()) {
                return std::optional<std::string>();
            }
            return std::optional<std::string>(found->second);
        };
    }
};

struct Lookup {
    Result<std::optional<RegistryCredential>> credential;
    std::string source;
};

Lookup look_up(std::string_view config, const std::string& registry, FakeHelpers& helpers) {
    std::string source;
    auto credential = find_registry_credential(config, "/h/.docker/config.json", registry,
                                               helpers.function(), source);
    return Lookup{std::move(credential), source};
}

std::string auth_of(const std::string& user_and_password) {
    return to_base64(user_and_password);
}

} // namespace

TEST_SUITE("registry_auth") {

    TEST_CASE("registry_host reads the first component") {
        const std::vector<std::pair<std::string, std::string>> cases = {
            {"busybox:1.36", "docker.io"},  {"library/busybox", "docker.io"},
            {"team/app:1", "docker.io"},    {"127.0.0.1:5000/busybox:1.36", "127.0.0.1:5000"},
            {"localhost/app", "localhost"}, {"ghcr.io/org/app@sha256:0123", "ghcr.io"},
        };
        for (const auto& [image, host] : cases) {
            CAPTURE(image);
            CHECK(registry_host(image) == host);
        }
    }

    TEST_CASE("auths entry with base64 auth") {
        FakeHelpers helpers;
        const std::string config =
            Json{{"auths", {{"https://127.0.0.1:5000/v2/", {{"auth", auth_of("ann:pa:ss")}}}}}}
                .dump();

        const Lookup found = look_up(config, "127.0.0.1:5000", helpers);

        REQUIRE(found.credential.ok());
        REQUIRE(found.credential->has_value());
        CHECK((*found.credential)->username == "ann");
        CHECK((*found.credential)->password == "pa:ss"); // split at the first colon only
        CHECK(found.source == "auths in /h/.docker/config.json");
        CHECK(helpers.calls.empty());
    }

    TEST_CASE("auths entry with username, password or identity token") {
        FakeHelpers helpers;
        const std::string config = Json{{"auths",
                                         {{"reg.local", {{"username", "u"}, {"password", "p"}}},
                                          {"ghcr.io", {{"identitytoken", "tok"}}},
                                          {"empty.io", Json::object()}}}}
                                       .dump();

        const Lookup plain = look_up(config, "reg.local", helpers);
        const Lookup token = look_up(config, "ghcr.io", helpers);
        const Lookup empty = look_up(config, "empty.io", helpers);
        const Lookup other = look_up(config, "other.io", helpers);

        REQUIRE(plain.credential.ok());
        REQUIRE(plain.credential->has_value());
        CHECK((*plain.credential)->password == "p");
        REQUIRE(token.credential.ok());
        REQUIRE(token.credential->has_value());
        CHECK((*token.credential)->identity_token == "tok");
        REQUIRE(empty.credential.ok());
        CHECK_FALSE(empty.credential->has_value());
        REQUIRE(other.credential.ok());
        CHECK_FALSE(other.credential->has_value());
        CHECK(other.source == "no entry in /h/.docker/config.json");
    }

    TEST_CASE("Docker Hub is stored under index.docker.io") {
        FakeHelpers helpers;
        const std::string config =
            Json{{"auths", {{k_docker_hub_server, {{"auth", auth_of("a:b")}}}}}}.dump();

        const Lookup found = look_up(config, registry_host("postgres:16"), helpers);

        REQUIRE(found.credential.ok());
        REQUIRE(found.credential->has_value());
        CHECK((*found.credential)->username == "a");
    }

    TEST_CASE("credHelpers comes before credsStore and auths") {
        FakeHelpers helpers;
        helpers.replies["pass reg.local"] = R"({"ServerURL":"reg.local","Username":"u",
            "Secret":"from-pass"})";
        helpers.replies["desktop reg.local"] = R"({"Username":"u","Secret":"from-store"})";
        const std::string config = Json{{"credHelpers", {{"reg.local", "pass"}}},
                                        {"credsStore", "desktop"},
                                        {"auths", {{"reg.local", {{"auth", auth_of("a:b")}}}}}}
                                       .dump();

        const Lookup found = look_up(config, "reg.local", helpers);

        REQUIRE(found.credential.ok());
        REQUIRE(found.credential->has_value());
        CHECK((*found.credential)->password == "from-pass");
        CHECK(found.source == "credential helper docker-credential-pass");
        CHECK(helpers.calls == std::vector<std::string>{"pass reg.local"});
    }

    TEST_CASE("credsStore serves registries without credHelpers") {
        FakeHelpers helpers;
        helpers.replies["desktop https://index.docker.io/v1/"] =
            R"({"Username":"<token>","Secret":"refresh"})";
        const std::string config = Json{{"credsStore", "desktop"}}.dump();

        const Lookup found = look_up(config, "docker.io", helpers);

        REQUIRE(found.credential.ok());
        REQUIRE(found.credential->has_value());
        CHECK((*found.credential)->identity_token == "refresh");
        CHECK((*found.credential)->username.empty());
    }

    TEST_CASE("a helper without credentials falls back to auths") {
        FakeHelpers helpers;
        const std::string config =
            Json{{"credsStore", "desktop"}, {"auths", {{"reg.local", {{"auth", auth_of("a:b")}}}}}}
                .dump();

        const Lookup found = look_up(config, "reg.local", helpers);

        REQUIRE(found.credential.ok());
        REQUIRE(found.credential->has_value());
        CHECK((*found.credential)->password == "b");
        CHECK(helpers.calls == std::vector<std::string>{"desktop reg.local"});
    }

    TEST_CASE("lookup failures") {
        FakeHelpers helpers;
        const Lookup not_json = look_up("{ nope", "reg.local", helpers);
        const Lookup bad_auth =
            look_up(R"({"auths":{"reg.local":{"auth":"bm9jb2xvbg=="}}})", "reg.local", helpers);
        const Lookup bad_name = look_up(R"({"credsStore":"../evil"})", "reg.local", helpers);
        helpers.replies["pass reg.local"] = "not json";
        const Lookup bad_reply =
            look_up(R"({"credHelpers":{"reg.local":"pass"}})", "reg.local", helpers);
        helpers.failure = Failure{ExitCode::usage, "cannot run credential helper"};
        const Lookup failed =
            look_up(R"({"credHelpers":{"reg.local":"pass"}})", "reg.local", helpers);

        for (const Lookup* lookup : {&not_json, &bad_auth, &bad_name, &bad_reply, &failed}) {
            REQUIRE_FALSE(lookup->credential.ok());
            CHECK(lookup->credential.error().code == ExitCode::usage);
        }
        CHECK(not_json.credential.error().message ==
              "/h/.docker/config.json is not a JSON object; fix it, or set DOCKER_CONFIG to a "
              "folder without registry credentials");
        CHECK(bad_auth.credential.error().message ==
              "/h/.docker/config.json: the auth value of reg.local is not base64 of "
              "USER:PASSWORD; run `docker login reg.local` again");
        CHECK(bad_name.credential.error().message.find("invalid credential helper name "
                                                       "\"../evil\"") != std::string::npos);
        CHECK(bad_reply.credential.error().message.find("printed no JSON object with a Secret") !=
              std::string::npos);
    }

    TEST_CASE("encode_registry_auth is base64url JSON") {
        const std::string header =
            encode_registry_auth(RegistryCredential{"ann", "p?>~", ""}, "reg.local:5000");
        const std::string token =
            encode_registry_auth(RegistryCredential{"", "", "tok"}, "docker.io");

        CHECK(header.find_first_of("+/") == std::string::npos);
        std::string standard = header;
        std::replace(standard.begin(), standard.end(), '-', '+');
        std::replace(standard.begin(), standard.end(), '_', '/');
        const auto decoded = from_base64(standard);
        REQUIRE(decoded.has_value());
        CHECK(Json::parse(*decoded) ==
              Json{{"username", "ann"}, {"password", "p?>~"}, {"serveraddress", "reg.local:5000"}});
        const auto decoded_token = from_base64(token);
        REQUIRE(decoded_token.has_value());
        CHECK(Json::parse(*decoded_token) ==
              Json{{"identitytoken", "tok"}, {"serveraddress", k_docker_hub_server}});
    }

    TEST_CASE("run_credential_helper passes the server on standard input") {
        test::TempDir dir;
        const auto script = dir.path() / "docker-credential-jbunit";
        test::write_file(script,
                         "#!/bin/sh\n"
                         "read -r server\n"
                         "case \"$1 $server\" in\n"
                         "'get reg.local') echo '{\"Username\":\"u\",\"Secret\":\"s\"}' ;;\n"
                         "'get slow.local') sleep 5 ;;\n"
                         "'get broken.local') echo 'it broke' >&2; exit 3 ;;\n"
                         "*) echo 'credentials not found in native keychain'; exit 1 ;;\n"
                         "esac\n");
        REQUIRE(::chmod(script.c_str(), 0700) == 0);
        const std::string saved = std::getenv("PATH") != nullptr ? std::getenv("PATH") : "";
        ::setenv("PATH", (dir.path().string() + ":" + saved).c_str(), 1);

        const auto found = run_credential_helper("jbunit", "reg.local", std::chrono::seconds(5));
        const auto missing = run_credential_helper("jbunit", "other", std::chrono::seconds(5));
        const auto broken =
            run_credential_helper("jbunit", "broken.local", std::chrono::seconds(5));
        const auto slow =
            run_credential_helper("jbunit", "slow.local", std::chrono::milliseconds(200));
        const auto absent = run_credential_helper("jbnone", "reg.local", std::chrono::seconds(5));
        ::setenv("PATH", saved.c_str(), 1);

        REQUIRE(found.ok());
        REQUIRE(found->has_value());
        CHECK(Json::parse(**found)["Secret"] == "s");
        REQUIRE(missing.ok());
        CHECK_FALSE(missing->has_value());
        REQUIRE_FALSE(broken.ok());
        CHECK(broken.error().message.find("failed with exit status 3 (it broke)") !=
              std::string::npos);
        REQUIRE_FALSE(slow.ok());
        CHECK(slow.error().message.find("timed out after 200ms") != std::string::npos);
        REQUIRE_FALSE(absent.ok());
        CHECK(absent.error().message.find(
                  "cannot run credential helper docker-credential-jbnone") != std::string::npos);
    }

} // TEST_SUITE
