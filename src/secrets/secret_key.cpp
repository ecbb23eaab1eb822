#include "jitbox/secrets/store.hpp"

#include <algorithm>

namespace jitbox {

namespace {

bool is_key_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

} // namespace

bool is_valid_secret_key(std::string_view key) {
    return !key.empty() && key.size() <= k_max_secret_key_bytes &&
           std::all_of(key.begin(), key.end(), is_key_char);
}

} // namespace jitbox
