#pragma once

// Network modes of a VM and the QEMU arguments for each. docs/networking.md describes them.

#include "base/result.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmr::net {

// User: QEMU's user-mode stack (SLIRP), NAT to the host, SSH forwarded from a host port on
// 127.0.0.1. Tap: a tap device on a host bridge (refused for now: TAP networking is not supported yet). None:
// no NIC at all.
enum class NetMode { User, Tap, None };

std::string_view netModeName(NetMode mode) noexcept;  // "user" | "tap" | "none"
// "user" | "tap" | "none"; anything else is InvalidArgument naming the allowed values.
Result<NetMode> parseNetMode(std::string_view text);
// Unsupported for Tap (TAP networking is not supported yet); success for the others.
Result<void> checkSupported(NetMode mode);

// The QEMU argv fragment for a mode:
//   User: -netdev user,id=net0[,hostfwd=tcp:127.0.0.1:<sshPort>-:22]
//         -device virtio-net-pci,netdev=net0,mac=<mac>
//   None: -nic none
// Tap has no fragment: callers run checkSupported() first (an empty vector for Tap).
std::vector<std::string> qemuNetArgs(NetMode mode, const std::string& mac, std::optional<uint16_t> sshPort);

}  // namespace vmr::net
