#include "jitbox/providers/docker_stream.hpp"

#include <algorithm>

namespace jitbox {

Result<void> StreamDemuxer::feed(std::string_view bytes, const Sink& sink) {
    while (!bytes.empty() && !m_failed) {
        if (m_payload_left > 0) {
            const std::size_t count = std::min<std::size_t>(m_payload_left, bytes.size());
            sink(m_kind, bytes.substr(0, count));
            m_payload_left -= static_cast<std::uint32_t>(count);
            bytes.remove_prefix(count);
            continue;
        }

        const std::size_t count = std::min(k_header_size - m_header_size, bytes.size());
        std::copy_n(bytes.begin(), count, m_header.begin() + static_cast<long>(m_header_size));
        m_header_size += count;
        bytes.remove_prefix(count);
        if (m_header_size < k_header_size) {
            break;
        }

        m_header_size = 0;
        if (m_header[0] > 2 || m_header[1] != 0 || m_header[2] != 0 || m_header[3] != 0) {
            m_failed = true;
            break;
        }
        m_kind = static_cast<StreamKind>(m_header[0]);
        m_payload_left = (std::uint32_t{m_header[4]} << 24) | (std::uint32_t{m_header[5]} << 16) |
                         (std::uint32_t{m_header[6]} << 8) | std::uint32_t{m_header[7]};
    }
    if (m_failed) {
        return make_failure(ExitCode::provider,
                            "the engine sent an invalid stream frame header (stream {}, padding "
                            "{:02x}{:02x}{:02x}); check that DOCKER_HOST names a Docker engine",
                            m_header[0], m_header[1], m_header[2], m_header[3]);
    }
    return {};
}

} // namespace jitbox
