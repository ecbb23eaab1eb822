// jitbox-faults: the jitbox CLI with fault injection, for tests/integration/test_faults.sh.
// It is built only with the tests and never installed.
//
// JITBOX_FAULT=POINT makes the process kill itself with SIGKILL when it reaches POINT, as a
// power cut or `kill -9` would. The points, each with a ".before" and an ".after" variant, are
//   docker.image.pull          docker.network.create     docker.container.create
//   docker.container.start     docker.container.stop     docker.container.remove
//   docker.network.remove
// and, in the lifecycle,
//   lifecycle.creating.after   the `creating` record is written, nothing is created yet
//   lifecycle.running.before   the resources and the background child exist, and the record
//                              is still `creating`
//   lifecycle.removing.after   teardown marked the record `removing`
//   lifecycle.record.remove.before  the resources are gone, and the record is not
// JITBOX_FAULT_LOG=FILE appends each point that the process passes to FILE, so a test can
// check that a point it names is reached at all.

#include "jitbox/cli/app.hpp"
#include "jitbox/util/fault.hpp"

#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <unistd.h>

namespace {

std::string g_kill_point;
std::string g_log_path;

void log_point(std::string_view point) {
    int fd = ::open(g_log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        return;
    }
    std::string line = std::string(point) + "\n";
    (void)!::write(fd, line.data(), line.size());
    ::close(fd);
}

void on_fault_point(std::string_view point) {
    if (!g_log_path.empty()) {
        log_point(point);
    }
    if (point == g_kill_point) {
        ::kill(::getpid(), SIGKILL);
    }
}

// Reads and removes the variable, so the background child that this process starts runs
// without faults.
std::string take_env(const char* name) {
    const char* value = std::getenv(name);
    std::string text = value == nullptr ? "" : value;
    ::unsetenv(name);
    return text;
}

} // namespace

int main(int argc, char** argv) {
    g_kill_point = take_env("JITBOX_FAULT");
    g_log_path = take_env("JITBOX_FAULT_LOG");
    if (!g_kill_point.empty() || !g_log_path.empty()) {
        jitbox::set_fault_hook(on_fault_point);
    }
    return jitbox::run_cli(argc, argv);
}
