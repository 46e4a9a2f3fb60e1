#include "vm/qemu_argv.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

using namespace vmr;
using namespace vmr::vm;
using V = std::vector<std::string>;
using Files = std::vector<std::pair<int, int>>;

namespace {

const V kCommon = {
    "-nodefaults", "-no-user-config",
    "-display",    "none",
    "-chardev",    "socket,id=qmp0,fd=3,server=on,wait=off",
    "-mon",        "chardev=qmp0,mode=control",
    "-add-fd",     "fd=5,set=5,opaque=console-log",
    "-chardev",    "socket,id=serial0,fd=4,server=on,wait=off,logfile=/dev/fdset/5,logappend=on",
    "-serial",     "chardev:serial0",
};

V join(std::initializer_list<V> parts)
{
    V out;
    for (const V& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

// An opened launch file: the argv only needs a descriptor and its path.
LaunchFile opened(const std::string& path)
{
    return LaunchFile(path, UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)));
}

}  // namespace

TEST_CASE("a full q35 VM under TCG: every file is a descriptor, every disk driver is named")
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
    l.bios = opened("/usr/share/seabios/bios.bin");
    l.kernel = opened("/k/vmlinux");
    l.initrd = opened("/k/initrd");
    l.base = opened("/images/debian.qcow2");
    l.baseFormat = "qcow2";
    l.overlay = opened("/var/lib/vmr/vms/web/overlay.qcow2");
    l.seedIso = opened("/var/lib/vmr/vms/web/seed.iso");
    l.mac = "52:54:00:1a:2b:3c";
    l.sshPort = 10022;
    l.sandbox = true;
    V expected = join({
        {"qemu-system-x86_64", "-name", "web", "-machine", "q35", "-accel", "tcg,tb-size=64", "-cpu", "max",
         "-smp", "2", "-m", "512", "-nodefaults", "-no-user-config", "-display", "none", "-sandbox",
         "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"},
        V(kCommon.begin() + 4, kCommon.end()),
        {"-bios", "/proc/self/fd/6", "-kernel", "/proc/self/fd/7", "-initrd", "/proc/self/fd/8", "-append",
         "console=ttyS0 quiet"},
        {"-add-fd", "fd=9,set=9,opaque=base0", "-blockdev",
         "driver=file,node-name=base0-file,filename=/dev/fdset/9,read-only=on", "-blockdev",
         "driver=qcow2,node-name=base0,file=base0-file,read-only=on"},
        {"-add-fd", "fd=10,set=10,opaque=disk0", "-blockdev",
         "driver=file,node-name=disk0-file,filename=/dev/fdset/10", "-blockdev",
         "driver=qcow2,node-name=disk0,file=disk0-file,backing=base0", "-device",
         "virtio-blk-pci,drive=disk0"},
        {"-add-fd", "fd=11,set=11,opaque=seed0", "-blockdev",
         "driver=file,node-name=seed0-file,filename=/dev/fdset/11,read-only=on", "-blockdev",
         "driver=raw,node-name=seed0,file=seed0-file,read-only=on", "-device", "virtio-blk-pci,drive=seed0"},
        {"-device", "virtio-rng-pci"},
        {"-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:10022-:22", "-device",
         "virtio-net-pci,netdev=net0,mac=52:54:00:1a:2b:3c"},
        {"-vnc", "127.0.0.1:0,to=99"},
    });
    QemuCommand cmd = buildQemuCommand("qemu-system-x86_64", s, l);
    CHECK(cmd.argv == expected);
    Files files = {{l.bios.get(), 6}, {l.kernel.get(), 7},   {l.initrd.get(), 8},
                   {l.base.get(), 9}, {l.overlay.get(), 10}, {l.seedIso.get(), 11}};
    CHECK(cmd.files == files);
    // No path of a file reaches QEMU.
    for (const auto& word : cmd.argv) CHECK(word.find("/var/lib/vmr") == std::string::npos);
}

TEST_CASE("UEFI: OVMF code read-only and the VM's own variable store as pflash nodes")
{
    model::VmSpec s;
    s.name = "efi";
    s.network.mode = model::NetMode::None;
    Launch l;
    l.base = opened("/images/disk.raw");
    l.baseFormat = "raw";
    l.overlay = opened("/d/overlay.qcow2");
    l.uefiCode = opened("/usr/share/OVMF/OVMF_CODE_4M.fd");
    l.uefiVars = opened("/var/lib/vmr/vms/efi/efivars.fd");
    V expected = join({
        {"qemu", "-name", "efi", "-machine", "q35,pflash0=uefi-code,pflash1=uefi-vars", "-accel",
         "tcg,tb-size=64", "-cpu", "max", "-smp", "1", "-m", "1024"},
        kCommon,
        {"-add-fd", "fd=6,set=6,opaque=uefi-code", "-blockdev",
         "driver=file,node-name=uefi-code-file,filename=/dev/fdset/6,read-only=on", "-blockdev",
         "driver=raw,node-name=uefi-code,file=uefi-code-file,read-only=on"},
        {"-add-fd", "fd=7,set=7,opaque=uefi-vars", "-blockdev",
         "driver=file,node-name=uefi-vars-file,filename=/dev/fdset/7", "-blockdev",
         "driver=raw,node-name=uefi-vars,file=uefi-vars-file"},
        {"-add-fd", "fd=8,set=8,opaque=base0", "-blockdev",
         "driver=file,node-name=base0-file,filename=/dev/fdset/8,read-only=on", "-blockdev",
         "driver=raw,node-name=base0,file=base0-file,read-only=on"},
        {"-add-fd", "fd=9,set=9,opaque=disk0", "-blockdev",
         "driver=file,node-name=disk0-file,filename=/dev/fdset/9", "-blockdev",
         "driver=qcow2,node-name=disk0,file=disk0-file,backing=base0", "-device",
         "virtio-blk-pci,drive=disk0"},
        {"-device", "virtio-rng-pci"},
        {"-nic", "none"},
    });
    CHECK(buildQemuCommand("qemu", s, l).argv == expected);
}

TEST_CASE("a minimal VM under KVM: no kernel, seed, firmware or NIC")
{
    model::VmSpec s;
    s.name = "db";
    s.network.mode = model::NetMode::None;
    Launch l;
    l.overlay = opened("/d/overlay.qcow2");
    l.accel = Accel::Kvm;
    V expected = join({
        {"/usr/bin/qemu-system-x86_64", "-name", "db", "-machine", "q35", "-accel", "kvm", "-cpu", "host",
         "-smp", "1", "-m", "1024"},
        kCommon,
        {"-add-fd", "fd=6,set=6,opaque=disk0", "-blockdev",
         "driver=file,node-name=disk0-file,filename=/dev/fdset/6", "-blockdev",
         "driver=qcow2,node-name=disk0,file=disk0-file", "-device", "virtio-blk-pci,drive=disk0"},
        {"-device", "virtio-rng-pci"},
        {"-nic", "none"},
    });
    CHECK(buildQemuCommand("/usr/bin/qemu-system-x86_64", s, l).argv == expected);
}

TEST_CASE("-machine none has no CPU model, devices, disks or files")
{
    model::VmSpec s;
    s.name = "bench-1";
    s.memoryMib = 64;
    s.kernel = "/ignored";
    s.network.mode = model::NetMode::User;
    Launch l;
    l.overlay = opened("/ignored.qcow2");
    l.kernel = opened("/ignored");
    l.accelOptions.tcgTbSizeMib = 16;
    l.machineNone = true;
    V expected = join({
        {"qemu", "-name", "bench-1", "-machine", "none", "-accel", "tcg,tb-size=16", "-smp", "1", "-m", "64"},
        kCommon,
        {"-nic", "none"},
    });
    QemuCommand cmd = buildQemuCommand("qemu", s, l);
    CHECK(cmd.argv == expected);
    CHECK(cmd.files.empty());
}

TEST_CASE("a launch file that was not opened is left out")
{
    model::VmSpec s;
    s.name = "a";
    s.network.mode = model::NetMode::None;
    Launch l;
    l.kernel = LaunchFile("/k/vmlinux");  // a path only: a driver that watches has no files
    QemuCommand cmd = buildQemuCommand("q", s, l);
    CHECK(std::find(cmd.argv.begin(), cmd.argv.end(), "-kernel") == cmd.argv.end());
    CHECK(cmd.files.empty());
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
