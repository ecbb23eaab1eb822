// The identity of the requesting user, read from the passwd and group databases and the
// process credentials.

#include "jitbox/lifecycle/identity.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <optional>

namespace jitbox {
namespace {

// Enough for typical passwd and group entries. The lookups below double it on ERANGE, up to
// k_max_buffer_size.
constexpr std::size_t k_initial_buffer_size = 16384;
constexpr std::size_t k_max_buffer_size = 1 << 20;

struct PasswdEntry {
    uid_t uid = 0;
    gid_t gid = 0;
    std::string name;
};

// Runs a reentrant lookup such as getpwuid_r, growing its buffer on ERANGE. Returns false when
// there is no entry or the lookup failed.
template <typename Lookup>
bool lookup_with_buffer(Lookup lookup) {
    std::vector<char> buffer(k_initial_buffer_size);
    while (true) {
        const int error = lookup(buffer);
        if (error != ERANGE) {
            return error == 0;
        }
        if (buffer.size() >= k_max_buffer_size) {
            return false;
        }
        buffer.resize(buffer.size() * 2);
    }
}

std::optional<PasswdEntry> to_entry(const passwd* found) {
    if (found == nullptr) {
        return std::nullopt;
    }
    return PasswdEntry{found->pw_uid, found->pw_gid, found->pw_name};
}

std::optional<PasswdEntry> passwd_by_uid(uid_t uid) {
    std::optional<PasswdEntry> entry;
    lookup_with_buffer([&](std::vector<char>& buffer) {
        passwd storage{};
        passwd* found = nullptr;
        const int error = ::getpwuid_r(uid, &storage, buffer.data(), buffer.size(), &found);
        entry = to_entry(found);
        return error;
    });
    return entry;
}

std::optional<PasswdEntry> passwd_by_name(const std::string& name) {
    std::optional<PasswdEntry> entry;
    lookup_with_buffer([&](std::vector<char>& buffer) {
        passwd storage{};
        passwd* found = nullptr;
        const int error =
            ::getpwnam_r(name.c_str(), &storage, buffer.data(), buffer.size(), &found);
        entry = to_entry(found);
        return error;
    });
    return entry;
}

std::string group_name(gid_t gid) {
    std::string name = "gid-" + std::to_string(gid);
    lookup_with_buffer([&](std::vector<char>& buffer) {
        group storage{};
        group* found = nullptr;
        const int error = ::getgrgid_r(gid, &storage, buffer.data(), buffer.size(), &found);
        if (found != nullptr) {
            name = found->gr_name;
        }
        return error;
    });
    return name;
}

// The groups of a passwd entry from the group database (primary group included), or only the
// primary group when getgrouplist keeps failing.
std::vector<gid_t> groups_of_entry(const PasswdEntry& entry) {
    std::vector<gid_t> gids(64);
    for (int attempt = 0; attempt < 8; ++attempt) {
        int count = static_cast<int>(gids.size());
        if (::getgrouplist(entry.name.c_str(), entry.gid, gids.data(), &count) >= 0) {
            gids.resize(static_cast<std::size_t>(count));
            return gids;
        }
        // On overflow glibc sets `count` to the number needed.
        gids.resize(std::max(static_cast<std::size_t>(count), gids.size() * 2));
    }
    return {entry.gid};
}

std::vector<gid_t> process_groups() {
    const int count = ::getgroups(0, nullptr);
    if (count <= 0) {
        return {};
    }
    std::vector<gid_t> gids(static_cast<std::size_t>(count));
    const int filled = ::getgroups(count, gids.data());
    gids.resize(static_cast<std::size_t>(std::max(filled, 0)));
    return gids;
}

void append_unique(std::vector<gid_t>& gids, const std::vector<gid_t>& more) {
    for (const gid_t gid : more) {
        if (std::find(gids.begin(), gids.end(), gid) == gids.end()) {
            gids.push_back(gid);
        }
    }
}

std::vector<std::string> group_names(const std::vector<gid_t>& gids) {
    std::vector<std::string> names;
    names.reserve(gids.size());
    for (const gid_t gid : gids) {
        names.push_back(group_name(gid));
    }
    return names;
}

Result<std::string> host_name() {
    std::vector<char> buffer(HOST_NAME_MAX + 1, '\0');
    if (::gethostname(buffer.data(), buffer.size() - 1) != 0) {
        return make_failure(ExitCode::internal, "failed to read the host name: {}",
                            std::strerror(errno));
    }
    return std::string(buffer.data());
}

} // namespace

Result<Identity> current_identity() {
    auto host = host_name();
    if (!host) {
        return host.error();
    }
    const uid_t uid = ::getuid();
    Identity identity;
    identity.uid = uid;
    identity.host = std::move(host).value();

    std::vector<gid_t> gids;
    if (const auto entry = passwd_by_uid(uid)) {
        identity.user = entry->name;
        gids.push_back(entry->gid);
        append_unique(gids, groups_of_entry(*entry));
    } else {
        // A uid with no passwd entry (a bare container) still gets a stable owner name.
        identity.user = "uid-" + std::to_string(uid);
    }
    append_unique(gids, {::getgid()});
    append_unique(gids, process_groups());
    identity.groups = group_names(gids);
    return identity;
}

Result<Identity> identity_for_user(const std::string& name) {
    const auto entry = passwd_by_name(name);
    if (!entry) {
        return make_failure(ExitCode::usage,
                            "user \"{}\" not found in the passwd database, use a login name "
                            "such as \"root\"",
                            name);
    }
    auto host = host_name();
    if (!host) {
        return host.error();
    }
    std::vector<gid_t> gids{entry->gid};
    append_unique(gids, groups_of_entry(*entry));

    Identity identity;
    identity.uid = entry->uid;
    identity.user = entry->name;
    identity.groups = group_names(gids);
    identity.host = std::move(host).value();
    return identity;
}

} // namespace jitbox
