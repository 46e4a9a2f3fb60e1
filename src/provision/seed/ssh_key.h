#pragma once

// Ed25519 key pairs in OpenSSH's formats, made in-process with libcrypto: the client key
// vmrd logs in with (`id_ed25519_generated`) and the guest's host key it injects through
// cloud-init, with the fingerprint and known_hosts line that pin that host key.

#include "base/result.h"

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vmr::provision {

// File names in a VM's folder (DESIGN.md, State on disk).
inline constexpr std::string_view kClientKeyFile = "id_ed25519_generated";  // + ".pub"
inline constexpr std::string_view kHostKeyFile = "ssh_host_ed25519_key";    // + ".pub"
inline constexpr std::string_view kKnownHostsFile = "known_hosts";

// A public key as written in an OpenSSH `.pub` file or authorized_keys line:
// "TYPE BASE64 [COMMENT]". `blob` is the decoded key, whose first field repeats TYPE.
struct PublicKey {
    std::string type;           // "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", ...
    std::vector<uint8_t> blob;  // the SSH wire encoding of the key
    std::string comment;        // may be empty

    // "TYPE BASE64", without the comment: what a known_hosts line or a host-key check
    // compares.
    std::string line() const;
    // "SHA256:" + unpadded base64 of SHA-256(blob), as `ssh-keygen -l` prints it.
    std::string fingerprint() const;
};

// Parses one public key line. The type must be one OpenSSH knows and must match the type
// inside the blob; the comment may hold spaces. Leading/trailing white space is ignored.
Result<PublicKey> parsePublicKey(std::string_view line);

// An Ed25519 key pair. The private half is wiped when the object goes away.
class Ed25519KeyPair {
public:
    // A fresh key pair from the system's random source. `comment` goes into both files
    // (e.g. "vmr@web" or "root@web"); it must be one line.
    static Result<Ed25519KeyPair> generate(std::string_view comment);

    // Reads an unencrypted "-----BEGIN OPENSSH PRIVATE KEY-----" file's text, as written
    // by privateKeyFile() or by `ssh-keygen -t ed25519 -N ''`.
    static Result<Ed25519KeyPair> fromPrivateKeyFile(std::string_view text);

    Ed25519KeyPair(const Ed25519KeyPair&) = default;
    Ed25519KeyPair& operator=(const Ed25519KeyPair&) = default;
    Ed25519KeyPair(Ed25519KeyPair&&) noexcept = default;
    Ed25519KeyPair& operator=(Ed25519KeyPair&&) noexcept = default;
    ~Ed25519KeyPair();

    // The OpenSSH private key file (unencrypted, 70-column base64, ends in a newline);
    // the same text on every call.
    std::string privateKeyFile() const;
    // "ssh-ed25519 BASE64 COMMENT" (no newline): the `.pub` file's line, and what
    // authorized_keys and cloud-init's `ed25519_public` take.
    std::string publicKeyLine() const;
    // The public key alone ("ssh-ed25519 BASE64"), what the SSH client checks a host
    // key against.
    PublicKey publicKey() const;
    std::string fingerprint() const { return publicKey().fingerprint(); }
    const std::string& comment() const noexcept { return comment_; }
    const std::array<uint8_t, 32>& rawPublic() const noexcept { return public_; }

private:
    Ed25519KeyPair() = default;

    std::array<uint8_t, 32> seed_{};  // the private key (RFC 8032 secret)
    std::array<uint8_t, 32> public_{};
    std::string comment_;
    uint32_t checkInt_ = 0;  // the private section's check number: random, kept per key
                             // so that privateKeyFile() gives the same text every time
};

// Writes the key pair as `privatePath` (mode 0600) and `privatePath + ".pub"` (0644),
// each atomically (temp file, fsync, rename). The private file is written first, so a
// `.pub` never exists without its private key.
Result<void> writeKeyPair(const std::string& privatePath, const Ed25519KeyPair& key);

// Reads the pair written by writeKeyPair. The private file must be a regular file not
// readable by group or others; a missing or damaged `.pub` is not needed (the public
// key is in the private file) but one that names another key is an error.
Result<Ed25519KeyPair> readKeyPair(const std::string& privatePath);

// Reads the pair at `privatePath` when the private file exists, otherwise generates one
// with `comment` and writes it. `created` (optional) tells which happened. An existing
// key is never replaced: a guest may already trust it.
Result<Ed25519KeyPair> loadOrCreateKeyPair(const std::string& privatePath, std::string_view comment,
                                           bool* created = nullptr);

// The known_hosts line that pins `key` for `host` at `port`: "[HOST]:PORT TYPE BASE64"
// (OpenSSH writes plain "HOST" for port 22). `host` is an address or name without
// spaces, e.g. "127.0.0.1".
std::string knownHostsLine(std::string_view host, uint16_t port, const PublicKey& key);

}  // namespace vmr::provision
