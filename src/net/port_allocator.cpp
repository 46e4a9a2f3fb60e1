#include "net/port_allocator.h"

#include "base/fd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cassert>

namespace vmr::net {

PortAllocator::PortAllocator(config::PortRange range) : range_(range), cursor_(range.first)
{
    assert(range_.first > 0 && range_.first <= range_.last);
}

bool PortAllocator::isFreeOnHost(uint16_t port)
{
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
}

void PortAllocator::take(std::string_view vmName, uint16_t port)
{
    std::string name(vmName);
    byVm_[name] = port;
    byPort_[port] = std::move(name);
    if (inRange(port)) ++takenInRange_;
}

Result<uint16_t> PortAllocator::allocate(std::string_view vmName, std::optional<uint16_t> previous)
{
    if (auto held = portOf(vmName)) return *held;
    if (previous && inRange(*previous) && !byPort_.contains(*previous) && isFreeOnHost(*previous)) {
        take(vmName, *previous);
        return *previous;
    }
    const size_t span = static_cast<size_t>(range_.last) - range_.first + 1;
    // Every port of the range is checked at most once; taken ones cost a hash lookup only.
    if (takenInRange_ < span) {
        uint16_t port = cursor_;
        for (size_t i = 0; i < span; ++i) {
            uint16_t candidate = port;
            port = candidate == range_.last ? range_.first : static_cast<uint16_t>(candidate + 1);
            if (byPort_.contains(candidate) || !isFreeOnHost(candidate)) continue;
            take(vmName, candidate);
            cursor_ = port;
            return candidate;
        }
    }
    return Error(ErrorKind::Busy,
                 "No free SSH port in " + std::to_string(range_.first) + "-" + std::to_string(range_.last) +
                     " (" + std::to_string(takenInRange_) + " held by VMs, the others in use on the host)",
                 "Widen network.ssh_port_range in vmrd.toml, or delete VMs you no longer need");
}

Result<void> PortAllocator::reserve(std::string_view vmName, uint16_t port)
{
    if (auto it = byPort_.find(port); it != byPort_.end()) {
        if (it->second == vmName) return success();
        return Error(ErrorKind::Busy,
                     "SSH port " + std::to_string(port) + " of VM " + std::string(vmName) +
                         " is already held by VM " + it->second,
                     "Start VM " + std::string(vmName) + " again to give it a new port");
    }
    release(vmName);
    take(vmName, port);
    return success();
}

void PortAllocator::release(std::string_view vmName)
{
    auto it = byVm_.find(std::string(vmName));
    if (it == byVm_.end()) return;
    if (inRange(it->second)) --takenInRange_;
    byPort_.erase(it->second);
    byVm_.erase(it);
}

std::optional<uint16_t> PortAllocator::portOf(std::string_view vmName) const
{
    auto it = byVm_.find(std::string(vmName));
    if (it == byVm_.end()) return std::nullopt;
    return it->second;
}

std::string PortAllocator::ownerOf(uint16_t port) const
{
    auto it = byPort_.find(port);
    return it == byPort_.end() ? std::string() : it->second;
}

}  // namespace vmr::net
