// The console hub end to end: viewers of the tiny test guest's serial console through vmrd
// (vm.console), and console.log across a vmrd restart.

#include "harness.h"

#include <catch2/catch.hpp>

#include <signal.h>

#include <memory>
#include <string>

using namespace vmr::test;

namespace {

// A viewer: a control-socket connection handed over to the VM's console.
struct Viewer {
    RawClient c;
    std::string seen;

    Viewer(const Daemon& d, const std::string& vm, const std::string& mode, int scrollback) : c(d.socket())
    {
        REQUIRE(c.connected());
        REQUIRE(c.send(R"({"jsonrpc":"2.0","id":1,"method":"vm.console","params":{"name":")" + vm +
                       R"(","mode":")" + mode + R"(","scrollback":)" + std::to_string(scrollback) + "}}\n"));
        auto reply = c.readLine(10s);
        REQUIRE(reply);
        INFO(*reply);
        REQUIRE(reply->find("\"result\"") != std::string::npos);
    }

    // Read until `needle` has been seen (anywhere since the attach).
    bool waitFor(const std::string& needle, std::chrono::milliseconds timeout = 30s)
    {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (seen.find(needle) == std::string::npos) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return false;
            auto line = c.readLine(std::min(left, std::chrono::milliseconds(500)));
            if (line) seen += *line + "\n";
        }
        return true;
    }

    bool type(const std::string& text) { return c.send(text); }
};

}  // namespace

TEST_CASE("many viewers on one console: same output, rw input reaches the guest, ro input does not",
          "[console]")
{
    if (!haveGuest()) {
        WARN("no test guest at " << guestDir());
        return;
    }
    TempDir dir;
    Daemon::Config cfg;
    cfg.configToml = sshPortsToml(55000, 50);
    Daemon d(dir, cfg);
    REQUIRE(d.waitReady());
    std::string base = dir / "base.img";
    REQUIRE(run({"/usr/bin/qemu-img", "create", "-f", "raw", base, "64M"}).code == 0);
    auto r =
        d.ctl({"create", "--name", "c", "--image", base, "--kernel", guestDir() + "/vmlinux", "--initrd",
               guestDir() + "/initramfs.cpio.gz", "--cmdline", "console=ttyS0", "--memory", "256", "--start"},
              120s);
    INFO(r.err << d.log());
    REQUIRE(r.code == 0);

    // Two viewers from the start (with whatever scrollback there is) see the same boot.
    auto a = std::make_unique<Viewer>(d, "c", "rw", 1 << 20);
    Viewer b(d, "c", "rw", 1 << 20);
    REQUIRE(a->waitFor("VMR-GUEST-READY", 90s));
    REQUIRE(b.waitFor("VMR-GUEST-READY", 30s));
    CHECK(a->seen.find("Linux version") != std::string::npos);
    CHECK(b.seen.find("Linux version") != std::string::npos);

    // A line typed by one reaches the guest's shell; its output reaches both.
    REQUIRE(a->type("echo hub-$((6*7))\n"));
    CHECK(a->waitFor("hub-42"));
    CHECK(b.waitFor("hub-42"));

    // A read-only viewer sees the output but cannot type.
    Viewer ro(d, "c", "ro", 0);
    REQUIRE(ro.type("echo ro-typed-$((1+1))\n"));
    REQUIRE(b.type("echo marker-$((3+4))\n"));
    CHECK(ro.waitFor("marker-7"));
    CHECK(b.waitFor("marker-7"));
    CHECK(b.seen.find("ro-typed-2") == std::string::npos);
    CHECK(ro.seen.find("ro-typed-2") == std::string::npos);

    // A late viewer gets the scrollback first.
    Viewer late(d, "c", "ro", 65536);
    CHECK(late.waitFor("marker-7", 5s));

    // One viewer leaving changes nothing for the VM or the others.
    a.reset();  // closes its connection
    REQUIRE(b.type("echo after-$((2+3))\n"));
    CHECK(b.waitFor("after-5"));
    CHECK(field(d.ctl({"status", "c"}).out, "state") == "running");

    // console.log is QEMU's own: it holds the whole session, including what was typed.
    std::string log = readFile(dir / "state/vms/c/console.log");
    CHECK(log.find("VMR-GUEST-READY") != std::string::npos);
    CHECK(log.find("hub-42") != std::string::npos);

    // vmrd goes away and comes back: the log is still complete and the console works again.
    d.signal(SIGKILL);
    REQUIRE(d.waitExit(10s));
    Daemon d2(dir, cfg);
    REQUIRE(d2.waitReady());
    REQUIRE(eventually([&] { return field(d2.ctl({"status", "c"}).out, "state") == "running"; }, 10s));
    CHECK(eventually(
        [&] {
            Viewer v(d2, "c", "rw", 0);
            v.type("echo again-$((5+5))\n");
            return v.waitFor("again-10", 5s);
        },
        20s));
    log = readFile(dir / "state/vms/c/console.log");
    CHECK(log.find("hub-42") != std::string::npos);
    CHECK(log.find("again-10") != std::string::npos);
    CHECK(d2.ctl({"destroy", "c"}, 60s).code == 0);
}
