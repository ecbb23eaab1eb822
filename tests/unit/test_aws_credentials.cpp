#include "jitbox/aws/credentials.hpp"

#include <doctest/doctest.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;

namespace jitbox::aws {
namespace {

// Made-up keys for these tests only. Messages are checked to contain none of them.
constexpr std::string_view k_file_key_id = "AKIDFILETEST";
constexpr std::string_view k_file_secret = "file/secret+value";
constexpr std::string_view k_config_key_id = "AKIDCONFIGTEST";
constexpr std::string_view k_env_key_id = "AKIDENVTEST";
constexpr std::string_view k_env_secret = "env/secret+value";

// A fake home folder under the system temp folder, removed with everything in it.
class FakeHome {
public:
    FakeHome() {
        std::string pattern = (fs::temp_directory_path() / "jitbox-aws-test-XXXXXX").string();
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        m_path = pattern;
        fs::create_directories(m_path / ".aws");
        m_environment.home = m_path;
    }
    ~FakeHome() {
        std::error_code ignored;
        fs::remove_all(m_path, ignored);
    }
    FakeHome(const FakeHome&) = delete;
    FakeHome& operator=(const FakeHome&) = delete;

    const fs::path& path() const { return m_path; }
    Environment& environment() { return m_environment; }

    void write(const fs::path& relative, std::string_view text) const {
        std::ofstream out(m_path / relative, std::ios::binary);
        out << text;
        REQUIRE(out.good());
    }
    void write_credentials(std::string_view text) const { write(".aws/credentials", text); }
    void write_config(std::string_view text) const { write(".aws/config", text); }

private:
    fs::path m_path;
    Environment m_environment;
};

bool contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

void check_no_secrets(const Failure& failure) {
    CHECK_FALSE(contains(failure.message, k_file_secret));
    CHECK_FALSE(contains(failure.message, k_file_key_id));
    CHECK_FALSE(contains(failure.message, k_env_secret));
    CHECK_FALSE(contains(failure.message, k_env_key_id));
}

} // namespace

TEST_SUITE("aws credentials") {

    TEST_CASE("environment keys come first") {
        FakeHome home;
        home.write_credentials("[default]\naws_access_key_id = AKIDFILETEST\n"
                               "aws_secret_access_key = file/secret+value\n");
        home.environment().variables = {{"AWS_ACCESS_KEY_ID", std::string(k_env_key_id)},
                                        {"AWS_SECRET_ACCESS_KEY", std::string(k_env_secret)},
                                        {"AWS_SESSION_TOKEN", "env-token"}};

        const auto found = find_base_credentials(home.environment());

        REQUIRE(found.ok());
        CHECK(found->credentials.access_key_id == k_env_key_id);
        CHECK(found->credentials.secret_access_key == k_env_secret);
        CHECK(found->credentials.session_token == "env-token");
        CHECK(found->source == "the environment");
    }

    TEST_CASE("environment with one key only") {
        FakeHome home;
        home.environment().variables = {{"AWS_ACCESS_KEY_ID", std::string(k_env_key_id)}};

        const auto found = find_base_credentials(home.environment());

        REQUIRE_FALSE(found.ok());
        CHECK(found.error().code == ExitCode::usage);
        CHECK(contains(found.error().message,
                       "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"));
        check_no_secrets(found.error());
    }

    TEST_CASE("empty environment values count as unset") {
        FakeHome home;
        home.write_credentials("[default]\naws_access_key_id = AKIDFILETEST\n"
                               "aws_secret_access_key = file/secret+value\n");
        home.environment().variables = {{"AWS_ACCESS_KEY_ID", ""}, {"AWS_PROFILE", ""}};

        const auto found = find_base_credentials(home.environment());

        REQUIRE(found.ok());
        CHECK(found->credentials.access_key_id == k_file_key_id);
    }

    TEST_CASE("credentials file default profile") {
        FakeHome home;
        home.write_credentials("# keys for tests\n"
                               "[default]\n"
                               "aws_access_key_id=AKIDFILETEST\n"
                               "aws_secret_access_key   =   file/secret+value   \n"
                               "aws_session_token = token==\n");

        const auto found = find_base_credentials(home.environment());

        REQUIRE(found.ok());
        CHECK(found->credentials.access_key_id == k_file_key_id);
        CHECK(found->credentials.secret_access_key == k_file_secret);
        CHECK(found->credentials.session_token == "token==");
        CHECK_FALSE(found->credentials.expiration.has_value());
        CHECK(found->source ==
              "profile \"default\" in " + (home.path() / ".aws" / "credentials").string());
    }

    TEST_CASE("AWS_PROFILE selects the section") {
        FakeHome home;
        home.write_credentials("[default]\naws_access_key_id = AKIDDEFAULT\n"
                               "aws_secret_access_key = default-secret\n"
                               "[dev]\naws_access_key_id = AKIDFILETEST\n"
                               "aws_secret_access_key = file/secret+value\n");
        home.environment().variables = {{"AWS_PROFILE", "dev"}};

        const auto found = find_base_credentials(home.environment());

        REQUIRE(found.ok());
        CHECK(found->credentials.access_key_id == k_file_key_id);
        CHECK(selected_profile(home.environment()) == "dev");
    }

    TEST_CASE("config file profile sections") {
        FakeHome home;
        home.environment().variables = {{"AWS_PROFILE", "dev"}};

        SUBCASE("[profile NAME] is read") {
            home.write_config("[profile   dev]\naws_access_key_id = AKIDCONFIGTEST\n"
                              "aws_secret_access_key = config-secret\n");
            const auto found = find_base_credentials(home.environment());
            REQUIRE(found.ok());
            CHECK(found->credentials.access_key_id == k_config_key_id);
            CHECK(contains(found->source, "config"));
        }
        SUBCASE("[NAME] without the prefix is not a profile") {
            home.write_config("[dev]\naws_access_key_id = AKIDCONFIGTEST\n"
                              "aws_secret_access_key = config-secret\n");
            const auto found = find_base_credentials(home.environment());
            REQUIRE_FALSE(found.ok());
            CHECK(contains(found.error().message,
                           "AWS profile \"dev\" (from AWS_PROFILE) not found"));
        }
        SUBCASE("[default] is the default profile") {
            home.environment().variables.clear();
            home.write_config("[default]\naws_access_key_id = AKIDCONFIGTEST\n"
                              "aws_secret_access_key = config-secret\n");
            const auto found = find_base_credentials(home.environment());
            REQUIRE(found.ok());
            CHECK(found->credentials.access_key_id == k_config_key_id);
        }
    }

    TEST_CASE("credentials file wins over config file") {
        FakeHome home;
        home.write_credentials("[default]\naws_access_key_id = AKIDFILETEST\n"
                               "aws_secret_access_key = file/secret+value\n");
        home.write_config("[default]\naws_access_key_id = AKIDCONFIGTEST\n"
                          "aws_secret_access_key = config-secret\n");

        const auto found = find_base_credentials(home.environment());

        REQUIRE(found.ok());
        CHECK(found->credentials.access_key_id == k_file_key_id);
    }

    TEST_CASE("file variables move the files") {
        FakeHome home;
        home.write("elsewhere-credentials", "[default]\naws_access_key_id = AKIDFILETEST\n"
                                            "aws_secret_access_key = file/secret+value\n");
        home.write("elsewhere-config", "[default]\nregion = eu-west-1\n");
        home.write_credentials("[default]\naws_access_key_id = AKIDIGNORED\n"
                               "aws_secret_access_key = ignored\n");
        home.environment().variables = {
            {"AWS_SHARED_CREDENTIALS_FILE", "~/elsewhere-credentials"},
            {"AWS_CONFIG_FILE", (home.path() / "elsewhere-config").string()}};

        const auto found = find_base_credentials(home.environment());
        const auto region = find_region(home.environment());

        REQUIRE(found.ok());
        CHECK(found->credentials.access_key_id == k_file_key_id);
        REQUIRE(region.ok());
        CHECK(*region == std::optional<std::string>("eu-west-1"));
    }

    TEST_CASE("missing keys name the file and line") {
        FakeHome home;
        const std::string path = (home.path() / ".aws" / "credentials").string();

        SUBCASE("secret missing") {
            home.write_credentials(
                "[default]\nregion = us-east-1\naws_access_key_id = AKIDFILETEST\n");
            const auto found = find_base_credentials(home.environment());
            REQUIRE_FALSE(found.ok());
            CHECK(found.error().code == ExitCode::usage);
            CHECK(contains(found.error().message, path + ":3: aws_access_key_id is set without "
                                                         "aws_secret_access_key"));
            CHECK(contains(found.error().message, "under [default]"));
            check_no_secrets(found.error());
        }
        SUBCASE("key ID missing") {
            home.write_credentials("[default]\naws_secret_access_key = file/secret+value\n");
            const auto found = find_base_credentials(home.environment());
            REQUIRE_FALSE(found.ok());
            CHECK(contains(found.error().message, path + ":2: aws_secret_access_key is set without "
                                                         "aws_access_key_id"));
            check_no_secrets(found.error());
        }
        SUBCASE("empty secret") {
            home.write_credentials("[default]\naws_access_key_id = AKIDFILETEST\n"
                                   "aws_secret_access_key =\n");
            const auto found = find_base_credentials(home.environment());
            REQUIRE_FALSE(found.ok());
            CHECK(contains(found.error().message, path + ":3: aws_secret_access_key is empty"));
            check_no_secrets(found.error());
        }
        SUBCASE("token without keys") {
            home.write_credentials("[default]\naws_session_token = token\n");
            const auto found = find_base_credentials(home.environment());
            REQUIRE_FALSE(found.ok());
            CHECK(contains(found.error().message, path + ":2: aws_session_token is set without"));
        }
        SUBCASE("profile without keys") {
            home.write_credentials("[default]\nregion = us-east-1\n");
            const auto found = find_base_credentials(home.environment());
            REQUIRE_FALSE(found.ok());
            CHECK(contains(found.error().message,
                           "AWS profile \"default\" has no aws_access_key_id"));
        }
        SUBCASE("no files at all") {
            const auto found = find_base_credentials(home.environment());
            REQUIRE_FALSE(found.ok());
            CHECK(
                contains(found.error().message, "no AWS credentials found: set AWS_ACCESS_KEY_ID"));
            CHECK(contains(found.error().message, path));
        }
    }

    TEST_CASE("invalid lines name the line but not its text") {
        FakeHome home;
        const std::string path = (home.path() / ".aws" / "credentials").string();
        struct Case {
            std::string text;
            std::string expected;
        };
        const std::vector<Case> cases{
            {"[default]\naws_secret_access_key file/secret+value\n", path + ":2: invalid line"},
            {"aws_access_key_id = AKIDFILETEST\n[default]\n",
             path + ":1: setting before the first"},
            {"[default\naws_access_key_id = AKIDFILETEST\n", path + ":1: invalid section header"},
            {"[ ]\n", path + ":1: empty section name"},
            {"[default]\n= file/secret+value\n", path + ":2: setting without a name"},
        };
        for (const Case& c : cases) {
            CAPTURE(c.text);
            home.write_credentials(c.text);
            const auto found = find_base_credentials(home.environment());
            REQUIRE_FALSE(found.ok());
            CHECK(found.error().code == ExitCode::usage);
            CHECK(contains(found.error().message, c.expected));
            check_no_secrets(found.error());
        }
    }

    TEST_CASE("comments, continuation lines and CRLF") {
        FakeHome home;
        home.write_config("; config comment\r\n"
                          "[profile dev] # trailing comment\r\n"
                          "s3 =\r\n"
                          "    max_concurrent_requests = 20\r\n"
                          "region = eu-north-1 ; the main region\r\n"
                          "aws_access_key_id = AKIDCONFIGTEST\r\n"
                          "aws_secret_access_key = config-secret\r\n");
        home.environment().variables = {{"AWS_PROFILE", "dev"}};

        const auto found = find_base_credentials(home.environment());
        const auto region = find_region(home.environment());

        REQUIRE(found.ok());
        CHECK(found->credentials.access_key_id == k_config_key_id);
        CHECK(found->credentials.secret_access_key == "config-secret");
        REQUIRE(region.ok());
        CHECK(*region == std::optional<std::string>("eu-north-1"));
    }

    TEST_CASE("repeated sections are merged") {
        FakeHome home;
        home.write_credentials("[default]\naws_access_key_id = AKIDOLD\n"
                               "[other]\naws_access_key_id = AKIDOTHER\n"
                               "[default]\naws_access_key_id = AKIDFILETEST\n"
                               "aws_secret_access_key = file/secret+value\n");

        const auto found = find_base_credentials(home.environment());

        REQUIRE(found.ok());
        CHECK(found->credentials.access_key_id == k_file_key_id);
    }

    TEST_CASE("unsupported credential sources") {
        FakeHome home;
        home.environment().variables = {{"AWS_PROFILE", "ci"}};

        SUBCASE("role_arn in the config file") {
            home.write_config("[profile ci]\nsource_profile = default\n"
                              "role_arn = arn:aws:iam::123456789012:role/ci\n");
            const auto found = find_base_credentials(home.environment());
            REQUIRE_FALSE(found.ok());
            CHECK(contains(found.error().message, ":3: AWS profile \"ci\" gets its credentials "
                                                  "through role_arn"));
        }
        SUBCASE("role_arn comes before static keys") {
            home.write_credentials("[ci]\naws_access_key_id = AKIDFILETEST\n"
                                   "aws_secret_access_key = file/secret+value\n");
            home.write_config("[profile ci]\nrole_arn = arn:aws:iam::123456789012:role/ci\n");
            const auto found = find_base_credentials(home.environment());
            REQUIRE_FALSE(found.ok());
            CHECK(contains(found.error().message, "role_arn"));
        }
        SUBCASE("sso_session") {
            home.write_config("[profile ci]\nsso_session = corp\n");
            const auto found = find_base_credentials(home.environment());
            REQUIRE_FALSE(found.ok());
            CHECK(contains(found.error().message, "through sso_session"));
        }
        SUBCASE("credential_process comes after the credentials file") {
            home.write_credentials("[ci]\naws_access_key_id = AKIDFILETEST\n"
                                   "aws_secret_access_key = file/secret+value\n");
            home.write_config("[profile ci]\ncredential_process = /usr/bin/get-keys\n");
            const auto found = find_base_credentials(home.environment());
            REQUIRE(found.ok());
            CHECK(found->credentials.access_key_id == k_file_key_id);
        }
        SUBCASE("credential_process comes before config keys") {
            home.write_config("[profile ci]\ncredential_process = /usr/bin/get-keys\n"
                              "aws_access_key_id = AKIDCONFIGTEST\n"
                              "aws_secret_access_key = config-secret\n");
            const auto found = find_base_credentials(home.environment());
            REQUIRE_FALSE(found.ok());
            CHECK(contains(found.error().message, "through credential_process"));
        }
    }

    TEST_CASE("unreadable credentials file") {
        FakeHome home;
        fs::create_directories(home.path() / "a-folder");
        home.environment().variables = {
            {"AWS_SHARED_CREDENTIALS_FILE", (home.path() / "a-folder").string()}};

        const auto found = find_base_credentials(home.environment());

        REQUIRE_FALSE(found.ok());
        CHECK(found.error().code == ExitCode::usage);
        CHECK(
            contains(found.error().message, "cannot read " + (home.path() / "a-folder").string()));
        CHECK(contains(found.error().message, "set AWS_SHARED_CREDENTIALS_FILE to another file"));
    }

    TEST_CASE("region precedence") {
        FakeHome home;
        home.write_config("[default]\nregion = eu-west-1\n[profile dev]\nregion = ap-south-1\n");
        home.write_credentials("[default]\nregion = us-west-1\n");
        auto& variables = home.environment().variables;

        SUBCASE("AWS_REGION first") {
            variables = {{"AWS_REGION", "us-east-2"}, {"AWS_DEFAULT_REGION", "us-west-2"}};
            const auto region = find_region(home.environment());
            REQUIRE(region.ok());
            CHECK(*region == std::optional<std::string>("us-east-2"));
        }
        SUBCASE("AWS_DEFAULT_REGION second") {
            variables = {{"AWS_DEFAULT_REGION", "us-west-2"}};
            const auto region = find_region(home.environment());
            REQUIRE(region.ok());
            CHECK(*region == std::optional<std::string>("us-west-2"));
        }
        SUBCASE("config file of the default profile") {
            const auto region = find_region(home.environment());
            REQUIRE(region.ok());
            CHECK(*region == std::optional<std::string>("eu-west-1"));
        }
        SUBCASE("config file of the selected profile") {
            variables = {{"AWS_PROFILE", "dev"}};
            const auto region = find_region(home.environment());
            REQUIRE(region.ok());
            CHECK(*region == std::optional<std::string>("ap-south-1"));
        }
        SUBCASE("none set") {
            variables = {{"AWS_PROFILE", "nowhere"}};
            const auto region = find_region(home.environment());
            REQUIRE(region.ok());
            CHECK_FALSE(region->has_value());
        }
        SUBCASE("invalid region") {
            variables = {{"AWS_REGION", "us-east-1/../evil"}};
            const auto region = find_region(home.environment());
            REQUIRE_FALSE(region.ok());
            CHECK(contains(region.error().message, "AWS_REGION: invalid AWS region"));
        }
        SUBCASE("invalid region in the config file") {
            home.write_config("[default]\n\nregion = US East\n");
            const auto region = find_region(home.environment());
            REQUIRE_FALSE(region.ok());
            CHECK(contains(region.error().message, (home.path() / ".aws" / "config").string() +
                                                       ":3: invalid AWS region \"US East\""));
        }
    }

} // TEST_SUITE

} // namespace jitbox::aws
