#include "vm/driver.h"

#include "base/crash_point.h"
#include "base/files.h"
#include "base/proc.h"
#include "vm/logger.h"
#include "vm/process.h"
#include "vm/qemu_driver.h"

#include "config.h"
#if VMR_HAVE_CHV
#include "vm/chv_driver.h"
#endif

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

namespace vmr::vm {

using reactor::Task;

namespace {

std::string seconds(reactor::Duration d)
{
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

}  // namespace

Driver::Driver(reactor::Reactor& r, DriverConfig cfg, VmState initial)
    : reactor_(r), cfg_(std::move(cfg)), state_(initial)
{
}

Driver::~Driver() = default;

bool Driver::setState(VmState to, std::string reason, bool force)
{
    if (to == state_ && reason == reason_) return true;
    if (!force && !canTransition(state_, to)) {
        lg().debug("VM {}: ignoring {} -> {} ({})", vmName(), stateName(state_), stateName(to), reason);
        return false;
    }
    VmState from = state_;
    state_ = to;
    reason_ = std::move(reason);
    lg().debug("VM {}: {} -> {} ({})", vmName(), stateName(from), stateName(to), reason_);
    if (onState_) onState_(from, to, reason_);
    return true;
}

std::string Driver::logTail() const
{
    UniqueFd fd(::open(cfg_.paths.vmmLog.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return {};
    off_t size = ::lseek(fd.get(), 0, SEEK_END);
    off_t from = size > 4096 ? size - 4096 : 0;
    std::string text(static_cast<size_t>(size > from ? size - from : 0), '\0');
    ssize_t n = ::pread(fd.get(), text.data(), text.size(), from);
    text.resize(n > 0 ? static_cast<size_t>(n) : 0);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    size_t cut = text.rfind('\n');
    return cut == std::string::npos ? text : text.substr(cut + 1);
}

Error Driver::exitedAtStart() const
{
    std::string said = logTail();
    std::string msg = std::string(vmmName()) + " exited at start (" + reason_ + ")";
    if (!said.empty()) msg += ": " + said;
    return Error(ErrorKind::Unavailable, msg, "See " + cfg_.paths.vmmLog);
}

void Driver::removeSockets() const
{
    ::unlink(cfg_.paths.control.c_str());
    ::unlink(cfg_.paths.serialSocket.c_str());
}

Result<void> Driver::ensureDirs() const
{
    for (const std::string& file : {cfg_.paths.consoleLog, cfg_.paths.control, cfg_.paths.serialSocket}) {
        std::string dir = std::filesystem::path(file).parent_path().string();
        if (!dir.empty()) VMR_TRY(makeDirs(dir, 0700));
    }
    return success();
}

void Driver::watch(std::unique_ptr<reactor::Child> child, uint64_t startTime)
{
    child_ = std::move(child);
    pid_ = child_->pid();
    startTime_ = startTime;
    // The Child is ours: its callback never runs after it is destroyed.
    child_->onExit([this](reactor::ExitStatus st) { onProcessExit(st); });
}

void Driver::onProcessExit(const reactor::ExitStatus& st)
{
    lg().debug("VM {}: {} (pid {}) {}", vmName(), vmmName(), pid_.value_or(-1), st.describe());
    StateChange final = exitState(st);
    pid_.reset();
    startTime_.reset();
    // A hypervisor removes its sockets only when it exits cleanly, if at all.
    removeSockets();
    // From Starting/Running/Paused/Stopping/Failed every end is legal; force keeps a Failed
    // state's move to Stopped possible after a requested stop too.
    setState(final.state, final.reason, true);
}

Task<void> Driver::killNow()
{
    if (!processAlive()) co_return;
    reactor::Child* child = child_.get();
    (void)child->signal(SIGKILL);
    (void)co_await child->wait(cfg_.killWait);
}

Result<void> Driver::spawn()
{
    VMR_TRY(ensureDirs());
    UniqueFd log(::open(cfg_.paths.vmmLog.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!log) return Error::fromErrno(errno, "Cannot open " + cfg_.paths.vmmLog);
    VMR_TRY_ASSIGN(Spawn plan, spawnPlan());
    reactor::SpawnOptions opts;
    opts.argv = std::move(plan.argv);
    opts.newSession = true;  // the hypervisor outlives vmrd
    opts.runAs = cfg_.launch.runAs;
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e)
        if (std::string_view(*e).rfind(kVmEnvMarker, 0) != 0) env.emplace_back(*e);
    env.push_back(std::string(kVmEnvMarker) + cfg_.paths.control);
    opts.env = std::move(env);
    opts.fds.emplace_back(log.get(), 2);
    for (const auto& [fd, number] : plan.fds) opts.fds.emplace_back(fd.get(), number);
    log::command("vm", opts.argv);
    auto child = reactor::Child::spawn(reactor_, std::move(opts));
    // The hypervisor holds its own descriptors now (or failed to start): vmrd's go.
    cfg_.launch.releaseFiles();
    if (!child) {
        if (child.error().kind() == ErrorKind::NotFound)
            return Error(ErrorKind::ToolMissing,
                         std::string(vmmName()) + " is not installed: " + child.error().message(),
                         "Install it, or set its binary in vmrd.toml");
        return Error(ErrorKind::Unavailable, "Cannot start " + std::string(vmmName()))
            .causedBy(std::move(child).error());
    }
    pid_t pid = (*child)->pid();
    auto started = processStartTime(pid);
    watch(std::move(*child), started.valueOr(0));
    lg().info("VM {}: {} started (pid {})", vmName(), vmmName(), pid);
    return success();
}

Task<Result<void>> Driver::start()
{
    VMR_CO_TRY(checkOperation(vmName(), state_, Operation::Start));
    VMR_CO_TRY(preflight());
    setState(VmState::Starting, "starting");
    // A process left from a failed start would hold the sockets.
    co_await killNow();
    closeControl();
    child_.reset();
    stopRequested_ = false;
    resetRun();
    removeSockets();  // leftovers of a killed hypervisor would make connect() reach nobody

    auto deadline = reactor_.now() + cfg_.startTimeout;
    Result<void> up = spawn();
    if (up) {
        VMR_CRASH_POINT("start.after_spawn");
        spawned();
        up = co_await connect(deadline);
    }
    if (!up) {
        co_await killNow();
        setState(VmState::Failed, up.error().message(), true);
        co_return up;
    }
    co_return success();
}

Task<Result<VmState>> Driver::refreshState()
{
    if (!processAlive()) co_return state_;
    VMR_CO_TRY(co_await readState(false));
    co_return state_;
}

Task<Result<void>> Driver::stop(StopOptions opts)
{
    VMR_CO_TRY(checkOperation(vmName(), state_, Operation::Stop));
    if (!processAlive()) {
        setState(VmState::Stopped, "stopped (no " + std::string(vmmName()) + " process)", true);
        co_return success();
    }
    stopRequested_ = true;
    // The Child stays in place for the whole sequence: only its exit and start() reset child_,
    // and an exit ends the sequence.
    reactor::Child* child = child_.get();
    const std::string who = std::string(vmmName()) + " (pid " + std::to_string(child->pid()) + ")";
    if (opts.force) {
        setState(VmState::Stopping, "stopping (forced)");
        lg().info("VM {}: force stop: SIGKILL to {}", vmName(), who);
    } else {
        // A paused guest cannot react to the power button: straight to the backend's shutdown.
        bool paused = state_ == VmState::Paused;
        setState(VmState::Stopping, "stopping");
        if (!paused && co_await powerButton()) {
            lg().info("VM {}: ACPI power button pressed; waiting up to {} for the guest", vmName(),
                      seconds(opts.timeout));
            if (!processAlive() || co_await child->wait(opts.timeout)) co_return success();
            lg().warn("VM {}: guest did not power off within {}", vmName(), seconds(opts.timeout));
        }
        if (!processAlive()) co_return success();
        if (co_await shutdownRequest()) {
            if (!processAlive() || co_await child->wait(cfg_.termGrace)) co_return success();
            lg().warn("VM {}: {} did not exit within {} of its shutdown", vmName(), who,
                      seconds(cfg_.termGrace));
        }
        if (!processAlive()) co_return success();
        lg().warn("VM {}: sending SIGTERM to {}", vmName(), who);
        (void)child->signal(SIGTERM);
        if (co_await child->wait(cfg_.termGrace)) co_return success();
        lg().warn("VM {}: {} did not exit within {} of SIGTERM; sending SIGKILL", vmName(), who,
                  seconds(cfg_.termGrace));
    }
    if (!processAlive()) co_return success();
    (void)child->signal(SIGKILL);
    if (!co_await child->wait(cfg_.killWait)) co_return Error(ErrorKind::Timeout, who + " survived SIGKILL");
    co_return success();
}

Task<Result<void>> Driver::suspend()
{
    return pauseOrResume(Operation::Suspend);
}

Task<Result<void>> Driver::resume()
{
    return pauseOrResume(Operation::Resume);
}

Task<Result<void>> Driver::pauseOrResume(Operation op)
{
    VMR_CO_TRY(checkOperation(vmName(), state_, op));
    if (!processAlive())
        co_return Error(ErrorKind::Unavailable,
                        "VM \"" + vmName() + "\" has no " + std::string(vmmName()) + " process");
    bool pause = op == Operation::Suspend;
    // Not `co_await (pause ? a() : b())`: GCC 12 destroys the Task of a conditional twice.
    Result<void> done = success();
    if (pause)
        done = co_await pauseVm();
    else
        done = co_await resumeVm();
    VMR_CO_TRY(done);
    setState(pause ? VmState::Paused : VmState::Running, pause ? "paused" : "running");
    co_return success();
}

Task<Result<void>> Driver::destroy()
{
    VMR_CO_TRY(checkOperation(vmName(), state_, Operation::Destroy));
    if (processAlive()) VMR_CO_TRY(co_await stop(StopOptions{true, {}}));
    closeControl();
    removeSockets();
    if (!canTransition(state_, VmState::Destroyed)) setState(VmState::Stopped, "stopped", true);
    setState(VmState::Destroyed, "destroyed");
    co_return success();
}

Task<Result<void>> Driver::adopt(const model::VmRuntime& runtime)
{
    state_ = runtime.state;
    reason_ = runtime.stateReason;
    auto child = adoptRecordedProcess(reactor_, runtime);
    if (!child) {
        if (runtime.pid)
            lg().info("VM {}: {} (pid {}) is gone; not adopting", vmName(), vmmName(), *runtime.pid);
        if (runtime.pid || expectsProcess(state_)) setState(VmState::Stopped, kVanishedReason, true);
        co_return success();
    }
    watch(std::move(child), *runtime.pidStartTime);
    stopRequested_ = false;
    resetRun();
    auto up = co_await reconnect();
    std::string who = std::string(vmmName()) + " (pid " + std::to_string(*runtime.pid) + ")";
    if (!up) {
        setState(VmState::Failed, who + " runs but " + up.error().what(), true);
        co_return success();
    }
    lg().info("VM {}: re-adopted {}, {}", vmName(), who, stateName(state_));
    co_return success();
}

Result<std::unique_ptr<Driver>> makeDriver(reactor::Reactor& r, DriverConfig cfg, VmState initial)
{
    switch (cfg.spec.backend) {
        case model::Backend::Qemu: return std::unique_ptr<Driver>(new QemuDriver(r, std::move(cfg), initial));
        case model::Backend::Chv:
#if VMR_HAVE_CHV
            return std::unique_ptr<Driver>(new ChvDriver(r, std::move(cfg), initial));
#else
            break;
#endif
    }
    return Error(ErrorKind::Unsupported, "This vmrd was built without the cloud-hypervisor driver",
                 "Rebuild vmr with -Dchv=enabled, or use backend \"qemu\"");
}

}  // namespace vmr::vm
