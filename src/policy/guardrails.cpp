// The guardrails check of `up`: image names, mount sources, host access, capabilities,
// resource ceilings, ttl and the number of live sandboxes per user.

#include "jitbox/policy/guardrails.hpp"

#include "jitbox/audit/stats.hpp"
#include "jitbox/policy/glob.hpp"
#include "jitbox/policy/mounts.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <functional>
#include <system_error>

namespace jitbox {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view k_strict_origin = "the enforced-mode default";
constexpr std::string_view k_built_in_origin = "built in";

constexpr std::array<std::string_view, 2> k_docker_sockets{"/var/run/docker.sock",
                                                           "/run/docker.sock"};
constexpr std::array<std::string_view, 3> k_forbidden_folders{"/etc", "/proc", "/sys"};

// ---- image references ----

struct ImageParts {
    std::string repository; // registry and path, such as "docker.io/library/busybox"
    std::string suffix;     // ":TAG", "@DIGEST", both, or empty
};

// Splits and normalises the registry part as Docker does: the first component is a registry
// when it contains '.' or ':' or is "localhost".
ImageParts split_image(std::string_view reference) {
    std::string_view name = reference;
    std::string suffix;
    if (const std::size_t at = name.find('@'); at != std::string_view::npos) {
        suffix = std::string(name.substr(at));
        name = name.substr(0, at);
    }
    const std::size_t last_slash = name.rfind('/');
    const std::size_t colon = name.rfind(':');
    if (colon != std::string_view::npos &&
        (last_slash == std::string_view::npos || colon > last_slash)) {
        suffix = std::string(name.substr(colon)) + suffix;
        name = name.substr(0, colon);
    }

    std::string domain = "docker.io";
    std::string path(name);
    if (const std::size_t slash = name.find('/'); slash != std::string_view::npos) {
        const std::string_view first = name.substr(0, slash);
        if (first.find_first_of(".:") != std::string_view::npos || first == "localhost") {
            domain = std::string(first);
            path = std::string(name.substr(slash + 1));
        }
    }
    if (domain == "index.docker.io") {
        domain = "docker.io";
    }
    if (domain == "docker.io" && path.find('/') == std::string::npos) {
        path = "library/" + path;
    }
    return ImageParts{domain + "/" + path, suffix};
}

// ---- mounts ----

bool is_socket_file(const fs::path& path) {
    struct stat info {};
    return ::stat(path.c_str(), &info) == 0 && S_ISSOCK(info.st_mode);
}

// Returns why `path` (absolute and normal) is never a mount source, or an empty string.
std::string forbidden_reason(const fs::path& path, const std::vector<UserHome>& other_homes) {
    const bool docker_socket = std::find(k_docker_sockets.begin(), k_docker_sockets.end(),
                                         path.string()) != k_docker_sockets.end();
    if (docker_socket || is_socket_file(path)) {
        return "is a socket, such as the Docker engine's";
    }
    if (path == path.root_path()) {
        return "is the host's root file system";
    }
    for (const std::string_view folder : k_forbidden_folders) {
        if (path_is_within(path, folder)) {
            return fmt::format("is {}{}", path == folder ? "" : "inside ", folder);
        }
        if (path_is_within(folder, path)) {
            return fmt::format("contains {}", folder);
        }
    }
    for (const std::string_view socket : k_docker_sockets) {
        if (path_is_within(socket, path)) {
            return fmt::format("contains the Docker socket {}", socket);
        }
    }
    for (const UserHome& other : other_homes) {
        if (path_is_within(path, other.home)) {
            return fmt::format("is inside {}, the home folder of user {}", other.home.string(),
                               other.user);
        }
        if (path_is_within(other.home, path)) {
            return fmt::format("contains {}, the home folder of user {}", other.home.string(),
                               other.user);
        }
    }
    return {};
}

// The mount source as written and with its symbolic links resolved, when that differs.
std::vector<fs::path> source_forms(const fs::path& source) {
    std::vector<fs::path> forms{normal_mount_path(source)};
    std::error_code error;
    const fs::path resolved = normal_mount_path(fs::weakly_canonical(forms.front(), error));
    if (!error && resolved != forms.front()) {
        forms.push_back(resolved);
    }
    return forms;
}

bool within_any(const fs::path& path, const std::vector<std::string>& prefixes) {
    return std::any_of(prefixes.begin(), prefixes.end(), [&](const std::string& prefix) {
        const std::vector<fs::path> forms = source_forms(prefix);
        return std::any_of(forms.begin(), forms.end(),
                           [&](const fs::path& form) { return path_is_within(path, form); });
    });
}

// ---- the check ----

std::string join_or_none(const std::vector<std::string>& values) {
    return values.empty() ? std::string("none") : fmt::format("{}", fmt::join(values, ", "));
}

// Runs each guardrail in turn and stops at the first denial.
class GuardrailCheck {
public:
    GuardrailCheck(const Guardrails& guardrails, GuardrailDefaults defaults,
                   const GuardrailRequest& request)
        : m_guardrails(guardrails), m_strict(defaults == GuardrailDefaults::strict),
          m_request(request), m_spec(*request.spec) {
        m_verdict.effective = m_spec;
    }

    GuardrailVerdict run() && {
        if (!m_guardrails.present() && !m_strict) {
            m_verdict.explanation.push_back("guardrails: none (the system policy has no "
                                            "[guardrails] table)");
            return std::move(m_verdict);
        }
        const std::array<void (GuardrailCheck::*)(), 9> steps{
            &GuardrailCheck::check_image,      &GuardrailCheck::check_mounts,
            &GuardrailCheck::check_privileged, &GuardrailCheck::check_host_namespaces,
            &GuardrailCheck::check_devices,    &GuardrailCheck::check_capabilities,
            &GuardrailCheck::check_ceilings,   &GuardrailCheck::check_ttl,
            &GuardrailCheck::check_live_count,
        };
        for (const auto step : steps) {
            (this->*step)();
            if (!m_verdict.allowed) {
                break;
            }
        }
        return std::move(m_verdict);
    }

private:
    bool is_docker() const { return m_spec.provider == "docker"; }

    // The origin of a key: its FILE:LINE:COLUMN, or the enforced-mode default when unset.
    std::string origin_of(std::string_view key) const {
        const auto found = m_guardrails.origins.find(std::string(key));
        return found != m_guardrails.origins.end() ? found->second : std::string(k_strict_origin);
    }

    void pass(std::string_view key, const std::string& result) {
        m_verdict.explanation.push_back(
            fmt::format("guardrails.{} ({}): {}", key, origin_of(key), result));
    }

    void deny(std::string_view key, std::string_view origin, const std::string& problem,
              std::string_view fix) {
        m_verdict.allowed = false;
        m_verdict.rule = fmt::format("{}guardrails.{} ({})", k_deny_rule_prefix, key, origin);
        m_verdict.message = fmt::format("template \"{}\" {}, which guardrails.{} ({}) does not "
                                        "allow; {}",
                                        m_spec.name, problem, key, origin, fix);
        m_verdict.explanation.push_back(
            fmt::format("guardrails.{} ({}): denied: {}", key, origin, problem));
    }

    void deny(std::string_view key, const std::string& problem, std::string_view fix) {
        deny(key, origin_of(key), problem, fix);
    }

    // A switch that is allowed when set to true, and otherwise off when set or strict.
    bool forbids(const std::optional<bool>& allowed) const {
        return allowed ? !*allowed : m_strict;
    }

    void check_image() {
        // NOTE: only container images are bounded; an aws-ec2 template's image_id passes.
        if (!is_docker()) {
            return;
        }
        if (!m_guardrails.images && !m_strict) {
            return;
        }
        const std::vector<std::string> patterns =
            m_guardrails.images.value_or(std::vector<std::string>{});
        const std::string normal = normalize_image_reference(m_spec.image);
        const bool allowed =
            std::any_of(patterns.begin(), patterns.end(), [&](const std::string& pattern) {
                return image_pattern_matches(pattern, m_spec.image);
            });
        if (!allowed) {
            deny("images",
                 fmt::format("uses image \"{}\" (allowed: {})", normal, join_or_none(patterns)),
                 "use an allowed image, or ask an administrator to add it to [guardrails] "
                 "images");
            return;
        }
        pass("images", fmt::format("image {} allowed", normal));
    }

    void check_mounts() {
        for (std::size_t i = 0; i < m_spec.mounts.size(); ++i) {
            const Mount& mount = m_spec.mounts[i];
            for (const fs::path& form : source_forms(mount.source)) {
                const std::string reason = forbidden_reason(form, m_request.other_homes);
                if (!reason.empty()) {
                    deny("mount_sources", k_built_in_origin,
                         fmt::format("mounts \"{}\" ({}), which {}", form.string(), mount.origin,
                                     reason),
                         "remove the mount; no setting allows it");
                    return;
                }
                const bool limited = m_guardrails.mount_sources || m_strict;
                const std::vector<std::string> prefixes =
                    m_guardrails.mount_sources.value_or(std::vector<std::string>{});
                if (limited && !within_any(form, prefixes)) {
                    deny("mount_sources",
                         fmt::format("mounts \"{}\" ({}) (allowed sources: {})", form.string(),
                                     mount.origin, join_or_none(prefixes)),
                         "mount a folder inside an allowed source, or remove the mount");
                    return;
                }
            }
        }
        if (!m_spec.mounts.empty()) {
            pass("mount_sources", fmt::format("{} mounts allowed", m_spec.mounts.size()));
        }
    }

    void check_privileged() {
        if (m_spec.privileged && forbids(m_guardrails.privileged)) {
            deny("privileged", "asks for a privileged container (privileged = true)",
                 "remove privileged = true");
        }
    }

    void check_host_namespaces() {
        if (!forbids(m_guardrails.host_namespaces)) {
            return;
        }
        std::vector<std::string> shared;
        if (m_spec.network == NetworkMode::host) {
            shared.emplace_back("network = \"host\"");
        }
        if (m_spec.pid == "host") {
            shared.emplace_back("pid = \"host\"");
        }
        if (m_spec.ipc == "host") {
            shared.emplace_back("ipc = \"host\"");
        }
        if (!shared.empty()) {
            deny("host_namespaces",
                 fmt::format("shares a host namespace ({})", fmt::join(shared, ", ")),
                 "use network = \"isolated\", and leave pid and ipc unset");
        }
    }

    void check_devices() {
        if (!m_spec.devices.empty() && forbids(m_guardrails.devices)) {
            deny("devices",
                 fmt::format("passes host device {} ({})", m_spec.devices.front().host_path,
                             m_spec.devices.front().origin),
                 "remove devices");
        }
    }

    void check_capabilities() {
        if (!m_guardrails.capabilities && !m_strict) {
            return;
        }
        const std::vector<std::string> allowed =
            m_guardrails.capabilities.value_or(std::vector<std::string>{});
        for (const std::string& capability : m_spec.cap_add) {
            if (std::find(allowed.begin(), allowed.end(), capability) == allowed.end()) {
                deny("capabilities",
                     fmt::format("adds capability {} (allowed: {})", capability,
                                 join_or_none(allowed)),
                     "remove it from cap_add");
                return;
            }
        }
        const bool drops_all = std::find(m_spec.cap_drop.begin(), m_spec.cap_drop.end(), "ALL") !=
                               m_spec.cap_drop.end();
        if (is_docker() && !drops_all) {
            deny("capabilities",
                 fmt::format("keeps the engine's default capabilities (cap_drop = [{}])",
                             fmt::join(m_spec.cap_drop, ", ")),
                 "drop ALL in cap_drop and add only allowed capabilities");
            return;
        }
        pass("capabilities", fmt::format("cap_add [{}] allowed", fmt::join(m_spec.cap_add, ", ")));
    }

    // Applies one ceiling: a limit above it is denied, a missing limit becomes the ceiling,
    // and in enforced mode a missing ceiling requires the template's own limit.
    template <typename T>
    void apply_ceiling(std::string_view key, std::string_view limit_key,
                       const std::optional<T>& ceiling, std::optional<T>& limit,
                       const std::function<std::string(T)>& format) {
        if (!m_verdict.allowed || !is_docker()) {
            return;
        }
        if (!ceiling) {
            if (m_strict && !limit) {
                deny(key, fmt::format("sets no {}", limit_key),
                     fmt::format("set {} in the template, or {} in [guardrails]", limit_key, key));
            }
            return;
        }
        if (limit && *limit > *ceiling) {
            deny(key,
                 fmt::format("sets {} = {} (ceiling: {})", limit_key, format(*limit),
                             format(*ceiling)),
                 fmt::format("lower {} to at most {}", limit_key, format(*ceiling)));
            return;
        }
        const bool defaulted = !limit;
        if (defaulted) {
            limit = ceiling;
        }
        pass(key, fmt::format("{} = {}{}", limit_key, format(*limit),
                              defaulted ? " (the ceiling, as the template sets none)" : ""));
    }

    void check_ceilings() {
        Template& effective = m_verdict.effective;
        const std::function<std::string(std::int64_t)> as_size = format_size;
        const std::function<std::string(double)> as_cpus = [](double cpus) {
            return fmt::format("{}", cpus);
        };
        const std::function<std::string(std::int64_t)> as_count = [](std::int64_t count) {
            return fmt::format("{}", count);
        };
        apply_ceiling("max_memory", "memory", m_guardrails.max_memory, effective.memory_bytes,
                      as_size);
        apply_ceiling("max_cpus", "cpus", m_guardrails.max_cpus, effective.cpus, as_cpus);
        apply_ceiling("max_pids", "pids_limit", m_guardrails.max_pids, effective.pids_limit,
                      as_count);
    }

    void check_ttl() {
        if (!m_guardrails.max_ttl) {
            return;
        }
        const Seconds ceiling = *m_guardrails.max_ttl;
        if (m_request.ttl && *m_request.ttl > ceiling) {
            deny("max_ttl",
                 fmt::format("was requested for {} (ceiling: {})", format_duration(*m_request.ttl),
                             format_duration(ceiling)),
                 fmt::format("ask for --ttl {} or less", format_duration(ceiling)));
            return;
        }
        Template& effective = m_verdict.effective;
        effective.ttl = std::min(effective.ttl, ceiling);
        effective.max_ttl = std::min(effective.max_ttl, ceiling);
        pass("max_ttl", fmt::format("max_ttl {}", format_duration(effective.max_ttl)));
    }

    void check_live_count() {
        if (!m_guardrails.max_live_per_user) {
            return;
        }
        const int ceiling = *m_guardrails.max_live_per_user;
        if (m_request.live_sandboxes >= ceiling) {
            deny("max_live_per_user",
                 fmt::format("would be live sandbox {} of this user (ceiling: {})",
                             m_request.live_sandboxes + 1, ceiling),
                 "remove one with `jitbox down NAME` first");
            return;
        }
        pass("max_live_per_user",
             fmt::format("{} of {} live sandboxes in use", m_request.live_sandboxes, ceiling));
    }

    const Guardrails& m_guardrails;
    bool m_strict;
    const GuardrailRequest& m_request;
    const Template& m_spec;
    GuardrailVerdict m_verdict;
};

} // namespace

std::vector<UserHome> other_users_homes(uid_t uid, const fs::path& own_home) {
    std::vector<UserHome> homes;
    const fs::path own = own_home.empty() ? fs::path() : normal_mount_path(own_home);
    ::setpwent();
    while (const passwd* entry = ::getpwent()) {
        if (entry->pw_uid == uid || entry->pw_dir == nullptr || entry->pw_dir[0] != '/') {
            continue;
        }
        const fs::path home = normal_mount_path(entry->pw_dir);
        if (home == home.root_path() || home == own) {
            continue;
        }
        homes.push_back(UserHome{entry->pw_name, home});
    }
    ::endpwent();
    return homes;
}

std::vector<UserHome> other_users_homes_of_real_user() {
    return other_users_homes(::getuid(), current_user_home());
}

std::string normalize_image_reference(std::string_view reference) {
    ImageParts parts = split_image(reference);
    return parts.repository + (parts.suffix.empty() ? ":latest" : parts.suffix);
}

bool image_pattern_matches(std::string_view pattern, std::string_view reference) {
    const ImageParts allowed = split_image(pattern);
    const std::string normal = normalize_image_reference(reference);
    if (glob_matches(allowed.repository + allowed.suffix, normal)) {
        return true;
    }
    return allowed.suffix.empty() &&
           glob_matches(allowed.repository, split_image(normal).repository);
}

GuardrailVerdict check_guardrails(const Guardrails& guardrails, GuardrailDefaults defaults,
                                  const GuardrailRequest& request) {
    return GuardrailCheck(guardrails, defaults, request).run();
}

} // namespace jitbox
