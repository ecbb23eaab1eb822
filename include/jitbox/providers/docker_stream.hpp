#pragma once

#include "jitbox/util/result.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>

namespace jitbox {

/// The stream a frame of the Engine API's multiplexed stream belongs to: the first byte of its
/// header.
enum class StreamKind : std::uint8_t { stdin_stream = 0, stdout_stream = 1, stderr_stream = 2 };

/// Splits the multiplexed stream that the Engine API sends for exec, attach and logs of a
/// container without a TTY. Each frame has an 8-byte header (the stream kind, three zero bytes
/// and the payload length as a big-endian uint32) and then the payload. Bytes may arrive in
/// pieces of any size, so a header or a payload can be split across calls of feed.
class StreamDemuxer {
public:
    /// Receives payload bytes in order. One frame's payload can come in several pieces, because
    /// a frame can be up to 4 GiB and is passed on as it arrives.
    using Sink = std::function<void(StreamKind kind, std::string_view payload)>;

    /// Passes the payload in `bytes` to `sink`. Fails with ExitCode::provider on a header
    /// whose stream kind is not 0, 1 or 2 or whose padding is not zero, and keeps failing after
    /// that, because the frame boundaries are lost.
    Result<void> feed(std::string_view bytes, const Sink& sink);

    /// True when the bytes fed so far end at a frame boundary, so the stream may end here.
    bool at_frame_boundary() const { return m_header_size == 0 && m_payload_left == 0; }

private:
    static constexpr std::size_t k_header_size = 8;

    std::array<unsigned char, k_header_size> m_header{};
    std::size_t m_header_size = 0;  // header bytes collected so far
    std::uint32_t m_payload_left = 0; // payload bytes of the current frame still to come
    StreamKind m_kind = StreamKind::stdout_stream;
    bool m_failed = false;
};

} // namespace jitbox
