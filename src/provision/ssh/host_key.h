#pragma once

// SSH host keys as vmr passes them around: OpenSSH public key lines ("ssh-ed25519 AAAA...
// [comment]"), the form cloud-init injects and known_hosts stores. Pure functions: checking a
// line, writing one from the key blob a server presents, and the host-key algorithms to offer
// so that the server presents a key of the pinned type.

#include "base/result.h"

#include <string>
#include <string_view>
#include <vector>

namespace vmr::provision {

// A host key as an OpenSSH line holds it. Two keys are the same key when type and base64
// are equal (OpenSSH writes canonical, padded base64).
struct SshHostKey {
    std::string type;     // "ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa", ...
    std::string base64;   // the key blob, base64
    std::string comment;  // may be empty

    // "TYPE BASE64", without the comment.
    std::string line() const { return type + " " + base64; }
    bool sameKey(const SshHostKey& o) const { return type == o.type && base64 == o.base64; }
};

// Check "TYPE BASE64 [COMMENT]": a type libssh2 can verify (ed25519, ecdsa nistp256/384/521,
// rsa) and well-formed base64. InvalidArgument naming what is wrong otherwise.
Result<SshHostKey> parseSshHostKey(std::string_view line);

// The key a server presented (the blob libssh2_session_hostkey returns); its type is the
// blob's first field. ParseError when the blob is malformed.
Result<SshHostKey> sshHostKeyFromBlob(std::string_view blob);

// "SHA256:" + unpadded base64 of a SHA-256 digest, as `ssh-keygen -l` prints it.
std::string sshFingerprint(std::string_view sha256Digest);

// The host-key algorithms (libssh2_session_method_pref, LIBSSH2_METHOD_HOSTKEY) that make a
// server present a key of `type` (an "ssh-rsa" key signs as rsa-sha2-512/256 or ssh-rsa).
std::string hostKeyAlgorithmsFor(std::string_view type);
// When nothing is pinned: every type libssh2 verifies, Ed25519 first (the type vmr generates).
std::string hostKeyAlgorithmsAny();
// The algorithms of the comma-separated list `wanted` that are in `supported`, in wanted's
// order (libssh2 builds differ: Debian 12's 1.10 has no rsa-sha2-*).
std::string keepSupported(std::string_view wanted, const std::vector<std::string>& supported);

}  // namespace vmr::provision
