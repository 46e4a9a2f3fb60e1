#pragma once

// Host TCP ports for the SSH forward of user-mode (SLIRP) networking: one per VM, taken from
// network.ssh_port_range of vmrd.toml, stable across restarts of the VM and of the daemon.

#include "base/result.h"
#include "config/settings.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace vmr::net {

class PortAllocator {
public:
    explicit PortAllocator(config::PortRange range = config::Settings{}.network.sshPortRange);

    // The port of vmName: the one it already holds, else `previous` (from its record) when that
    // is in the range, held by no other VM and free on the host, else the next free port after
    // the cursor. Ports in use on the host (by anything) are skipped. Range exhausted: Busy.
    Result<uint16_t> allocate(std::string_view vmName, std::optional<uint16_t> previous);
    // Record a port a VM already has (its record, at daemon start), without checking the host:
    // the VM's own hypervisor may be the one listening. A port outside the range is accepted
    // (the range may have changed since). A port held by another VM is a Busy error, reported
    // for the VM reserved second. A VM holding another port moves to the new one.
    Result<void> reserve(std::string_view vmName, uint16_t port);
    // Forget vmName's port (deleted VM). A port may be handed to another VM afterwards; a
    // released VM gets its port back from allocate() when it is still free.
    void release(std::string_view vmName);

    std::optional<uint16_t> portOf(std::string_view vmName) const;
    // The VM holding port, or empty.
    std::string ownerOf(uint16_t port) const;
    size_t size() const noexcept { return byVm_.size(); }
    const config::PortRange& range() const noexcept { return range_; }

    // Whether 127.0.0.1:port can be bound now (SO_REUSEADDR off; the socket is closed at once).
    static bool isFreeOnHost(uint16_t port);

private:
    bool inRange(uint16_t port) const noexcept { return port >= range_.first && port <= range_.last; }
    void take(std::string_view vmName, uint16_t port);

    config::PortRange range_;
    uint16_t cursor_;  // where the next search starts: just after the last port handed out
    std::unordered_map<std::string, uint16_t> byVm_;
    std::unordered_map<uint16_t, std::string> byPort_;
    size_t takenInRange_ = 0;  // entries of byPort_ inside range_
};

}  // namespace vmr::net
