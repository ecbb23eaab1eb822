#pragma once

#include "jitbox/util/result.hpp"

#include <string>
#include <sys/types.h>
#include <vector>

namespace jitbox {

/// The requester, from the operating system (the real uid), never from the environment.
struct Identity {
    uid_t uid = 0;
    std::string user;                // the passwd name, or "uid-N" when the uid has none
    std::vector<std::string> groups; // primary group first, then supplementary, no repeats
    std::string host;                // gethostname()
};

/// The identity of the real user running this process. Groups are the passwd entry's primary
/// group, its getgrouplist() groups, the real gid and the process's getgroups() list. A group
/// without a name appears as "gid-N". USER and LOGNAME are never read.
Result<Identity> current_identity();

/// The identity of the passwd user `name` on this host, with the groups getgrouplist() returns
/// for that entry, so policy can be explained for another user. It grants nothing.
/// Fails with ExitCode::usage when there is no such user.
Result<Identity> identity_for_user(const std::string& name);

} // namespace jitbox
