// The QEMU driver against a real qemu-system-x86_64 with `-machine none` (no guest, ~50 ms to
// start): lifecycle, QMP events, the pidfd watch, the stop sequence and re-adoption.

#include "base/proc.h"
#include "driver_helpers.h"
#include "vm/qemu_driver.h"

#include <signal.h>
#include <sys/stat.h>

using namespace vmr;
using namespace vmr::vm;
using namespace vmr::vm::test;

namespace {

bool exists(const std::string& path)
{
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

// What a record keeps of a driver's process.
model::VmRuntime runtimeOf(const Driver& d)
{
    model::VmRuntime rt;
    rt.id = d.config().id;
    rt.state = d.state();
    rt.stateReason = d.stateReason();
    if (d.pid()) rt.pid = *d.pid();
    rt.pidStartTime = d.pidStartTime();
    return rt;
}

#define REQUIRE_QEMU()                                         \
    do {                                                       \
        if (!haveQemu()) {                                     \
            WARN("qemu-system-x86_64 not installed: skipped"); \
            return;                                            \
        }                                                      \
    } while (0)

}  // namespace

TEST_CASE("start, suspend, resume and force destroy")
{
    REQUIRE_QEMU();
    auto r = makeReactor();
    DriverHarness h;
    auto cfg = h.config("life", "0000aa01");
    auto d = h.make(*r, cfg);

    CHECK(d->state() == VmState::Prepared);
    REQUIRE(finish(*r, d->start()));
    CHECK(d->state() == VmState::Running);
    CHECK(h.saw(VmState::Prepared, VmState::Starting));
    CHECK(h.saw(VmState::Starting, VmState::Running));
    REQUIRE(d->pid());
    auto started = vmr::processStartTime(*d->pid());
    REQUIRE(started);
    CHECK(d->pidStartTime() == *started);
    CHECK(exists(cfg.paths.control));

    auto again = finish(*r, d->start());
    REQUIRE_FALSE(again);
    CHECK(again.error().kind() == ErrorKind::VmBadState);

    REQUIRE(finish(*r, d->suspend()));
    CHECK(d->state() == VmState::Paused);
    REQUIRE(finish(*r, d->refreshState()));
    CHECK(d->state() == VmState::Paused);  // QEMU agrees

    REQUIRE(finish(*r, d->resume()));
    CHECK(d->state() == VmState::Running);
    auto twice = finish(*r, d->resume());
    REQUIRE_FALSE(twice);
    CHECK(twice.error().kind() == ErrorKind::VmBadState);
    CHECK(twice.error().message() == "VM \"life\" is running, not paused");
    CHECK(twice.error().hint() == "Nothing to do");

    // The STOP and RESUME events arrive too; with the command's own update they make no
    // extra transitions: exactly one move each way.
    int toPaused = 0, toRunning = 0;
    for (const auto& c : h.changes) {
        toPaused += c.to == VmState::Paused;
        toRunning += c.to == VmState::Running;
    }
    CHECK(toPaused == 1);
    CHECK(toRunning == 2);

    pid_t pid = *d->pid();
    REQUIRE(finish(*r, d->destroy()));
    CHECK(d->state() == VmState::Destroyed);
    CHECK(h.saw(VmState::Stopping, VmState::Stopped));
    CHECK_FALSE(d->pid());
    CHECK_FALSE(exists(cfg.paths.control));
    CHECK_FALSE(exists(cfg.paths.serialSocket));
    auto gone = vmr::processStartTime(pid);
    CHECK((!gone || *gone != *started));
}

TEST_CASE("QEMU killed with SIGKILL is noticed at once, with the reason")
{
    REQUIRE_QEMU();
    auto r = makeReactor();
    DriverHarness h;
    auto d = h.make(*r, h.config("killed", "0000aa02"), VmState::Stopped);
    REQUIRE(finish(*r, d->start()));
    REQUIRE(d->pid());
    REQUIRE(::kill(*d->pid(), SIGKILL) == 0);
    auto t0 = std::chrono::steady_clock::now();
    REQUIRE(r->runUntil([&] { return d->state() == VmState::Failed; }, 5s));
    CHECK(std::chrono::steady_clock::now() - t0 < 1s);
    CHECK(d->stateReason() == "QEMU killed by SIGKILL unexpectedly");
    CHECK_FALSE(d->pid());
    // A failed VM starts again.
    REQUIRE(finish(*r, d->start()));
    CHECK(d->state() == VmState::Running);
    REQUIRE(finish(*r, d->stop(StopOptions{true, {}})));
    CHECK(d->state() == VmState::Stopped);
    CHECK(d->stateReason() == "stopped (QEMU killed by SIGKILL)");
}

TEST_CASE("graceful stop: power button, then SIGTERM when the guest does not react")
{
    REQUIRE_QEMU();
    auto r = makeReactor();
    DriverHarness h;
    auto cfg = h.config("nobody", "0000aa03");
    auto d = h.make(*r, cfg, VmState::Stopped);
    REQUIRE(finish(*r, d->start()));
    // -machine none has no ACPI: nothing powers off, so the sequence goes on to SIGTERM.
    auto t0 = std::chrono::steady_clock::now();
    REQUIRE(finish(*r, d->stop(StopOptions{false, 300ms})));
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);
    CHECK(d->state() == VmState::Stopped);
    CHECK(d->stateReason() == "QEMU terminated by a signal");  // its SHUTDOWN event (host-signal)
    CHECK(h.saw(VmState::Running, VmState::Stopping));
}

TEST_CASE("a QEMU that cannot start fails the start with its message")
{
    REQUIRE_QEMU();
    auto r = makeReactor();
    DriverHarness h;
    auto cfg = h.config("broken", "0000aa04", false);
    // Not a BIOS (its size is no multiple of 64 KiB): QEMU exits 1 and says why on stderr.
    vmr::test::writeFile(h.dir / "bad-bios.bin", "not a bios");
    cfg.launch.bios = LaunchFile(h.dir / "bad-bios.bin");
    openFiles(cfg, h.dir.path());
    auto d = h.make(*r, cfg, VmState::Stopped);
    auto res = finish(*r, d->start());
    REQUIRE_FALSE(res);
    CHECK(d->state() == VmState::Failed);
    INFO(res.error().message());
    CHECK(res.error().message().rfind("QEMU exited at start (QEMU exited with code 1 unexpectedly): ", 0) ==
          0);
    CHECK(res.error().message().find("could not load PC BIOS") != std::string::npos);
    CHECK(d->stateReason() == res.error().message());
    CHECK_FALSE(d->pid());
}

TEST_CASE("a second driver re-adopts a running QEMU (vmrd restart)")
{
    REQUIRE_QEMU();
    auto r = makeReactor();
    DriverHarness h;
    auto cfg = h.config("again", "0000aa05");
    auto first = h.make(*r, cfg, VmState::Stopped);
    REQUIRE(finish(*r, first->start()));
    REQUIRE(finish(*r, first->suspend()));
    model::VmRuntime rec = runtimeOf(*first);
    pid_t pid = *first->pid();
    first.reset();  // the daemon goes away; QEMU stays

    auto second = h.make(*r, cfg, VmState::Stopped);
    REQUIRE(finish(*r, second->adopt(rec)));
    CHECK(second->state() == VmState::Paused);  // from query-status, not from the record
    CHECK(second->pid() == pid);
    REQUIRE(finish(*r, second->resume()));
    CHECK(second->state() == VmState::Running);
    // The adopted process is watched through its pidfd too.
    REQUIRE(::kill(pid, SIGKILL) == 0);
    REQUIRE(r->runUntil([&] { return !second->pid(); }, 5s));
    CHECK(second->state() == VmState::Failed);
}

TEST_CASE("a record whose pid start time differs is never adopted")
{
    REQUIRE_QEMU();
    auto r = makeReactor();
    DriverHarness h;
    auto cfg = h.config("reused", "0000aa06");
    auto owner = h.make(*r, cfg, VmState::Stopped);
    REQUIRE(finish(*r, owner->start()));
    model::VmRuntime rec = runtimeOf(*owner);
    *rec.pidStartTime += 1;  // the same pid, another process

    auto other = h.make(*r, cfg, VmState::Stopped);
    REQUIRE(finish(*r, other->adopt(rec)));
    CHECK(other->state() == VmState::Stopped);
    CHECK(other->stateReason() == Driver::kVanishedReason);
    CHECK_FALSE(other->pid());
    // The process was left alone.
    (void)r->runFor(200ms);
    CHECK(owner->state() == VmState::Running);
    REQUIRE(finish(*r, owner->refreshState()));
    CHECK(owner->state() == VmState::Running);

    // A pid that is gone altogether: the same outcome.
    REQUIRE(finish(*r, owner->stop(StopOptions{true, {}})));
    model::VmRuntime dead = runtimeOf(*other);
    dead.state = VmState::Running;
    dead.pid = rec.pid;
    dead.pidStartTime = *rec.pidStartTime - 1;
    auto third = h.make(*r, cfg, VmState::Stopped);
    REQUIRE(finish(*r, third->adopt(dead)));
    CHECK(third->state() == VmState::Stopped);
    CHECK(third->stateReason() == Driver::kVanishedReason);
    CHECK(h.saw(VmState::Running, VmState::Stopped));
}

TEST_CASE("a QEMU that died while vmrd was down is not adopted, even as a zombie")
{
    REQUIRE_QEMU();
    auto r = makeReactor();
    DriverHarness h;
    auto cfg = h.config("zombie", "0000aa07");
    auto first = h.make(*r, cfg, VmState::Stopped);
    REQUIRE(finish(*r, first->start()));
    model::VmRuntime rec = runtimeOf(*first);
    pid_t pid = *first->pid();
    first.reset();
    // Killed, and not reaped yet (the loop does not turn): a zombie, which is dead.
    REQUIRE(::kill(pid, SIGKILL) == 0);
    REQUIRE(vmr::test::eventuallyTrue([&] { return vmr::isZombie(pid); }, 5s));
    auto second = h.make(*r, cfg, VmState::Stopped);
    REQUIRE(finish(*r, second->adopt(rec)));
    CHECK(second->state() == VmState::Stopped);
    CHECK(second->stateReason() == Driver::kVanishedReason);
    CHECK_FALSE(second->pid());
}
