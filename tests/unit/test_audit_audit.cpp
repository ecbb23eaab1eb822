#include "jitbox/audit/audit.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <functional>
#include <csignal>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace jitbox;

namespace {

class TempDir {
public:
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "jitbox-audit-XXXXXX").string();
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        m_path = pattern;
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(m_path, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const fs::path& path() const { return m_path; }
    fs::path log() const { return m_path / "audit.log"; }
    fs::path head() const { return m_path / "audit.head"; }

private:
    fs::path m_path;
};

std::string read_file(const fs::path& path) {
    std::ifstream file(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& path, const std::string& text) {
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file << text;
    REQUIRE(file.good());
}

std::vector<std::string> read_lines(const fs::path& path) {
    std::ifstream file(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(file, line);) {
        lines.push_back(line);
    }
    return lines;
}

// Writes `lines`, each followed by a newline.
void write_lines(const fs::path& path, const std::vector<std::string>& lines) {
    std::string text;
    for (const auto& line : lines) {
        text += line + "\n";
    }
    write_file(path, text);
}

AuditEvent sample_event(const std::string& sandbox) {
    return {TimePoint(Seconds(1'800'000'000)), "alice", "up", sandbox, "0123456789abcdef", "db",
            "ok", "", ""};
}

// Appends `count` records for the sandboxes db-1, db-2 and so on.
void append_records(const AuditLog& log, int count) {
    for (int i = 1; i <= count; ++i) {
        REQUIRE(log.append(sample_event("db-" + std::to_string(i))).ok());
    }
}

AuditProblem first_problem(const fs::path& log) {
    auto report = verify_audit_log(log);
    REQUIRE(report.ok());
    REQUIRE_FALSE(report->intact());
    return *report->problem;
}

} // namespace

TEST_SUITE("audit") {
    TEST_CASE("record is one JSON line with the documented fields") {
        AuditLink link{7, sha256_hex("previous line")};
        std::string line = audit_event_to_json(sample_event("db-1"), link);
        REQUIRE(line.back() == '\n');
        CHECK(line.find('\n') == line.size() - 1);
        auto object = nlohmann::json::parse(line);
        CHECK(object["seq"] == 7);
        CHECK(object["prev"] == link.prev);
        CHECK(object["time"] == "2027-01-15T08:00:00Z");
        CHECK(object["user"] == "alice");
        CHECK(object["action"] == "up");
        CHECK(object["sandbox"] == "db-1");
        CHECK(object["template"] == "db");
        CHECK(object["result"] == "ok");
        CHECK(object["error"].is_null());
    }

    TEST_CASE("message with a newline or invalid UTF-8 stays on one line") {
        AuditEvent event = sample_event("db-1");
        event.result = "error";
        event.error = "line one\nline two \xff";
        std::string line = audit_event_to_json(event, AuditLink{});
        CHECK(line.find('\n') == line.size() - 1);
        CHECK(nlohmann::json::parse(line)["error"].get<std::string>().find("line two") !=
              std::string::npos);
    }

    TEST_CASE("sha256_hex of known inputs") {
        CHECK(sha256_hex("") ==
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        CHECK(sha256_hex("abc") ==
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    TEST_CASE("head path sits beside the log") {
        CHECK(audit_head_path("/state/jitbox/audit.log") == fs::path("/state/jitbox/audit.head"));
        CHECK(audit_head_path("copy") == fs::path("copy.head"));
    }

    TEST_CASE("append links each record to the previous line") {
        TempDir dir;
        AuditLog log(dir.log());
        append_records(log, 3);

        auto lines = read_lines(dir.log());
        REQUIRE(lines.size() == 3);
        std::string expected_prev(k_audit_first_prev);
        for (std::size_t i = 0; i < lines.size(); ++i) {
            auto object = nlohmann::json::parse(lines[i]);
            CHECK(object["seq"] == i + 1);
            CHECK(object["prev"] == expected_prev);
            expected_prev = sha256_hex(lines[i]);
        }
        CHECK(read_file(dir.head()) == "3 " + sha256_hex(lines[2]) + "\n");

        struct stat info {};
        REQUIRE(::stat(dir.head().c_str(), &info) == 0);
        CHECK((info.st_mode & 0777) == 0600);
        REQUIRE(::stat(dir.log().c_str(), &info) == 0);
        CHECK((info.st_mode & 0777) == 0600);
        // The temp file of the head's atomic replacement is renamed, never left behind.
        CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 2);
    }

    TEST_CASE("append reads a last line longer than one read step") {
        TempDir dir;
        AuditLog log(dir.log());
        AuditEvent event = sample_event("db-1");
        event.error = std::string(10'000, 'x');
        REQUIRE(log.append(event).ok());
        append_records(log, 1);

        auto lines = read_lines(dir.log());
        REQUIRE(lines.size() == 2);
        CHECK(nlohmann::json::parse(lines[1])["prev"] == sha256_hex(lines[0]));
        CHECK(nlohmann::json::parse(lines[1])["seq"] == 2);
    }

    TEST_CASE("intact log verifies") {
        TempDir dir;
        append_records(AuditLog(dir.log()), 5);
        auto report = verify_audit_log(dir.log());
        REQUIRE(report.ok());
        CHECK(report->intact());
        CHECK(report->records == 5);
    }

    TEST_CASE("missing or empty log without head is intact") {
        TempDir dir;
        SUBCASE("missing") {}
        SUBCASE("empty") { write_file(dir.log(), ""); }
        auto report = verify_audit_log(dir.log());
        REQUIRE(report.ok());
        CHECK(report->intact());
        CHECK(report->records == 0);
    }

    TEST_CASE("verify names the first bad line") {
        // Each case starts from 6 records: lines 1 to 6 with seq 1 to 6.
        struct TamperCase {
            const char* name;
            std::function<void(std::vector<std::string>& lines, const TempDir& dir)> change;
            std::size_t line;
            const char* reason;
        };
        auto edit = [](std::string& line, const std::string& from, const std::string& to) {
            auto at = line.find(from);
            REQUIRE(at != std::string::npos);
            line.replace(at, from.size(), to);
        };
        const std::vector<TamperCase> cases = {
            {"edit a middle record",
             [&](auto& lines, auto&) { edit(lines[2], "\"result\":\"ok\"", "\"result\":\"no\""); },
             3, "changed after it was written: its SHA-256 does not match \"prev\" of line 4"},
            {"edit the first record",
             [&](auto& lines, auto&) { edit(lines[0], "alice", "mallory"); }, 1,
             "changed after it was written"},
            {"edit the last record",
             [&](auto& lines, auto&) { edit(lines[5], "alice", "mallory"); }, 6,
             "does not match audit.head"},
            {"edit the first record's prev",
             [&](auto& lines, auto&) { edit(lines[0], "\"prev\":\"0", "\"prev\":\"1"); }, 1,
             "\"prev\" of the first record is not 64 zeros"},
            {"edit a seq", [&](auto& lines, auto&) { edit(lines[3], "\"seq\":4", "\"seq\":9"); },
             4, "seq 9 after seq 3, so 5 records before this line were removed or moved"},
            {"delete a middle record", [](auto& lines, auto&) { lines.erase(lines.begin() + 2); },
             3, "seq 4 after seq 2, so 1 record before this line was removed or moved"},
            {"delete the first record", [](auto& lines, auto&) { lines.erase(lines.begin()); },
             1, "seq 2 at the start of the log, so 1 record before this line was removed"},
            {"insert a copy of an earlier record",
             [](auto& lines, auto&) { lines.insert(lines.begin() + 4, lines[1]); }, 5,
             "seq 2 after seq 4, so this record was moved or inserted"},
            {"insert a copy of the previous record",
             [](auto& lines, auto&) { lines.insert(lines.begin() + 3, lines[2]); }, 4,
             "inserted: a copy of line 3"},
            {"insert a forged record that links correctly",
             [](auto& lines, auto&) {
                 AuditLink link{3, sha256_hex(lines[1])};
                 std::string forged = audit_event_to_json(sample_event("forged"), link);
                 forged.pop_back();
                 lines.insert(lines.begin() + 2, forged);
             },
             3, "inserted: line 4 repeats its seq 3"},
            {"swap two records",
             [](auto& lines, auto&) { std::swap(lines[2], lines[3]); }, 3,
             "seq 4 after seq 2, so 1 record before this line was removed or moved"},
            {"move the last record to the front",
             [](auto& lines, auto&) {
                 std::rotate(lines.begin(), lines.end() - 1, lines.end());
             },
             1, "seq 6 at the start of the log"},
            {"cut two records from the end",
             [](auto& lines, auto&) { lines.resize(4); }, 5,
             "2 records cut from the end: audit.head names seq 6 but the log ends at seq 4"},
            {"cut every record",
             [](auto& lines, auto&) { lines.clear(); }, 1,
             "6 records cut from the end: audit.head names seq 6 but the log ends before its "
             "first record"},
            {"replace a line with text",
             [](auto& lines, auto&) { lines[2] = "not json"; }, 3, "not a JSON object"},
            {"replace a line with a JSON array",
             [](auto& lines, auto&) { lines[2] = "[1, 2]"; }, 3, "not a JSON object"},
            {"empty a line", [](auto& lines, auto&) { lines[1].clear(); }, 2, "empty line"},
            {"remove seq from a record",
             [&](auto& lines, auto&) { edit(lines[2], "\"seq\":3,", ""); }, 3,
             "\"seq\" is missing or not a positive integer"},
            {"make seq negative",
             [&](auto& lines, auto&) { edit(lines[2], "\"seq\":3", "\"seq\":-3"); }, 3,
             "\"seq\" is missing or not a positive integer"},
            {"shorten prev",
             [&](auto& lines, auto&) { edit(lines[2], "\"prev\":\"", "\"prev\":\"ab"); }, 3,
             "\"prev\" is missing or not 64 lower-case hex digits"},
            {"delete the head file",
             [](auto&, const TempDir& dir) { fs::remove(dir.head()); }, 6,
             "audit.head is missing"},
            {"garble the head file",
             [](auto&, const TempDir& dir) { write_file(dir.head(), "six\n"); }, 6,
             "audit.head is not `SEQ HASH`"},
            {"roll the head file back",
             [](auto& lines, const TempDir& dir) {
                 write_file(dir.head(), "4 " + sha256_hex(lines[3]) + "\n");
             },
             5, "not confirmed by audit.head, which names seq 4"},
        };
        // One log is written and copied for each case, because each append costs three fsyncs.
        TempDir original;
        append_records(AuditLog(original.log()), 6);
        for (const auto& tamper : cases) {
            CAPTURE(tamper.name);
            TempDir dir;
            fs::copy_file(original.log(), dir.log());
            fs::copy_file(original.head(), dir.head());
            auto lines = read_lines(dir.log());
            tamper.change(lines, dir);
            write_lines(dir.log(), lines);

            AuditProblem problem = first_problem(dir.log());
            CHECK(problem.line == tamper.line);
            CHECK_MESSAGE(problem.reason.find(tamper.reason) != std::string::npos,
                          "reason: ", problem.reason);
        }
    }

    TEST_CASE("verify reports a last line cut short") {
        TempDir dir;
        append_records(AuditLog(dir.log()), 3);
        std::string text = read_file(dir.log());
        write_file(dir.log(), text.substr(0, text.size() - 20));

        AuditProblem problem = first_problem(dir.log());
        CHECK(problem.line == 3);
        CHECK(problem.reason.find("no newline at the end") != std::string::npos);
    }

    TEST_CASE("append keeps records cut from the end visible") {
        TempDir dir;
        AuditLog log(dir.log());
        append_records(log, 5);
        auto lines = read_lines(dir.log());
        lines.resize(3);
        write_lines(dir.log(), lines);
        append_records(log, 1);

        CHECK(nlohmann::json::parse(read_lines(dir.log()).back())["seq"] == 6);
        AuditProblem problem = first_problem(dir.log());
        CHECK(problem.line == 4);
        CHECK(problem.reason.find("seq 6 after seq 3, so 2 records") != std::string::npos);
    }

    TEST_CASE("append keeps a changed last record visible") {
        TempDir dir;
        AuditLog log(dir.log());
        append_records(log, 3);
        auto lines = read_lines(dir.log());
        lines[2].replace(lines[2].find("alice"), 5, "mallory");
        write_lines(dir.log(), lines);
        append_records(log, 1);

        AuditProblem problem = first_problem(dir.log());
        CHECK(problem.line == 3);
        CHECK(problem.reason.find("changed after it was written") != std::string::npos);
    }

    TEST_CASE("append after a torn last line starts a new line") {
        TempDir dir;
        AuditLog log(dir.log());
        append_records(log, 2);
        std::string text = read_file(dir.log());
        write_file(dir.log(), text + "{\"seq\":3,\"pr");
        append_records(log, 1);

        auto lines = read_lines(dir.log());
        REQUIRE(lines.size() == 4);
        CHECK(lines[2] == "{\"seq\":3,\"pr");
        auto object = nlohmann::json::parse(lines[3]);
        CHECK(object["seq"] == 3);
        CHECK(object["prev"] == sha256_hex(lines[2]));
        AuditProblem problem = first_problem(dir.log());
        CHECK(problem.line == 3);
        CHECK(problem.reason == "not a JSON object");
    }

    TEST_CASE("append repairs a head file left behind by a stopped writer") {
        TempDir dir;
        AuditLog log(dir.log());
        append_records(log, 3);
        auto lines = read_lines(dir.log());
        // The state after a writer synced record 3 and stopped before replacing the head file.
        write_file(dir.head(), "2 " + sha256_hex(lines[1]) + "\n");
        CHECK(first_problem(dir.log()).line == 3);

        append_records(log, 1);
        auto report = verify_audit_log(dir.log());
        REQUIRE(report.ok());
        CHECK(report->intact());
        CHECK(report->records == 4);
    }

    TEST_CASE("failed append leaves log and head unchanged") {
        TempDir dir;
        AuditLog log(dir.log());
        append_records(log, 2);
        const std::string log_before = read_file(dir.log());
        const std::string head_before = read_file(dir.head());

        // The child may grow files only 10 bytes past the log's size, so the write of the
        // next record stops part of the way, as it would on a full disk.
        pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            ::signal(SIGXFSZ, SIG_IGN);
            rlimit limit{};
            limit.rlim_cur = limit.rlim_max = log_before.size() + 10;
            ::setrlimit(RLIMIT_FSIZE, &limit);
            ::_exit(log.append(sample_event("db-3")).ok() ? 1 : 0);
        }
        int status = 0;
        REQUIRE(::waitpid(child, &status, 0) == child);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);

        CHECK(read_file(dir.log()) == log_before);
        CHECK(read_file(dir.head()) == head_before);
        auto report = verify_audit_log(dir.log());
        REQUIRE(report.ok());
        CHECK(report->intact());
        CHECK(report->records == 2);
        CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 2);
    }

    TEST_CASE("read_audit_log visits lines and stops early") {
        TempDir dir;
        append_records(AuditLog(dir.log()), 3);
        write_file(dir.log(), read_file(dir.log()) + "partial");

        std::vector<std::size_t> numbers;
        std::vector<bool> terminated;
        REQUIRE(read_audit_log(dir.log(), [&](const AuditLine& line) {
                    numbers.push_back(line.number);
                    terminated.push_back(line.terminated);
                    return true;
                }).ok());
        CHECK(numbers == std::vector<std::size_t>{1, 2, 3, 4});
        CHECK(terminated == std::vector<bool>{true, true, true, false});

        std::size_t visited = 0;
        REQUIRE(read_audit_log(dir.log(), [&](const AuditLine&) { return ++visited < 2; }).ok());
        CHECK(visited == 2);

        visited = 0;
        REQUIRE(read_audit_log(dir.path() / "missing.log", [&](const AuditLine&) {
                    ++visited;
                    return true;
                }).ok());
        CHECK(visited == 0);
    }

    TEST_CASE("parallel writers never interleave or lose lines") {
        TempDir dir;
        AuditLog log(dir.log());
        constexpr int k_writers = 8;
        constexpr int k_lines_each = 50;
        std::vector<pid_t> children;
        for (int writer = 0; writer < k_writers; ++writer) {
            pid_t pid = ::fork();
            REQUIRE(pid >= 0);
            if (pid == 0) {
                for (int i = 0; i < k_lines_each; ++i) {
                    AuditEvent event = sample_event("w" + std::to_string(writer));
                    event.error = std::string(2000, 'x'); // long lines make tearing likelier
                    if (!log.append(event).ok()) {
                        ::_exit(1);
                    }
                }
                ::_exit(0);
            }
            children.push_back(pid);
        }
        for (pid_t pid : children) {
            int status = 0;
            ::waitpid(pid, &status, 0);
            CHECK(WIFEXITED(status));
            CHECK(WEXITSTATUS(status) == 0);
        }
        auto lines = read_lines(dir.log());
        CHECK(lines.size() == k_writers * k_lines_each);
        for (const auto& line : lines) {
            CHECK(nlohmann::json::accept(line));
        }

        auto report = verify_audit_log(dir.log());
        REQUIRE(report.ok());
        CHECK_MESSAGE(report->intact(), (report->intact() ? "" : report->problem->reason));
        CHECK(report->records == k_writers * k_lines_each);
        CHECK(read_file(dir.head()) ==
              fmt::format("{} {}\n", k_writers * k_lines_each, sha256_hex(lines.back())));
    }
}
