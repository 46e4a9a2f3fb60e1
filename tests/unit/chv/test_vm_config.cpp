// VmConfig from a VM's spec (exact JSON), its refusals, and the vm.info / vmm.ping answers.

#include "chv/vm_config.h"

#include <catch2/catch.hpp>

#include <string>

using namespace vmr;
using namespace vmr::chv;

namespace {

// A VM's spec and what vmrd attached to it: buildVmConfig's two inputs.
struct Input {
    model::VmSpec spec;
    Attachments att;
};

Input kernelSpec()
{
    Input in;
    in.spec.vcpus = 2;
    in.spec.memoryMib = 256;
    in.spec.kernel = "/k/vmlinux";
    in.spec.initrd = "/k/initrd";
    in.spec.cmdline = "console=ttyS0";
    in.att.serialSocket = "/run/vmr/vms/0a1b2c3d.serial";
    return in;
}

std::string refusal(const Input& in)
{
    auto r = buildVmConfig(in.spec, in.att);
    if (r) FAIL("should have been refused: " << *r);
    CHECK(r.error().kind() == ErrorKind::InvalidArgument);
    return r.error().message();
}

}  // namespace

TEST_CASE("kernel boot without disk or NIC")
{
    auto in = kernelSpec();
    auto r = buildVmConfig(in.spec, in.att);
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
    model::VmSpec s;
    Attachments a;
    a.firmware = "/usr/share/cloud-hypervisor/hypervisor-fw";
    a.overlay = "/var/lib/vmr/vms/web/overlay.qcow2";
    a.seedIso = "/var/lib/vmr/vms/web/seed.iso";
    a.tap = "vmr0a1b2c3d";
    a.mac = "52:54:00:12:34:56";
    a.rngSource.clear();
    a.serialSocket = "/s";
    auto r = buildVmConfig(s, a);
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
    auto in = kernelSpec();
    in.spec.kernel = "/k/a\"b";
    auto r = buildVmConfig(in.spec, in.att);
    REQUIRE(r);
    CHECK(r->find(R"("kernel":"/k/a\"b")") != std::string::npos);
}

TEST_CASE("what cloud-hypervisor cannot express is refused, naming the field")
{
    auto s = kernelSpec();
    s.spec.kernel.clear();
    CHECK(refusal(s) == "An initramfs or a kernel command line needs a kernel");
    s.spec.initrd.clear();
    s.spec.cmdline.clear();
    CHECK(refusal(s) == "cloud-hypervisor needs a firmware or a kernel to boot");
    s.att.firmware = "/fw";
    s.spec.kernel = "/k";
    CHECK(refusal(s) == "Give a firmware or a kernel, not both");

    s = kernelSpec();
    s.spec.vcpus = 0;
    CHECK(refusal(s).find("1 to 254 vCPUs") != std::string::npos);
    s.spec.vcpus = model::kMaxChvVcpus + 1;
    CHECK(refusal(s).find("not 255") != std::string::npos);
    s.spec.vcpus = model::kMaxChvVcpus;
    CHECK(buildVmConfig(s.spec, s.att));
    s = kernelSpec();
    s.spec.memoryMib = 0;
    CHECK(refusal(s).find("MiB is out of range") != std::string::npos);
    s.spec.memoryMib = model::kMinMemoryMib - 1;
    CHECK(refusal(s).find("MiB is out of range") != std::string::npos);
    s.spec.memoryMib = model::kMinMemoryMib;
    CHECK(buildVmConfig(s.spec, s.att));
    s = kernelSpec();
    s.att.serialSocket = "/" + std::string(120, 's');
    CHECK(refusal(s).find("longer than a unix socket allows") != std::string::npos);
    s = kernelSpec();
    s.att.tap = "tap0";
    CHECK(refusal(s) == "A tap NIC needs both a tap name and a MAC address");
    s.att.mac = "52:54:00:12:34";
    CHECK(refusal(s).find("is not a MAC address") != std::string::npos);
    s.att.mac = "52:54:00:12:34:56";
    s.att.tap = "a/b";
    CHECK(refusal(s).find("not a valid network interface name") != std::string::npos);
    s.att.tap = "sixteen-chars-xx";
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
