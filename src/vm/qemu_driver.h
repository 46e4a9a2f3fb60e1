#pragma once

// The QEMU backend (docs/vm.md): QMP is the control channel, handed to QEMU as a listening
// socket (fd 3) so vmrd connects at once; QMP events and query-status carry the state.

#include "qmp/client.h"
#include "vm/driver.h"

#include <memory>
#include <optional>

namespace vmr::vm {

class QemuDriver final : public Driver {
public:
    QemuDriver(reactor::Reactor& r, DriverConfig cfg, VmState initial = VmState::Prepared);
    ~QemuDriver() override;

    Result<void> preflight() const override;
    std::optional<uint16_t> vncPort() const noexcept override { return vncPort_; }
    std::string_view vmmName() const noexcept override { return "QEMU"; }

    static constexpr const char* kQemuMissingHint =
        "Install QEMU (Debian: apt-get install qemu-system-x86), or set qemu.binary in vmrd.toml";

private:
    Result<Spawn> spawnPlan() override;
    reactor::Task<Result<void>> connect(reactor::Clock::time_point deadline) override;
    reactor::Task<Result<void>> reconnect() override;
    void closeControl() override { client_.reset(); }
    reactor::Task<bool> powerButton() override;
    reactor::Task<Result<void>> pauseVm() override;
    reactor::Task<Result<void>> resumeVm() override;
    reactor::Task<Result<void>> readState(bool force) override;
    StateChange exitState(const reactor::ExitStatus& st) override;
    void resetRun() override { announced_.reset(); }

    bool qmpUsable() const noexcept { return client_ && !client_->closed(); }
    qmp::Client::Handlers qmpHandlers();
    void onEvent(const qmp::Event& ev);
    reactor::Task<Result<std::string>> command(std::string_view name);
    // query-vnc: the port QEMU picked (-vnc ...,to=N takes the first free display).
    reactor::Task<void> readVncPort();

    // Owned: the QMP connection.
    std::unique_ptr<qmp::Client> client_;
    std::optional<uint16_t> vncPort_;
    // What the last SHUTDOWN event said the exit will mean.
    std::optional<StateChange> announced_;
};

}  // namespace vmr::vm
