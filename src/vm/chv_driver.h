#pragma once

// The cloud-hypervisor backend (docs/chv.md): the VMM runs with only `--api-socket` and
// `--event-monitor`; the VM is created and booted over the REST API. State comes from the
// event-monitor stream and `vm.info`. There is no event stream after adoption (its socket died
// with the old vmrd): the pidfd and vm.info carry the state then.

#include "chv/client.h"
#include "chv/events.h"
#include "chv/vm_config.h"
#include "vm/driver.h"

#include <memory>
#include <string>

namespace vmr::vm {

// cloud-hypervisor has no TCG: KVM must open read-write, answer KVM_GET_API_VERSION with 12,
// and come from kvm_intel or kvm_amd (a /dev/kvm of another module, such as kvm_pvm, cannot
// boot ordinary guests). Unavailable with a hint otherwise.
Result<void> checkKvm(const KvmProbePaths& paths = {});

// What the driver attaches to the VM's config (pure; for tests and the log).
chv::Attachments chvAttachments(const DriverConfig& cfg);

class ChvDriver final : public Driver {
public:
    ChvDriver(reactor::Reactor& r, DriverConfig cfg, VmState initial = VmState::Prepared);
    ~ChvDriver() override;

    // The binary (absolute, or in PATH), the API socket path, the VmConfig, the firmware or
    // kernel files, KVM (unless requireKvm is false).
    Result<void> preflight() const override;
    std::string_view vmmName() const noexcept override { return "cloud-hypervisor"; }
    // The cloud-hypervisor version vmm.ping reported at start or adoption.
    const std::string& vmmVersion() const noexcept { return version_; }

private:
    Result<Spawn> spawnPlan() override;
    void spawned() override;
    reactor::Task<Result<void>> connect(reactor::Clock::time_point deadline) override;
    reactor::Task<Result<void>> reconnect() override;
    void closeControl() override { events_.reset(); }
    // vm.power-button.
    reactor::Task<bool> powerButton() override;
    // vm.shutdown, then vmm.shutdown.
    reactor::Task<bool> shutdownRequest() override;
    reactor::Task<Result<void>> pauseVm() override;
    reactor::Task<Result<void>> resumeVm() override;
    reactor::Task<Result<void>> readState(bool force) override;
    StateChange exitState(const reactor::ExitStatus& st) override;
    void resetRun() override;

    void onEvent(const chv::Event& ev);
    void followEvents(UniqueFd fd);
    reactor::Task<Result<void>> waitForApi(reactor::Clock::time_point deadline);
    reactor::Task<Result<void>> put(std::string_view what, std::string body = {});

    chv::Client api_;
    // Owned: our end of the event monitor.
    std::unique_ptr<reactor::Stream> events_;
    UniqueFd eventsPending_;  // between spawnPlan() and spawned()
    chv::EventStream eventParser_;
    std::string version_;
    bool panicked_ = false;  // guest/panic
};

}  // namespace vmr::vm
