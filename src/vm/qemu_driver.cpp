#include "vm/qemu_driver.h"

#include "base/fd.h"
#include "base/log.h"
#include "image/qemu_img.h"
#include "qmp/status.h"
#include "store/layout.h"
#include "store/proc.h"
#include "vm/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace vmr::vm {

using reactor::Task;
using namespace std::chrono_literals;

namespace {

spdlog::logger& lg()
{
    return log::get("vm");
}

std::string parentDir(const std::string& path)
{
    return std::filesystem::path(path).parent_path().string();
}

std::string seconds(reactor::Duration d)
{
    std::ostringstream s;
    s << static_cast<double>(d.count()) / 1000.0 << " s";
    return s.str();
}

}  // namespace

QemuDriver::QemuDriver(reactor::Reactor& r, QemuDriverConfig cfg, VmState initial)
    : reactor_(r), cfg_(std::move(cfg)), state_(initial)
{
}

QemuDriver::~QemuDriver() = default;

bool QemuDriver::setState(VmState to, std::string reason, bool force)
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

qmp::Client::Handlers QemuDriver::qmpHandlers()
{
    // The client is ours and runs no handler after it is destroyed: `this` outlives the calls.
    return {[this](const qmp::Event& ev) { onEvent(ev); },
            [this](const Error* err) {
                if (err != nullptr) lg().debug("VM {}: QMP connection failed: {}", vmName(), err->what());
            }};
}

void QemuDriver::onEvent(const qmp::Event& ev)
{
    EventEffect e = effectOfEvent(ev.name, ev.data);
    if (!e.reason.empty() || e.state) lg().debug("VM {}: QMP event {} {}", vmName(), ev.name, ev.data);
    if (e.onExit) announced_ = e.onExit;
    if (e.state) setState(*e.state, e.reason);
}

void QemuDriver::onProcessExit(const reactor::ExitStatus& st)
{
    StateChange final = stateForExit(announced_, stopRequested_, st.exited() && st.code == 0, st.describe());
    lg().debug("VM {}: QEMU (pid {}) {}", vmName(), pid_.value_or(-1), st.describe());
    pid_.reset();
    startTime_.reset();
    // QEMU removes its sockets only when it exits cleanly.
    removeSockets();
    // From Starting/Running/Paused/Stopping/Failed every end is legal; force keeps a Failed
    // state's move to Stopped possible after a requested stop too.
    setState(final.state, final.reason, true);
}

void QemuDriver::removeSockets() const
{
    ::unlink(cfg_.paths.qmpSocket.c_str());
    ::unlink(cfg_.paths.serialSocket.c_str());
}

std::string QemuDriver::qemuLogTail() const
{
    std::ifstream in(cfg_.paths.qemuLog);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    size_t cut = text.rfind('\n');
    return cut == std::string::npos ? text : text.substr(cut + 1);
}

void QemuDriver::watch(std::unique_ptr<reactor::Child> child, uint64_t startTime)
{
    child_ = std::move(child);
    pid_ = child_->pid();
    startTime_ = startTime;
    // The Child is ours: its callback never runs after it is destroyed.
    child_->onExit([this](reactor::ExitStatus st) { onProcessExit(st); });
}

Result<void> QemuDriver::ensureDirs() const
{
    for (const std::string& dir : {parentDir(cfg_.paths.consoleLog), parentDir(cfg_.paths.qmpSocket)})
        VMR_TRY(store::makeDirs(dir, 0700));
    return success();
}

Task<Result<void>> QemuDriver::prepare()
{
    if (state_ != VmState::Preparing) VMR_CO_TRY(checkTransition(state_, VmState::Preparing));
    setState(VmState::Preparing, "preparing");
    auto made = ensureDirs();
    if (!made) {
        setState(VmState::Failed, "prepare failed: " + made.error().what());
        co_return Unexpected(std::move(made).error());
    }
    if (!cfg_.baseImage.empty() && !cfg_.spec.overlay.empty() &&
        ::access(cfg_.spec.overlay.c_str(), F_OK) != 0) {
        auto overlay =
            co_await image::createOverlay(reactor_, cfg_.baseImage, cfg_.spec.overlay, std::nullopt);
        if (!overlay) {
            setState(VmState::Failed, "prepare failed: " + overlay.error().what());
            co_return Unexpected(std::move(overlay).error());
        }
    }
    setState(VmState::Prepared, "prepared");
    co_return success();
}

Task<Result<void>> QemuDriver::start()
{
    VMR_CO_TRY(checkOperation(vmName(), state_, Operation::Start));
    setState(VmState::Starting, "starting");
    client_.reset();
    child_.reset();
    announced_.reset();
    stopRequested_ = false;
    removeSockets();  // leftovers of a killed QEMU would make connect() reach nobody

    auto fail = [this](Error e) -> Result<void> {
        setState(VmState::Failed, e.message());
        return Unexpected(std::move(e));
    };

    if (auto dirs = ensureDirs(); !dirs) co_return fail(std::move(dirs).error());
    int logFd = ::open(cfg_.paths.qemuLog.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (logFd < 0) co_return fail(Error::fromErrno(errno, "Cannot open " + cfg_.paths.qemuLog));
    UniqueFd log(logFd);

    // The QMP socket is made here and handed to QEMU already listening: a connect() succeeds at
    // once and the greeting comes when QEMU is ready, with no polling for the socket to appear.
    auto qmpListen = reactor::listenUnix(cfg_.paths.qmpSocket, 0600, 4);
    if (!qmpListen) co_return fail(std::move(qmpListen).error());
    constexpr int kQmpChildFd = 3;
    VmSpec spec = cfg_.spec;
    spec.qmpListenFd = kQmpChildFd;
    reactor::SpawnOptions opts;
    opts.argv = buildQemuArgv(cfg_.binary, spec, cfg_.paths);
    opts.newSession = true;  // QEMU outlives vmrd
    opts.fds = {{log.get(), 2}, {qmpListen->get(), kQmpChildFd}};
    log::command("vm", opts.argv);
    auto child = reactor::Child::spawn(reactor_, std::move(opts));
    if (!child) {
        if (child.error().kind() == ErrorKind::NotFound)
            co_return fail(Error(ErrorKind::ToolMissing, "QEMU is not installed: " + child.error().message(),
                                 kQemuMissingHint));
        co_return fail(Error(ErrorKind::Unavailable, "Cannot start QEMU").causedBy(std::move(child).error()));
    }
    qmpListen->reset();  // QEMU holds it now
    pid_t pid = (*child)->pid();
    auto started = store::processStartTime(pid);
    watch(std::move(*child), started.valueOr(0));
    lg().info("VM {}: QEMU started (pid {})", vmName(), pid);

    // The greeting comes once QEMU has initialised (tens of ms). A failed attempt (QEMU died, or
    // closed the connection) is retried until the deadline.
    auto deadline = reactor_.now() + cfg_.startTimeout;
    reactor::Duration pause = 1ms;
    for (;;) {
        if (!processAlive()) {
            // onProcessExit already recorded the exit; add what QEMU said on stderr.
            std::string said = qemuLogTail();
            std::string msg = "QEMU exited at start (" + reason_ + ")";
            if (!said.empty()) msg += ": " + said;
            setState(VmState::Failed, msg, true);
            co_return Error(ErrorKind::Unavailable, msg, "See " + cfg_.paths.qemuLog);
        }
        auto left = std::chrono::duration_cast<reactor::Duration>(deadline - reactor_.now());
        if (left <= reactor::Duration::zero()) {
            (void)child_->signal(SIGKILL);
            co_return fail(Error(ErrorKind::Timeout,
                                 "QEMU did not answer on QMP within " + seconds(cfg_.startTimeout),
                                 "See " + cfg_.paths.qemuLog));
        }
        auto c = co_await qmp::Client::connect(reactor_, cfg_.paths.qmpSocket, left, qmpHandlers());
        if (c) {
            client_ = std::move(*c);
            break;
        }
        (void)co_await reactor::sleep(reactor_, pause);
        pause = std::min<reactor::Duration>(pause * 2, 16ms);
    }
    auto st = co_await readStatus();
    if (!st) {
        if (processAlive()) (void)child_->signal(SIGKILL);
        co_return fail(std::move(st).error());
    }
    co_await readVncPort();
    co_return success();
}

Task<void> QemuDriver::readVncPort()
{
    vncPort_.reset();
    if (!cfg_.spec.vnc || !qmpUsable()) co_return;
    auto ret = co_await client_->execute("query-vnc");
    if (!ret) {
        lg().warn("VM {}: query-vnc failed: {}", vmName(), ret.error().what());
        co_return;
    }
    auto port = qmp::parseVncPort(*ret);
    if (!port) {
        lg().warn("VM {}: {}", vmName(), port.error().what());
        co_return;
    }
    vncPort_ = *port;
}

Task<Result<void>> QemuDriver::readStatus(bool force)
{
    if (!qmpUsable()) co_return Error(ErrorKind::Unavailable, "No QMP connection to VM \"" + vmName() + "\"");
    auto ret = co_await client_->execute("query-status");
    if (!ret) co_return Unexpected(std::move(ret).error());
    auto info = qmp::parseStatusInfo(*ret);
    if (!info) co_return Unexpected(std::move(info).error());
    StateChange s = stateForRunState(info->status);
    setState(s.state, s.reason, force);
    co_return success();
}

Task<Result<VmState>> QemuDriver::refreshState()
{
    if (!processAlive()) co_return state_;
    VMR_CO_TRY(co_await readStatus());
    co_return state_;
}

Task<Result<void>> QemuDriver::stop(StopOptions opts)
{
    VMR_CO_TRY(checkOperation(vmName(), state_, Operation::Stop));
    if (!processAlive()) {
        setState(VmState::Stopped, "stopped (no QEMU process)", true);
        co_return success();
    }
    stopRequested_ = true;
    // The Child stays in place for the whole sequence: nothing resets child_ but start().
    reactor::Child* child = child_.get();

    if (opts.force) {
        setState(VmState::Stopping, "stopping (forced)");
        lg().info("VM {}: force stop: SIGKILL to QEMU (pid {})", vmName(), child->pid());
    } else {
        setState(VmState::Stopping, "stopping");
        bool asked = false;
        if (qmpUsable()) {
            auto r = co_await client_->execute("system_powerdown");
            asked = r.ok();
            if (!r) lg().warn("VM {}: system_powerdown failed: {}", vmName(), r.error().what());
        }
        if (asked) {
            lg().info("VM {}: ACPI power button pressed; waiting up to {} for the guest", vmName(),
                      seconds(opts.timeout));
            if (co_await child->wait(opts.timeout)) co_return success();
            lg().warn("VM {}: guest did not power off within {}; sending SIGTERM", vmName(),
                      seconds(opts.timeout));
        } else {
            lg().warn("VM {}: cannot ask the guest to power off; sending SIGTERM", vmName());
        }
        if (child->exited()) co_return success();
        (void)child->signal(SIGTERM);
        if (co_await child->wait(cfg_.termGrace)) co_return success();
        lg().warn("VM {}: QEMU did not exit within {} of SIGTERM; sending SIGKILL", vmName(),
                  seconds(cfg_.termGrace));
    }
    if (child->exited()) co_return success();
    (void)child->signal(SIGKILL);
    auto w = co_await child->wait(cfg_.killWait);
    if (!w)
        co_return Error(ErrorKind::Timeout,
                        "QEMU (pid " + std::to_string(child->pid()) + ") survived SIGKILL");
    co_return success();
}

Task<Result<void>> QemuDriver::suspend()
{
    VMR_CO_TRY(checkOperation(vmName(), state_, Operation::Suspend));
    if (!qmpUsable()) co_return Error(ErrorKind::Unavailable, "No QMP connection to VM \"" + vmName() + "\"");
    VMR_CO_TRY(co_await client_->execute("stop"));
    setState(VmState::Paused, "paused");
    co_return success();
}

Task<Result<void>> QemuDriver::resume()
{
    VMR_CO_TRY(checkOperation(vmName(), state_, Operation::Resume));
    if (!qmpUsable()) co_return Error(ErrorKind::Unavailable, "No QMP connection to VM \"" + vmName() + "\"");
    VMR_CO_TRY(co_await client_->execute("cont"));
    setState(VmState::Running, "running");
    co_return success();
}

Task<Result<void>> QemuDriver::destroy()
{
    VMR_CO_TRY(checkOperation(vmName(), state_, Operation::Destroy));
    if (processAlive()) VMR_CO_TRY(co_await stop(StopOptions{true, {}}));
    client_.reset();
    removeSockets();
    if (!canTransition(state_, VmState::Destroyed)) setState(VmState::Stopped, "stopped", true);
    setState(VmState::Destroyed, "destroyed");
    co_return success();
}

Task<Result<void>> QemuDriver::adopt(const store::VmRecord& record)
{
    auto recorded = parseState(record.state);
    state_ = recorded.valueOr(VmState::Stopped);
    reason_ = record.stateReason;
    auto child = adoptRecordedProcess(reactor_, record);
    if (!child) {
        if (record.pid) lg().info("VM {}: QEMU (pid {}) is gone; not adopting", vmName(), *record.pid);
        if (record.pid || expectsProcess(state_)) setState(VmState::Stopped, kVanishedReason, true);
        co_return success();
    }
    pid_t pid = *record.pid;
    watch(std::move(child), *record.pidStartTime);
    announced_.reset();
    stopRequested_ = false;
    auto c = co_await qmp::Client::connect(reactor_, cfg_.paths.qmpSocket, 5s, qmpHandlers());
    if (!c) {
        setState(VmState::Failed,
                 "QEMU (pid " + std::to_string(pid) + ") runs but QMP does not answer: " + c.error().what(),
                 true);
        co_return success();
    }
    client_ = std::move(*c);
    // Whatever the record said, QEMU's own answer is the truth now.
    auto st = co_await readStatus(true);
    if (!st) {
        setState(VmState::Failed,
                 "QEMU (pid " + std::to_string(pid) + ") runs but query-status failed: " + st.error().what(),
                 true);
        co_return success();
    }
    co_await readVncPort();
    lg().info("VM {}: re-adopted QEMU (pid {}), {}", vmName(), pid, stateName(state_));
    co_return success();
}

}  // namespace vmr::vm
