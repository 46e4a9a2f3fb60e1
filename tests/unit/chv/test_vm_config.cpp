// VmConfig from a VM's spec (exact JSON), its refusals, and the vm.info / vmm.ping answers.

#include "chv/vm_config.h"

#include <catch2/catch.hpp>

#include <string>

using namespace vmr;
using namespace vmr::chv;

namespace {

VmConfigSpec kernelSpec()
{
    VmConfigSpec s;
    s.vcpus = 2;
    s.memoryMib = 256;
    s.kernel = "/k/vmlinux";
    s.initramfs = "/k/initrd";
    s.cmdline = "console=ttyS0";
    s.serialSocket = "/run/vmr/vms/0a1b2c3d.serial";
    return s;
}

std::string refusal(const VmConfigSpec& s)
{
    auto r = buildVmConfig(s);
    if (r) FAIL("should have been refused: " << *r);
    CHECK(r.error().kind() == ErrorKind::InvalidArgument);
    return r.error().message();
}

}  // namespace

TEST_CASE("kernel boot without disk or NIC")
{
    auto r = buildVmConfig(kernelSpec());
    REQUIRE(r);
    CHECK(
        *r ==
        R"({"cpus":{"boot_vcpus":2,"max_vcpus":2},"memory":{"size":268435456},)"
        R"("payload":{"kernel":"/k/vmlinux","initramfs":"/k/initrd","cmdline":"console=ttyS0"},)"
        R"("rng":{"src":"/dev/urandom"},"serial":{"mode":"Socket","socket":"/run/vmr/vms/0a1b2c3d.serial"},)"
        R"("console":{"mode":"Off"}})");
}

TEST_CASE("firmware boot with overlay, seed and a tap NIC")
{
    VmConfigSpec s;
    s.firmware = "/usr/share/cloud-hypervisor/hypervisor-fw";
    s.overlay = "/var/lib/vmr/vms/web/overlay.qcow2";
    s.seedIso = "/var/lib/vmr/vms/web/seed.iso";
    s.tap = "vmr0a1b2c3d";
    s.mac = "52:54:00:12:34:56";
    s.rngSource.clear();
    s.serialSocket = "/s";
    auto r = buildVmConfig(s);
    REQUIRE(r);
    CHECK(
        *r ==
        R"({"cpus":{"boot_vcpus":1,"max_vcpus":1},"memory":{"size":1073741824},)"
        R"("payload":{"firmware":"/usr/share/cloud-hypervisor/hypervisor-fw"},"disks":[)"
        R"({"path":"/var/lib/vmr/vms/web/overlay.qcow2","image_type":"Qcow2","backing_files":true,"id":"disk0"},)"
        R"({"path":"/var/lib/vmr/vms/web/seed.iso","readonly":true,"image_type":"Raw","id":"seed0"}],)"
        R"("net":[{"tap":"vmr0a1b2c3d","mac":"52:54:00:12:34:56","id":"net0"}],)"
        R"("serial":{"mode":"Socket","socket":"/s"},"console":{"mode":"Off"}})");
}

TEST_CASE("paths with quotes are escaped")
{
    auto s = kernelSpec();
    s.kernel = "/k/a\"b";
    auto r = buildVmConfig(s);
    REQUIRE(r);
    CHECK(r->find(R"("kernel":"/k/a\"b")") != std::string::npos);
}

TEST_CASE("what cloud-hypervisor cannot express is refused, naming the field")
{
    auto s = kernelSpec();
    s.kernel.clear();
    CHECK(refusal(s) == "An initramfs or a kernel command line needs a kernel");
    s.initramfs.clear();
    s.cmdline.clear();
    CHECK(refusal(s) == "cloud-hypervisor needs a firmware or a kernel to boot");
    s.firmware = "/fw";
    s.kernel = "/k";
    CHECK(refusal(s) == "Give a firmware or a kernel, not both");

    s = kernelSpec();
    s.vcpus = 0;
    CHECK(refusal(s).find("1 to 254 vCPUs") != std::string::npos);
    s.vcpus = 255;
    CHECK(refusal(s).find("not 255") != std::string::npos);
    s = kernelSpec();
    s.memoryMib = 0;
    CHECK(refusal(s).find("MiB is out of range") != std::string::npos);
    s = kernelSpec();
    s.serialSocket = "/" + std::string(120, 's');
    CHECK(refusal(s).find("longer than a unix socket allows") != std::string::npos);
    s = kernelSpec();
    s.tap = "tap0";
    CHECK(refusal(s) == "A tap NIC needs both a tap name and a MAC address");
    s.mac = "52:54:00:12:34";
    CHECK(refusal(s).find("is not a MAC address") != std::string::npos);
    s.mac = "52:54:00:12:34:56";
    s.tap = "a/b";
    CHECK(refusal(s).find("not a valid network interface name") != std::string::npos);
    s.tap = "sixteen-chars-xx";
    CHECK(refusal(s).find("not a valid network interface name") != std::string::npos);
}

TEST_CASE("vm.info answers")
{
    auto info = parseVmInfo(
        R"({"config":{"payload":{"kernel":"/k"}},"state":"Paused","memory_actual_size":268435456,"device_tree":{}})");
    REQUIRE(info);
    CHECK(info->state == VmRunState::Paused);
    CHECK(info->configJson == R"({"payload":{"kernel":"/k"}})");
    CHECK(info->memoryActualSize == 268435456);

    for (auto name : {"Created", "Running", "Shutdown", "Paused", "BreakPoint"}) {
        auto s = parseRunState(name);
        REQUIRE(s);
        CHECK(runStateName(*s) == name);
    }
    auto unknown = parseVmInfo(R"({"config":{},"state":"Exploded"})");
    REQUIRE_FALSE(unknown);
    CHECK(unknown.error().message() == "Unknown cloud-hypervisor VM state \"Exploded\"");
    CHECK_FALSE(unknown.error().hint().empty());
    CHECK(parseVmInfo(R"({"state":"Running"})").error().message().find("\"config\"") != std::string::npos);
    CHECK(parseVmInfo(R"({"config":{}})").error().message().find("\"state\"") != std::string::npos);
    CHECK(parseVmInfo("[").error().kind() == ErrorKind::ParseError);
}

TEST_CASE("vmm.ping answers")
{
    auto p = parsePing(R"({"build_version":"v53.0","version":"53.0.0","pid":42,"features":["kvm"]})");
    REQUIRE(p);
    CHECK(p->version == "53.0.0");
    CHECK(p->buildVersion == "v53.0");
    CHECK(p->pid == 42);
    auto minimal = parsePing(R"({"version":"53.0.0"})");
    REQUIRE(minimal);
    CHECK_FALSE(minimal->pid);
    CHECK(parsePing(R"({"pid":1})").error().message().find("\"version\"") != std::string::npos);
}
