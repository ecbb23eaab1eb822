#include "jitbox/cli/app.hpp"

int main(int argc, char** argv) { return jitbox::run_cli(argc, argv); }
