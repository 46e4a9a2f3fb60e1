#pragma once

// The hubs of every VM, owned in one place; the owner API vm::Manager calls as VMs start, stop,
// are re-adopted and destroyed, and vm.console uses to attach viewers.

#include "console/hub.h"

#include <map>
#include <memory>
#include <string>

namespace vmr::console {

class Registry {
public:
    // `defaults` apply to hubs made from now on (logPath is given per VM).
    Registry(reactor::Reactor& r, HubOptions defaults);
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;

    // The VM runs (started, or re-adopted after a vmrd restart): make its hub if there is none
    // and keep it connected to `serialPath`. `logPath` is the log the hub writes itself, empty
    // when the hypervisor writes its own (QEMU's chardev logfile=).
    Result<Hub*> vmRunning(const std::string& vm, std::string serialPath, std::string logPath = {});
    // The VM stopped or failed: its hub stops reconnecting; viewers get the rest, then EOF.
    // The scrollback stays until remove().
    void vmStopped(const std::string& vm);
    // The VM is destroyed: its hub and viewers go away.
    void remove(const std::string& vm);

    Hub* find(const std::string& vm) const;
    size_t size() const noexcept { return hubs_.size(); }
    void setDefaults(HubOptions defaults) { defaults_ = std::move(defaults); }
    const HubOptions& defaults() const noexcept { return defaults_; }

private:
    reactor::Reactor& reactor_;
    HubOptions defaults_;
    std::map<std::string, std::unique_ptr<Hub>> hubs_;  // owned, by VM name
};

}  // namespace vmr::console
