#pragma once

#include <filesystem>
#include <optional>
#include <string_view>

namespace jitbox {

/// The path of the running binary, read from /proc/self/exe. When an upgrade has replaced the
/// file, the kernel appends " (deleted)" to the link, and the path without it is returned, so
/// the new binary is found. Empty when /proc is not mounted.
std::filesystem::path own_executable();

/// Finds `file_name`, installed with the jitbox binary at `program`. It looks in the binary's
/// folder first, where a build tree keeps it, then in that folder joined with `from_bindir`, the
/// install layout's relative path from the binary folder. nullopt when neither is a regular file.
std::optional<std::filesystem::path> find_installed_file(const std::filesystem::path& program,
                                                         std::string_view file_name,
                                                         std::string_view from_bindir);

} // namespace jitbox
