#pragma once

// What a VM needs to be reachable and provisioned over SSH (docs/provisioning.md): at create,
// a client key vmrd logs in with, the guest's host key and the cloud-init seed that carries
// them; later, the provisioning steps run over an SSH session that checks the pinned host key.

#include "base/result.h"
#include "model/spec.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmr::vm {

struct SeedRequest {
    std::string vmDir;
    std::string name;
    std::string id;
    std::string user;                         // empty: model::kDefaultSshUser
    std::vector<std::string> authorizedKeys;  // the caller's public key lines
    std::optional<std::string> userData;      // raw user-data, passed through unchanged
    std::string hostname;                     // empty: made from the name
};

struct SeedResult {
    std::string seedPath;
    std::string clientKey;  // the private key vmrd generated (<vmdir>/id_ed25519_generated)
    // The host key injected through cloud-init ("ssh-ed25519 AAAA..."); empty with raw
    // user-data (then the first key seen is pinned).
    std::string hostKey;
    std::string user;
};

// Whether this vmrd was built with seed ISO support (libisofs).
bool seedSupported() noexcept;

// Write the client key pair, and the seed ISO (<vmdir>/seed.iso) holding user-data (generated
// or raw), meta-data and the host key. Everything lands in vmDir; on failure the caller removes
// the folder.
Result<SeedResult> writeSeed(const SeedRequest& req);

// Where the provisioning output of a VM is kept.
constexpr const char* kProvisionLog = "provision.log";
constexpr const char* kClientKeyName = "id_ed25519_generated";

}  // namespace vmr::vm
