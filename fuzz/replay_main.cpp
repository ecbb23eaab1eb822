// A main for the fuzz targets in the normal build. It calls LLVMFuzzerTestOneInput once with
// each file named on the command line, or with each file of a named folder. So the seed corpora
// and the regression inputs run under ctest without clang or libFuzzer. It exits 1 when a path
// cannot be read, and a crash or an escaped exception fails the test on its own.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace fs = std::filesystem;

namespace {

bool replay_file(const fs::path& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        std::cerr << "replay: cannot read " << path.string() << "\n";
        return false;
    }
    const std::string bytes((std::istreambuf_iterator<char>(file)),
                            std::istreambuf_iterator<char>());
    // A copy in its own allocation, so that reading past the end is not hidden by the string's
    // capacity when the replay runs under a sanitizer.
    const std::vector<std::uint8_t> input(bytes.begin(), bytes.end());
    LLVMFuzzerTestOneInput(input.data(), input.size());
    return true;
}

// Lists the regular files of a folder in name order, so runs are repeatable.
std::vector<fs::path> folder_files(const fs::path& folder) {
    std::vector<fs::path> files;
    for (const fs::directory_entry& entry : fs::directory_iterator(folder)) {
        if (entry.is_regular_file() && !entry.path().filename().string().starts_with('.')) {
            files.push_back(entry.path());
        }
    }
    std::sort(files.begin(), files.end());
    return files;
}

} // namespace

int main(int argc, char** argv) {
    std::size_t replayed = 0;
    bool ok = true;
    for (int i = 1; i < argc; ++i) {
        const fs::path path = argv[i];
        std::error_code error;
        const std::vector<fs::path> files =
            fs::is_directory(path, error) ? folder_files(path) : std::vector<fs::path>{path};
        for (const fs::path& file : files) {
            if (replay_file(file)) {
                ++replayed;
            } else {
                ok = false;
            }
        }
    }
    std::cout << "replay: ran " << replayed << " inputs\n";
    return ok ? 0 : 1;
}
