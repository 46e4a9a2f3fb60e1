// ChvDriver against fake-chv (tests/fakes), on the backend VMR_REACTOR selects: the life cycle,
// the stop sequence, the event monitor, the serial console, re-adoption, the checks made before
// anything is created, and a VMM that errs, hangs or dies.

#include "base/proc.h"
#include "chv/client.h"
#include "fake.h"
#include "model/runtime.h"
#include "vm/chv_driver.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>
#include <fstream>

using namespace vmr;
using namespace vmr::vm;
using namespace vmr::chv::test;

namespace {

bool exists(const std::string& path)
{
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

// Sets environment variables for the VMMs the driver spawns (they inherit vmrd's environment).
class ScopedEnv {
public:
    ScopedEnv(std::string name, const std::string& value) : name_(std::move(name))
    {
        ::setenv(name_.c_str(), value.c_str(), 1);
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;
    ~ScopedEnv() { ::unsetenv(name_.c_str()); }

private:
    std::string name_;
};

using Harness = DriverHarness;

// What vmrd would have saved of a driver's VM (the runtime half of its record).
model::VmRuntime runtimeOf(const ChvDriver& d)
{
    model::VmRuntime rt;
    rt.id = d.config().id;
    rt.state = d.state();
    rt.stateReason = d.stateReason();
    if (d.pid()) rt.pid = *d.pid();
    rt.pidStartTime = d.pidStartTime();
    return rt;
}

// A runtime saying that `pid` (of fake-chv, started by the test) runs VM `id`.
model::VmRuntime runningRuntime(const std::string& id, pid_t pid)
{
    model::VmRuntime rt;
    rt.id = id;
    rt.state = VmState::Running;
    rt.pid = pid;
    auto start = vmr::processStartTime(pid);
    REQUIRE(start);
    rt.pidStartTime = *start;
    return rt;
}

// A pid's process is gone (or is a zombie being reaped by PID 1).
bool processGone(pid_t pid, uint64_t startTime)
{
    auto t = vmr::processStartTime(pid);
    return !t || *t != startTime;
}

// Kill a VMM a test leaves behind (only ours, by pid and start time).
struct Reaper {
    std::optional<pid_t> pid;
    std::optional<uint64_t> start;
    Reaper(std::optional<pid_t> p, std::optional<uint64_t> s) : pid(p), start(s) {}
    Reaper(Reaper&& o) noexcept : pid(std::exchange(o.pid, std::nullopt)), start(o.start) {}
    Reaper& operator=(Reaper&&) = delete;
    ~Reaper()
    {
        if (pid && start && !processGone(*pid, *start)) ::kill(*pid, SIGKILL);
    }
};

// A driver whose VM has started, and the reaper of its VMM.
struct Started {
    std::unique_ptr<ChvDriver> d;
    Reaper reaper;
};

Started startVm(Reactor& r, Harness& h, DriverConfig cfg)
{
    auto d = h.make(r, std::move(cfg), VmState::Stopped);
    auto res = finish(r, d->start());
    if (!res) FAIL("start: " << res.error().what());
    Reaper reaper(d->pid(), d->pidStartTime());
    return {std::move(d), std::move(reaper)};
}

void forceStop(Reactor& r, ChvDriver& d)
{
    StopOptions force;
    force.force = true;
    REQUIRE(finish(r, d.stop(force)));
}

// A blocking client of the serial socket with a read timeout.
class SerialClient {
public:
    explicit SerialClient(const std::string& path)
    {
        fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
        REQUIRE(::connect(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    }
    void write(const std::string& s)
    {
        REQUIRE(::send(fd_.get(), s.data(), s.size(), MSG_NOSIGNAL) == ssize_t(s.size()));
    }
    // Read until `needle` has arrived; everything read so far.
    std::string readUntil(const std::string& needle)
    {
        auto deadline = std::chrono::steady_clock::now() + 5s;
        while (got_.find(needle) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
            pollfd p{fd_.get(), POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            char buf[1024];
            ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
            if (n <= 0) break;
            got_.append(buf, static_cast<size_t>(n));
        }
        return got_;
    }

private:
    UniqueFd fd_;
    std::string got_;
};

}  // namespace

TEST_CASE("start, suspend, resume, and a graceful stop through the power button")
{
    auto r = makeReactor();
    Harness h;
    auto cfg = h.chvConfig("life", "0000cc01");
    auto d = h.make(*r, cfg);
    Reaper reaper(std::nullopt, std::nullopt);

    CHECK(d->state() == VmState::Prepared);
    REQUIRE(finish(*r, d->start()));
    reaper.pid = d->pid();
    reaper.start = d->pidStartTime();
    CHECK(d->state() == VmState::Running);
    CHECK(h.saw(VmState::Prepared, VmState::Starting));
    CHECK(h.saw(VmState::Starting, VmState::Running, "running"));
    CHECK(d->vmmVersion() == "53.0.0");
    REQUIRE(d->pid());
    auto started = vmr::processStartTime(*d->pid());
    REQUIRE(started);
    CHECK(d->pidStartTime() == *started);
    CHECK(exists(cfg.paths.control));
    CHECK(exists(cfg.paths.serialSocket));

    auto again = finish(*r, d->start());
    REQUIRE_FALSE(again);
    CHECK(again.error().kind() == ErrorKind::VmBadState);

    REQUIRE(finish(*r, d->suspend()));
    CHECK(d->state() == VmState::Paused);
    REQUIRE(finish(*r, d->refreshState()));
    CHECK(d->state() == VmState::Paused);  // vm.info agrees
    REQUIRE(finish(*r, d->resume()));
    CHECK(d->state() == VmState::Running);
    auto twice = finish(*r, d->resume());
    REQUIRE_FALSE(twice);
    CHECK(twice.error().message() == "VM \"life\" is running, not paused");

    // The vm/paused and vm/resumed events arrive too; they make no extra transitions.
    (void)r->runFor(100ms);
    int toPaused = 0, toRunning = 0;
    for (const auto& c : h.changes) {
        toPaused += c.to == VmState::Paused;
        toRunning += c.to == VmState::Running;
    }
    CHECK(toPaused == 1);
    CHECK(toRunning == 2);

    auto t0 = std::chrono::steady_clock::now();
    StopOptions opts;
    opts.timeout = 5s;
    REQUIRE(finish(*r, d->stop(opts)));
    CHECK(std::chrono::steady_clock::now() - t0 < 3s);  // the guest took the button
    CHECK(d->state() == VmState::Stopped);
    CHECK(d->stateReason() == "stopped");
    CHECK(h.saw(VmState::Running, VmState::Stopping));
    CHECK_FALSE(d->pid());
    CHECK_FALSE(exists(cfg.paths.control));
    CHECK_FALSE(exists(cfg.paths.serialSocket));

    // Started again from Stopped, then destroyed.
    REQUIRE(finish(*r, d->start()));
    reaper.pid = d->pid();
    reaper.start = d->pidStartTime();
    pid_t pid = *d->pid();
    uint64_t st = *d->pidStartTime();
    REQUIRE(finish(*r, d->destroy()));
    CHECK(d->state() == VmState::Destroyed);
    CHECK_FALSE(exists(cfg.paths.control));
    REQUIRE(r->runUntil([&] { return processGone(pid, st); }, 5s));
}

TEST_CASE("the guest powers off by itself: the VMM exits and the VM is stopped")
{
    auto r = makeReactor();
    Harness h;
    auto [d, reaper] = startVm(*r, h, h.chvConfig("poweroff", "0000cc02"));
    REQUIRE(::kill(*d->pid(), SIGUSR1) == 0);  // fake-chv: the guest runs `poweroff`
    REQUIRE(r->runUntil([&] { return d->state() == VmState::Stopped; }, 5s));
    CHECK(d->stateReason() == "guest powered off");
    CHECK(h.saw(VmState::Running, VmState::Stopping, "the VM shut down"));  // from the event monitor
    CHECK_FALSE(d->pid());
}

TEST_CASE("a VMM killed with SIGKILL is noticed at once, with the reason")
{
    auto r = makeReactor();
    Harness h;
    auto [d, reaper] = startVm(*r, h, h.chvConfig("killed", "0000cc03"));
    REQUIRE(::kill(*d->pid(), SIGKILL) == 0);
    auto t0 = std::chrono::steady_clock::now();
    REQUIRE(r->runUntil([&] { return d->state() == VmState::Failed; }, 5s));
    CHECK(std::chrono::steady_clock::now() - t0 < 1s);
    CHECK(d->stateReason() == "cloud-hypervisor killed by SIGKILL unexpectedly");
    // A failed VM starts again; a forced stop is SIGKILL.
    REQUIRE(finish(*r, d->start()));
    reaper.pid = d->pid();
    reaper.start = d->pidStartTime();
    CHECK(d->state() == VmState::Running);
    StopOptions force;
    force.force = true;
    REQUIRE(finish(*r, d->stop(force)));
    CHECK(d->state() == VmState::Stopped);
    CHECK(d->stateReason() == "stopped (cloud-hypervisor killed by SIGKILL)");
}

TEST_CASE("a guest that ignores the power button: vm.shutdown, then vmm.shutdown")
{
    ScopedEnv env("FAKE_CHV_ACPI", "ignore");
    auto r = makeReactor();
    Harness h;
    auto [d, reaper] = startVm(*r, h, h.chvConfig("deaf", "0000cc04"));
    auto t0 = std::chrono::steady_clock::now();
    StopOptions opts;
    opts.timeout = 300ms;
    REQUIRE(finish(*r, d->stop(opts)));
    CHECK(std::chrono::steady_clock::now() - t0 < 3s);
    CHECK(d->state() == VmState::Stopped);
    CHECK(d->stateReason() == "stopped");  // vmm.shutdown: a clean exit
}

TEST_CASE("a paused VM is stopped without the power button")
{
    auto r = makeReactor();
    Harness h;
    auto [d, reaper] = startVm(*r, h, h.chvConfig("paused", "0000cc05"));
    REQUIRE(finish(*r, d->suspend()));
    auto t0 = std::chrono::steady_clock::now();
    StopOptions opts;
    opts.timeout = 20s;  // would be waited out if the button were pressed
    REQUIRE(finish(*r, d->stop(opts)));
    CHECK(std::chrono::steady_clock::now() - t0 < 3s);
    CHECK(d->state() == VmState::Stopped);
}

TEST_CASE("a VMM that hangs on every stop request is stopped by signals")
{
    ScopedEnv env("FAKE_CHV_FAULTS", "vm.power-button=hang,vm.shutdown=hang,vmm.shutdown=hang");
    auto r = makeReactor();
    Harness h;
    auto cfg = h.chvConfig("hung", "0000cc06");
    cfg.requestTimeout = 300ms;
    cfg.termGrace = 300ms;
    auto [d, reaper] = startVm(*r, h, cfg);
    auto t0 = std::chrono::steady_clock::now();
    StopOptions opts;
    opts.timeout = 300ms;
    REQUIRE(finish(*r, d->stop(opts)));
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);
    CHECK(d->state() == VmState::Stopped);
    CHECK(d->stateReason() == "stopped (cloud-hypervisor killed by SIGTERM)");
}

TEST_CASE("start fails cleanly when the VMM errs, hangs or dies, and leaves no VMM behind")
{
    struct Case {
        std::string faults;
        ErrorKind kind;
        std::string message;
    };
    auto c = GENERATE(
        Case{"vm.boot=status:500", ErrorKind::Unavailable, "cloud-hypervisor could not boot the VM"},
        Case{"vm.create=status:400", ErrorKind::InvalidArgument,
             "cloud-hypervisor refused the VM's configuration"},
        Case{"vm.create=die", ErrorKind::Unavailable, "cloud-hypervisor refused the VM's configuration"},
        Case{"vm.boot=hang", ErrorKind::Timeout, "cloud-hypervisor could not boot the VM"},
        Case{"vm.info=garbage", ErrorKind::Unavailable,
             "cloud-hypervisor sent a malformed answer to GET vm.info"},
        Case{"vmm.ping=hang", ErrorKind::Timeout, "cloud-hypervisor did not answer vmm.ping within 1000 ms"},
        Case{"start=hang", ErrorKind::Timeout, "cloud-hypervisor did not answer vmm.ping within 1000 ms"});
    CAPTURE(c.faults);
    ScopedEnv env("FAKE_CHV_FAULTS", c.faults);
    auto r = makeReactor();
    Harness h;
    auto cfg = h.chvConfig("broken", "0000cc07");
    cfg.startTimeout = 1s;
    cfg.requestTimeout = 500ms;
    auto d = h.make(*r, cfg, VmState::Stopped);
    std::optional<pid_t> pid;
    std::optional<uint64_t> start;
    d->onStateChange([&](VmState, VmState to, const std::string&) {
        if (to == VmState::Starting) return;
        if (d->pid()) {
            pid = d->pid();
            start = d->pidStartTime();
        }
    });
    auto res = finish(*r, d->start());
    Reaper reaper{pid, start};
    REQUIRE_FALSE(res);
    CHECK(res.error().kind() == c.kind);
    CHECK(res.error().message() == c.message);
    CHECK(d->state() == VmState::Failed);
    REQUIRE(r->runUntil([&] { return !d->pid(); }, 5s));
    if (pid) CHECK(r->runUntil([&] { return processGone(*pid, *start); }, 5s));
}

TEST_CASE("a VMM that exits at start fails the start with what it said")
{
    ScopedEnv env("FAKE_CHV_FAULTS", "start=die");
    auto r = makeReactor();
    Harness h;
    auto cfg = h.chvConfig("early", "0000cc08");
    auto d = h.make(*r, cfg, VmState::Stopped);
    auto res = finish(*r, d->start());
    REQUIRE_FALSE(res);
    CHECK(res.error().message() ==
          "cloud-hypervisor exited at start (cloud-hypervisor exited with code 1 unexpectedly): "
          "fake-chv: injected failure at start");
    CHECK(res.error().hint() == "See " + cfg.paths.vmmLog);
    CHECK(d->state() == VmState::Failed);
}

TEST_CASE("a refused pause leaves the VM running, with the VMM's reason")
{
    ScopedEnv env("FAKE_CHV_FAULTS", "vm.pause=status:500");
    auto r = makeReactor();
    Harness h;
    auto [d, reaper] = startVm(*r, h, h.chvConfig("nopause", "0000cc09"));
    auto res = finish(*r, d->suspend());
    REQUIRE_FALSE(res);
    CHECK(res.error().what().find("injected failure of vm.pause") != std::string::npos);
    CHECK(d->state() == VmState::Running);
    forceStop(*r, *d);
}

TEST_CASE("state changes made behind vmrd's back arrive through the event monitor")
{
    auto r = makeReactor();
    Harness h;
    auto cfg = h.chvConfig("events", "0000cc0a");
    auto [d, reaper] = startVm(*r, h, cfg);
    chv::Client other(*r, cfg.paths.control);
    REQUIRE(finish(*r, other.put("vm.pause")));
    REQUIRE(r->runUntil([&] { return d->state() == VmState::Paused; }, 5s));
    REQUIRE(finish(*r, other.put("vm.resume")));
    REQUIRE(r->runUntil([&] { return d->state() == VmState::Running; }, 5s));
    forceStop(*r, *d);
}

TEST_CASE("the serial console: boot lines, echo, and a poweroff typed in the guest")
{
    auto r = makeReactor();
    Harness h;
    auto cfg = h.chvConfig("console", "0000cc0b");
    auto [d, reaper] = startVm(*r, h, cfg);
    // Output from before the client connected is replayed to it.
    SerialClient serial(cfg.paths.serialSocket);
    std::string boot = serial.readUntil("login: ");
    CHECK(boot.find("fake-chv: booting kernel " + cfg.spec.kernel) != std::string::npos);
    CHECK(boot.find("1 vCPUs, 64 MiB") != std::string::npos);
    serial.write("hello");
    CHECK(serial.readUntil("hello").find("login: hello") != std::string::npos);
    serial.write("\rpoweroff\r");
    REQUIRE(r->runUntil([&] { return d->state() == VmState::Stopped; }, 5s));
    CHECK(d->stateReason() == "guest powered off");
}

TEST_CASE("re-adoption after a vmrd restart: pid identity, then vm.info")
{
    auto r = makeReactor();
    Harness h;
    auto cfg = h.chvConfig("adopt", "0000cc0c");
    auto first = h.make(*r, cfg, VmState::Stopped);
    REQUIRE(finish(*r, first->start()));
    Reaper reaper{first->pid(), first->pidStartTime()};
    REQUIRE(finish(*r, first->suspend()));
    model::VmRuntime rec = runtimeOf(*first);
    rec.state = VmState::Running;  // the record is behind: the VMM's answer wins
    first.reset();                 // vmrd goes away; the VMM stays

    auto second = h.make(*r, cfg, VmState::Stopped);
    REQUIRE(finish(*r, second->adopt(rec)));
    CHECK(second->state() == VmState::Paused);
    CHECK(second->pid() == rec.pid);
    CHECK(second->vmmVersion() == "53.0.0");
    REQUIRE(finish(*r, second->resume()));
    CHECK(second->state() == VmState::Running);
    // Without an event stream the exit still comes through the pidfd.
    REQUIRE(::kill(*rec.pid, SIGUSR1) == 0);
    REQUIRE(r->runUntil([&] { return second->state() == VmState::Stopped; }, 5s));
    CHECK(second->stateReason() == "guest powered off");

    // The pid is gone now: not adopted.
    auto third = h.make(*r, cfg, VmState::Stopped);
    REQUIRE(finish(*r, third->adopt(rec)));
    CHECK(third->state() == VmState::Stopped);
    CHECK(third->stateReason() == ChvDriver::kVanishedReason);
    CHECK_FALSE(third->pid());
}

TEST_CASE("a live pid with another start time is never adopted or signalled")
{
    auto r = makeReactor();
    Harness h;
    FakeVmm bystander(*r);
    model::VmRuntime rec = runningRuntime("0000cc0d", bystander.child().pid());
    *rec.pidStartTime += 1;  // the pid now belongs to another process
    auto d = h.make(*r, h.chvConfig("reused", "0000cc0d"), VmState::Stopped);
    REQUIRE(finish(*r, d->adopt(rec)));
    CHECK(d->state() == VmState::Stopped);
    CHECK(d->stateReason() == ChvDriver::kVanishedReason);
    (void)r->runFor(50ms);
    CHECK_FALSE(bystander.child().exited());
}

TEST_CASE("a VMM whose VM is not booted is adopted as failed, and a forced stop ends it")
{
    auto r = makeReactor();
    Harness h;
    auto cfg = h.chvConfig("unbooted", "0000cc0e");
    FakeVmm vmm(*r, {}, {});
    // Point the driver at this VMM's socket.
    cfg.paths.control = vmm.api();
    chv::Client c(*r, vmm.api());
    REQUIRE(r->runUntil([&] { return exists(vmm.api()); }, 5s));
    model::VmRuntime rec = runningRuntime("0000cc0e", vmm.child().pid());
    auto d = h.make(*r, cfg, VmState::Stopped);
    REQUIRE(finish(*r, d->adopt(rec)));
    CHECK(d->state() == VmState::Failed);
    INFO("reason: " << d->stateReason());
    // vm.info failed with a 404: no VM defined.
    CHECK(d->stateReason().rfind("cloud-hypervisor (pid " + std::to_string(*rec.pid) + ") runs but ", 0) ==
          0);
    CHECK(d->stateReason().find("GET vm.info with 404 Not Found") != std::string::npos);
    StopOptions force;
    force.force = true;
    REQUIRE(finish(*r, d->stop(force)));
    CHECK(d->state() == VmState::Stopped);
}

TEST_CASE("checks before anything is created: network, binary, firmware, KVM")
{
    auto r = makeReactor();
    Harness h;
    auto cfg = h.chvConfig("checked", "0000cc0f");
    std::string vmDir = h.layout.vmDir("checked");

    // preflight() refuses, and so does start(), before it makes anything or changes state.
    auto refused = [&](DriverConfig c) {
        auto d = h.make(*r, std::move(c));
        auto checked = d->preflight();
        REQUIRE_FALSE(checked);
        auto res = finish(*r, d->start());
        REQUIRE_FALSE(res);
        CHECK(res.error().kind() == checked.error().kind());
        CHECK(res.error().message() == checked.error().message());
        CHECK(d->state() == VmState::Prepared);
        CHECK_FALSE(d->pid());
        CHECK_FALSE(exists(vmDir));
        return res.error();
    };

    auto user = cfg;
    user.spec.network.mode = model::NetMode::User;
    Error e = refused(user);
    CHECK(e.kind() == ErrorKind::Unsupported);
    CHECK(e.message() == "cloud-hypervisor has no user-mode networking");
    CHECK(e.hint() == "Use network \"none\" or \"tap\" with backend \"chv\", or backend \"qemu\"");

    auto tap = cfg;
    tap.spec.network.mode = model::NetMode::Tap;
    tap.launch.mac = "52:54:00:00:00:01";
    e = refused(tap);
    CHECK(e.kind() == ErrorKind::InvalidArgument);
    CHECK(e.message() == "Network \"tap\" needs a tap device name");
    CHECK(e.hint() == "Configure the tap device for the VM");
    tap.launch.mac.clear();
    tap.launch.tap = "vmr0000cc0f";
    CHECK(refused(tap).message() == "A tap NIC needs both a tap name and a MAC address");

    auto none = cfg;
    none.launch.machineNone = true;
    e = refused(none);
    CHECK(e.kind() == ErrorKind::Unsupported);
    CHECK(e.message() == "A VM without a machine (-machine none) is a QEMU test mode");

    auto missing = cfg;
    missing.binary = "vmr-no-such-cloud-hypervisor";
    e = refused(missing);
    CHECK(e.kind() == ErrorKind::ToolMissing);
    CHECK(e.message() == "vmr-no-such-cloud-hypervisor not found in PATH");
    CHECK(e.hint() == "Install cloud-hypervisor, or set chv.binary in vmrd.toml to its path");
    missing.binary = h.dir.path() + "/vmlinux";  // exists, not executable
    CHECK(refused(missing).message() ==
          h.dir.path() + "/vmlinux does not exist or is not an executable file");

    auto fw = cfg;
    fw.spec.kernel.clear();
    fw.spec.cmdline.clear();
    fw.spec.firmware = model::Firmware{model::FirmwareKind::File, h.dir.path() + "/hypervisor-fw"};
    // Whether the files are there is not the driver's to check: the manager opens them, with
    // their owner's rights, before it makes a driver for a start (vm/launch_files.h).
    CHECK(h.make(*r, fw)->preflight());

    auto nothing = fw;
    nothing.spec.firmware = model::Firmware{};
    CHECK(refused(nothing).message() == "cloud-hypervisor boots a firmware file or a kernel, not \"bios\"");

    auto kernel = cfg;
    kernel.spec.kernel = h.dir.path() + "/missing-vmlinux";
    CHECK(h.make(*r, kernel)->preflight());

    auto kvm = cfg;
    kvm.requireKvm = true;
    kvm.kvm.sysModule = h.dir.path() + "/sys";
    kvm.kvm.devKvm = h.dir.path() + "/kvm";
    e = refused(kvm);
    CHECK(e.kind() == ErrorKind::Unavailable);
    CHECK(e.message() ==
          "cloud-hypervisor needs KVM from kvm_intel or kvm_amd, and neither module is loaded");
    CHECK(e.hint().find("no software emulation") != std::string::npos);
    // start() checks the same before spawning anything.
    auto d = h.make(*r, kvm, VmState::Stopped);
    auto started = finish(*r, d->start());
    REQUIRE_FALSE(started);
    CHECK(started.error().kind() == ErrorKind::Unavailable);
    CHECK(d->state() == VmState::Stopped);
    CHECK_FALSE(d->pid());
}

TEST_CASE("the KVM check: module, device, API version")
{
    TempDir dir;
    KvmProbePaths p;
    p.sysModule = dir.path() + "/sys";
    p.devKvm = dir.path() + "/kvm";
    CHECK(checkKvm(p).error().message().find("neither module is loaded") != std::string::npos);
    std::filesystem::create_directories(p.sysModule + "/kvm_amd");
    auto noDev = checkKvm(p);
    REQUIRE_FALSE(noDev);
    CHECK(noDev.error().message().find(p.devKvm + " does not open read-write: No such file or directory") !=
          std::string::npos);
    std::ofstream(p.devKvm) << "";
    auto notKvm = checkKvm(p);
    REQUIRE_FALSE(notKvm);
    CHECK(notKvm.error().message().rfind(p.devKvm + " does not answer as KVM", 0) == 0);
}

TEST_CASE("makeDriver gives backend chv a ChvDriver")
{
    auto r = makeReactor();
    Harness h;
    auto made = makeDriver(*r, h.chvConfig("made", "0000cc10"), VmState::Stopped);
    REQUIRE(made);
    CHECK(dynamic_cast<ChvDriver*>(made->get()) != nullptr);
    CHECK((*made)->vmmName() == "cloud-hypervisor");
    CHECK((*made)->state() == VmState::Stopped);
}
