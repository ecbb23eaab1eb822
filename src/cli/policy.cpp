#include "commands.hpp"

namespace jitbox::cli {

void register_policy(CLI::App&, Context&) {}

} // namespace jitbox::cli
