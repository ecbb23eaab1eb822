#include "jitbox/audit/audit.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace jitbox;

namespace {

std::vector<std::string> read_lines(const fs::path& path) {
    std::ifstream file(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(file, line);) {
        lines.push_back(line);
    }
    return lines;
}

AuditEvent sample_event(const std::string& sandbox) {
    return {TimePoint(Seconds(1'800'000'000)), "alice", "up", sandbox, "0123456789abcdef", "db",
            "ok", "", ""};
}

} // namespace

TEST_SUITE("audit") {
    TEST_CASE("an event is one JSON line with the documented fields") {
        std::string line = audit_event_to_json(sample_event("db-1"));
        REQUIRE(line.back() == '\n');
        CHECK(line.find('\n') == line.size() - 1);
        auto object = nlohmann::json::parse(line);
        CHECK(object["time"] == "2027-01-15T08:00:00Z");
        CHECK(object["user"] == "alice");
        CHECK(object["action"] == "up");
        CHECK(object["sandbox"] == "db-1");
        CHECK(object["template"] == "db");
        CHECK(object["result"] == "ok");
        CHECK(object["error"].is_null());
    }

    TEST_CASE("a message with a newline or invalid UTF-8 stays on one line") {
        AuditEvent event = sample_event("db-1");
        event.result = "error";
        event.error = "line one\nline two \xff";
        std::string line = audit_event_to_json(event);
        CHECK(line.find('\n') == line.size() - 1);
        CHECK(nlohmann::json::parse(line)["error"].get<std::string>().find("line two") !=
              std::string::npos);
    }

    TEST_CASE("parallel writers never interleave or lose lines") {
        char pattern[] = "/tmp/jitbox-audit-XXXXXX";
        fs::path dir = ::mkdtemp(pattern);
        AuditLog log(dir / "audit.log");
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
            CHECK(WEXITSTATUS(status) == 0);
        }
        auto lines = read_lines(dir / "audit.log");
        CHECK(lines.size() == k_writers * k_lines_each);
        for (const auto& line : lines) {
            CHECK(nlohmann::json::accept(line));
        }
        fs::remove_all(dir);
    }
}
