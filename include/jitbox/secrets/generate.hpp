#pragma once

#include "jitbox/util/result.hpp"

#include <cstddef>
#include <functional>
#include <span>
#include <string>

namespace jitbox {

/// Fills the whole buffer with random bytes, or fails with ExitCode::internal.
using RandomBytesFn = std::function<Result<void>(std::span<unsigned char> buffer)>;

/// Random bytes from getrandom(2), which blocks only until the kernel's pool is first seeded.
Result<void> system_random_bytes(std::span<unsigned char> buffer);

/// The characters of a generated secret: A-Z, a-z and 0-9, so a value needs no quoting in an
/// environment variable, a URL or a connection string.
inline constexpr std::string_view k_secret_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A random value of `length` characters from k_secret_alphabet. Each character comes from one
/// random byte below 248, the largest multiple of 62 that fits in a byte, and bytes of 248 and
/// above are drawn again, so every character is equally likely.
Result<std::string> generate_secret_value(std::size_t length,
                                          const RandomBytesFn& random = system_random_bytes);

} // namespace jitbox
