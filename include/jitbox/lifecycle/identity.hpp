#pragma once

#include "jitbox/util/result.hpp"

#include <string>
#include <sys/types.h>

namespace jitbox {

/// Who is asking, from the operating system (the real uid), never from the environment.
struct Identity {
    uid_t uid = 0;
    std::string user;
};

/// The identity of the real user running this process.
Result<Identity> current_identity();

} // namespace jitbox
