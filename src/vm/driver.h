#pragma once

// The hypervisor driver of one VM (docs/vm.md). This base holds everything that does not depend
// on the hypervisor: the state machine, the process (spawned in its own session, watched through
// its pidfd, identified by pid and start time), the folders, the start deadline, the stop
// escalation (power button, the backend's own shutdown, SIGTERM, SIGKILL), re-adoption and the
// log tail. A backend (QemuDriver, ChvDriver) supplies its control channel and how its view of a
// VM maps onto the states. One driver per VM; it must outlive its tasks.

#include "base/fd.h"
#include "base/result.h"
#include "model/runtime.h"
#include "model/spec.h"
#include "reactor/reactor.h"
#include "vm/launch.h"
#include "vm/state.h"

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vmr::vm {

// Every hypervisor vmrd spawns has VMR_VM=<its control socket> in its environment: a vmrd that
// died between spawning one and recording its pid finds it by that (Manager::killOrphans).
constexpr std::string_view kVmEnvMarker = "VMR_VM=";

struct StopOptions {
    bool force = false;  // SIGKILL at once instead of asking the guest
    // How long the guest has to power off after the ACPI power button before escalating.
    reactor::Duration timeout = std::chrono::seconds(30);
};

// Where the KVM check looks; tests point it at a temp dir.
struct KvmProbePaths {
    std::string devKvm = "/dev/kvm";
    std::string sysModule = "/sys/module";  // kvm_intel or kvm_amd must be loaded
};

struct DriverConfig {
    std::string binary;  // a path, or a name looked up in PATH
    std::string id;      // the VM's id
    model::VmSpec spec;
    Launch launch;
    RuntimePaths paths;
    reactor::Duration startTimeout = std::chrono::seconds(30);    // until the VMM answers
    reactor::Duration requestTimeout = std::chrono::seconds(10);  // each control request
    reactor::Duration termGrace = std::chrono::seconds(5);        // after a shutdown request, and SIGTERM
    reactor::Duration killWait = std::chrono::seconds(10);        // after SIGKILL (the kernel's part)
    // cloud-hypervisor: it needs KVM (false only for its stand-in, fake-chv), and follows its event
    // monitor on fd 3.
    bool requireKvm = true;
    KvmProbePaths kvm;
    bool eventMonitor = true;
};

class Driver {
public:
    // (old, new, reason): for the daemon's vm.state events and for saving the record.
    using StateCallback = std::function<void(VmState from, VmState to, const std::string& reason)>;

    Driver(const Driver&) = delete;
    Driver& operator=(const Driver&) = delete;
    // Leaves the hypervisor running (VMs outlive vmrd).
    virtual ~Driver();

    // What start() needs of the host and the spec, checked before anything is made: the program,
    // and what the backend requires (KVM, boot files...).
    virtual Result<void> preflight() const = 0;
    // Launch the hypervisor and wait until the VM runs: Starting → Running.
    reactor::Task<Result<void>> start();
    reactor::Task<Result<void>> stop(StopOptions opts);
    reactor::Task<Result<void>> suspend();
    reactor::Task<Result<void>> resume();
    // Stop (forced) and remove the runtime files: → Destroyed.
    reactor::Task<Result<void>> destroy();
    // Attach to a hypervisor a previous vmrd started (the runtime's pid and start time). A pid
    // that is gone, a zombie, or another process now (a reused pid) is never touched: the VM
    // becomes Stopped, "exited while vmrd was down".
    reactor::Task<Result<void>> adopt(const model::VmRuntime& runtime);
    // Ask the hypervisor for its state now; updates state() when it differs.
    reactor::Task<Result<VmState>> refreshState();

    VmState state() const noexcept { return state_; }
    const std::string& stateReason() const noexcept { return reason_; }
    void onStateChange(StateCallback cb) { onState_ = std::move(cb); }
    // The live hypervisor process: empty when none.
    std::optional<pid_t> pid() const noexcept { return pid_; }
    std::optional<uint64_t> pidStartTime() const noexcept { return startTime_; }
    // The VNC server's TCP port on 127.0.0.1, when the VM has one and it is known.
    virtual std::optional<uint16_t> vncPort() const noexcept { return std::nullopt; }
    const DriverConfig& config() const noexcept { return cfg_; }
    // "QEMU", "cloud-hypervisor": for messages.
    virtual std::string_view vmmName() const noexcept = 0;

    static constexpr const char* kVanishedReason = "exited while vmrd was down";

protected:
    Driver(reactor::Reactor& r, DriverConfig cfg, VmState initial);

    // What a backend adds to the spawn: arguments and descriptors (fd 2, the log, is the base's).
    struct Spawn {
        std::vector<std::string> argv;
        std::vector<std::pair<UniqueFd, int>> fds;  // {ours, its number in the child}
    };
    virtual Result<Spawn> spawnPlan() = 0;
    // Right after the spawn, before connect(): e.g. follow an event stream.
    virtual void spawned() {}
    // Bring the control channel up and the VM to running (or paused), by `deadline`. An error
    // leaves the process to the base, which kills it.
    virtual reactor::Task<Result<void>> connect(reactor::Clock::time_point deadline) = 0;
    // After adoption: reach the control channel again and read the VM's state (forced). The
    // error's message completes "QEMU (pid N) runs but ...".
    virtual reactor::Task<Result<void>> reconnect() = 0;
    virtual void closeControl() = 0;
    // The stop escalation: ask the guest (ACPI power button); false when it cannot be asked. Then,
    // if the guest did not go, the backend's own shutdown (false: none, go on to SIGTERM).
    virtual reactor::Task<bool> powerButton() = 0;
    virtual reactor::Task<bool> shutdownRequest() { co_return false; }
    virtual reactor::Task<Result<void>> pauseVm() = 0;
    virtual reactor::Task<Result<void>> resumeVm() = 0;
    virtual reactor::Task<Result<void>> readState(bool force) = 0;
    // Where the VM goes when the process ends (stopRequested() tells whether vmrd asked).
    virtual StateChange exitState(const reactor::ExitStatus& st) = 0;
    // A new process: forget what the last one said.
    virtual void resetRun() {}

    // force: adoption re-synchronises with reality, whatever the table says.
    bool setState(VmState to, std::string reason, bool force = false);
    bool processAlive() const noexcept { return child_ && !child_->exited(); }
    bool stopRequested() const noexcept { return stopRequested_; }
    std::string vmName() const { return cfg_.spec.name; }
    // The last line of the hypervisor's log, for messages.
    std::string logTail() const;
    // "QEMU exited at start (killed by SIGKILL): <its last log line>", Unavailable.
    Error exitedAtStart() const;
    reactor::Task<void> killNow();

    reactor::Reactor& reactor_;
    DriverConfig cfg_;

private:
    void watch(std::unique_ptr<reactor::Child> child, uint64_t startTime);
    reactor::Task<Result<void>> pauseOrResume(Operation op);
    void onProcessExit(const reactor::ExitStatus& st);
    void removeSockets() const;
    Result<void> ensureDirs() const;
    Result<void> spawn();

    VmState state_;
    std::string reason_;
    StateCallback onState_;
    // Owned: the hypervisor process, watched through its pidfd.
    std::unique_ptr<reactor::Child> child_;
    std::optional<pid_t> pid_;
    std::optional<uint64_t> startTime_;
    bool stopRequested_ = false;
};

// A driver for the spec's backend. NotFound/Unsupported when this vmrd has no such backend
// (built with -Dchv=disabled).
Result<std::unique_ptr<Driver>> makeDriver(reactor::Reactor& r, DriverConfig cfg, VmState initial);

}  // namespace vmr::vm
