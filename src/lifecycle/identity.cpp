#include "jitbox/lifecycle/identity.hpp"

#include <pwd.h>
#include <unistd.h>

#include <vector>

namespace jitbox {

Result<Identity> current_identity() {
    uid_t uid = ::getuid();
    std::vector<char> buffer(16384);
    passwd entry{};
    passwd* found = nullptr;
    if (::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) != 0 ||
        found == nullptr) {
        // A uid with no passwd entry (a bare container) still gets a stable owner name.
        return Identity{uid, "uid-" + std::to_string(uid)};
    }
    return Identity{uid, found->pw_name};
}

} // namespace jitbox
