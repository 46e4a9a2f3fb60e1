// vm::Manager on a temp store with real qemu-img, and real QEMU booting the tiny guest
// (VMR_TEST_GUEST, default /tmp/vmr-guest; those cases WARN and skip when it is not built).

#include "base/proc.h"
#include "driver_helpers.h"
#include "image/qemu_img.h"
#include "vm/firmware.h"
#include "vm/manager.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

using namespace vmr;
using namespace vmr::vm;
using namespace vmr::vm::test;

namespace {

bool exists(const std::string& path)
{
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

bool haveQemuImg()
{
    return std::system("qemu-img --version >/dev/null 2>&1") == 0;
}

// A temp state and runtime folder with a 64 MiB raw base image.
struct Env {
    TempDir dir;
    config::Settings settings = DriverHarness::settings(dir.path());
    store::Layout layout{settings};
    std::string base = dir.path() + "/base.img";
    std::vector<StateEvent> events;

    Env()
    {
        std::string cmd = "qemu-img create -q -f raw " + base + " 64M";
        REQUIRE(std::system(cmd.c_str()) == 0);
    }

    store::Store openStore()
    {
        auto s = store::Store::open(layout);
        REQUIRE(s);
        return std::move(*s);
    }

    std::unique_ptr<image::Cache> cache;

    std::unique_ptr<Manager> manager(Reactor& r, store::Store& s)
    {
        image::CacheConfig cc;
        cc.dir = layout.imagesDir();
        cache = std::make_unique<image::Cache>(r, cc);
        return std::make_unique<Manager>(r, settings, s, *cache,
                                         [this](const StateEvent& e) { events.push_back(e); });
    }

    size_t entriesIn(const std::string& path) const
    {
        size_t n = 0;
        for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(path)) ++n;
        return n;
    }
};

// Kills a QEMU the test left behind (a failed REQUIRE), never a reused pid.
struct ProcessReaper {
    std::optional<pid_t> pid;
    uint64_t startTime = 0;
    ~ProcessReaper()
    {
        if (!pid) return;
        auto t = vmr::processStartTime(*pid);
        if (t && *t == startTime) ::kill(*pid, SIGKILL);
    }
};

std::string join(const std::vector<std::string>& words)
{
    std::string out;
    for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
    return out;
}

model::VmSpec specFor(const std::string& name, const std::string& image)
{
    model::VmSpec spec;
    spec.name = name;
    spec.image = image;
    spec.memoryMib = 128;
    return spec;
}

}  // namespace

TEST_CASE("create makes a record and an overlay; failures leave nothing behind")
{
    if (!haveQemuImg()) {
        WARN("qemu-img not installed: skipped");
        return;
    }
    auto r = makeReactor();
    Env env;
    env.settings.network.sshPortRange = {47022, 47023};  // two ports, to see leaks
    auto store = env.openStore();
    auto m = env.manager(*r, store);

    auto made = finish(*r, m->create(specFor("alpha", env.base)));
    REQUIRE(made);
    CHECK(made->runtime.state == VmState::Prepared);
    CHECK(made->spec.image == env.base);
    REQUIRE(made->runtime.sshPort);
    CHECK(*made->runtime.sshPort >= env.settings.network.sshPortRange.first);
    CHECK(*made->runtime.sshPort <= env.settings.network.sshPortRange.last);
    CHECK(made->runtime.mac.rfind("52:54:00:", 0) == 0);
    auto onDisk = store.load("alpha");
    REQUIRE(onDisk);
    CHECK(*onDisk == *made);
    std::string overlay = env.layout.vmDir("alpha") + "/overlay.qcow2";
    auto info = finish(*r, image::inspect(*r, overlay));
    REQUIRE(info);
    CHECK(info->format == "qcow2");
    CHECK(info->backingFilename == env.base);
    CHECK(info->virtualSize == 64ull << 20);
    REQUIRE(m->find("alpha") != nullptr);
    CHECK(m->find("alpha")->runtime.id == made->runtime.id);

    SECTION("a duplicate name is refused and the first VM is untouched")
    {
        auto again = finish(*r, m->create(specFor("alpha", env.base)));
        REQUIRE_FALSE(again);
        CHECK(again.error().kind() == ErrorKind::VmExists);
        auto still = store.load("alpha");
        REQUIRE(still);
        CHECK(*still == *made);
        CHECK(exists(overlay));
        CHECK(m->list().size() == 1);
    }
    SECTION("a missing image is ImageNotFound and leaves nothing on disk")
    {
        auto missing = finish(*r, m->create(specFor("beta", env.dir.path() + "/nope.img")));
        REQUIRE_FALSE(missing);
        CHECK(missing.error().kind() == ErrorKind::ImageNotFound);
        CHECK_FALSE(missing.error().hint().empty());
        CHECK_FALSE(exists(env.layout.vmDir("beta")));
        CHECK(m->find("beta") == nullptr);
    }
    SECTION("QEMU missing is ToolMissing, checked before anything is made")
    {
        env.settings.qemu.binary = "qemu-system-none-such";
        auto failed = finish(*r, m->create(specFor("beta", env.base)));
        REQUIRE_FALSE(failed);
        CHECK(failed.error().kind() == ErrorKind::ToolMissing);
        CHECK(failed.error().message().find("qemu-system-none-such") != std::string::npos);
        CHECK(failed.error().hint().find("qemu-system-x86") != std::string::npos);
        CHECK_FALSE(exists(env.layout.vmDir("beta")));
        env.settings.qemu.binary = "/nonexistent/qemu";
        auto byPath = finish(*r, m->create(specFor("beta", env.base)));
        REQUIRE_FALSE(byPath);
        CHECK(byPath.error().kind() == ErrorKind::ToolMissing);
        CHECK_FALSE(exists(env.layout.vmDir("beta")));
    }
    SECTION("firmware: unknown names, missing files and missing boot files are refused up front")
    {
        auto spec = specFor("beta", env.base);
        spec.firmware = model::Firmware{model::FirmwareKind::File, "coreboot"};
        auto unknown = finish(*r, m->create(spec));
        REQUIRE_FALSE(unknown);
        CHECK(unknown.error().kind() == ErrorKind::InvalidArgument);
        spec.firmware = model::Firmware{model::FirmwareKind::File, env.dir.path() + "/no-such.fd"};
        auto noFile = finish(*r, m->create(spec));
        REQUIRE_FALSE(noFile);
        CHECK(noFile.error().kind() == ErrorKind::NotFound);
        spec.firmware = {};
        spec.kernel = env.dir.path() + "/vmlinuz-missing";
        auto noKernel = finish(*r, m->create(spec));
        REQUIRE_FALSE(noKernel);
        CHECK(noKernel.error().kind() == ErrorKind::NotFound);
        CHECK_FALSE(exists(env.layout.vmDir("beta")));
    }
    SECTION("UEFI: the VM gets its own copy of OVMF's variable store")
    {
        // scripts/lib.sh installs ovmf with QEMU.
        auto fw = resolveFirmware("uefi");
        REQUIRE(fw);
        auto spec = specFor("beta", env.base);
        spec.firmware.kind = model::FirmwareKind::Uefi;
        auto made2 = finish(*r, m->create(spec));
        REQUIRE(made2);
        CHECK(made2->spec.firmware.kind == model::FirmwareKind::Uefi);
        Manager::Paths p = m->pathsOf(*made2);
        REQUIRE_FALSE(p.uefiVars.empty());
        struct stat a {
        }, b{};
        REQUIRE(::stat(p.uefiVars.c_str(), &a) == 0);
        REQUIRE(::stat(fw->uefiVarsTemplate.c_str(), &b) == 0);
        CHECK(a.st_size == b.st_size);
        CHECK((a.st_mode & 0777) == 0600);
    }
    SECTION("a failing overlay (unreadable qcow2) removes the folder and frees the port")
    {
        std::string broken = env.dir.path() + "/broken.qcow2";
        {
            std::ofstream out(broken, std::ios::binary);
            out.write("QFI\xfb\0\0\0\3", 8);
            out << std::string(200, '\0');
        }
        auto failed = finish(*r, m->create(specFor("gamma", broken)));
        REQUIRE_FALSE(failed);
        CHECK_FALSE(exists(env.layout.vmDir("gamma")));
        CHECK(env.entriesIn(env.layout.vmsDir()) == 1);
        CHECK(m->find("gamma") == nullptr);
        // The range has two ports: delta gets one only if gamma's went back to the allocator.
        auto next = finish(*r, m->create(specFor("delta", env.base)));
        REQUIRE(next);
        REQUIRE(next->runtime.sshPort);
        CHECK(*next->runtime.sshPort != *made->runtime.sshPort);
        auto full = finish(*r, m->create(specFor("epsilon", env.base)));
        REQUIRE_FALSE(full);
        CHECK(full.error().kind() == ErrorKind::Busy);
        CHECK_FALSE(exists(env.layout.vmDir("epsilon")));
    }
    SECTION("bad names, networks and unknown VMs")
    {
        auto bad = finish(*r, m->create(specFor("../evil", env.base)));
        REQUIRE_FALSE(bad);
        CHECK(bad.error().kind() == ErrorKind::InvalidName);
        auto tap = specFor("t", env.base);
        tap.network.mode = model::NetMode::Tap;
        auto unsupported = finish(*r, m->create(tap));
        REQUIRE_FALSE(unsupported);
        CHECK(unsupported.error().kind() == ErrorKind::Unsupported);
        CHECK_FALSE(exists(env.layout.vmDir("t")));
        auto unknown = finish(*r, m->start("ghost"));
        REQUIRE_FALSE(unknown);
        CHECK(unknown.error().kind() == ErrorKind::VmNotFound);
        CHECK(unknown.error().hint() == "Run `vmrctl list` to see VMs");
        auto notRunning = finish(*r, m->suspend("alpha"));
        REQUIRE_FALSE(notRunning);
        CHECK(notRunning.error().kind() == ErrorKind::VmBadState);
        CHECK(env.entriesIn(env.layout.vmsDir()) == 1);
    }
    SECTION("list is sorted and destroy of a prepared VM removes its folder")
    {
        REQUIRE(finish(*r, m->create(specFor("Aardvark", env.base))));
        auto all = m->list();
        REQUIRE(all.size() == 2);
        CHECK(all[0]->name() == "Aardvark");
        CHECK(all[1]->name() == "alpha");
        REQUIRE(finish(*r, m->destroy("alpha")));
        CHECK_FALSE(exists(env.layout.vmDir("alpha")));
        CHECK(m->find("alpha") == nullptr);
        CHECK(m->list().size() == 1);
    }
}

TEST_CASE("start, suspend, resume, re-adoption by a second manager, stop and destroy")
{
    std::string guest = vmr::test::guestDir();
    if (!haveQemu() || !haveQemuImg() || ::access((guest + "/vmlinux").c_str(), R_OK) != 0) {
        WARN("no qemu-system-x86_64, qemu-img or tiny guest in " << guest
                                                                 << " (tests/guest/build.sh): skipped");
        return;
    }
    auto r = makeReactor();
    Env env;
    env.settings.qemu.accel = "tcg";
    // Its own ports: the same test on the other backend may run at the same time, and two QEMUs
    // cannot forward the same host port (a port is checked free at create, bound at start).
    auto first = static_cast<uint16_t>(20000 + (::getpid() % 2000) * 16);
    env.settings.network.sshPortRange = {first, static_cast<uint16_t>(first + 15)};
    auto store = env.openStore();
    auto m = env.manager(*r, store);
    ProcessReaper reaper;

    auto spec = specFor("tiny", env.base);
    spec.memoryMib = 256;
    spec.kernel = guest + "/vmlinux";
    spec.initrd = guest + "/initramfs.cpio.gz";
    spec.cmdline = "console=ttyS0 quiet";
    REQUIRE(finish(*r, m->create(spec)));

    auto started = finish(*r, m->start("tiny"));
    if (!started) FAIL(started.error().what());
    CHECK(started->runtime.state == VmState::Running);
    REQUIRE(started->runtime.pid);
    REQUIRE(started->runtime.pidStartTime);
    reaper.pid = *started->runtime.pid;
    reaper.startTime = *started->runtime.pidStartTime;
    auto onDisk = store.load("tiny");
    REQUIRE(onDisk);
    CHECK(onDisk->runtime.state == VmState::Running);
    CHECK(onDisk->runtime.pid == started->runtime.pid);
    CHECK(onDisk->runtime.pidStartTime == started->runtime.pidStartTime);

    auto twice = finish(*r, m->start("tiny"));
    REQUIRE_FALSE(twice);
    CHECK(twice.error().kind() == ErrorKind::VmBadState);

    auto paused = finish(*r, m->suspend("tiny"));
    REQUIRE(paused);
    CHECK(paused->runtime.state == VmState::Paused);
    CHECK(store.load("tiny")->runtime.state == VmState::Paused);
    auto resumed = finish(*r, m->resume("tiny"));
    REQUIRE(resumed);
    CHECK(resumed->runtime.state == VmState::Running);

    // The first four events, in order.
    REQUIRE(env.events.size() >= 4);
    CHECK(env.events[0] == StateEvent{"tiny", VmState::Preparing, VmState::Prepared, "created"});
    env.events.erase(env.events.begin());
    CHECK(env.events[0] == StateEvent{"tiny", VmState::Prepared, VmState::Starting, "starting"});
    CHECK(env.events[1].from == VmState::Starting);
    CHECK(env.events[1].to == VmState::Running);
    CHECK(env.events[2].from == VmState::Running);
    CHECK(env.events[2].to == VmState::Paused);
    CHECK(env.events[3].from == VmState::Paused);
    CHECK(env.events[3].to == VmState::Running);

    // vmrd restarts: the manager goes, QEMU stays; a new manager adopts it from a store scan.
    m.reset();
    CHECK(::kill(*started->runtime.pid, 0) == 0);
    env.events.clear();
    auto scan = store.scan();
    REQUIRE(scan);
    REQUIRE(scan->records.size() == 1);
    auto m2 = env.manager(*r, store);
    REQUIRE(finish(*r, m2->adoptAll(scan->records)));
    const store::VmRecord* rec = m2->find("tiny");
    REQUIRE(rec != nullptr);
    CHECK(rec->runtime.state == VmState::Running);
    CHECK(rec->runtime.pid == started->runtime.pid);

    // The adopted VM is controlled by the new manager, and its exit is seen through the pidfd.
    auto stopped = finish(*r, m2->stop("tiny", StopOptions{false, std::chrono::seconds(3)}), 60s);
    REQUIRE(stopped);
    CHECK(stopped->runtime.state == VmState::Stopped);
    CHECK_FALSE(stopped->runtime.pid);
    CHECK(store.load("tiny")->runtime.state == VmState::Stopped);
    CHECK_FALSE(store.load("tiny")->runtime.pid);
    reaper.pid.reset();

    REQUIRE(finish(*r, m2->destroy("tiny")));
    CHECK_FALSE(exists(env.layout.vmDir("tiny")));
    CHECK(m2->find("tiny") == nullptr);
    auto gone = finish(*r, m2->stop("tiny", StopOptions{true, std::chrono::seconds(1)}));
    REQUIRE_FALSE(gone);
    CHECK(gone.error().kind() == ErrorKind::VmNotFound);

    std::vector<std::string> path;
    for (const auto& e : env.events)
        path.push_back(std::string(stateName(e.from)) + ">" + std::string(stateName(e.to)));
    INFO("events after adoption: " << join(path));
    REQUIRE(env.events.size() >= 3);
    CHECK(env.events[env.events.size() - 3].to == VmState::Stopping);
    CHECK(env.events[env.events.size() - 2].to == VmState::Stopped);
    CHECK(env.events.back().to == VmState::Destroyed);
    for (const auto& e : env.events) CHECK(e.vm == "tiny");
}
