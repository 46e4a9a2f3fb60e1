// The QEMU driver booting the tiny test guest (tests/guest/, docs/test-guest.md) under TCG:
// ready line on console.log, then a graceful stop through the ACPI power button.
// VMR_TEST_GUEST names the built guest (default /tmp/vmr-guest); exit 77 (skip) without it.

#include "driver_helpers.h"
#include "image/qemu_img.h"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

using namespace vmr;
using namespace vmr::vm;
using namespace vmr::vm::test;

TEST_CASE("the tiny guest boots to its ready line and powers off on stop")
{
    const char* env = std::getenv("VMR_TEST_GUEST");
    std::string guest = env != nullptr ? env : "/tmp/vmr-guest";
    if (!haveQemu() || ::access((guest + "/vmlinux").c_str(), R_OK) != 0) {
        std::cerr << "skipped: no qemu-system-x86_64 or no guest in " << guest << " (tests/guest/build.sh)\n";
        std::exit(77);
    }
    auto r = makeReactor();
    DriverHarness h;
    auto cfg = h.config("tiny", "0000bb01", false);
    cfg.spec.memoryMib = 256;
    cfg.launch.accelOptions.tcgTbSizeMib = 32;
    cfg.spec.kernel = guest + "/vmlinux";
    cfg.spec.initrd = guest + "/initramfs.cpio.gz";
    cfg.spec.cmdline = "console=ttyS0 quiet";
    cfg.launch.kernel = LaunchFile(cfg.spec.kernel);
    cfg.launch.initrd = LaunchFile(cfg.spec.initrd);
    cfg.launch.base = LaunchFile(guest + "/disk.qcow2");
    cfg.launch.overlay = LaunchFile(h.layout.vmDir("tiny") + "/overlay.qcow2");
    REQUIRE(vmr::makeDirs(h.layout.vmDir("tiny"), 0700));
    auto base = image::probeBaseFile(cfg.launch.base.path);
    REQUIRE(base);
    REQUIRE(finish(
        *r, image::createOverlay(*r, *base, cfg.launch.base.path, cfg.launch.overlay.path, std::nullopt),
        60s));
    openFiles(cfg, h.layout.vmDir("tiny"));
    auto d = h.make(*r, cfg);

    auto t0 = std::chrono::steady_clock::now();
    REQUIRE(finish(*r, d->start()));
    CHECK(d->state() == VmState::Running);
    // The file fills without any loop event: look at it between short turns of the loop.
    auto hasReady = [&] {
        return vmr::test::readFile(cfg.paths.consoleLog).find("VMR-GUEST-READY") != std::string::npos;
    };
    while (!hasReady() && std::chrono::steady_clock::now() - t0 < 60s) (void)r->runFor(100ms);
    bool ready = hasReady();
    INFO(vmr::test::readFile(cfg.paths.consoleLog));
    REQUIRE(ready);
    auto booted = std::chrono::steady_clock::now() - t0;

    REQUIRE(finish(*r, d->stop(StopOptions{false, 20s})));
    auto stopped = std::chrono::steady_clock::now() - t0 - booted;
    CHECK(d->state() == VmState::Stopped);
    CHECK(d->stateReason() == "guest powered off");
    CHECK(h.saw(VmState::Running, VmState::Stopping));
    // Powered off by the guest, not by the SIGTERM fallback.
    CHECK(stopped < 15s);
    std::cerr << "boot to ready " << std::chrono::duration_cast<std::chrono::milliseconds>(booted).count()
              << " ms, stop " << std::chrono::duration_cast<std::chrono::milliseconds>(stopped).count()
              << " ms\n";
}
