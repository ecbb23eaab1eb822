#pragma once

namespace jitbox {

/// Parses the command line, runs the subcommand and returns the process exit status. Every
/// failure is printed as one `jitbox: error: ...` line on stderr.
int run_cli(int argc, char** argv);

} // namespace jitbox
