#include "jitbox/util/install.hpp"

#include <string>
#include <system_error>

namespace jitbox {

std::filesystem::path own_executable() {
    std::error_code error;
    std::string path = std::filesystem::read_symlink("/proc/self/exe", error).string();
    constexpr std::string_view deleted = " (deleted)";
    if (path.ends_with(deleted)) {
        path.erase(path.size() - deleted.size());
    }
    return path;
}

std::optional<std::filesystem::path> find_installed_file(const std::filesystem::path& program,
                                                         std::string_view file_name,
                                                         std::string_view from_bindir) {
    const auto folder = program.parent_path();
    const std::filesystem::path candidates[] = {
        folder / file_name,
        folder / from_bindir / file_name,
    };
    for (const auto& candidate : candidates) {
        std::error_code error;
        if (std::filesystem::is_regular_file(candidate, error)) {
            return candidate;
        }
    }
    return std::nullopt;
}

} // namespace jitbox
