#pragma once

// The hypervisor driver of one VM (DESIGN.md, src/vm/): every step that acts on a hypervisor
// process is a Task on the reactor, and the driver owns the VM's state (state.h), reporting
// each change through the callback. One driver instance per VM; it must outlive its tasks.

#include "base/result.h"
#include "reactor/reactor.h"
#include "store/record.h"
#include "vm/state.h"

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace vmr::vm {

struct StopOptions {
    bool force = false;  // SIGKILL at once instead of asking the guest
    // How long the guest has to power off after the ACPI power button before SIGTERM.
    reactor::Duration timeout = std::chrono::seconds(30);
};

class Driver {
public:
    // (old, new, reason): for the daemon's vm.state events and for saving the record.
    using StateCallback = std::function<void(VmState from, VmState to, const std::string& reason)>;

    virtual ~Driver() = default;

    // Disk and folders for a first start: Preparing → Prepared.
    virtual reactor::Task<Result<void>> prepare() = 0;
    // Launch the hypervisor and wait until it answers: Starting → Running.
    virtual reactor::Task<Result<void>> start() = 0;
    virtual reactor::Task<Result<void>> stop(StopOptions opts) = 0;
    virtual reactor::Task<Result<void>> suspend() = 0;
    virtual reactor::Task<Result<void>> resume() = 0;
    // Stop (forced) and remove the runtime files: → Destroyed.
    virtual reactor::Task<Result<void>> destroy() = 0;
    // Attach to a hypervisor a previous vmrd started (the record's pid and start time).
    virtual reactor::Task<Result<void>> adopt(const store::VmRecord& record) = 0;
    // Ask the hypervisor for its state now; updates state() when it differs.
    virtual reactor::Task<Result<VmState>> refreshState() = 0;

    virtual VmState state() const noexcept = 0;
    virtual const std::string& stateReason() const noexcept = 0;
    virtual void onStateChange(StateCallback cb) = 0;

    // The live hypervisor process, for the record: empty when none.
    virtual std::optional<pid_t> pid() const noexcept = 0;
    virtual std::optional<uint64_t> pidStartTime() const noexcept = 0;
    // The VNC server's TCP port on 127.0.0.1, when the VM has one and it is known.
    virtual std::optional<uint16_t> vncPort() const noexcept { return std::nullopt; }
};

}  // namespace vmr::vm
