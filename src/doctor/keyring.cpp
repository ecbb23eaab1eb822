#include "jitbox/doctor/doctor.hpp"

#include <fmt/format.h>

namespace jitbox {

namespace {

constexpr std::string_view k_keyring_fix =
    "start a Secret Service in your D-Bus session (such as gnome-keyring-daemon) and unlock it, "
    "or allow the keyctl system call for the kernel keyring";

nlohmann::json probes_to_json(const std::vector<SecretBackendProbe>& probes) {
    nlohmann::json array = nlohmann::json::array();
    for (const auto& probe : probes) {
        array.push_back(
            {{"backend", probe.backend}, {"usable", probe.usable}, {"detail", probe.detail}});
    }
    return array;
}

} // namespace

Finding keyring_finding(const Result<OpenedSecretStore>& opened, bool needed) {
    Finding finding;
    finding.check = "keyring";
    if (!opened) {
        finding.severity = needed ? Severity::error : Severity::warning;
        finding.message = opened.error().message;
        finding.fix = needed ? std::string(k_keyring_fix)
                             : fmt::format("only templates with secrets or aws-sts need a "
                                           "keyring; to prepare one, {}",
                                           k_keyring_fix);
        finding.details = {{"backend", nullptr}, {"reason", nullptr}};
        return finding;
    }
    const std::string backend(opened->store->name());
    finding.details = {{"backend", backend},
                       {"reason", opened->reason},
                       {"probes", probes_to_json(opened->probes)}};
    finding.message = opened->reason;
    // A file chosen after other backends failed keeps values in plain text on a tmpfs.
    const bool fell_back = backend == "file" && opened->probes.size() > 1;
    if (fell_back) {
        finding.severity = Severity::warning;
        finding.message = fmt::format("the file backend, which keeps credentials in plain "
                                      "text, would be used: {}",
                                      opened->reason);
        finding.fix =
            fmt::format("{}; or set keyring.backend = \"file\" to accept it", k_keyring_fix);
    }
    return finding;
}

} // namespace jitbox
