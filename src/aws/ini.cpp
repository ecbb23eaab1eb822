#include "ini.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

namespace jitbox::aws {
namespace {

// Shared config and credentials files contain a few profiles, so a file above 1 MiB is almost
// certainly the wrong file.
constexpr std::size_t k_max_file_size = 1024 * 1024;

bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && is_blank(text.front())) {
        text.remove_prefix(1);
    }
    while (!text.empty() && is_blank(text.back())) {
        text.remove_suffix(1);
    }
    return text;
}

std::string to_lower(std::string_view text) {
    std::string lower(text);
    std::transform(lower.begin(), lower.end(), lower.begin(), [](char c) {
        return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    });
    return lower;
}

// Cuts a trailing comment, which starts at a '#' or ';' that follows a blank.
std::string_view strip_trailing_comment(std::string_view text) {
    for (std::size_t i = 1; i < text.size(); ++i) {
        if ((text[i] == '#' || text[i] == ';') && is_blank(text[i - 1])) {
            return trim(text.substr(0, i));
        }
    }
    return trim(text);
}

Failure line_failure(const std::filesystem::path& path, int line, std::string_view problem) {
    return make_failure(ExitCode::usage, "{}:{}: {}", path.string(), line, problem);
}

class IniParser {
public:
    explicit IniParser(const std::filesystem::path& path) { m_file.path = path; }

    Result<void> parse_line(std::string_view raw, int line) {
        if (raw.ends_with('\r')) {
            raw.remove_suffix(1);
        }
        const std::string_view text = trim(raw);
        if (text.empty() || text.front() == '#' || text.front() == ';') {
            return {};
        }
        if (is_blank(raw.front()) && m_in_setting) {
            return {}; // a continuation or sub-setting of the setting above
        }
        m_in_setting = false;
        if (text.front() == '[') {
            return parse_section_header(text, line);
        }
        return parse_setting(text, line);
    }

    IniFile finish() { return std::move(m_file); }

private:
    Result<void> parse_section_header(std::string_view text, int line) {
        const std::string_view header = strip_trailing_comment(text);
        if (header.size() < 2 || header.back() != ']') {
            return line_failure(m_file.path, line,
                                "invalid section header; write it as [name] on a line of its own");
        }
        const std::string_view name = trim(header.substr(1, header.size() - 2));
        if (name.empty()) {
            return line_failure(m_file.path, line, "empty section name; write it as [name]");
        }

        const auto existing =
            std::find_if(m_file.sections.begin(), m_file.sections.end(),
                         [&](const IniSection& section) { return section.name == name; });
        if (existing != m_file.sections.end()) {
            m_section = static_cast<std::size_t>(existing - m_file.sections.begin());
        } else {
            m_file.sections.push_back(IniSection{std::string(name), line, {}});
            m_section = m_file.sections.size() - 1;
        }
        return {};
    }

    Result<void> parse_setting(std::string_view text, int line) {
        const std::size_t equals = text.find('=');
        if (equals == std::string_view::npos) {
            return line_failure(m_file.path, line,
                                "invalid line; expected [section], name = value or a comment "
                                "starting with #");
        }
        const std::string_view name = trim(text.substr(0, equals));
        if (name.empty()) {
            return line_failure(m_file.path, line, "setting without a name before '='");
        }
        if (!m_section) {
            return line_failure(m_file.path, line,
                                "setting before the first [section] header; move it under the "
                                "profile it belongs to");
        }

        const std::string_view value = strip_trailing_comment(text.substr(equals + 1));
        m_file.sections[*m_section].settings[to_lower(name)] = IniSetting{std::string(value), line};
        m_in_setting = true;
        return {};
    }

    IniFile m_file;
    std::optional<std::size_t> m_section;
    bool m_in_setting = false;
};

} // namespace

const IniSetting* IniSection::find(std::string_view setting) const {
    const auto found = settings.find(to_lower(setting));
    return found == settings.end() ? nullptr : &found->second;
}

const IniSection* IniFile::find(std::string_view section) const {
    for (const IniSection& candidate : sections) {
        if (candidate.name == section) {
            return &candidate;
        }
    }
    return nullptr;
}

Result<IniFile> parse_ini(std::string_view text, const std::filesystem::path& path) {
    IniParser parser(path);
    int line = 0;
    std::size_t start = 0;
    while (start < text.size()) {
        const std::size_t end = std::min(text.find('\n', start), text.size());
        ++line;
        if (auto parsed = parser.parse_line(text.substr(start, end - start), line); !parsed) {
            return parsed.error();
        }
        start = end + 1;
    }
    return parser.finish();
}

Result<std::optional<IniFile>> read_ini_file(const std::filesystem::path& path,
                                             std::string_view read_fix) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        const int open_errno = errno;
        if (open_errno == ENOENT) {
            return std::optional<IniFile>{};
        }
        return make_failure(ExitCode::usage, "cannot read {}: {}; {}", path.string(),
                            std::strerror(open_errno), read_fix);
    }

    std::string text;
    std::array<char, 8192> buffer{};
    while (text.size() <= k_max_file_size) {
        const ssize_t count = ::read(fd, buffer.data(), buffer.size());
        if (count == 0) {
            break;
        }
        if (count < 0 && errno == EINTR) {
            continue;
        }
        if (count < 0) {
            const int read_errno = errno;
            ::close(fd);
            return make_failure(ExitCode::usage, "cannot read {}: {}; {}", path.string(),
                                std::strerror(read_errno), read_fix);
        }
        text.append(buffer.data(), static_cast<std::size_t>(count));
    }
    ::close(fd);

    if (text.size() > k_max_file_size) {
        return make_failure(ExitCode::usage,
                            "{} is larger than 1 MiB, which is too large for an AWS config or "
                            "credentials file; {}",
                            path.string(), read_fix);
    }

    auto parsed = parse_ini(text, path);
    if (!parsed) {
        return parsed.error();
    }
    return std::optional<IniFile>(std::move(parsed).value());
}

} // namespace jitbox::aws
