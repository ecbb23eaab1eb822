#include "jitbox/secrets/generate.hpp"

#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace jitbox {
namespace {

constexpr unsigned k_accepted_bytes = 256 - 256 % k_secret_alphabet.size(); // 248

} // namespace

Result<void> system_random_bytes(std::span<unsigned char> buffer) {
    std::size_t filled = 0;
    while (filled < buffer.size()) {
        const ssize_t count = ::getrandom(buffer.data() + filled, buffer.size() - filled, 0);
        if (count < 0 && errno == EINTR) {
            continue;
        }
        if (count < 0) {
            return make_failure(ExitCode::internal, "getrandom failed: {}", std::strerror(errno));
        }
        filled += static_cast<std::size_t>(count);
    }
    return {};
}

Result<std::string> generate_secret_value(std::size_t length, const RandomBytesFn& random) {
    std::string value;
    value.reserve(length);
    std::array<unsigned char, 64> batch{};
    while (value.size() < length) {
        if (auto filled = random(batch); !filled) {
            explicit_bzero(batch.data(), batch.size());
            return filled.error();
        }
        for (const unsigned char byte : batch) {
            if (byte < k_accepted_bytes && value.size() < length) {
                value += k_secret_alphabet[byte % k_secret_alphabet.size()];
            }
        }
    }
    // The batch held secret material too.
    explicit_bzero(batch.data(), batch.size());
    return value;
}

} // namespace jitbox
