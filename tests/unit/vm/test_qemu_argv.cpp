#include "vm/qemu_argv.h"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace vmr;
using namespace vmr::vm;
using V = std::vector<std::string>;

namespace {

RuntimePaths paths()
{
    return {"/run/vmr/vms/1a2b3c4d.qmp", "/run/vmr/vms/1a2b3c4d.serial", "/var/lib/vmr/vms/web/console.log",
            "/var/lib/vmr/vms/web/qemu.log"};
}

const V kCommon = {
    "-nodefaults",
    "-no-user-config",
    "-display",
    "none",
    "-qmp",
    "unix:/run/vmr/vms/1a2b3c4d.qmp,server=on,wait=off",
    "-chardev",
    "socket,id=serial0,path=/run/vmr/vms/1a2b3c4d.serial,server=on,wait=off,logfile=/var/lib/vmr/vms/web/"
    "console.log,logappend=on",
    "-serial",
    "chardev:serial0",
};

V join(std::initializer_list<V> parts)
{
    V out;
    for (const V& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

}  // namespace

TEST_CASE("a full q35 VM under TCG")
{
    model::VmSpec s;
    s.name = "web";
    s.vcpus = 2;
    s.memoryMib = 512;
    s.kernel = "/k/vmlinux";
    s.initrd = "/k/initrd";
    s.cmdline = "console=ttyS0 quiet";
    s.network.mode = model::NetMode::User;
    s.vnc = true;
    Launch l;
    l.overlay = "/var/lib/vmr/vms/web/overlay.qcow2";
    l.seedIso = "/var/lib/vmr/vms/web/seed.iso";
    l.bios = "/usr/share/ovmf/OVMF.fd";
    l.mac = "52:54:00:1a:2b:3c";
    l.sshPort = 10022;
    V expected = join({
        {"qemu-system-x86_64", "-name", "web", "-machine", "q35", "-accel", "tcg,tb-size=64", "-cpu", "max",
         "-smp", "2", "-m", "512"},
        kCommon,
        {"-bios", "/usr/share/ovmf/OVMF.fd", "-kernel", "/k/vmlinux", "-initrd", "/k/initrd", "-append",
         "console=ttyS0 quiet"},
        {"-drive", "if=none,id=disk0,file=/var/lib/vmr/vms/web/overlay.qcow2,format=qcow2", "-device",
         "virtio-blk-pci,drive=disk0"},
        {"-drive", "if=none,id=seed0,file=/var/lib/vmr/vms/web/seed.iso,format=raw,readonly=on", "-device",
         "virtio-blk-pci,drive=seed0"},
        {"-device", "virtio-rng-pci"},
        {"-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:10022-:22", "-device",
         "virtio-net-pci,netdev=net0,mac=52:54:00:1a:2b:3c"},
        {"-vnc", "127.0.0.1:0,to=99"},
    });
    CHECK(buildQemuArgv("qemu-system-x86_64", s, l, paths()) == expected);
}

TEST_CASE("QMP on a listening socket vmrd passes as an fd")
{
    model::VmSpec s;
    s.name = "fd";
    Launch l;
    l.machineNone = true;
    auto argv = buildQemuArgv("qemu", s, l, paths(), 3);
    auto at = std::find(argv.begin(), argv.end(), "socket,id=qmp0,fd=3,server=on,wait=off");
    REQUIRE(at != argv.end());
    CHECK(*(at - 1) == "-chardev");
    CHECK(*(at + 1) == "-mon");
    CHECK(*(at + 2) == "chardev=qmp0,mode=control");
    CHECK(std::find(argv.begin(), argv.end(), "-qmp") == argv.end());
}

TEST_CASE("UEFI: OVMF code read-only and the VM's own variable store as pflash")
{
    model::VmSpec s;
    s.name = "efi";
    s.network.mode = model::NetMode::None;
    Launch l;
    l.overlay = "/d/overlay.qcow2";
    l.uefiCode = "/usr/share/OVMF/OVMF_CODE_4M.fd";
    l.uefiVars = "/var/lib/vmr/vms/efi/efivars.fd";
    V expected = join({
        {"qemu", "-name", "efi", "-machine", "q35", "-accel", "tcg,tb-size=64", "-cpu", "max", "-smp", "1",
         "-m", "1024"},
        kCommon,
        {"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd", "-drive",
         "if=pflash,format=raw,unit=1,file=/var/lib/vmr/vms/efi/efivars.fd"},
        {"-drive", "if=none,id=disk0,file=/d/overlay.qcow2,format=qcow2", "-device",
         "virtio-blk-pci,drive=disk0"},
        {"-device", "virtio-rng-pci"},
        {"-nic", "none"},
    });
    CHECK(buildQemuArgv("qemu", s, l, paths()) == expected);
}

TEST_CASE("a minimal VM under KVM: no kernel, seed, firmware or NIC")
{
    model::VmSpec s;
    s.name = "db";
    s.network.mode = model::NetMode::None;
    Launch l;
    l.overlay = "/d/overlay.qcow2";
    l.accel = Accel::Kvm;
    V expected = join({
        {"/usr/bin/qemu-system-x86_64", "-name", "db", "-machine", "q35", "-accel", "kvm", "-cpu", "host",
         "-smp", "1", "-m", "1024"},
        kCommon,
        {"-drive", "if=none,id=disk0,file=/d/overlay.qcow2,format=qcow2", "-device",
         "virtio-blk-pci,drive=disk0"},
        {"-device", "virtio-rng-pci"},
        {"-nic", "none"},
    });
    CHECK(buildQemuArgv("/usr/bin/qemu-system-x86_64", s, l, paths()) == expected);
}

TEST_CASE("-machine none has no CPU model, devices or disks")
{
    model::VmSpec s;
    s.name = "bench-1";
    s.memoryMib = 64;
    s.kernel = "/ignored";
    s.network.mode = model::NetMode::User;
    Launch l;
    l.overlay = "/ignored.qcow2";
    l.accelOptions.tcgTbSizeMib = 16;
    l.machineNone = true;
    V expected = join({
        {"qemu", "-name", "bench-1", "-machine", "none", "-accel", "tcg,tb-size=16", "-smp", "1", "-m", "64"},
        kCommon,
        {"-nic", "none"},
    });
    CHECK(buildQemuArgv("qemu", s, l, paths()) == expected);
}

TEST_CASE("commas in paths are doubled inside QEMU option lists")
{
    model::VmSpec s;
    s.name = "a";
    Launch l;
    l.overlay = "/x,y/o.qcow2";
    l.machineNone = false;
    RuntimePaths p{"/r,1/q.qmp", "/r,1/s.serial", "/s,2/console.log", "/s,2/qemu.log"};
    V argv = buildQemuArgv("q", s, l, p);
    auto has = [&](const std::string& w) { return std::find(argv.begin(), argv.end(), w) != argv.end(); };
    CHECK(has("unix:/r,,1/q.qmp,server=on,wait=off"));
    CHECK(has(
        "socket,id=serial0,path=/r,,1/s.serial,server=on,wait=off,logfile=/s,,2/console.log,logappend=on"));
    CHECK(has("if=none,id=disk0,file=/x,,y/o.qcow2,format=qcow2"));
}

TEST_CASE("runtime paths come from the layout")
{
    config::Settings st;
    st.stateDir = "/var/lib/vmr";
    st.runtimeDir = "/run/vmr";
    store::Layout layout(st);
    RuntimePaths p = runtimePaths(layout, model::Backend::Qemu, "web", "1a2b3c4d");
    CHECK(p.control == "/run/vmr/vms/1a2b3c4d.qmp");
    CHECK(p.serialSocket == "/run/vmr/vms/1a2b3c4d.serial");
    CHECK(p.consoleLog == "/var/lib/vmr/vms/web/console.log");
    CHECK(p.vmmLog == "/var/lib/vmr/vms/web/qemu.log");
    // cloud-hypervisor: its REST API socket is the control socket, and its own log.
    RuntimePaths c = runtimePaths(layout, model::Backend::Chv, "web", "1a2b3c4d");
    CHECK(c.control == "/run/vmr/vms/1a2b3c4d.api");
    CHECK(c.serialSocket == "/run/vmr/vms/1a2b3c4d.serial");
    CHECK(c.consoleLog == "/var/lib/vmr/vms/web/console.log");
    CHECK(c.vmmLog == "/var/lib/vmr/vms/web/cloud-hypervisor.log");
}
