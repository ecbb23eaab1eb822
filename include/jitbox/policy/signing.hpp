#pragma once

// Ed25519 signatures over configuration files, so an administrator can require that a project's
// jitbox.toml was approved by someone with a trusted private key.
//
// A signature is detached, in `FILE.sig` next to the file: one comment line naming the signing
// key's fingerprint, then the 64-byte Ed25519 signature of the file's exact bytes as one line
// of base64. A fingerprint is the first 16 hex digits of the SHA-256 of the 32-byte raw public
// key.
//
// Exit codes: a file that fails verification (no signature, a malformed signature, an untrusted
// key, or a file changed since signing) is a policy refusal, so those failures carry
// ExitCode::denied, the code of every other policy refusal. Problems with key files and folders
// the caller named carry ExitCode::usage, and unexpected library failures ExitCode::internal.

#include "jitbox/util/result.hpp"

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jitbox {

/// A public key that may sign configuration files.
struct TrustedKey {
    std::filesystem::path path;
    std::string fingerprint;
    std::string raw_public_key; // the 32 bytes of the Ed25519 public key
};

/// The keys of a trusted-keys folder, with one warning for each file that was skipped.
struct TrustedKeySet {
    std::filesystem::path dir;
    std::vector<TrustedKey> keys;
    std::vector<std::string> warnings;
};

/// The key that verified a file.
struct Verification {
    TrustedKey key;
};

/// Generates an Ed25519 key pair and writes the private key as unencrypted PKCS#8 PEM with mode
/// 0600 and the public key as PEM with mode 0644. Fails with ExitCode::usage, writing nothing,
/// when either file exists already. Returns the new key's fingerprint.
Result<std::string> keygen(const std::filesystem::path& private_path,
                           const std::filesystem::path& public_path);

/// Signs the exact bytes of `file` with the PEM Ed25519 private key at `private_key_path` and
/// writes the signature to signature_path(file), replacing an older one. Returns that path.
Result<std::filesystem::path> sign(const std::filesystem::path& private_key_path,
                                   const std::filesystem::path& file);

/// Checks that trusted keys in `trusted_keys_dir` include one that signed `file`.
Result<Verification> verify(const std::filesystem::path& file,
                            const std::filesystem::path& trusted_keys_dir);

/// Checks `content`, the bytes read from `file`, against the signature in signature_path(file).
/// Verifying bytes already in memory means the bytes checked are the bytes then used.
Result<Verification> verify_content(std::string_view content, const std::filesystem::path& file,
                                    const TrustedKeySet& trusted);

/// Loads every `*.pub` and `*.pem` PEM public key in `dir`. A folder that does not exist
/// contains no keys. Unreadable files and keys that are not Ed25519 are skipped with a
/// warning. With `required_owner`, the folder must be owned by that uid and not writable by
/// group or others (else ExitCode::usage), and key files that are not are skipped with a
/// warning.
Result<TrustedKeySet> load_trusted_keys(const std::filesystem::path& dir,
                                        std::optional<uid_t> required_owner = std::nullopt);

/// `FILE.sig`, where the detached signature of `file` is kept.
std::filesystem::path signature_path(const std::filesystem::path& file);

} // namespace jitbox
