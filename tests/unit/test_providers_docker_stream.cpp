#include "jitbox/providers/docker_stream.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

using namespace jitbox;

namespace {

// One frame as the engine sends it: kind, three zero bytes, big-endian length, payload.
std::string frame(StreamKind kind, const std::string& payload) {
    const auto length = static_cast<std::uint32_t>(payload.size());
    std::string bytes;
    bytes += static_cast<char>(kind);
    bytes += std::string(3, '\0');
    for (const int shift : {24, 16, 8, 0}) {
        bytes += static_cast<char>((length >> shift) & 0xFF);
    }
    return bytes + payload;
}

// The payload per stream, joined across pieces.
struct Collected {
    std::string out;
    std::string err;
    std::string in;
    int pieces = 0;
};

Result<void> feed_in_pieces(StreamDemuxer& demuxer, const std::string& bytes,
                            const std::vector<std::size_t>& cuts, Collected& collected) {
    const StreamDemuxer::Sink sink = [&collected](StreamKind kind, std::string_view payload) {
        ++collected.pieces;
        if (kind == StreamKind::stdout_stream) {
            collected.out += payload;
        } else if (kind == StreamKind::stderr_stream) {
            collected.err += payload;
        } else {
            collected.in += payload;
        }
    };
    std::size_t start = 0;
    for (const std::size_t cut : cuts) {
        if (Result<void> fed = demuxer.feed(std::string_view(bytes).substr(start, cut - start),
                                            sink);
            !fed) {
            return fed;
        }
        start = cut;
    }
    return demuxer.feed(std::string_view(bytes).substr(start), sink);
}

// Feeds `bytes` to a new demuxer in one read, which must succeed and end at a frame boundary.
Collected demux_one_read(const std::string& bytes) {
    StreamDemuxer demuxer;
    Collected collected;
    REQUIRE(feed_in_pieces(demuxer, bytes, {}, collected).ok());
    CHECK(demuxer.at_frame_boundary());
    return collected;
}

} // namespace

TEST_SUITE("docker stream") {

    TEST_CASE("demuxer splits frames of one read") {
        const std::string bytes = frame(StreamKind::stdout_stream, "out\n") +
                                  frame(StreamKind::stderr_stream, "err\n") +
                                  frame(StreamKind::stdout_stream, "more\n");

        const Collected collected = demux_one_read(bytes);

        CHECK(collected.out == "out\nmore\n");
        CHECK(collected.err == "err\n");
        CHECK(collected.pieces == 3);
    }

    TEST_CASE("demuxer joins a frame split at every byte") {
        const std::string bytes =
            frame(StreamKind::stderr_stream, "first") + frame(StreamKind::stdout_stream, "second");
        for (std::size_t cut = 1; cut < bytes.size(); ++cut) {
            CAPTURE(cut);
            StreamDemuxer demuxer;
            Collected collected;

            REQUIRE(feed_in_pieces(demuxer, bytes, {cut}, collected).ok());

            CHECK(collected.err == "first");
            CHECK(collected.out == "second");
            CHECK(demuxer.at_frame_boundary());
        }
    }

    TEST_CASE("demuxer takes one byte at a time") {
        const std::string bytes =
            frame(StreamKind::stdout_stream, "abc") + frame(StreamKind::stderr_stream, "de");
        std::vector<std::size_t> cuts;
        for (std::size_t cut = 1; cut < bytes.size(); ++cut) {
            cuts.push_back(cut);
        }
        StreamDemuxer demuxer;
        Collected collected;

        REQUIRE(feed_in_pieces(demuxer, bytes, cuts, collected).ok());

        CHECK(collected.out == "abc");
        CHECK(collected.err == "de");
    }

    TEST_CASE("demuxer reports a partial frame") {
        const std::string bytes = frame(StreamKind::stdout_stream, "abcdef");
        StreamDemuxer demuxer;
        Collected collected;

        SUBCASE("inside the header") {
            REQUIRE(feed_in_pieces(demuxer, bytes.substr(0, 5), {}, collected).ok());
            CHECK_FALSE(demuxer.at_frame_boundary());
            CHECK(collected.pieces == 0);
        }
        SUBCASE("inside the payload") {
            REQUIRE(feed_in_pieces(demuxer, bytes.substr(0, 10), {}, collected).ok());
            CHECK_FALSE(demuxer.at_frame_boundary());
            CHECK(collected.out == "ab");
        }
    }

    TEST_CASE("demuxer passes empty frames and stdin frames") {
        const std::string bytes = frame(StreamKind::stdout_stream, "") +
                                  frame(StreamKind::stdin_stream, "echo") +
                                  frame(StreamKind::stdout_stream, "x");

        const Collected collected = demux_one_read(bytes);

        CHECK(collected.in == "echo");
        CHECK(collected.out == "x");
    }

    TEST_CASE("demuxer reads a big-endian length") {
        const std::string payload(70000, 'z'); // 0x00011170: three length bytes in use
        const std::string bytes = frame(StreamKind::stdout_stream, payload);
        StreamDemuxer demuxer;
        Collected collected;

        REQUIRE(feed_in_pieces(demuxer, bytes, {8, 4096, 65536}, collected).ok());

        CHECK(collected.out.size() == payload.size());
        CHECK(collected.pieces == 3);
        CHECK(demuxer.at_frame_boundary());
    }

    TEST_CASE("demuxer rejects invalid headers") {
        StreamDemuxer demuxer;
        Collected collected;
        std::string bytes;

        SUBCASE("unknown stream kind") {
            bytes = frame(StreamKind::stdout_stream, "ok") + frame(StreamKind::stdout_stream, "x");
            bytes[10] = 3; // the second frame's kind, after 8 header and 2 payload bytes
        }
        SUBCASE("padding that is not zero") {
            bytes = frame(StreamKind::stdout_stream, "ok") + frame(StreamKind::stdout_stream, "x");
            bytes[12] = 1;
        }
        SUBCASE("plain text, such as an error body") {
            bytes = frame(StreamKind::stdout_stream, "ok") + R"({"message":"no"})";
        }

        const Result<void> fed = feed_in_pieces(demuxer, bytes, {}, collected);

        REQUIRE_FALSE(fed.ok());
        CHECK(fed.error().code == ExitCode::provider);
        CHECK(fed.error().message.find("invalid stream frame header") != std::string::npos);
        CHECK(collected.out == "ok");
        CHECK_FALSE(demuxer.feed(frame(StreamKind::stdout_stream, "later"), [](auto, auto) {}).ok());
    }
}
