#pragma once

// The cloud-hypervisor driver (docs/chv.md): the VMM runs in its own session (it outlives
// vmrd) with only `--api-socket` and `--event-monitor`; the VM is created and booted over the
// REST API. State comes from the pidfd, the event-monitor stream and `vm.info`. Every wait has
// a deadline.

#include "chv/client.h"
#include "chv/events.h"
#include "chv/vm_config.h"
#include "reactor/reactor.h"
#include "vm/driver.h"
#include "vm/qemu_argv.h"

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace vmr::vm {

// Where the KVM check looks; tests point it at a temp dir.
struct KvmProbePaths {
    std::string devKvm = "/dev/kvm";
    std::string sysModule = "/sys/module";  // kvm_intel or kvm_amd must be loaded
};

// cloud-hypervisor has no TCG: KVM must open read-write, answer KVM_GET_API_VERSION with 12,
// and come from kvm_intel or kvm_amd (a /dev/kvm of another module, such as kvm_pvm, cannot
// boot ordinary guests). Unavailable with a hint otherwise.
Result<void> checkKvm(const KvmProbePaths& paths = {});

struct ChvDriverConfig {
    // A path, or a name looked up in PATH (vmrd.toml `chv.binary`).
    std::string binary = "cloud-hypervisor";
    VmSpec spec;            // network User is refused (cloud-hypervisor has no user-mode stack)
    RuntimePaths paths;     // serialSocket, consoleLog; qemuLog is the VMM's stderr log
    std::string apiSocket;  // <runtime>/vms/<id>.api
    std::string baseImage;  // prepare() makes spec.overlay on it when the overlay is missing
    std::string tap;        // the host tap device for NetMode::Tap
    // Tests run fake-chv without KVM: false skips the check. Nothing else depends on it.
    bool requireKvm = true;
    KvmProbePaths kvm;
    bool eventMonitor = true;  // pass --event-monitor fd=3 and follow the stream
    reactor::Duration startTimeout = std::chrono::seconds(30);    // until vmm.ping answers
    reactor::Duration requestTimeout = std::chrono::seconds(10);  // each API request
    reactor::Duration termGrace = std::chrono::seconds(5);        // after vmm.shutdown, and after SIGTERM
    reactor::Duration killWait = std::chrono::seconds(10);        // after SIGKILL
};

// chvRuntimePaths(layout, name, id): the serial socket, console log and VMM log
// (<vmdir>/cloud-hypervisor.log) of a VM; qmpSocket stays empty.
RuntimePaths chvRuntimePaths(const store::Layout& layout, const std::string& name, const std::string& id);

// The VmConfig the driver sends for a config (pure; for tests and the log).
Result<chv::VmConfigSpec> vmConfigSpec(const ChvDriverConfig& cfg);

class ChvDriver final : public Driver {
public:
    // `initial`: the record's state (Preparing for a new VM).
    ChvDriver(reactor::Reactor& r, ChvDriverConfig cfg, VmState initial = VmState::Preparing);
    ChvDriver(const ChvDriver&) = delete;
    ChvDriver& operator=(const ChvDriver&) = delete;
    // Leaves cloud-hypervisor running (VMs outlive vmrd).
    ~ChvDriver() override;

    // What start() needs of the host and the spec, checked before anything is made on disk:
    // the binary (absolute, or in PATH), KVM (unless requireKvm is false), the firmware or
    // kernel files, a network mode cloud-hypervisor has. prepare() and start() run it first.
    Result<void> preflight() const;

    reactor::Task<Result<void>> prepare() override;
    reactor::Task<Result<void>> start() override;
    // vm.power-button, wait up to opts.timeout for the VMM to exit, then vm.shutdown and
    // vmm.shutdown, then SIGTERM and SIGKILL. A paused guest cannot react to the button, so
    // it goes straight to vm.shutdown.
    reactor::Task<Result<void>> stop(StopOptions opts) override;
    reactor::Task<Result<void>> suspend() override;
    reactor::Task<Result<void>> resume() override;
    reactor::Task<Result<void>> destroy() override;
    // Pid and start time as for QEMU, then vm.info. There is no event stream after adoption
    // (its socket died with the old vmrd): the pidfd and vm.info carry the state.
    reactor::Task<Result<void>> adopt(const store::VmRecord& record) override;
    reactor::Task<Result<VmState>> refreshState() override;

    VmState state() const noexcept override { return state_; }
    const std::string& stateReason() const noexcept override { return reason_; }
    void onStateChange(StateCallback cb) override { onState_ = std::move(cb); }

    std::optional<pid_t> pid() const noexcept override { return pid_; }
    std::optional<uint64_t> pidStartTime() const noexcept override { return startTime_; }
    const ChvDriverConfig& config() const noexcept { return cfg_; }
    // The cloud-hypervisor version vmm.ping reported at start or adoption.
    const std::string& vmmVersion() const noexcept { return version_; }

    static constexpr const char* kVanishedReason = "exited while vmrd was down";

private:
    bool setState(VmState to, std::string reason, bool force = false);
    bool processAlive() const noexcept { return child_ && !child_->exited(); }
    void watch(std::unique_ptr<reactor::Child> child, uint64_t startTime);
    void onProcessExit(const reactor::ExitStatus& st);
    void onEvent(const chv::Event& ev);
    void followEvents(UniqueFd fd);
    void removeSockets() const;
    Result<void> ensureDirs() const;
    std::string logTail() const;
    // vm.info → state; force: adoption takes the VMM's word whatever the table says.
    reactor::Task<Result<void>> readInfo(bool force);
    reactor::Task<Result<void>> waitForApi();
    reactor::Task<void> killNow();
    std::string vmName() const { return cfg_.spec.name; }

    reactor::Reactor& reactor_;
    ChvDriverConfig cfg_;
    chv::Client api_;
    VmState state_;
    std::string reason_;
    StateCallback onState_;
    // Owned: the VMM process (watched through its pidfd) and our end of its event monitor.
    std::unique_ptr<reactor::Child> child_;
    std::unique_ptr<reactor::Stream> events_;
    chv::EventStream eventParser_;
    std::optional<pid_t> pid_;
    std::optional<uint64_t> startTime_;
    std::string version_;
    bool stopRequested_ = false;
    bool guestShutdown_ = false;  // a vm/shutdown event came without vmrd asking
    bool panicked_ = false;       // guest/panic
};

}  // namespace vmr::vm
