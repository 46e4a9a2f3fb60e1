#pragma once

// The files of a cloud-init NoCloud seed: user-data (a #cloud-config vmr generates, or
// the user's own file passed through unchanged), meta-data and, when the guest needs a
// fixed address, network-config (version 2). See docs/cloud-init.md.

#include "base/result.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmr::provision {

// The default login user of a generated cloud-config (vmctl's default).
inline constexpr std::string_view kDefaultUser = "vm";

// The guest's SSH host key, injected through cloud-init's `ssh_keys`.
struct HostKeyData {
    std::string privateKey;  // an OpenSSH private key file (Ed25519KeyPair::privateKeyFile)
    std::string publicKey;   // its "ssh-ed25519 BASE64 [COMMENT]" line
};

// Network settings for network-config version 2. Without `address` the NIC uses DHCP.
struct NetworkSettings {
    std::string mac;                       // "52:54:00:12:34:56": the NIC to configure
    std::string interfaceName = "eth0";    // set-name
    std::string address;                   // "10.0.0.5/24", or empty for DHCP
    std::string gateway;                   // "10.0.0.1" (with address only)
    std::vector<std::string> nameservers;  // IPv4 addresses (with address only)
};

struct SeedSpec {
    std::string instanceId;  // unique per VM, stable for its life (see makeInstanceId)
    std::string hostname;    // the guest's hostname (see hostnameFor)

    // Generated user-data: one user with passwordless sudo, bash, these keys, root login
    // disabled, the hostname set and, when given, the host key.
    std::string user = std::string(kDefaultUser);
    std::vector<std::string> authorizedKeys;  // public key lines; at least one
    std::optional<HostKeyData> hostKey;

    // The user's own user-data (`--cloud-init FILE`): written to the seed unchanged, in
    // place of the generated one. It opts out of user, keys and host key, which must
    // then be left empty.
    std::optional<std::string> rawUserData;

    std::optional<NetworkSettings> network;  // adds network-config
};

struct SeedFiles {
    std::string userData;
    std::string metaData;
    std::optional<std::string> networkConfig;
};

// Checks the spec and renders the seed's files. Every error names the field at fault.
Result<SeedFiles> renderSeed(const SeedSpec& spec);

// "iid-" + the VM's fixed random id, e.g. "iid-0a1b2c3d": cloud-init treats a new
// instance-id as a first boot, so it must not change while the VM exists.
std::string makeInstanceId(std::string_view vmId);

// A valid hostname made from a VM name: '_' and '.' become '-', cut to 63 characters,
// with no leading or trailing '-' ("web_1" -> "web-1").
std::string hostnameFor(std::string_view vmName);

// A hostname is one RFC 1123 label: letters, digits and '-', 1 to 63 characters, not
// starting or ending with '-'.
Result<void> validateHostname(std::string_view hostname);
// Login name rules of useradd: [a-z_][a-z0-9_-]{0,31}, and not "root".
Result<void> validateUserName(std::string_view user);

}  // namespace vmr::provision
