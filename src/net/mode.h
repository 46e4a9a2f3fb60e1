#pragma once

// Network modes of a VM and the QEMU arguments for each. docs/networking.md describes them.

#include "base/result.h"
#include "model/vocab.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmr::net {

// The modes are the model's (model/vocab.h): user (SLIRP, SSH forwarded from 127.0.0.1), tap
// (refused for now: TAP networking is not supported yet), none.
using model::NetMode;
// Unsupported for Tap (TAP networking is not supported yet); success for the others.
Result<void> checkSupported(NetMode mode);

// The QEMU argv fragment for a mode:
//   User: -netdev user,id=net0[,hostfwd=tcp:127.0.0.1:<sshPort>-:22]
//         -device virtio-net-pci,netdev=net0,mac=<mac>
//   None: -nic none
// Tap has no fragment: callers run checkSupported() first (an empty vector for Tap).
std::vector<std::string> qemuNetArgs(NetMode mode, const std::string& mac, std::optional<uint16_t> sshPort);

}  // namespace vmr::net
