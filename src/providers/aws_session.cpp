#include "jitbox/providers/aws_session.hpp"

#include <array>
#include <nlohmann/json.hpp>

namespace jitbox {

std::string encode_aws_session(const AwsSession& session) {
    const nlohmann::json object = {
        {"AccessKeyId", session.credentials.access_key_id},
        {"SecretAccessKey", session.credentials.secret_access_key},
        {"SessionToken", session.credentials.session_token},
        {"Expiration", session.credentials.expiration
                           ? format_rfc3339(*session.credentials.expiration)
                           : std::string()},
        {"Region", session.region},
    };
    return object.dump();
}

Result<AwsSession> decode_aws_session(std::string_view text) {
    // Parse without exceptions so that no message can quote the secret text.
    const nlohmann::json object = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!object.is_object()) {
        return make_failure(ExitCode::internal,
                            "the stored AWS session is not a JSON object; run `jitbox down` and "
                            "`jitbox up` to get a new one");
    }

    AwsSession session;
    std::string expiration;
    const std::array<std::pair<const char*, std::string*>, 5> fields{{
        {"AccessKeyId", &session.credentials.access_key_id},
        {"SecretAccessKey", &session.credentials.secret_access_key},
        {"SessionToken", &session.credentials.session_token},
        {"Expiration", &expiration},
        {"Region", &session.region},
    }};
    for (const auto& [name, destination] : fields) {
        const auto found = object.find(name);
        if (found == object.end() || !found->is_string() || found->get<std::string>().empty()) {
            return make_failure(ExitCode::internal,
                                "the stored AWS session lacks {}; run `jitbox down` and `jitbox "
                                "up` to get a new one",
                                name);
        }
        *destination = found->get<std::string>();
    }

    auto expires = parse_rfc3339(expiration);
    if (!expires) {
        return make_failure(ExitCode::internal,
                            "the stored AWS session has an invalid Expiration; run `jitbox down` "
                            "and `jitbox up` to get a new one");
    }
    session.credentials.expiration = *expires;
    return session;
}

SecretItem make_aws_session_item(const std::string& sandbox_id, const std::string& sandbox_name,
                                 const AwsSession& session) {
    return SecretItem{sandbox_id, std::string(k_aws_session_key), encode_aws_session(session),
                      session.credentials.expiration.value_or(TimePoint{}), sandbox_name};
}

} // namespace jitbox
