#include "jitbox/util/fault.hpp"

namespace jitbox {

namespace {
FaultHook g_fault_hook = nullptr; // set only by tests/fault_main.cpp, before the CLI runs
}

void set_fault_hook(FaultHook hook) { g_fault_hook = hook; }

void fault_point(std::string_view point) {
    if (g_fault_hook != nullptr) {
        g_fault_hook(point);
    }
}

} // namespace jitbox
