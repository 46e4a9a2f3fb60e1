#include "vm/chv_driver.h"

#include "base/fd.h"
#include "base/log.h"
#include "image/qemu_img.h"
#include "store/layout.h"
#include "store/proc.h"
#include "vm/process.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace vmr::vm {

using reactor::Task;
using namespace std::chrono_literals;

namespace {

spdlog::logger& lg()
{
    return log::get("vm");
}

constexpr const char* kNoKvmHint =
    "cloud-hypervisor has no software emulation: load kvm_intel or kvm_amd and give vmrd's user "
    "read-write access to /dev/kvm (group kvm), or use backend \"qemu\"";

std::string msText(reactor::Duration d)
{
    return std::to_string(d.count()) + " ms";
}

bool isFile(const std::string& path, int mode)
{
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), mode) == 0;
}

// The binary as a path or a name in PATH; NotFound with a hint otherwise.
Result<void> findBinary(const std::string& binary)
{
    const std::string hint = "Install cloud-hypervisor, or set chv.binary in vmrd.toml to its path";
    if (binary.empty()) return Error(ErrorKind::Config, "The cloud-hypervisor binary is not set", hint);
    auto found = reactor::findProgram(binary);
    if (!found) return Error(found.error().kind(), found.error().message(), hint);
    return success();
}

}  // namespace

Result<void> checkKvm(const KvmProbePaths& paths)
{
    struct stat st {};
    if (::stat((paths.sysModule + "/kvm_intel").c_str(), &st) != 0 &&
        ::stat((paths.sysModule + "/kvm_amd").c_str(), &st) != 0) {
        return Error(ErrorKind::Unavailable,
                     "cloud-hypervisor needs KVM from kvm_intel or kvm_amd, and neither module is loaded",
                     kNoKvmHint);
    }
    UniqueFd fd(::open(paths.devKvm.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd) {
        return Error(ErrorKind::Unavailable,
                     "cloud-hypervisor needs KVM, but " + paths.devKvm +
                         " does not open read-write: " + std::strerror(errno),
                     kNoKvmHint);
    }
    int version = ::ioctl(fd.get(), KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION) {
        std::string got =
            version < 0 ? std::string(std::strerror(errno)) : "version " + std::to_string(version);
        return Error(ErrorKind::Unavailable, paths.devKvm + " does not answer as KVM (" + got + ")",
                     kNoKvmHint);
    }
    return success();
}

RuntimePaths chvRuntimePaths(const store::Layout& layout, const std::string& name, const std::string& id)
{
    std::string dir = layout.vmDir(name);
    RuntimePaths p;
    p.serialSocket = layout.runtimeSocket(id, "serial");
    p.consoleLog = dir + "/console.log";
    p.qemuLog = dir + "/cloud-hypervisor.log";
    return p;
}

Result<chv::VmConfigSpec> vmConfigSpec(const ChvDriverConfig& cfg)
{
    const VmSpec& s = cfg.spec;
    if (s.machineNone)
        return Error(ErrorKind::Unsupported, "A VM without a machine (-machine none) is a QEMU test mode",
                     "Use backend \"qemu\" for it");
    chv::VmConfigSpec c;
    c.vcpus = s.vcpus;
    c.memoryMib = s.memoryMib;
    c.firmware = s.firmware;
    c.kernel = s.kernel;
    c.initramfs = s.initrd;
    c.cmdline = s.cmdline;
    c.overlay = s.overlay;
    c.seedIso = s.seedIso;
    c.serialSocket = cfg.paths.serialSocket;
    switch (s.network) {
        case net::NetMode::User:
            return Error(ErrorKind::InvalidArgument, "cloud-hypervisor has no user-mode networking",
                         "Use network \"tap\" or \"none\" with backend \"chv\"");
        case net::NetMode::Tap:
            if (cfg.tap.empty())
                return Error(ErrorKind::InvalidArgument, "Network \"tap\" needs a tap device name",
                             "Configure the tap device for the VM");
            if (s.mac.empty())
                return Error(ErrorKind::InvalidArgument, "Network \"tap\" needs a MAC address for the guest");
            c.tap = cfg.tap;
            c.mac = s.mac;
            break;
        case net::NetMode::None: break;
    }
    VMR_TRY(chv::buildVmConfig(c));
    return c;
}

ChvDriver::ChvDriver(reactor::Reactor& r, ChvDriverConfig cfg, VmState initial)
    : reactor_(r), cfg_(std::move(cfg)), api_(r, cfg_.apiSocket), state_(initial)
{
}

ChvDriver::~ChvDriver() = default;

bool ChvDriver::setState(VmState to, std::string reason, bool force)
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

Result<void> ChvDriver::preflight() const
{
    VMR_TRY(findBinary(cfg_.binary));
    if (cfg_.apiSocket.empty() || cfg_.apiSocket.size() >= sizeof(sockaddr_un{}.sun_path))
        return Error(ErrorKind::Config, "The API socket path \"" + cfg_.apiSocket + "\" is empty or too long",
                     "Use a shorter runtime directory");
    auto spec = vmConfigSpec(cfg_);
    if (!spec) return std::move(spec).error();
    if (!cfg_.spec.firmware.empty() && !isFile(cfg_.spec.firmware, R_OK))
        return Error(ErrorKind::NotFound, "Firmware " + cfg_.spec.firmware + " not found",
                     "cloud-hypervisor boots disk images with rust-hypervisor-firmware (hypervisor-fw) or a "
                     "CLOUDHV OVMF build; give the path of one");
    for (const auto& [what, path] : {std::pair<std::string, std::string>{"Kernel", cfg_.spec.kernel},
                                     std::pair<std::string, std::string>{"Initrd", cfg_.spec.initrd}}) {
        if (!path.empty() && !isFile(path, R_OK))
            return Error(ErrorKind::NotFound, what + " " + path + " not found", "Check the path");
    }
    if (cfg_.requireKvm) VMR_TRY(checkKvm(cfg_.kvm));
    return success();
}

void ChvDriver::removeSockets() const
{
    ::unlink(cfg_.apiSocket.c_str());
    ::unlink(cfg_.paths.serialSocket.c_str());
}

Result<void> ChvDriver::ensureDirs() const
{
    for (const std::string& file : {cfg_.paths.consoleLog, cfg_.apiSocket, cfg_.paths.serialSocket}) {
        std::string dir = std::filesystem::path(file).parent_path().string();
        if (!dir.empty()) VMR_TRY(store::makeDirs(dir, 0700));
    }
    return success();
}

std::string ChvDriver::logTail() const
{
    UniqueFd fd(::open(cfg_.paths.qemuLog.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return {};
    off_t size = ::lseek(fd.get(), 0, SEEK_END);
    off_t from = size > 4096 ? size - 4096 : 0;
    std::string text(static_cast<size_t>(size - from), '\0');
    ssize_t n = ::pread(fd.get(), text.data(), text.size(), from);
    text.resize(n > 0 ? static_cast<size_t>(n) : 0);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    size_t cut = text.rfind('\n');
    return cut == std::string::npos ? text : text.substr(cut + 1);
}

void ChvDriver::watch(std::unique_ptr<reactor::Child> child, uint64_t startTime)
{
    child_ = std::move(child);
    pid_ = child_->pid();
    startTime_ = startTime;
    // The Child is ours: its callback never runs after it is destroyed.
    child_->onExit([this](reactor::ExitStatus st) { onProcessExit(st); });
}

void ChvDriver::onProcessExit(const reactor::ExitStatus& st)
{
    lg().debug("VM {}: cloud-hypervisor (pid {}) {}", vmName(), pid_.value_or(-1), st.describe());
    pid_.reset();
    startTime_.reset();
    removeSockets();
    bool clean = st.exited() && st.code == 0;
    if (panicked_) {
        setState(VmState::Failed, "guest panicked", true);
    } else if (stopRequested_) {
        setState(VmState::Stopped, clean ? "stopped" : "stopped (cloud-hypervisor " + st.describe() + ")",
                 true);
    } else if (clean) {
        // Without --no-shutdown the VMM exits when the guest powers off.
        setState(VmState::Stopped, "guest powered off", true);
    } else {
        setState(VmState::Failed, "cloud-hypervisor " + st.describe() + " unexpectedly", true);
    }
}

void ChvDriver::onEvent(const chv::Event& ev)
{
    std::string name = ev.name();
    lg().debug("VM {}: cloud-hypervisor event {}", vmName(), name);
    if (name == "vm/booted" || name == "vm/resumed" || name == "vm/rebooted") {
        setState(VmState::Running, "running");
    } else if (name == "vm/paused") {
        setState(VmState::Paused, "paused");
    } else if (name == "vm/shutdown") {
        if (!stopRequested_) {
            guestShutdown_ = true;
            setState(VmState::Stopping, "the VM shut down");
        }
    } else if (name == "guest/panic") {
        panicked_ = true;
        setState(VmState::Failed, "guest panicked");
    }
}

void ChvDriver::followEvents(UniqueFd fd)
{
    eventParser_ = chv::EventStream();
    events_ = std::make_unique<reactor::Stream>(reactor_, std::move(fd));
    reactor::Stream::Callbacks cbs;
    // The stream is ours and runs no callback after it is closed or destroyed.
    cbs.onData = [this](std::string_view data) {
        eventParser_.append(data);
        for (;;) {
            auto ev = eventParser_.next();
            if (!ev) {
                lg().warn("VM {}: ignoring the rest of the event monitor: {}", vmName(), ev.error().what());
                events_->close();
                return;
            }
            if (!*ev) return;
            onEvent(**ev);
        }
    };
    cbs.onClose = [this](const Error* err) {
        if (err != nullptr) lg().debug("VM {}: event monitor: {}", vmName(), err->what());
    };
    events_->start(std::move(cbs));
}

Task<void> ChvDriver::killNow()
{
    if (!processAlive()) co_return;
    reactor::Child* child = child_.get();
    (void)child->signal(SIGKILL);
    (void)co_await child->wait(cfg_.killWait);
}

Task<Result<void>> ChvDriver::prepare()
{
    if (state_ != VmState::Preparing) VMR_CO_TRY(checkTransition(state_, VmState::Preparing));
    VMR_CO_TRY(preflight());
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

Task<Result<void>> ChvDriver::waitForApi()
{
    // The API socket appears once the VMM has parsed its options: retry until the deadline.
    auto deadline = reactor_.now() + cfg_.startTimeout;
    std::optional<Error> last;
    for (;;) {
        if (!processAlive()) {
            std::string said = logTail();
            std::string msg = "cloud-hypervisor exited at start (" + reason_ + ")";
            if (!said.empty()) msg += ": " + said;
            co_return Error(ErrorKind::Unavailable, msg, "See " + cfg_.paths.qemuLog);
        }
        auto left = std::chrono::duration_cast<reactor::Duration>(deadline - reactor_.now());
        if (left <= reactor::Duration::zero()) {
            Error e(ErrorKind::Timeout,
                    "cloud-hypervisor did not answer vmm.ping within " + msText(cfg_.startTimeout),
                    "See " + cfg_.paths.qemuLog);
            if (last) e.causedBy(std::move(*last));
            co_return e;
        }
        auto ping = co_await api_.ping(std::min(left, cfg_.requestTimeout));
        if (ping) {
            version_ = ping->version;
            co_return success();
        }
        last = std::move(ping).error();
        (void)co_await reactor::sleep(reactor_, 20ms);
    }
}

Task<Result<void>> ChvDriver::start()
{
    VMR_CO_TRY(checkOperation(vmName(), state_, Operation::Start));
    VMR_CO_TRY(preflight());
    auto body = chv::buildVmConfig(*vmConfigSpec(cfg_));
    if (!body) co_return std::move(body).error();

    setState(VmState::Starting, "starting");
    // A VMM left from a failed run would hold the sockets.
    co_await killNow();
    events_.reset();
    child_.reset();
    stopRequested_ = guestShutdown_ = panicked_ = false;
    version_.clear();
    removeSockets();

    auto fail = [this](Error e) -> Result<void> {
        setState(VmState::Failed, e.message(), true);
        return Unexpected(std::move(e));
    };
    if (auto dirs = ensureDirs(); !dirs) co_return fail(std::move(dirs).error());
    UniqueFd log(::open(cfg_.paths.qemuLog.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!log) co_return fail(Error::fromErrno(errno, "Cannot open " + cfg_.paths.qemuLog));

    reactor::SpawnOptions opts;
    opts.argv = {cfg_.binary, "--api-socket", "path=" + cfg_.apiSocket};
    opts.newSession = true;  // the VMM outlives vmrd
    opts.fds = {{log.get(), 2}};
    UniqueFd ours, theirs;
    if (cfg_.eventMonitor) {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
            co_return fail(Error::fromErrno(errno, "Cannot create the event monitor socket"));
        ours.reset(sv[0]);
        theirs.reset(sv[1]);
        opts.argv.insert(opts.argv.end(), {"--event-monitor", "fd=3"});
        opts.fds.emplace_back(theirs.get(), 3);
    }
    log::command("vm", opts.argv);
    auto child = reactor::Child::spawn(reactor_, std::move(opts));
    theirs.reset();  // the VMM holds its end; EOF on ours then means it has gone
    if (!child)
        co_return fail(Error(ErrorKind::Unavailable, "Cannot start cloud-hypervisor")
                           .causedBy(std::move(child).error()));
    pid_t pid = (*child)->pid();
    auto started = store::processStartTime(pid);
    watch(std::move(*child), started.valueOr(0));
    if (ours) followEvents(std::move(ours));
    lg().info("VM {}: cloud-hypervisor started (pid {})", vmName(), pid);

    auto fatal = [this, &fail](Error e) -> Result<void> {
        lg().debug("VM {}: start failed: {}", vmName(), e.what());
        return fail(std::move(e));
    };
    auto up = co_await waitForApi();
    if (!up) {
        co_await killNow();
        co_return fatal(std::move(up).error());
    }
    lg().debug("VM {}: vm.create {}", vmName(), *body);
    auto created = co_await api_.put("vm.create", *body, cfg_.requestTimeout);
    if (!created) {
        co_await killNow();
        co_return fatal(Error(created.error().kind(), "cloud-hypervisor refused the VM's configuration")
                            .causedBy(std::move(created).error()));
    }
    auto booted = co_await api_.put("vm.boot", {}, cfg_.requestTimeout);
    if (!booted) {
        co_await killNow();
        co_return fatal(Error(booted.error().kind(), "cloud-hypervisor could not boot the VM")
                            .causedBy(std::move(booted).error()));
    }
    auto info = co_await readInfo(false);
    if (!info) {
        co_await killNow();
        co_return fatal(std::move(info).error());
    }
    if (state_ == VmState::Starting) setState(VmState::Running, "running");
    co_return success();
}

Task<Result<void>> ChvDriver::readInfo(bool force)
{
    auto info = co_await api_.info(cfg_.requestTimeout);
    if (!info) co_return std::move(info).error();
    switch (info->state) {
        case chv::VmRunState::Running: setState(VmState::Running, "running", force); break;
        case chv::VmRunState::Paused: setState(VmState::Paused, "paused", force); break;
        case chv::VmRunState::BreakPoint:
            setState(VmState::Paused, "stopped at a debugger breakpoint", force);
            break;
        case chv::VmRunState::Shutdown: setState(VmState::Stopping, "the VM shut down", force); break;
        case chv::VmRunState::Created:
            // Defined but not booted: nothing runs, though the VMM does. Failed keeps a (forced)
            // stop possible; a start kills the VMM first.
            if (state_ != VmState::Starting || force)
                setState(VmState::Failed, "cloud-hypervisor runs but its VM is not booted", true);
            break;
    }
    co_return success();
}

Task<Result<VmState>> ChvDriver::refreshState()
{
    if (!processAlive()) co_return state_;
    VMR_CO_TRY(co_await readInfo(false));
    co_return state_;
}

Task<Result<void>> ChvDriver::stop(StopOptions opts)
{
    VMR_CO_TRY(checkOperation(vmName(), state_, Operation::Stop));
    if (!processAlive()) {
        setState(VmState::Stopped, "stopped (no cloud-hypervisor process)", true);
        co_return success();
    }
    stopRequested_ = true;
    bool wasPaused = state_ == VmState::Paused;
    // The Child stays in place for the whole sequence: nothing resets child_ but start().
    reactor::Child* child = child_.get();

    if (opts.force) {
        setState(VmState::Stopping, "stopping (forced)");
        lg().info("VM {}: force stop: SIGKILL to cloud-hypervisor (pid {})", vmName(), child->pid());
    } else {
        setState(VmState::Stopping, "stopping");
        if (!wasPaused) {
            auto pressed = co_await api_.put("vm.power-button", {}, cfg_.requestTimeout);
            if (pressed) {
                lg().info("VM {}: ACPI power button pressed; waiting up to {} for the guest", vmName(),
                          msText(opts.timeout));
                if (co_await child->wait(opts.timeout)) co_return success();
                lg().warn("VM {}: guest did not power off within {}; shutting the VM down", vmName(),
                          msText(opts.timeout));
            } else {
                lg().warn("VM {}: vm.power-button failed: {}", vmName(), pressed.error().what());
            }
        }
        if (child->exited()) co_return success();
        auto down = co_await api_.put("vm.shutdown", {}, cfg_.requestTimeout);
        if (!down) lg().warn("VM {}: vm.shutdown failed: {}", vmName(), down.error().what());
        if (child->exited()) co_return success();
        // The answer may be cut short by the exit it causes: only the exit counts.
        auto quit = co_await api_.put("vmm.shutdown", {}, cfg_.requestTimeout);
        if (!quit) lg().debug("VM {}: vmm.shutdown: {}", vmName(), quit.error().what());
        if (co_await child->wait(cfg_.termGrace)) co_return success();
        lg().warn("VM {}: cloud-hypervisor did not exit within {} of vmm.shutdown; sending SIGTERM", vmName(),
                  msText(cfg_.termGrace));
        (void)child->signal(SIGTERM);
        if (co_await child->wait(cfg_.termGrace)) co_return success();
        lg().warn("VM {}: cloud-hypervisor did not exit within {} of SIGTERM; sending SIGKILL", vmName(),
                  msText(cfg_.termGrace));
    }
    if (child->exited()) co_return success();
    (void)child->signal(SIGKILL);
    auto w = co_await child->wait(cfg_.killWait);
    if (!w)
        co_return Error(ErrorKind::Timeout,
                        "cloud-hypervisor (pid " + std::to_string(child->pid()) + ") survived SIGKILL");
    co_return success();
}

Task<Result<void>> ChvDriver::suspend()
{
    VMR_CO_TRY(checkOperation(vmName(), state_, Operation::Suspend));
    if (!processAlive())
        co_return Error(ErrorKind::Unavailable, "VM \"" + vmName() + "\" has no cloud-hypervisor process");
    VMR_CO_TRY(co_await api_.put("vm.pause", {}, cfg_.requestTimeout));
    setState(VmState::Paused, "paused");
    co_return success();
}

Task<Result<void>> ChvDriver::resume()
{
    VMR_CO_TRY(checkOperation(vmName(), state_, Operation::Resume));
    if (!processAlive())
        co_return Error(ErrorKind::Unavailable, "VM \"" + vmName() + "\" has no cloud-hypervisor process");
    VMR_CO_TRY(co_await api_.put("vm.resume", {}, cfg_.requestTimeout));
    setState(VmState::Running, "running");
    co_return success();
}

Task<Result<void>> ChvDriver::destroy()
{
    VMR_CO_TRY(checkOperation(vmName(), state_, Operation::Destroy));
    if (processAlive()) {
        StopOptions force;
        force.force = true;
        VMR_CO_TRY(co_await stop(force));
    }
    events_.reset();
    removeSockets();
    if (!canTransition(state_, VmState::Destroyed)) setState(VmState::Stopped, "stopped", true);
    setState(VmState::Destroyed, "destroyed");
    co_return success();
}

Task<Result<void>> ChvDriver::adopt(const store::VmRecord& record)
{
    auto recorded = parseState(record.state);
    state_ = recorded.valueOr(VmState::Stopped);
    reason_ = record.stateReason;
    auto child = adoptRecordedProcess(reactor_, record);
    if (!child) {
        if (record.pid)
            lg().info("VM {}: cloud-hypervisor (pid {}) is gone; not adopting", vmName(), *record.pid);
        if (record.pid || expectsProcess(state_)) setState(VmState::Stopped, kVanishedReason, true);
        co_return success();
    }
    pid_t pid = *record.pid;
    watch(std::move(child), *record.pidStartTime);
    stopRequested_ = guestShutdown_ = panicked_ = false;
    std::string who = "cloud-hypervisor (pid " + std::to_string(pid) + ")";
    auto ping = co_await api_.ping(cfg_.requestTimeout);
    if (!ping) {
        setState(VmState::Failed, who + " runs but its API does not answer: " + ping.error().what(), true);
        co_return success();
    }
    version_ = ping->version;
    // Whatever the record said, the VMM's own answer is the truth now.
    auto info = co_await readInfo(true);
    if (!info) {
        setState(VmState::Failed, who + " runs but vm.info failed: " + info.error().what(), true);
        co_return success();
    }
    lg().info("VM {}: re-adopted {}, {}", vmName(), who, stateName(state_));
    co_return success();
}

}  // namespace vmr::vm
