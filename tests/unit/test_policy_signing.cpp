#include "jitbox/policy/signing.hpp"

#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace jitbox {
namespace {

// A key pair made with `openssl genpkey -algorithm ED25519` for these tests only. The
// fingerprint and the signature below were computed with Python's hashlib and
// `openssl pkeyutl -sign -rawin`, so they check the format against other tools.
constexpr std::string_view k_fixture_private_key = R"(-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJs8IB/exIV7T7ygTAlHhQ6lPYQbX10D5l1mf19znITb
-----END PRIVATE KEY-----
)";
constexpr std::string_view k_fixture_public_key = R"(-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAakv3EQOc2XK9MiuWwxJdHnfbJd4xZY7ik0Zs/g4LkhU=
-----END PUBLIC KEY-----
)";
constexpr std::string_view k_fixture_fingerprint = "03f5da16894490bc";
constexpr std::string_view k_fixture_message = "default_template = \"db\"\n";
constexpr std::string_view k_fixture_signature =
    "y3F3wc4qQuUFFLaQn7ute0g1VueV20f+cXhijr452Dr3HKh5fL4w/3q7/38PuRf7TcUKxDWzqPuESSfeOBzDBg==";

// A P-256 public key, which is valid PEM but not Ed25519.
constexpr std::string_view k_ec_public_key = R"(-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEXkAV54EuSZQq5aeBl3Tt893e950d
hKyFJHJEVOnQY3I1WBi7L74mhCwtYegbcSVwFwQ12eGZSxwZNIq+pMtm8Q==
-----END PUBLIC KEY-----
)";

using test::TempDir;
using test::write_file;

std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

mode_t permissions(const fs::path& path) {
    struct stat info {};
    REQUIRE(::stat(path.c_str(), &info) == 0);
    return info.st_mode & 07777;
}

bool contains(const std::string& text, std::string_view fragment) {
    return text.find(fragment) != std::string::npos;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        lines.push_back(line);
    }
    return lines;
}

// A folder with one generated key pair: `keys/signer.pub` is trusted, `signer.key` signs.
struct SigningSetup {
    TempDir dir;
    fs::path private_key = dir.path() / "signer.key";
    fs::path keys = dir.path() / "keys";
    fs::path file = dir.path() / "jitbox.toml";
    std::string fingerprint;

    SigningSetup() {
        fs::create_directories(keys);
        const auto made = keygen(private_key, keys / "signer.pub");
        INFO((made.ok() ? "" : made.error().message));
        REQUIRE(made.ok());
        fingerprint = *made;
        write_file(file, "[templates.db]\nimage = \"postgres:16\"\n");
    }

    void sign_file() {
        const auto signed_path = sign(private_key, file);
        INFO((signed_path.ok() ? "" : signed_path.error().message));
        REQUIRE(signed_path.ok());
    }
};

std::string verify_failure(const fs::path& file, const fs::path& keys) {
    const auto verified = verify(file, keys);
    REQUIRE_FALSE(verified.ok());
    CHECK(verified.error().code == ExitCode::denied);
    CHECK(contains(verified.error().message,
                   file.string() + " is not signed by a trusted key: "));
    return verified.error().message;
}

} // namespace

TEST_SUITE("policy signing") {
    TEST_CASE("keygen writes PEM keys with their modes") {
        TempDir dir;
        const ::mode_t old_umask = ::umask(077);
        const auto fingerprint = keygen(dir.path() / "k.key", dir.path() / "k.pub");
        ::umask(old_umask);
        REQUIRE(fingerprint.ok());
        CHECK(fingerprint->size() == 16);
        CHECK(fingerprint->find_first_not_of("0123456789abcdef") == std::string::npos);
        CHECK(permissions(dir.path() / "k.key") == 0600);
        CHECK(permissions(dir.path() / "k.pub") == 0644);
        CHECK(read_text(dir.path() / "k.key").rfind("-----BEGIN PRIVATE KEY-----\n", 0) == 0);
        CHECK(read_text(dir.path() / "k.pub").rfind("-----BEGIN PUBLIC KEY-----\n", 0) == 0);
    }

    TEST_CASE("keygen makes a new key each time") {
        TempDir dir;
        const auto first = keygen(dir.path() / "a.key", dir.path() / "a.pub");
        const auto second = keygen(dir.path() / "b.key", dir.path() / "b.pub");
        REQUIRE(first.ok());
        REQUIRE(second.ok());
        CHECK(*first != *second);
    }

    TEST_CASE("keygen does not overwrite") {
        TempDir dir;
        const fs::path private_key = dir.path() / "k.key";
        const fs::path public_key = dir.path() / "k.pub";

        SUBCASE("an existing private key") {
            write_file(private_key, "keep me");
            const auto made = keygen(private_key, public_key);
            REQUIRE_FALSE(made.ok());
            CHECK(made.error().code == ExitCode::usage);
            CHECK(contains(made.error().message, "exists already"));
            CHECK(read_text(private_key) == "keep me");
            CHECK_FALSE(fs::exists(public_key));
        }
        SUBCASE("an existing public key") {
            write_file(public_key, "keep me");
            const auto made = keygen(private_key, public_key);
            REQUIRE_FALSE(made.ok());
            CHECK(made.error().code == ExitCode::usage);
            CHECK(read_text(public_key) == "keep me");
            CHECK_FALSE(fs::exists(private_key));
        }
        SUBCASE("the same path twice") {
            const auto made = keygen(private_key, private_key);
            REQUIRE_FALSE(made.ok());
            CHECK(made.error().code == ExitCode::usage);
            CHECK_FALSE(fs::exists(private_key));
        }
    }

    TEST_CASE("sign and verify round trip") {
        SigningSetup setup;
        const auto signed_path = sign(setup.private_key, setup.file);
        REQUIRE(signed_path.ok());
        CHECK(*signed_path == signature_path(setup.file));
        CHECK(signed_path->string() == setup.file.string() + ".sig");

        const auto verified = verify(setup.file, setup.keys);
        INFO((verified.ok() ? "" : verified.error().message));
        REQUIRE(verified.ok());
        CHECK(verified->key.fingerprint == setup.fingerprint);
        CHECK(verified->key.path == setup.keys / "signer.pub");
    }

    TEST_CASE("signature file names the key fingerprint") {
        SigningSetup setup;
        setup.sign_file();
        const std::vector<std::string> lines = lines_of(read_text(signature_path(setup.file)));
        REQUIRE(lines.size() == 2);
        CHECK(lines[0].rfind("# ", 0) == 0);
        CHECK(contains(lines[0], setup.fingerprint));
        CHECK(lines[1].size() == 88); // base64 of 64 bytes
        CHECK(permissions(signature_path(setup.file)) == 0644);
    }

    TEST_CASE("signature matches other Ed25519 tools") {
        TempDir dir;
        write_file(dir.path() / "fixture.key", k_fixture_private_key);
        write_file(dir.path() / "keys" / "fixture.pem", k_fixture_public_key);
        write_file(dir.path() / "jitbox.toml", k_fixture_message);

        REQUIRE(sign(dir.path() / "fixture.key", dir.path() / "jitbox.toml").ok());
        const std::vector<std::string> lines =
            lines_of(read_text(signature_path(dir.path() / "jitbox.toml")));
        REQUIRE(lines.size() == 2);
        CHECK(contains(lines[0], k_fixture_fingerprint));
        CHECK(lines[1] == k_fixture_signature);

        const auto verified = verify(dir.path() / "jitbox.toml", dir.path() / "keys");
        REQUIRE(verified.ok());
        CHECK(verified->key.fingerprint == k_fixture_fingerprint);
    }

    TEST_CASE("signing again replaces the signature") {
        SigningSetup setup;
        setup.sign_file();
        write_file(setup.file, "default_template = \"db\"\n");
        setup.sign_file();
        CHECK(verify(setup.file, setup.keys).ok());
    }

    TEST_CASE("verify rejects a changed file") {
        SigningSetup setup;
        setup.sign_file();
        write_file(setup.file, "[templates.db]\nimage = \"postgres:17\"\n");
        const std::string message = verify_failure(setup.file, setup.keys);
        CHECK(contains(message, "changed since it was signed"));
        CHECK(contains(message, setup.fingerprint));
    }

    TEST_CASE("verify rejects one added byte") {
        SigningSetup setup;
        setup.sign_file();
        write_file(setup.file, read_text(setup.file) + "\n");
        CHECK(contains(verify_failure(setup.file, setup.keys), "changed since it was signed"));
    }

    TEST_CASE("verify rejects an untrusted key") {
        SigningSetup setup;
        const fs::path other_key = setup.dir.path() / "other.key";
        const auto other = keygen(other_key, setup.dir.path() / "other.pub");
        REQUIRE(other.ok());
        REQUIRE(sign(other_key, setup.file).ok());

        SUBCASE("named by its fingerprint") {
            const std::string message = verify_failure(setup.file, setup.keys);
            CHECK(contains(message, "made with key " + *other));
            CHECK(contains(message, "not among the trusted keys in " + setup.keys.string()));
        }
        SUBCASE("without the fingerprint comment") {
            const std::vector<std::string> lines = lines_of(read_text(signature_path(setup.file)));
            write_file(signature_path(setup.file), lines.back() + "\n");
            const std::string message = verify_failure(setup.file, setup.keys);
            CHECK(contains(message, "matches no trusted key"));
        }
    }

    TEST_CASE("verify ignores a wrong fingerprint") {
        SigningSetup setup;
        setup.sign_file();
        const std::vector<std::string> lines = lines_of(read_text(signature_path(setup.file)));
        write_file(signature_path(setup.file), "# key 0000000000000000\n" + lines.back() + "\n");
        const auto verified = verify(setup.file, setup.keys);
        REQUIRE(verified.ok());
        CHECK(verified->key.fingerprint == setup.fingerprint);
    }

    TEST_CASE("verify rejects a missing signature") {
        SigningSetup setup;
        const std::string message = verify_failure(setup.file, setup.keys);
        CHECK(contains(message, "signature file " + setup.file.string() + ".sig is missing"));
        CHECK(contains(message, "jitbox policy sign --key KEY " + setup.file.string()));
    }

    TEST_CASE("verify rejects a malformed signature") {
        SigningSetup setup;
        setup.sign_file();
        const std::string good = lines_of(read_text(signature_path(setup.file))).back();
        const std::vector<std::pair<const char*, std::string>> cases{
            {"empty", ""},
            {"only a comment", "# nothing here\n"},
            {"not base64", "this is not base64!\n"},
            {"too short", "AAAA\n"},
            {"too long", good.substr(0, 84) + "AAAAAAAA\n"},
            {"padding inside", good.substr(0, 40) + "=" + good.substr(41) + "\n"},
            {"two signatures", good + "\n" + good + "\n"},
        };
        for (const auto& [name, text] : cases) {
            CAPTURE(name);
            write_file(signature_path(setup.file), text);
            CHECK(contains(verify_failure(setup.file, setup.keys), "is malformed"));
        }
    }

    TEST_CASE("verify accepts CRLF line ends") {
        SigningSetup setup;
        setup.sign_file();
        const std::vector<std::string> lines = lines_of(read_text(signature_path(setup.file)));
        write_file(signature_path(setup.file), lines[0] + "\r\n" + lines[1] + "\r\n");
        CHECK(verify(setup.file, setup.keys).ok());
    }

    TEST_CASE("verify with no trusted keys") {
        SigningSetup setup;
        setup.sign_file();
        SUBCASE("an empty folder") {
            const fs::path empty = setup.dir.path() / "empty";
            fs::create_directories(empty);
            CHECK(contains(verify_failure(setup.file, empty),
                           "no trusted keys in " + empty.string()));
        }
        SUBCASE("no folder") {
            const fs::path missing = setup.dir.path() / "missing";
            CHECK(contains(verify_failure(setup.file, missing), "no trusted keys"));
        }
    }

    TEST_CASE("verify_content checks the given bytes") {
        SigningSetup setup;
        setup.sign_file();
        const std::string signed_text = read_text(setup.file);
        const auto trusted = load_trusted_keys(setup.keys);
        REQUIRE(trusted.ok());
        write_file(setup.file, "changed after it was read\n");
        CHECK(verify_content(signed_text, setup.file, *trusted).ok());
        CHECK_FALSE(verify_content("changed after it was read\n", setup.file, *trusted).ok());
    }

    TEST_CASE("sign rejects a key that cannot sign") {
        SigningSetup setup;
        SUBCASE("a public key") {
            const auto signed_path = sign(setup.keys / "signer.pub", setup.file);
            REQUIRE_FALSE(signed_path.ok());
            CHECK(signed_path.error().code == ExitCode::usage);
            CHECK(contains(signed_path.error().message, "not an unencrypted PEM private key"));
        }
        SUBCASE("a missing key") {
            const auto signed_path = sign(setup.dir.path() / "nothing.key", setup.file);
            REQUIRE_FALSE(signed_path.ok());
            CHECK(signed_path.error().code == ExitCode::usage);
        }
        CHECK_FALSE(fs::exists(signature_path(setup.file)));
    }

    TEST_CASE("trusted keys skip files that are not Ed25519 keys") {
        SigningSetup setup;
        write_file(setup.keys / "garbage.pub", "not a key\n");
        write_file(setup.keys / "p256.pem", k_ec_public_key);
        write_file(setup.keys / "README", "ignored: no .pub or .pem suffix\n");
        fs::create_directories(setup.keys / "folder.pub");

        const auto trusted = load_trusted_keys(setup.keys);
        REQUIRE(trusted.ok());
        REQUIRE(trusted->keys.size() == 1);
        CHECK(trusted->keys[0].fingerprint == setup.fingerprint);
        REQUIRE(trusted->warnings.size() == 3);
        CHECK(contains(trusted->warnings[0], "folder.pub: not a regular file"));
        CHECK(contains(trusted->warnings[1], "garbage.pub: not a PEM public key"));
        CHECK(contains(trusted->warnings[2], "p256.pem: not an Ed25519 key (type id-ecPublicKey)"));

        setup.sign_file();
        CHECK(verify(setup.file, setup.keys).ok());
    }

    TEST_CASE("trusted keys check owner and mode") {
        SigningSetup setup;
        SUBCASE("a folder owned by someone else") {
            const auto trusted = load_trusted_keys(setup.keys, ::geteuid() + 1);
            REQUIRE_FALSE(trusted.ok());
            CHECK(trusted.error().code == ExitCode::usage);
            CHECK(contains(trusted.error().message, "owned by uid"));
            CHECK(contains(trusted.error().message, "chmod go-w " + setup.keys.string()));
        }
        SUBCASE("a folder writable by others") {
            fs::permissions(setup.keys, fs::perms::others_write, fs::perm_options::add);
            const auto trusted = load_trusted_keys(setup.keys, ::geteuid());
            REQUIRE_FALSE(trusted.ok());
            CHECK(contains(trusted.error().message, "writable by group or others"));
        }
        SUBCASE("a key file writable by group") {
            fs::permissions(setup.keys / "signer.pub", fs::perms::group_write,
                            fs::perm_options::add);
            const auto trusted = load_trusted_keys(setup.keys, ::geteuid());
            REQUIRE(trusted.ok());
            CHECK(trusted->keys.empty());
            REQUIRE(trusted->warnings.size() == 1);
            CHECK(contains(trusted->warnings[0], "signer.pub: writable by group or others"));
        }
        SUBCASE("safe folder and key") {
            const auto trusted = load_trusted_keys(setup.keys, ::geteuid());
            REQUIRE(trusted.ok());
            CHECK(trusted->keys.size() == 1);
            CHECK(trusted->warnings.empty());
        }
    }
}

} // namespace jitbox
