// Ed25519 key generation, detached signatures and their verification, with OpenSSL's libcrypto.

#include "jitbox/policy/signing.hpp"
#include "jitbox/util/base64.hpp"
#include "jitbox/util/file_descriptor.hpp"

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>

namespace jitbox {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t k_public_key_size = 32;
constexpr std::size_t k_signature_size = 64;
constexpr std::size_t k_fingerprint_digits = 16;
// Key and signature files are a few hundred bytes, so anything this large is not one.
constexpr std::size_t k_max_key_file_size = 64 * 1024;

struct PkeyFree {
    void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct PkeyCtxFree {
    void operator()(EVP_PKEY_CTX* context) const { EVP_PKEY_CTX_free(context); }
};
struct MdCtxFree {
    void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
};
struct BioFree {
    void operator()(BIO* bio) const { BIO_free(bio); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;

// Takes every queued OpenSSL error as one line, so the next call starts with an empty queue.
std::string openssl_error() {
    std::string text;
    while (const unsigned long code = ERR_get_error()) {
        std::array<char, 256> buffer{};
        ERR_error_string_n(code, buffer.data(), buffer.size());
        text += text.empty() ? "" : "; ";
        text += buffer.data();
    }
    return text.empty() ? "unknown OpenSSL error" : text;
}

// The PEM reader would otherwise prompt on the terminal for the passphrase of an encrypted key.
int refuse_passphrase(char*, int, int, void*) {
    return 0;
}

std::string to_hex(const unsigned char* bytes, std::size_t size) {
    std::string hex;
    hex.reserve(size * 2);
    for (std::size_t i = 0; i < size; ++i) {
        hex += fmt::format("{:02x}", bytes[i]);
    }
    return hex;
}

std::string fingerprint_of(std::string_view raw_public_key) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int size = 0;
    if (EVP_Digest(raw_public_key.data(), raw_public_key.size(), digest.data(), &size,
                   EVP_sha256(), nullptr) != 1) {
        throw Error(ExitCode::internal, "SHA-256 failed: " + openssl_error());
    }
    return to_hex(digest.data(), size).substr(0, k_fingerprint_digits);
}

Result<std::string> raw_public_key_of(EVP_PKEY* key) {
    std::string raw(k_public_key_size, '\0');
    std::size_t size = raw.size();
    if (EVP_PKEY_get_raw_public_key(key, reinterpret_cast<unsigned char*>(raw.data()), &size) !=
            1 ||
        size != k_public_key_size) {
        return make_failure(ExitCode::internal, "failed to read the Ed25519 public key: {}",
                            openssl_error());
    }
    return raw;
}

// ---- file access ----

Result<std::string> read_fd(int fd, const fs::path& path, std::size_t max_size) {
    std::string content;
    std::array<char, 16 * 1024> buffer{};
    while (true) {
        const ssize_t count = ::read(fd, buffer.data(), buffer.size());
        if (count < 0 && errno == EINTR) {
            continue;
        }
        if (count < 0) {
            return make_failure(ExitCode::usage, "failed to read \"{}\": {}", path.string(),
                                std::strerror(errno));
        }
        if (count == 0) {
            return content;
        }
        content.append(buffer.data(), static_cast<std::size_t>(count));
        if (content.size() > max_size) {
            return make_failure(ExitCode::usage, "\"{}\" is larger than {} bytes", path.string(),
                                max_size);
        }
    }
}

Result<std::string> read_small_file(const fs::path& path) {
    const FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd.valid()) {
        return make_failure(ExitCode::usage, "failed to open \"{}\": {}", path.string(),
                            std::strerror(errno));
    }
    return read_fd(fd.get(), path, k_max_key_file_size);
}

Result<std::string> read_whole_file(const fs::path& path) {
    const FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd.valid()) {
        return make_failure(ExitCode::usage, "failed to open \"{}\": {}", path.string(),
                            std::strerror(errno));
    }
    return read_fd(fd.get(), path, SIZE_MAX / 2);
}

Result<void> write_all(int fd, std::string_view content, const fs::path& path) {
    while (!content.empty()) {
        const ssize_t count = ::write(fd, content.data(), content.size());
        if (count < 0 && errno == EINTR) {
            continue;
        }
        if (count < 0) {
            return make_failure(ExitCode::usage, "failed to write \"{}\": {}", path.string(),
                                std::strerror(errno));
        }
        content.remove_prefix(static_cast<std::size_t>(count));
    }
    return {};
}

// Creates `path` with exactly `mode` (whatever the umask) and writes `content` to it. Fails
// when `path` exists. A partly written file is removed.
Result<void> create_exclusive(const fs::path& path, std::string_view content, mode_t mode) {
    const FileDescriptor fd(
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
    if (!fd.valid()) {
        const int error = errno;
        if (error == EEXIST) {
            return make_failure(ExitCode::usage,
                                "\"{}\" exists already, remove it or choose another path",
                                path.string());
        }
        return make_failure(ExitCode::usage, "failed to create \"{}\": {}", path.string(),
                            std::strerror(error));
    }
    Result<void> written = write_all(fd.get(), content, path);
    if (written && (::fchmod(fd.get(), mode) != 0 || ::fsync(fd.get()) != 0)) {
        written = make_failure(ExitCode::usage, "failed to write \"{}\": {}", path.string(),
                               std::strerror(errno));
    }
    if (!written) {
        ::unlink(path.c_str());
    }
    return written;
}

// Replaces `path` with `content` through a temporary file in the same folder and a rename, so
// a reader sees the old file or the new one, never a part.
Result<void> replace_file(const fs::path& path, std::string_view content, mode_t mode) {
    std::string temporary = path.string() + ".tmp-XXXXXX";
    const FileDescriptor fd(::mkstemp(temporary.data()));
    if (!fd.valid()) {
        return make_failure(ExitCode::usage, "failed to create a temporary file next to \"{}\": {}",
                            path.string(), std::strerror(errno));
    }
    Result<void> written = write_all(fd.get(), content, temporary);
    if (written && (::fchmod(fd.get(), mode) != 0 || ::fsync(fd.get()) != 0 ||
                    ::rename(temporary.c_str(), path.c_str()) != 0)) {
        written = make_failure(ExitCode::usage, "failed to write \"{}\": {}", path.string(),
                               std::strerror(errno));
    }
    if (!written) {
        ::unlink(temporary.c_str());
    }
    return written;
}

// ---- PEM ----

std::string bio_contents(BIO* bio) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<std::size_t>(std::max(size, 0L)));
}

Result<std::pair<std::string, std::string>> encode_key_pair(EVP_PKEY* key) {
    const BioPtr private_pem(BIO_new(BIO_s_mem()));
    const BioPtr public_pem(BIO_new(BIO_s_mem()));
    if (!private_pem || !public_pem ||
        PEM_write_bio_PrivateKey(private_pem.get(), key, nullptr, nullptr, 0, nullptr, nullptr) !=
            1 ||
        PEM_write_bio_PUBKEY(public_pem.get(), key) != 1) {
        return make_failure(ExitCode::internal, "failed to encode the key pair as PEM: {}",
                            openssl_error());
    }
    return std::pair{bio_contents(private_pem.get()), bio_contents(public_pem.get())};
}

Result<PkeyPtr> decode_private_key(std::string_view pem, const fs::path& path) {
    const BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, refuse_passphrase, nullptr)
                    : nullptr);
    if (!key) {
        return make_failure(ExitCode::usage,
                            "\"{}\" is not an unencrypted PEM private key ({}), use a key "
                            "written by `jitbox policy keygen`",
                            path.string(), openssl_error());
    }
    if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) {
        return make_failure(ExitCode::usage,
                            "\"{}\" is a {} key, but signatures need an Ed25519 key, use a key "
                            "written by `jitbox policy keygen`",
                            path.string(), OBJ_nid2sn(EVP_PKEY_get_id(key.get())));
    }
    return key;
}

// Returns the raw public key of a PEM Ed25519 public key, or why the file is not one.
Result<std::string> decode_public_key(std::string_view pem) {
    const BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    const PkeyPtr key(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, refuse_passphrase, nullptr)
                          : nullptr);
    if (!key) {
        return make_failure(ExitCode::usage, "not a PEM public key ({})", openssl_error());
    }
    if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) {
        return make_failure(ExitCode::usage, "not an Ed25519 key (type {})",
                            OBJ_nid2sn(EVP_PKEY_get_id(key.get())));
    }
    return raw_public_key_of(key.get());
}

// ---- signatures ----

Result<std::string> sign_bytes(EVP_PKEY* key, std::string_view content) {
    const MdCtxPtr context(EVP_MD_CTX_new());
    std::string signature(k_signature_size, '\0');
    std::size_t size = signature.size();
    // Ed25519 hashes the message itself, so the digest type is NULL.
    if (!context || EVP_DigestSignInit(context.get(), nullptr, nullptr, nullptr, key) != 1 ||
        EVP_DigestSign(context.get(), reinterpret_cast<unsigned char*>(signature.data()), &size,
                       reinterpret_cast<const unsigned char*>(content.data()),
                       content.size()) != 1 ||
        size != k_signature_size) {
        return make_failure(ExitCode::internal, "Ed25519 signing failed: {}", openssl_error());
    }
    return signature;
}

bool signature_matches(const TrustedKey& key, std::string_view signature,
                       std::string_view content) {
    const PkeyPtr public_key(EVP_PKEY_new_raw_public_key(
        EVP_PKEY_ED25519, nullptr,
        reinterpret_cast<const unsigned char*>(key.raw_public_key.data()),
        key.raw_public_key.size()));
    const MdCtxPtr context(EVP_MD_CTX_new());
    const bool matches =
        public_key && context &&
        EVP_DigestVerifyInit(context.get(), nullptr, nullptr, nullptr, public_key.get()) == 1 &&
        EVP_DigestVerify(context.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                         signature.size(), reinterpret_cast<const unsigned char*>(content.data()),
                         content.size()) == 1;
    // A mismatch leaves an entry on OpenSSL's error queue, which a later message would show.
    ERR_clear_error();
    return matches;
}

// The contents of a signature file: the signature and the fingerprint its comment names.
struct SignatureFile {
    std::string signature;
    std::string fingerprint; // empty when no comment names one
};

bool is_fingerprint(std::string_view word) {
    return word.size() == k_fingerprint_digits &&
           std::all_of(word.begin(), word.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

std::string_view last_word(std::string_view line) {
    const auto end = line.find_last_not_of(" \t");
    if (end == std::string_view::npos) {
        return {};
    }
    line = line.substr(0, end + 1);
    const auto space = line.find_last_of(" \t");
    return space == std::string_view::npos ? line : line.substr(space + 1);
}

std::string signature_comment(const std::string& fingerprint) {
    return fmt::format("# jitbox signature, Ed25519 key {}\n", fingerprint);
}

// Parses a signature file: comment lines starting with '#', blank lines, and exactly one line
// of base64 that decodes to 64 bytes. Returns nullopt when it is malformed.
std::optional<SignatureFile> parse_signature_file(std::string_view text) {
    SignatureFile parsed;
    int data_lines = 0;
    while (!text.empty()) {
        const auto newline = text.find('\n');
        std::string_view line = text.substr(0, newline);
        text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) {
            line.remove_suffix(1);
        }
        if (line.empty()) {
            continue;
        }
        if (line.front() == '#') {
            const std::string_view word = last_word(line.substr(1));
            if (is_fingerprint(word)) {
                parsed.fingerprint = std::string(word);
            }
            continue;
        }
        ++data_lines;
        auto signature = from_base64(line);
        if (!signature || signature->size() != k_signature_size) {
            return std::nullopt;
        }
        parsed.signature = std::move(*signature);
    }
    if (data_lines != 1) {
        return std::nullopt;
    }
    return parsed;
}

// ---- verification ----

Failure not_signed(const fs::path& file, std::string_view reason) {
    return make_failure(ExitCode::denied,
                        "{} is not signed by a trusted key: {} (sign it with `jitbox policy sign "
                        "--key KEY {}`)",
                        file.string(), reason, file.string());
}

Result<SignatureFile> read_signature(const fs::path& file) {
    const fs::path path = signature_path(file);
    const FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd.valid() && errno == ENOENT) {
        return not_signed(file, fmt::format("signature file {} is missing", path.string()));
    }
    if (!fd.valid()) {
        return not_signed(file, fmt::format("failed to open signature file {}: {}", path.string(),
                                            std::strerror(errno)));
    }
    auto text = read_fd(fd.get(), path, k_max_key_file_size);
    if (!text) {
        return not_signed(file, fmt::format("failed to read signature file {}: {}", path.string(),
                                            text.error().message));
    }
    auto parsed = parse_signature_file(*text);
    if (!parsed) {
        return not_signed(file, fmt::format("signature file {} is malformed, expected a line of "
                                            "base64 holding a 64-byte Ed25519 signature",
                                            path.string()));
    }
    return std::move(*parsed);
}

const TrustedKey* find_by_fingerprint(const TrustedKeySet& trusted, const std::string& print) {
    const auto found =
        std::find_if(trusted.keys.begin(), trusted.keys.end(),
                     [&](const TrustedKey& key) { return key.fingerprint == print; });
    return found == trusted.keys.end() ? nullptr : &*found;
}

// ---- trusted keys ----

bool has_key_extension(const std::string& name) {
    const auto ends_with = [&](std::string_view suffix) {
        return name.size() > suffix.size() &&
               name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    return ends_with(".pub") || ends_with(".pem");
}

// The argument to chown that gives a file to `uid`.
std::string owner_spec(uid_t uid) {
    return uid == 0 ? "root:root" : std::to_string(uid);
}

std::string owner_problem(const struct stat& info, std::optional<uid_t> required_owner) {
    if (!required_owner) {
        return {};
    }
    if (info.st_uid != *required_owner) {
        return fmt::format("owned by uid {}, not uid {}", info.st_uid, *required_owner);
    }
    if ((info.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        return fmt::format("writable by group or others (mode {:04o})", info.st_mode & 07777);
    }
    return {};
}

// Reads one key file in the folder open as `dir_fd`, or returns why it was skipped.
Result<TrustedKey> load_key_file(int dir_fd, const fs::path& path,
                                 std::optional<uid_t> required_owner) {
    const FileDescriptor fd(::openat(dir_fd, path.filename().c_str(),
                                     O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    struct stat info {};
    if (!fd.valid() || ::fstat(fd.get(), &info) != 0) {
        return make_failure(ExitCode::usage, "{}", std::strerror(errno));
    }
    if (!S_ISREG(info.st_mode)) {
        return make_failure(ExitCode::usage, "not a regular file");
    }
    if (const std::string problem = owner_problem(info, required_owner); !problem.empty()) {
        return make_failure(ExitCode::usage, "{}", problem);
    }
    const auto pem = read_fd(fd.get(), path, k_max_key_file_size);
    if (!pem) {
        return pem.error();
    }
    auto raw = decode_public_key(*pem);
    if (!raw) {
        return raw.error();
    }
    return TrustedKey{path, fingerprint_of(*raw), std::move(raw).value()};
}

std::vector<std::string> key_file_names(DIR* listing) {
    std::vector<std::string> names;
    while (const dirent* entry = ::readdir(listing)) {
        std::string name = entry->d_name;
        if (has_key_extension(name)) {
            names.push_back(std::move(name));
        }
    }
    std::sort(names.begin(), names.end());
    return names;
}

} // namespace

fs::path signature_path(const fs::path& file) {
    fs::path path = file;
    path += ".sig";
    return path;
}

Result<std::string> keygen(const fs::path& private_path, const fs::path& public_path) {
    if (private_path.lexically_normal() == public_path.lexically_normal()) {
        return make_failure(ExitCode::usage,
                            "the private and public key paths are both \"{}\", name two files",
                            private_path.string());
    }
    const PkeyCtxPtr context(EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr));
    EVP_PKEY* generated = nullptr;
    if (!context || EVP_PKEY_keygen_init(context.get()) != 1 ||
        EVP_PKEY_keygen(context.get(), &generated) != 1) {
        return make_failure(ExitCode::internal, "Ed25519 key generation failed: {}",
                            openssl_error());
    }
    const PkeyPtr key(generated);
    const auto pems = encode_key_pair(key.get());
    const auto raw = raw_public_key_of(key.get());
    if (!pems) {
        return pems.error();
    }
    if (!raw) {
        return raw.error();
    }

    if (auto written = create_exclusive(private_path, pems->first, 0600); !written) {
        return written.error();
    }
    if (auto written = create_exclusive(public_path, pems->second, 0644); !written) {
        ::unlink(private_path.c_str());
        return written.error();
    }
    return fingerprint_of(*raw);
}

Result<fs::path> sign(const fs::path& private_key_path, const fs::path& file) {
    const auto pem = read_small_file(private_key_path);
    if (!pem) {
        return pem.error();
    }
    const auto key = decode_private_key(*pem, private_key_path);
    if (!key) {
        return key.error();
    }
    const auto content = read_whole_file(file);
    if (!content) {
        return content.error();
    }
    const auto signature = sign_bytes(key->get(), *content);
    const auto raw = raw_public_key_of(key->get());
    if (!signature) {
        return signature.error();
    }
    if (!raw) {
        return raw.error();
    }

    const fs::path path = signature_path(file);
    const std::string text =
        signature_comment(fingerprint_of(*raw)) + to_base64(*signature) + "\n";
    if (auto written = replace_file(path, text, 0644); !written) {
        return written.error();
    }
    return path;
}

Result<Verification> verify(const fs::path& file, const fs::path& trusted_keys_dir) {
    const auto trusted = load_trusted_keys(trusted_keys_dir);
    if (!trusted) {
        return trusted.error();
    }
    const auto content = read_whole_file(file);
    if (!content) {
        return content.error();
    }
    return verify_content(*content, file, *trusted);
}

Result<Verification> verify_content(std::string_view content, const fs::path& file,
                                    const TrustedKeySet& trusted) {
    if (trusted.keys.empty()) {
        return not_signed(file, fmt::format("there are no trusted keys in {}, so no signature "
                                            "can be checked (add the signer's public key there)",
                                            trusted.dir.string()));
    }
    const auto parsed = read_signature(file);
    if (!parsed) {
        return parsed.error();
    }

    // The fingerprint comment is not signed, so it only picks the key to try first.
    const TrustedKey* named = find_by_fingerprint(trusted, parsed->fingerprint);
    if (named != nullptr && signature_matches(*named, parsed->signature, content)) {
        return Verification{*named};
    }
    for (const TrustedKey& key : trusted.keys) {
        if (&key != named && signature_matches(key, parsed->signature, content)) {
            return Verification{key};
        }
    }

    const std::string sig = signature_path(file).string();
    if (named != nullptr) {
        return not_signed(file, fmt::format("the signature in {} by trusted key {} ({}) does not "
                                            "match, so the file changed since it was signed",
                                            sig, named->fingerprint, named->path.string()));
    }
    if (!parsed->fingerprint.empty()) {
        return not_signed(file, fmt::format("{} was made with key {}, which is not among the "
                                            "trusted keys in {}",
                                            sig, parsed->fingerprint, trusted.dir.string()));
    }
    return not_signed(file, fmt::format("the signature in {} matches no trusted key in {}, so "
                                        "the file changed since it was signed or an untrusted "
                                        "key signed it",
                                        sig, trusted.dir.string()));
}

Result<TrustedKeySet> load_trusted_keys(const fs::path& dir, std::optional<uid_t> required_owner) {
    TrustedKeySet trusted;
    trusted.dir = dir;
    const FileDescriptor dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir_fd.valid() && errno == ENOENT) {
        return trusted;
    }
    struct stat info {};
    if (!dir_fd.valid() || ::fstat(dir_fd.get(), &info) != 0) {
        return make_failure(ExitCode::usage, "failed to open the trusted-keys folder {}: {}",
                            dir.string(), std::strerror(errno));
    }
    if (const std::string problem = owner_problem(info, required_owner); !problem.empty()) {
        return make_failure(ExitCode::usage,
                            "the trusted-keys folder {} is {}, so others could add a key (run "
                            "`chown {} {} && chmod go-w {}`)",
                            dir.string(), problem, owner_spec(*required_owner), dir.string(),
                            dir.string());
    }

    // fdopendir takes over a descriptor of its own, so the one above stays ours to close.
    const int listing_fd = ::dup(dir_fd.get());
    DIR* listing = listing_fd < 0 ? nullptr : ::fdopendir(listing_fd);
    if (listing == nullptr) {
        if (listing_fd >= 0) {
            ::close(listing_fd);
        }
        return make_failure(ExitCode::usage, "failed to list the trusted-keys folder {}: {}",
                            dir.string(), std::strerror(errno));
    }
    const std::vector<std::string> names = key_file_names(listing);
    ::closedir(listing);

    for (const std::string& name : names) {
        auto key = load_key_file(dir_fd.get(), dir / name, required_owner);
        if (key) {
            trusted.keys.push_back(std::move(key).value());
        } else {
            trusted.warnings.push_back(fmt::format("skipped trusted key {}: {}",
                                                   (dir / name).string(), key.error().message));
        }
    }
    return trusted;
}

} // namespace jitbox
