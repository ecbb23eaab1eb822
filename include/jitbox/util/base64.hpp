#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace jitbox {

/// Encodes `bytes` as base64 with the standard alphabet and '=' padding (RFC 4648, section 4).
std::string to_base64(std::string_view bytes);

/// Decodes padded standard base64. Returns nullopt for any other text, such as a wrong length,
/// a character outside the alphabet or misplaced padding.
std::optional<std::string> from_base64(std::string_view text);

/// Encodes `bytes` as base64 with the URL and file name safe alphabet ('-' and '_' in place of
/// '+' and '/') and '=' padding (RFC 4648, section 5).
std::string to_base64url(std::string_view bytes);

} // namespace jitbox
