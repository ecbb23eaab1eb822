#include "jitbox/util/log.hpp"

namespace jitbox {

namespace {
int g_verbosity = 0; // set once by the CLI before any work starts
}

int log_verbosity() { return g_verbosity; }

void set_log_verbosity(int level) { g_verbosity = level; }

} // namespace jitbox
