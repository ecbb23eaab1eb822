#pragma once

#include <string_view>

namespace jitbox {

/// A test hook that receives the name of each fault point the process passes, such as
/// "docker.container.start.before". It may end the process there.
using FaultHook = void (*)(std::string_view point);

/// Installs the hook. Only the fault-injection test binary calls it, so in `jitbox` itself the
/// hook stays null and every fault point does nothing.
void set_fault_hook(FaultHook hook);

/// Marks a point before or after a step that changes the engine or the state folder. The
/// names are listed in tests/fault_main.cpp.
void fault_point(std::string_view point);

} // namespace jitbox
