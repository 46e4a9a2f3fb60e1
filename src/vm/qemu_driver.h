#pragma once

// The QEMU driver (docs/vm.md): QEMU runs in its own session (it outlives vmrd), is watched
// through its pidfd, and is controlled over QMP. Every wait has a deadline.

#include "qmp/client.h"
#include "reactor/reactor.h"
#include "vm/driver.h"
#include "vm/qemu_argv.h"

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace vmr::vm {

struct QemuDriverConfig {
    std::string binary = "qemu-system-x86_64";
    VmSpec spec;
    RuntimePaths paths;
    std::string baseImage;  // prepare() makes spec.overlay on it when the overlay is missing
    // QMP answers a few ms after the spawn; on a loaded host much later.
    reactor::Duration startTimeout = std::chrono::seconds(30);
    reactor::Duration termGrace = std::chrono::seconds(5);  // after SIGTERM, before SIGKILL
    reactor::Duration killWait = std::chrono::seconds(10);  // after SIGKILL (the kernel's part)
};

class QemuDriver final : public Driver {
public:
    // `initial`: the record's state (Preparing for a new VM).
    QemuDriver(reactor::Reactor& r, QemuDriverConfig cfg, VmState initial = VmState::Preparing);
    QemuDriver(const QemuDriver&) = delete;
    QemuDriver& operator=(const QemuDriver&) = delete;
    // Leaves QEMU running (VMs outlive vmrd).
    ~QemuDriver() override;

    reactor::Task<Result<void>> prepare() override;
    reactor::Task<Result<void>> start() override;
    reactor::Task<Result<void>> stop(StopOptions opts) override;
    reactor::Task<Result<void>> suspend() override;
    reactor::Task<Result<void>> resume() override;
    reactor::Task<Result<void>> destroy() override;
    // A record whose pid is gone, or now belongs to a process with another start time (a
    // reused pid), is never touched: the VM becomes Stopped, "exited while vmrd was down".
    reactor::Task<Result<void>> adopt(const store::VmRecord& record) override;
    reactor::Task<Result<VmState>> refreshState() override;

    VmState state() const noexcept override { return state_; }
    const std::string& stateReason() const noexcept override { return reason_; }
    void onStateChange(StateCallback cb) override { onState_ = std::move(cb); }

    std::optional<pid_t> pid() const noexcept override { return pid_; }
    std::optional<uint64_t> pidStartTime() const noexcept override { return startTime_; }
    std::optional<uint16_t> vncPort() const noexcept override { return vncPort_; }
    const QemuDriverConfig& config() const noexcept { return cfg_; }

    static constexpr const char* kVanishedReason = "exited while vmrd was down";
    static constexpr const char* kQemuMissingHint =
        "Install QEMU (Debian: apt-get install qemu-system-x86), or set qemu.binary in vmrd.toml";

private:
    // force: adoption re-synchronises with reality, whatever the table says.
    bool setState(VmState to, std::string reason, bool force = false);
    bool processAlive() const noexcept { return child_ && !child_->exited(); }
    bool qmpUsable() const noexcept { return client_ && !client_->closed(); }
    qmp::Client::Handlers qmpHandlers();
    void onEvent(const qmp::Event& ev);
    void onProcessExit(const reactor::ExitStatus& st);
    void removeSockets() const;
    // The VM's folder and the runtime folder (a record may outlive a reboot's tmpfs).
    Result<void> ensureDirs() const;
    std::string qemuLogTail() const;
    // Watch an already spawned/adopted process.
    void watch(std::unique_ptr<reactor::Child> child, uint64_t startTime);
    reactor::Task<Result<void>> readStatus(bool force = false);
    // query-vnc: the port QEMU picked (-vnc ...,to=N takes the first free display).
    reactor::Task<void> readVncPort();
    std::string vmName() const { return cfg_.spec.name; }

    reactor::Reactor& reactor_;
    QemuDriverConfig cfg_;
    VmState state_;
    std::string reason_;
    StateCallback onState_;
    // Owned: the QEMU process (watched through its pidfd) and its QMP connection.
    std::unique_ptr<reactor::Child> child_;
    std::unique_ptr<qmp::Client> client_;
    std::optional<pid_t> pid_;
    std::optional<uint64_t> startTime_;
    std::optional<uint16_t> vncPort_;
    // What the last SHUTDOWN event said the exit will mean; whether vmrd asked for the stop.
    std::optional<StateChange> announced_;
    bool stopRequested_ = false;
};

}  // namespace vmr::vm
