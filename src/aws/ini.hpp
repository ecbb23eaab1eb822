#pragma once

// A reader for the INI dialect of the AWS shared credentials and config files. Debian 12 has no
// INI library, and the dialect is small.
//
// - A line whose first non-blank character is '#' or ';' is a comment, and so is the rest of a
//   value or section header from a blank followed by '#' or ';'.
// - `[name]` starts a section. A name that appears twice has its settings merged, and the later
//   value of a repeated setting wins.
// - `name = value` is a setting. Names are compared in lower case, and values are trimmed.
// - An indented line after a setting continues it, as in `s3 =` followed by indented
//   sub-settings. Continuation lines are skipped because no setting that jitbox reads has any.
//
// Error messages give the file and line but never the line's text, because it may hold a key.

#include "jitbox/util/result.hpp"

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jitbox::aws {

struct IniSetting {
    std::string value;
    int line = 0;
};

struct IniSection {
    std::string name;                           // trimmed, such as "default" or "profile dev"
    int line = 0;                               // of the first header with this name
    std::map<std::string, IniSetting> settings; // keyed by lower-case name

    const IniSetting* find(std::string_view setting) const;
};

struct IniFile {
    std::filesystem::path path;
    std::vector<IniSection> sections; // in the order of their first header

    const IniSection* find(std::string_view section) const;
};

/// Parses `text`, naming `path` in error messages. Failures are ExitCode::usage.
Result<IniFile> parse_ini(std::string_view text, const std::filesystem::path& path);

/// Reads and parses the file at `path`. Returns no file when it does not exist. Any other read
/// error is a failure with ExitCode::usage whose message ends with `read_fix`, such as "set
/// AWS_CONFIG_FILE to another file".
Result<std::optional<IniFile>> read_ini_file(const std::filesystem::path& path,
                                             std::string_view read_fix);

} // namespace jitbox::aws
