#include "net/mode.h"

#include <cassert>

namespace vmr::net {

Result<void> checkSupported(NetMode mode)
{
    if (mode == NetMode::Tap)
        return Error(ErrorKind::Unsupported, "TAP networking is not supported yet",
                     "Use network \"user\" (NAT, SSH forwarded from a host port) or \"none\"");
    return success();
}

std::vector<std::string> qemuNetArgs(NetMode mode, const std::string& mac, std::optional<uint16_t> sshPort)
{
    switch (mode) {
        case NetMode::User: {
            std::string netdev = "user,id=net0";
            if (sshPort) netdev += ",hostfwd=tcp:127.0.0.1:" + std::to_string(*sshPort) + "-:22";
            return {"-netdev", netdev, "-device", "virtio-net-pci,netdev=net0,mac=" + mac};
        }
        case NetMode::None: return {"-nic", "none"};
        case NetMode::Tap: break;
    }
    assert(false && "qemuNetArgs: checkSupported() rejects Tap");
    return {};
}

}  // namespace vmr::net
