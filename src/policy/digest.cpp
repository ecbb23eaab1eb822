#include "jitbox/policy/digest.hpp"

#include "jitbox/util/result.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <array>
#include <optional>

namespace jitbox {

struct PolicyDigest::Shared {
    std::vector<Source> sources;
    std::optional<std::string> hex;
};

namespace {

struct MdCtxFree {
    void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
};

std::string sha256_hex(const std::vector<PolicyDigest::Source>& sources) {
    const std::unique_ptr<EVP_MD_CTX, MdCtxFree> context(EVP_MD_CTX_new());
    bool ok = context && EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) == 1;
    for (const auto& source : sources) {
        // The length prefix keeps the boundary between two files part of what is hashed.
        const std::string header = fmt::format("{} {}\n", source.role, source.bytes.size());
        ok = ok && EVP_DigestUpdate(context.get(), header.data(), header.size()) == 1 &&
             EVP_DigestUpdate(context.get(), source.bytes.data(), source.bytes.size()) == 1;
    }
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int size = 0;
    if (!ok || EVP_DigestFinal_ex(context.get(), digest.data(), &size) != 1) {
        throw Error(ExitCode::internal, "computing the SHA-256 policy digest failed");
    }
    std::string hex;
    for (unsigned int i = 0; i < size; ++i) {
        hex += fmt::format("{:02x}", digest[i]);
    }
    return hex;
}

} // namespace

PolicyDigest::PolicyDigest() : m_shared(std::make_shared<Shared>(Shared{{}, std::string()})) {}

PolicyDigest::PolicyDigest(std::vector<Source> sources)
    : m_shared(std::make_shared<Shared>(Shared{std::move(sources), std::nullopt})) {}

PolicyDigest::PolicyDigest(std::string hex)
    : m_shared(std::make_shared<Shared>(Shared{{}, std::move(hex)})) {}

const std::string& PolicyDigest::hex() const {
    if (!m_shared->hex) {
        m_shared->hex = sha256_hex(m_shared->sources);
    }
    return *m_shared->hex;
}

} // namespace jitbox
