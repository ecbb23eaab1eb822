#include "jitbox/secrets/generate.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <vector>

using namespace jitbox;

namespace {

// A random source that returns the given bytes in order, then repeats the last one.
RandomBytesFn scripted_bytes(std::vector<unsigned char> bytes) {
    auto position = std::make_shared<std::size_t>(0);
    return [bytes = std::move(bytes), position](std::span<unsigned char> buffer) -> Result<void> {
        for (unsigned char& byte : buffer) {
            byte = bytes[std::min(*position, bytes.size() - 1)];
            ++*position;
        }
        return {};
    };
}

bool is_alphanumeric(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

} // namespace

TEST_SUITE("secrets generate") {

TEST_CASE("generate_secret_value lengths and alphabet") {
    for (const std::size_t length : {std::size_t{16}, std::size_t{32}, std::size_t{100},
                                     std::size_t{256}}) {
        CAPTURE(length);
        const auto value = generate_secret_value(length);
        REQUIRE(value.ok());
        CHECK(value->size() == length);
        CHECK(std::all_of(value->begin(), value->end(), is_alphanumeric));
    }
}

TEST_CASE("generate_secret_value differs between calls") {
    const auto first = generate_secret_value(32);
    const auto second = generate_secret_value(32);
    REQUIRE(first.ok());
    REQUIRE(second.ok());
    CHECK(*first != *second);
}

TEST_CASE("generate_secret_value maps bytes to characters") {
    struct Case {
        unsigned char byte;
        char expected;
    };
    const std::vector<Case> cases{
        {0, 'A'}, {25, 'Z'}, {26, 'a'}, {51, 'z'}, {52, '0'}, {61, '9'}, {62, 'A'}, {247, '9'},
    };
    for (const Case& c : cases) {
        CAPTURE(static_cast<int>(c.byte));
        const auto value = generate_secret_value(1, scripted_bytes({c.byte}));
        REQUIRE(value.ok());
        CHECK(*value == std::string(1, c.expected));
    }
}

TEST_CASE("generate_secret_value rejects bytes from 248 up") {
    // 248 to 255 would favour A to H if reduced modulo 62, so they are drawn again.
    const auto value = generate_secret_value(
        2, scripted_bytes({248, 249, 250, 251, 252, 253, 254, 255, 1, 255, 27}));
    REQUIRE(value.ok());
    CHECK(*value == "Bb");
}

TEST_CASE("generate_secret_value draws again after a batch of rejected bytes") {
    std::vector<unsigned char> bytes(200, 255);
    bytes.push_back(3);
    const auto value = generate_secret_value(1, scripted_bytes(bytes));
    REQUIRE(value.ok());
    CHECK(*value == "D");
}

TEST_CASE("generate_secret_value is uniform over the alphabet") {
    // Each of the 248 accepted byte values once, so each character comes out exactly 4 times.
    std::vector<unsigned char> bytes;
    for (int byte = 0; byte < 256; ++byte) {
        bytes.push_back(static_cast<unsigned char>(byte));
    }
    const auto value = generate_secret_value(248, scripted_bytes(bytes));
    REQUIRE(value.ok());
    std::map<char, int> counts;
    for (const char c : *value) {
        ++counts[c];
    }
    CHECK(counts.size() == k_secret_alphabet.size());
    CHECK(std::all_of(counts.begin(), counts.end(),
                      [](const auto& entry) { return entry.second == 4; }));
}

TEST_CASE("generate_secret_value passes on a failing source") {
    const RandomBytesFn failing = [](std::span<unsigned char>) -> Result<void> {
        return Failure{ExitCode::internal, "no entropy"};
    };
    const auto value = generate_secret_value(32, failing);
    REQUIRE_FALSE(value.ok());
    CHECK(value.error().message == "no entropy");
}

TEST_CASE("system_random_bytes fills a buffer") {
    std::vector<unsigned char> buffer(4096, 0);
    REQUIRE(system_random_bytes(buffer).ok());
    CHECK(std::count(buffer.begin(), buffer.end(), 0) < 100);
}

} // TEST_SUITE("secrets generate")
