// Runs the header-signing cases of the AWS Signature Version 4 test suite against jitbox's
// signer and prints PASS or FAIL for each case, then the totals.
//
// Each case is a folder with context.json (credentials, region, service, time and flags),
// request.txt (the unsigned request) and the expected header-canonical-request.txt,
// header-string-to-sign.txt, header-signature.txt and header-signed-request.txt. The
// presigned-URL files (query-*.txt) are not compared, because jitbox signs with the
// Authorization header only.
//
// The folder is JITBOX_SIGV4_VECTORS when set, else the one compiled in as
// JITBOX_SIGV4_DEFAULT_VECTORS. Exit status: 0 when every case passes, 1 when a case fails or
// the folder contains no case, and 77 (a skip for ctest) when the compiled-in folder is absent.

#include "jitbox/aws/sigv4.hpp"
#include "jitbox/util/time.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace jitbox;

namespace {

constexpr int k_exit_skip = 77;

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct VectorCase {
    aws::SigningRequest request;
    aws::Credentials credentials;
    aws::SigningScope scope;
    aws::SigningOptions options;
};

// The file's bytes, or none when it cannot be read.
std::optional<std::string> read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return std::nullopt;
    }
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// The expected text of a case file without its trailing line breaks.
std::optional<std::string> read_expected(const fs::path& path) {
    auto text = read_file(path);
    while (text && !text->empty() && (text->back() == '\n' || text->back() == '\r')) {
        text->pop_back();
    }
    return text;
}

std::vector<std::string> split_lines(std::string_view text) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start < text.size()) {
        const std::size_t end = std::min(text.find('\n', start), text.size());
        std::string line(text.substr(start, end - start));
        if (!line.empty() && line.back() == '\r') {
            line.pop_back();
        }
        lines.push_back(std::move(line));
        start = end + 1;
    }
    return lines;
}

// Parses an HTTP/1.1 request as the suite writes it: the request line, `Name:value` header
// lines, and the body after the first empty line. Header values keep their spaces.
Result<aws::SigningRequest> parse_http_request(std::string_view text) {
    const std::size_t blank = text.find("\n\n");
    const std::string_view head = text.substr(0, blank);
    aws::SigningRequest request;
    if (blank != std::string_view::npos) {
        request.body = std::string(text.substr(blank + 2));
    }

    const std::vector<std::string> lines = split_lines(head);
    if (lines.empty()) {
        return make_failure(ExitCode::usage, "empty request");
    }
    std::istringstream request_line(lines.front());
    std::string target;
    request_line >> request.method >> target;
    const std::size_t question = target.find('?');
    request.path = target.substr(0, question);
    if (question != std::string::npos) {
        request.query = target.substr(question + 1);
    }

    for (std::size_t i = 1; i < lines.size(); ++i) {
        const std::size_t colon = lines[i].find(':');
        if (colon == std::string::npos) {
            return make_failure(ExitCode::usage, "header line {} has no ':'", i + 1);
        }
        request.headers.emplace_back(lines[i].substr(0, colon), lines[i].substr(colon + 1));
    }
    return request;
}

Result<VectorCase> load_case(const fs::path& dir) {
    const auto context_text = read_file(dir / "context.json");
    const auto request_text = read_file(dir / "request.txt");
    if (!context_text || !request_text) {
        return make_failure(ExitCode::usage, "cannot read context.json or request.txt");
    }
    auto request = parse_http_request(*request_text);
    if (!request) {
        return make_failure(ExitCode::usage, "invalid request.txt: {}", request.error().message);
    }

    VectorCase vector_case;
    vector_case.request = std::move(request).value();
    try {
        const auto context = nlohmann::json::parse(*context_text);
        const auto& credentials = context.at("credentials");
        vector_case.credentials.access_key_id = credentials.at("access_key_id").get<std::string>();
        vector_case.credentials.secret_access_key =
            credentials.at("secret_access_key").get<std::string>();
        vector_case.credentials.session_token = credentials.value("token", std::string{});

        const auto time = parse_rfc3339(context.at("timestamp").get<std::string>());
        if (!time) {
            return make_failure(ExitCode::usage, "invalid timestamp: {}", time.error().message);
        }
        vector_case.scope = {context.at("region").get<std::string>(),
                             context.at("service").get<std::string>(), *time};

        vector_case.options.path = context.value("normalize", true)
                                       ? aws::PathNormalization::normalize
                                       : aws::PathNormalization::keep;
        vector_case.options.payload_hash_header = context.value("sign_body", false)
                                                      ? aws::PayloadHashHeader::add
                                                      : aws::PayloadHashHeader::omit;
        vector_case.options.session_token = context.value("omit_session_token", false)
                                                ? aws::SessionTokenSigning::append_after_signing
                                                : aws::SessionTokenSigning::sign;
    } catch (const nlohmann::json::exception& error) {
        return make_failure(ExitCode::usage, "invalid context.json: {}", error.what());
    }
    return vector_case;
}

// Header lines as (lower-case name, raw value), sorted, for comparing regardless of order.
HeaderList sorted_headers(HeaderList headers) {
    for (auto& [name, value] : headers) {
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    }
    std::sort(headers.begin(), headers.end());
    return headers;
}

std::string find_header(const HeaderList& headers, std::string_view lower_name) {
    for (const auto& [name, value] : sorted_headers(headers)) {
        if (name == lower_name) {
            return value;
        }
    }
    return {};
}

// Compares one step and records a difference with both texts.
void compare(std::vector<std::string>& differences, std::string_view step,
             const std::optional<std::string>& expected, const std::string& actual) {
    if (!expected) {
        differences.push_back(fmt::format("{}: the expected file is missing", step));
    } else if (*expected != actual) {
        differences.push_back(
            fmt::format("{} differs\n--- expected\n{}\n--- actual\n{}", step, *expected, actual));
    }
}

// Signs one case and returns every difference from the expected files.
std::vector<std::string> run_case(const fs::path& dir) {
    auto loaded = load_case(dir);
    if (!loaded) {
        return {loaded.error().message};
    }
    const VectorCase& c = *loaded;

    const aws::SigningRequest prepared =
        aws::add_signing_headers(c.request, c.credentials, c.scope, c.options);
    const std::string canonical = aws::canonical_request(prepared, c.options);
    const std::string to_sign = aws::string_to_sign(canonical, c.scope);
    const std::string signature = aws::signature(to_sign, c.credentials.secret_access_key, c.scope);
    const auto signed_request = aws::sign(c.request, c.credentials, c.scope, c.options);
    if (!signed_request) {
        return {fmt::format("sign failed: {}", signed_request.error().message)};
    }

    std::vector<std::string> differences;
    compare(differences, "canonical request", read_expected(dir / "header-canonical-request.txt"),
            canonical);
    compare(differences, "string to sign", read_expected(dir / "header-string-to-sign.txt"),
            to_sign);
    compare(differences, "signature", read_expected(dir / "header-signature.txt"), signature);

    const auto expected_text = read_file(dir / "header-signed-request.txt");
    auto expected_request =
        expected_text ? parse_http_request(*expected_text) : Result<aws::SigningRequest>(Failure{});
    if (!expected_request) {
        differences.emplace_back("header-signed-request.txt is missing or invalid");
        return differences;
    }
    compare(differences, "Authorization header",
            find_header(expected_request->headers, "authorization"),
            find_header(signed_request->headers, "authorization"));
    if (sorted_headers(expected_request->headers) != sorted_headers(signed_request->headers)) {
        differences.emplace_back("the signed request's headers differ from "
                                 "header-signed-request.txt");
    }
    return differences;
}

std::vector<fs::path> find_cases(const fs::path& root) {
    std::vector<fs::path> cases;
    for (const fs::directory_entry& entry : fs::directory_iterator(root)) {
        if (entry.is_directory() && fs::exists(entry.path() / "context.json")) {
            cases.push_back(entry.path());
        }
    }
    std::sort(cases.begin(), cases.end());
    return cases;
}

} // namespace

int main() {
    const char* configured = std::getenv("JITBOX_SIGV4_VECTORS");
    const bool is_default = configured == nullptr || *configured == '\0';
    const fs::path root =
        is_default ? fs::path(JITBOX_SIGV4_DEFAULT_VECTORS) : fs::path(configured);

    std::error_code error;
    if (!fs::is_directory(root, error)) {
        if (is_default) {
            fmt::print("SKIP: no SigV4 test vectors at {}; set JITBOX_SIGV4_VECTORS to the "
                       "folder of the AWS SigV4 test suite to run them\n",
                       root.string());
            return k_exit_skip;
        }
        fmt::print(stderr, "FAIL: JITBOX_SIGV4_VECTORS={} is not a folder\n", root.string());
        return EXIT_FAILURE;
    }

    const std::vector<fs::path> cases = find_cases(root);
    if (cases.empty()) {
        fmt::print(stderr, "FAIL: {} contains no case (a folder with context.json)\n", root.string());
        return EXIT_FAILURE;
    }

    int failed = 0;
    for (const fs::path& dir : cases) {
        const std::vector<std::string> differences = run_case(dir);
        fmt::print("{} {}\n", differences.empty() ? "PASS" : "FAIL", dir.filename().string());
        for (const std::string& difference : differences) {
            fmt::print("  {}\n", difference);
        }
        failed += differences.empty() ? 0 : 1;
    }
    fmt::print("{} cases run from {}: {} passed, {} failed\n", cases.size(), root.string(),
               static_cast<int>(cases.size()) - failed, failed);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
