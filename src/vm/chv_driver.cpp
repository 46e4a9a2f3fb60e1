#include "vm/chv_driver.h"

#include "vm/logger.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vmr::vm {

using reactor::Task;
using namespace std::chrono_literals;

namespace {

constexpr const char* kNoKvmHint =
    "cloud-hypervisor has no software emulation: load kvm_intel or kvm_amd and give vmrd's user "
    "read-write access to /dev/kvm (group kvm), or use backend \"qemu\"";

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

namespace {

constexpr int kEventMonitorChildFd = 3;
constexpr int kFirstFileChildFd = 4;

// The launch files cloud-hypervisor starts with, from fd 4 in this order, each one present only
// when the launch names it: it reads them through /proc/self/fd/N, never by their paths.
std::vector<const LaunchFile*> passedFiles(const Launch& l)
{
    std::vector<const LaunchFile*> out;
    for (const LaunchFile* f : {&l.bios, &l.kernel, &l.initrd, &l.overlay, &l.seedIso})
        if (!f->empty()) out.push_back(f);
    return out;
}

std::string childPath(const Launch& l, const LaunchFile& f)
{
    auto files = passedFiles(l);
    for (size_t i = 0; i < files.size(); ++i)
        if (files[i] == &f) return "/proc/self/fd/" + std::to_string(kFirstFileChildFd + static_cast<int>(i));
    return {};
}

}  // namespace

chv::Attachments chvAttachments(const DriverConfig& cfg)
{
    const Launch& l = cfg.launch;
    chv::Attachments a;
    // A launch without files (a driver that only watches, or a test's) names the spec's.
    a.firmware = !l.bios.empty()                                       ? childPath(l, l.bios)
                 : cfg.spec.firmware.kind == model::FirmwareKind::File ? cfg.spec.firmware.file
                                                                       : std::string();
    a.kernel = childPath(l, l.kernel);
    a.initrd = childPath(l, l.initrd);
    a.overlay = childPath(l, l.overlay);
    a.seedIso = childPath(l, l.seedIso);
    if (cfg.spec.network.mode == model::NetMode::Tap) {
        a.tap = l.tap;
        a.mac = l.mac;
    }
    a.serialSocket = cfg.paths.serialSocket;
    return a;
}

ChvDriver::ChvDriver(reactor::Reactor& r, DriverConfig cfg, VmState initial)
    : Driver(r, std::move(cfg), initial), api_(r, cfg_.paths.control)
{
}

ChvDriver::~ChvDriver() = default;

Result<void> ChvDriver::preflight() const
{
    const std::string hint = "Install cloud-hypervisor, or set chv.binary in vmrd.toml to its path";
    if (cfg_.binary.empty()) return Error(ErrorKind::Config, "The cloud-hypervisor binary is not set", hint);
    if (auto found = reactor::findProgram(cfg_.binary); !found)
        return Error(ErrorKind::ToolMissing, found.error().message(), hint);
    if (cfg_.paths.control.empty() || cfg_.paths.control.size() >= sizeof(sockaddr_un{}.sun_path))
        return Error(ErrorKind::Config,
                     "The API socket path \"" + cfg_.paths.control + "\" is empty or too long",
                     "Use a shorter runtime directory");
    if (cfg_.launch.machineNone)
        return Error(ErrorKind::Unsupported, "A VM without a machine (-machine none) is a QEMU test mode",
                     "Use backend \"qemu\" for it");
    VMR_TRY(model::checkSpec(cfg_.spec, false));
    if (cfg_.spec.network.mode == model::NetMode::Tap && cfg_.launch.tap.empty())
        return Error(ErrorKind::InvalidArgument, "Network \"tap\" needs a tap device name",
                     "Configure the tap device for the VM");
    // The files themselves were opened, as their owner, when the start was prepared
    // (vm/launch_files.h).
    VMR_TRY(chv::buildVmConfig(cfg_.spec, chvAttachments(cfg_)));
    if (cfg_.requireKvm) VMR_TRY(checkKvm(cfg_.kvm));
    return success();
}

void ChvDriver::resetRun()
{
    panicked_ = false;
    version_.clear();
    events_.reset();
    eventsPending_.reset();
}

StateChange ChvDriver::exitState(const reactor::ExitStatus& st)
{
    bool clean = st.exited() && st.code == 0;
    if (panicked_) return {VmState::Failed, "guest panicked"};
    if (stopRequested())
        return {VmState::Stopped, clean ? "stopped" : "stopped (cloud-hypervisor " + st.describe() + ")"};
    // Without --no-shutdown the VMM exits when the guest powers off.
    if (clean) return {VmState::Stopped, "guest powered off"};
    return {VmState::Failed, "cloud-hypervisor " + st.describe() + " unexpectedly"};
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
        if (!stopRequested()) setState(VmState::Stopping, "the VM shut down");
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

Result<Driver::Spawn> ChvDriver::spawnPlan()
{
    Spawn plan;
    plan.argv = {cfg_.binary, "--api-socket", "path=" + cfg_.paths.control};
    if (cfg_.eventMonitor) {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
            return Error::fromErrno(errno, "Cannot create the event monitor socket");
        eventsPending_.reset(sv[0]);
        plan.argv.insert(plan.argv.end(), {"--event-monitor", "fd=" + std::to_string(kEventMonitorChildFd)});
        // The VMM holds its end once spawned; EOF on ours then means it has gone.
        plan.fds.emplace_back(UniqueFd(sv[1]), kEventMonitorChildFd);
    }
    auto files = passedFiles(cfg_.launch);
    for (size_t i = 0; i < files.size(); ++i) {
        if (!files[i]->opened())
            return Error(ErrorKind::Internal, "The launch file " + files[i]->path + " was not opened");
        UniqueFd copy(::fcntl(files[i]->get(), F_DUPFD_CLOEXEC, 0));
        if (!copy) return Error::fromErrno(errno, "Cannot pass " + files[i]->path + " to cloud-hypervisor");
        plan.fds.emplace_back(std::move(copy), kFirstFileChildFd + static_cast<int>(i));
    }
    return plan;
}

void ChvDriver::spawned()
{
    if (eventsPending_) followEvents(std::move(eventsPending_));
}

Task<Result<void>> ChvDriver::waitForApi(reactor::Clock::time_point deadline)
{
    // The API socket appears once the VMM has parsed its options: retry until the deadline.
    std::optional<Error> last;
    for (;;) {
        if (!processAlive()) co_return exitedAtStart();
        auto left = std::chrono::duration_cast<reactor::Duration>(deadline - reactor_.now());
        if (left <= reactor::Duration::zero()) {
            Error e(ErrorKind::Timeout,
                    "cloud-hypervisor did not answer vmm.ping within " +
                        std::to_string(cfg_.startTimeout.count()) + " ms",
                    "See " + cfg_.paths.vmmLog);
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

Task<Result<void>> ChvDriver::put(std::string_view what, std::string body)
{
    co_return co_await api_.put(std::string(what), std::move(body), cfg_.requestTimeout);
}

Task<Result<void>> ChvDriver::connect(reactor::Clock::time_point deadline)
{
    VMR_CO_TRY(co_await waitForApi(deadline));
    VMR_CO_TRY_ASSIGN(std::string body, chv::buildVmConfig(cfg_.spec, chvAttachments(cfg_)));
    lg().debug("VM {}: vm.create {}", vmName(), body);
    if (auto created = co_await put("vm.create", body); !created)
        co_return Error(created.error().kind(), "cloud-hypervisor refused the VM's configuration")
            .causedBy(std::move(created).error());
    if (auto booted = co_await put("vm.boot"); !booted)
        co_return Error(booted.error().kind(), "cloud-hypervisor could not boot the VM")
            .causedBy(std::move(booted).error());
    VMR_CO_TRY(co_await readState(false));
    if (state() == VmState::Starting) setState(VmState::Running, "running");
    co_return success();
}

Task<Result<void>> ChvDriver::reconnect()
{
    auto ping = co_await api_.ping(cfg_.requestTimeout);
    if (!ping)
        co_return Error(ErrorKind::Unavailable, "Its API does not answer").causedBy(std::move(ping).error());
    version_ = ping->version;
    // Whatever the record said, the VMM's own answer is the truth now.
    co_return co_await readState(true);
}

Task<Result<void>> ChvDriver::readState(bool force)
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
            if (state() != VmState::Starting || force)
                setState(VmState::Failed, "cloud-hypervisor runs but its VM is not booted", true);
            break;
    }
    co_return success();
}

Task<bool> ChvDriver::powerButton()
{
    auto pressed = co_await put("vm.power-button");
    if (!pressed) lg().warn("VM {}: vm.power-button failed: {}", vmName(), pressed.error().what());
    co_return pressed.ok();
}

Task<bool> ChvDriver::shutdownRequest()
{
    auto down = co_await put("vm.shutdown");
    if (!down) lg().warn("VM {}: vm.shutdown failed: {}", vmName(), down.error().what());
    if (!processAlive()) co_return true;
    // The answer may be cut short by the exit it causes: only the exit counts.
    auto quit = co_await put("vmm.shutdown");
    if (!quit) lg().debug("VM {}: vmm.shutdown: {}", vmName(), quit.error().what());
    co_return true;
}

Task<Result<void>> ChvDriver::pauseVm()
{
    co_return co_await put("vm.pause");
}

Task<Result<void>> ChvDriver::resumeVm()
{
    co_return co_await put("vm.resume");
}

}  // namespace vmr::vm
