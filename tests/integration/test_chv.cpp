// cloud-hypervisor VMs through vmrd and vmrctl, against the stand-in fake-chv
// ($VMR_FAKE_CHV; docs/chv.md): the same lifecycle, console and re-adoption as for QEMU.

#include "harness.h"

#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

using namespace vmr::test;

namespace {

std::string fakeChv()
{
    const char* env = std::getenv("VMR_FAKE_CHV");
    REQUIRE(env != nullptr);
    return env;
}

Daemon::Config chvConfig()
{
    Daemon::Config cfg;
    cfg.configToml = "[chv]\nbinary = \"" + fakeChv() + "\"\nrequire_kvm = false\n";
    return cfg;
}

struct Fixture {
    TempDir dir;
    Daemon d{dir, chvConfig()};
    std::string base = dir / "base.img";
    std::string kernel = dir / "vmlinux";

    Fixture()
    {
        REQUIRE(d.waitReady());
        REQUIRE(run({"/usr/bin/qemu-img", "create", "-f", "raw", base, "64M"}).code == 0);
        writeFile(kernel, "not really a kernel: fake-chv only checks that it is a file\n");
    }

    ProcResult create(const std::string& name, std::vector<std::string> extra = {})
    {
        std::vector<std::string> args = {"create",  "--name",   name,       "--backend", "chv",
                                         "--image", base,       "--kernel", kernel,      "--network",
                                         "none",    "--memory", "256"};
        args.insert(args.end(), extra.begin(), extra.end());
        return d.ctl(args, 60s);
    }
};

}  // namespace

TEST_CASE("a cloud-hypervisor VM's life through vmrd", "[chv]")
{
    Fixture f;
    auto r = f.create("c1", {"--start"});
    INFO(r.err << f.d.log());
    REQUIRE(r.code == 0);
    auto status = f.d.ctl({"status", "c1"}).out;
    CHECK(field(status, "backend") == "chv");
    CHECK(field(status, "state") == "running");
    CHECK(!field(status, "pid").empty());
    CHECK(f.d.ctl({"suspend", "c1"}).code == 0);
    CHECK(field(f.d.ctl({"status", "c1"}).out, "state") == "paused");
    CHECK(f.d.ctl({"resume", "c1"}).code == 0);
    CHECK(field(f.d.ctl({"status", "c1"}).out, "state") == "running");
    // The serial console goes through the hub, which writes console.log itself for chv.
    CHECK(eventually([&] { return !readFile(f.dir / "state/vms/c1/console.log").empty(); }, 10s));
    auto stopped = f.d.ctl({"stop", "c1", "--timeout", "5"}, 60s);
    CHECK(stopped.code == 0);
    CHECK(field(f.d.ctl({"status", "c1"}).out, "state") == "stopped");
    CHECK(f.d.ctl({"start", "c1"}, 60s).code == 0);
    // A guest that powers itself off (fake-chv: SIGUSR1) is seen on the event monitor.
    std::string pid = field(f.d.ctl({"status", "c1"}).out, "pid");
    REQUIRE(!pid.empty());
    ::kill(std::stoi(pid), SIGUSR1);  // a process this test started through vmrd
    CHECK(eventually([&] { return field(f.d.ctl({"status", "c1"}).out, "state") == "stopped"; }, 10s));
    CHECK(field(f.d.ctl({"status", "c1"}).out, "state_reason").find("guest") != std::string::npos);
    CHECK(f.d.ctl({"destroy", "c1"}, 60s).code == 0);
    CHECK(!std::filesystem::exists(f.dir / "state/vms/c1"));
}

TEST_CASE("cloud-hypervisor refusals: user networking, bad firmware, missing binary", "[chv]")
{
    Fixture f;
    auto user = f.d.ctl({"--json", "create", "--name", "u", "--backend", "chv", "--image", f.base, "--kernel",
                         f.kernel, "--network", "user"});
    CHECK(user.code == 1);
    CHECK(user.err.find("user-mode networking") != std::string::npos);
    CHECK(user.err.find("none") != std::string::npos);
    auto fw = f.d.ctl({"create", "--name", "u", "--backend", "chv", "--image", f.base, "--firmware", "uefi",
                       "--network", "none"});
    CHECK(fw.code == 1);
    CHECK(fw.err.find("firmware file") != std::string::npos);
    auto backend = f.d.ctl({"create", "--name", "u", "--backend", "xen", "--image", f.base});
    CHECK(backend.code == 1);
    CHECK(!std::filesystem::exists(f.dir / "state/vms/u"));

    TempDir dir2;
    Daemon::Config cfg;
    cfg.configToml = "[chv]\nbinary = \"/nonexistent/cloud-hypervisor\"\nrequire_kvm = false\n";
    Daemon d2(dir2, cfg);
    REQUIRE(d2.waitReady());
    auto missing = d2.ctl({"--json", "create", "--name", "m", "--backend", "chv", "--image", f.base,
                           "--kernel", f.kernel, "--network", "none"});
    CHECK(missing.code == 1);
    CHECK(missing.err.find("cloud-hypervisor") != std::string::npos);
    CHECK(!std::filesystem::exists(dir2 / "state/vms/m"));
}

TEST_CASE("a cloud-hypervisor VM survives kill -9 of vmrd and is re-adopted", "[chv]")
{
    TempDir dir;
    std::string pid;
    std::string base = dir / "base.img";
    REQUIRE(run({"/usr/bin/qemu-img", "create", "-f", "raw", base, "64M"}).code == 0);
    writeFile(dir / "vmlinux", "kernel\n");
    {
        Daemon d(dir, chvConfig());
        REQUIRE(d.waitReady());
        auto r = d.ctl({"create", "--name", "keep", "--backend", "chv", "--image", base, "--kernel",
                        dir / "vmlinux", "--network", "none", "--start"},
                       60s);
        INFO(r.err << d.log());
        REQUIRE(r.code == 0);
        pid = field(d.ctl({"status", "keep"}).out, "pid");
        REQUIRE(!pid.empty());
        d.signal(SIGKILL);
        REQUIRE(d.waitExit(10s));
    }
    REQUIRE(::kill(std::stoi(pid), 0) == 0);  // the VMM kept running without vmrd
    Daemon d(dir, chvConfig());
    REQUIRE(d.waitReady());
    INFO(d.log());
    CHECK(eventually([&] { return field(d.ctl({"status", "keep"}).out, "state") == "running"; }, 10s));
    CHECK(field(d.ctl({"status", "keep"}).out, "pid") == pid);
    CHECK(d.ctl({"suspend", "keep"}).code == 0);  // the API socket answers the new vmrd
    CHECK(d.ctl({"resume", "keep"}).code == 0);
    // After re-adoption there is no event stream (its socket died with the old vmrd) and the
    // VMM is not vmrd's child, so an exit is seen at once through the pidfd but its cause is not
    // known: the VM is no longer running and the reason says so.
    ::kill(std::stoi(pid), SIGUSR1);  // fake-chv: the guest powers off; a process we started
    CHECK(eventually([&] { return field(d.ctl({"status", "keep"}).out, "state") != "running"; }, 10s));
    auto after = d.ctl({"status", "keep"}).out;
    INFO(after);
    CHECK(field(after, "pid") == "-");
    CHECK(field(after, "state_reason").find("exited") != std::string::npos);
    CHECK(d.ctl({"destroy", "keep"}).code == 0);
}
