#include "console/registry.h"

namespace vmr::console {

Registry::Registry(reactor::Reactor& r, HubOptions defaults) : reactor_(r), defaults_(std::move(defaults)) {}

Result<Hub*> Registry::vmRunning(const std::string& vm, std::string serialPath, std::string logPath)
{
    auto it = hubs_.find(vm);
    if (it == hubs_.end()) {
        HubOptions o = defaults_;
        o.logPath = std::move(logPath);
        auto hub = Hub::create(reactor_, vm, std::move(o));
        if (!hub) return std::move(hub).error();
        it = hubs_.emplace(vm, std::move(*hub)).first;
    }
    it->second->vmRunning(std::move(serialPath));
    return it->second.get();
}

void Registry::vmStopped(const std::string& vm)
{
    if (auto* h = find(vm)) h->vmStopped();
}

void Registry::remove(const std::string& vm)
{
    hubs_.erase(vm);
}

Hub* Registry::find(const std::string& vm) const
{
    auto it = hubs_.find(vm);
    return it == hubs_.end() ? nullptr : it->second.get();
}

}  // namespace vmr::console
