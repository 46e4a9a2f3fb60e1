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
    VmSpec s;
    s.name = "web";
    s.id = "1a2b3c4d";
    s.vcpus = 2;
    s.memoryMib = 512;
    s.overlay = "/var/lib/vmr/vms/web/overlay.qcow2";
    s.seedIso = "/var/lib/vmr/vms/web/seed.iso";
    s.kernel = "/k/vmlinux";
    s.initrd = "/k/initrd";
    s.cmdline = "console=ttyS0 quiet";
    s.firmware = "/usr/share/ovmf/OVMF.fd";
    s.network = net::NetMode::User;
    s.mac = "52:54:00:1a:2b:3c";
    s.sshPort = 10022;
    s.vnc = true;
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
    CHECK(buildQemuArgv("qemu-system-x86_64", s, paths()) == expected);
}

TEST_CASE("QMP on a listening socket vmrd passes as an fd")
{
    VmSpec s;
    s.name = "fd";
    s.id = "1a2b3c4d";
    s.machineNone = true;
    s.qmpListenFd = 3;
    auto argv = buildQemuArgv("qemu", s, paths());
    auto at = std::find(argv.begin(), argv.end(), "socket,id=qmp0,fd=3,server=on,wait=off");
    REQUIRE(at != argv.end());
    CHECK(*(at - 1) == "-chardev");
    CHECK(*(at + 1) == "-mon");
    CHECK(*(at + 2) == "chardev=qmp0,mode=control");
    CHECK(std::find(argv.begin(), argv.end(), "-qmp") == argv.end());
}

TEST_CASE("UEFI: OVMF code read-only and the VM's own variable store as pflash")
{
    VmSpec s;
    s.name = "efi";
    s.id = "1a2b3c4d";
    s.overlay = "/d/overlay.qcow2";
    s.uefiCode = "/usr/share/OVMF/OVMF_CODE_4M.fd";
    s.uefiVars = "/var/lib/vmr/vms/efi/efivars.fd";
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
    CHECK(buildQemuArgv("qemu", s, paths()) == expected);
}

TEST_CASE("a minimal VM under KVM: no kernel, seed, firmware or NIC")
{
    VmSpec s;
    s.name = "db";
    s.id = "1a2b3c4d";
    s.overlay = "/d/overlay.qcow2";
    s.accel = Accel::Kvm;
    V expected = join({
        {"/usr/bin/qemu-system-x86_64", "-name", "db", "-machine", "q35", "-accel", "kvm", "-cpu", "host",
         "-smp", "1", "-m", "1024"},
        kCommon,
        {"-drive", "if=none,id=disk0,file=/d/overlay.qcow2,format=qcow2", "-device",
         "virtio-blk-pci,drive=disk0"},
        {"-device", "virtio-rng-pci"},
        {"-nic", "none"},
    });
    CHECK(buildQemuArgv("/usr/bin/qemu-system-x86_64", s, paths()) == expected);
}

TEST_CASE("-machine none has no CPU model, devices or disks")
{
    VmSpec s;
    s.name = "bench-1";
    s.id = "1a2b3c4d";
    s.memoryMib = 64;
    s.overlay = "/ignored.qcow2";
    s.kernel = "/ignored";
    s.network = net::NetMode::User;
    s.accelOptions.tcgTbSizeMib = 16;
    s.machineNone = true;
    V expected = join({
        {"qemu", "-name", "bench-1", "-machine", "none", "-accel", "tcg,tb-size=16", "-smp", "1", "-m", "64"},
        kCommon,
        {"-nic", "none"},
    });
    CHECK(buildQemuArgv("qemu", s, paths()) == expected);
}

TEST_CASE("commas in paths are doubled inside QEMU option lists")
{
    VmSpec s;
    s.name = "a";
    s.overlay = "/x,y/o.qcow2";
    s.machineNone = false;
    RuntimePaths p{"/r,1/q.qmp", "/r,1/s.serial", "/s,2/console.log", "/s,2/qemu.log"};
    V argv = buildQemuArgv("q", s, p);
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
    RuntimePaths p = runtimePaths(layout, "web", "1a2b3c4d");
    CHECK(p.qmpSocket == "/run/vmr/vms/1a2b3c4d.qmp");
    CHECK(p.serialSocket == "/run/vmr/vms/1a2b3c4d.serial");
    CHECK(p.consoleLog == "/var/lib/vmr/vms/web/console.log");
    CHECK(p.qemuLog == "/var/lib/vmr/vms/web/qemu.log");
}
