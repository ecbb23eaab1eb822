// Fuzz target: verify_audit_log over arbitrary log bytes. The input is the log up to its first
// form feed (\f), and the rest is the content of the head file `audit.head`. An input without a
// form feed has no head file. Both files are written to a private temp folder for each input,
// because the verifier reads files.

#include "jitbox/audit/audit.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>

namespace fs = std::filesystem;

namespace {

void remove_folder();

fs::path make_folder() {
    std::string pattern = (fs::temp_directory_path() / "jitbox-fuzz-audit.XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
        std::perror("jitbox fuzz: mkdtemp");
        std::abort();
    }
    std::atexit(remove_folder);
    return pattern;
}

const fs::path& folder() {
    static const fs::path path = make_folder();
    return path;
}

void remove_folder() {
    std::error_code ignored;
    fs::remove_all(folder(), ignored);
}

void write_file(const fs::path& path, std::string_view bytes) {
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!file) {
        std::perror("jitbox fuzz: writing the audit log");
        std::abort();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const fs::path log_path = folder() / "audit.log";
    const fs::path head_path = jitbox::audit_head_path(log_path);

    const auto separator = input.find('\f');
    write_file(log_path, input.substr(0, separator));
    if (separator == std::string_view::npos) {
        std::error_code ignored;
        fs::remove(head_path, ignored);
    } else {
        write_file(head_path, input.substr(separator + 1));
    }

    const auto report = jitbox::verify_audit_log(log_path);
    if (!report) {
        std::abort(); // the files are readable, so the verifier may not fail
    }
    if (report->intact() && report->records > 0 && separator == std::string_view::npos) {
        std::abort(); // a log with records and no head file is never intact
    }
    return 0;
}
