#include "vm/qemu_argv.h"

#include "net/mode.h"

#include <initializer_list>

namespace vmr::vm {

namespace {

class Builder {
public:
    explicit Builder(QemuCommand& cmd) : cmd_(cmd) {}

    void add(std::initializer_list<std::string> words) { cmd_.argv.insert(cmd_.argv.end(), words); }

    // The file as QEMU's next descriptor; its number.
    int pass(const LaunchFile& f)
    {
        int n = next_++;
        cmd_.files.emplace_back(f.get(), n);
        return n;
    }

    // An fdset of one descriptor, named for `role` (shown by query-fdsets): its /dev/fdset path.
    std::string fdset(const LaunchFile& f, const std::string& role)
    {
        int n = pass(f);
        std::string id = std::to_string(n);
        add({"-add-fd", "fd=" + id + ",set=" + id + ",opaque=" + role});
        return "/dev/fdset/" + id;
    }

    // A format node `node` over a file node on `f`: the driver is given, never probed.
    void blockdev(const LaunchFile& f, const std::string& node, const std::string& driver, bool readOnly,
                  const std::string& extra = "")
    {
        std::string ro = readOnly ? ",read-only=on" : "";
        std::string path = fdset(f, node);
        add({"-blockdev", "driver=file,node-name=" + node + "-file,filename=" + path + ro, "-blockdev",
             "driver=" + driver + ",node-name=" + node + ",file=" + node + "-file" + ro + extra});
    }

    // A file QEMU reads by name (-kernel, -initrd, -bios): its descriptor's /proc path.
    std::string procPath(const LaunchFile& f) { return "/proc/self/fd/" + std::to_string(pass(f)); }

private:
    QemuCommand& cmd_;
    int next_ = kFirstFileChildFd;
};

}  // namespace

QemuCommand buildQemuCommand(const std::string& binary, const model::VmSpec& spec, const Launch& launch)
{
    const Launch& l = launch;
    QemuCommand cmd;
    cmd.argv = {binary, "-name", spec.name};
    Builder b(cmd);
    bool uefi = !l.machineNone && l.uefiCode.opened() && l.uefiVars.opened();

    b.add({"-machine", l.machineNone ? "none" : uefi ? "q35,pflash0=uefi-code,pflash1=uefi-vars" : "q35"});
    std::vector<std::string> accel = accelArgs(l.accel, l.accelOptions, !l.machineNone);
    cmd.argv.insert(cmd.argv.end(), accel.begin(), accel.end());
    // Machine "none" has no CPU for the guest to have: one is all it takes.
    b.add({"-smp", l.machineNone ? "1" : std::to_string(spec.vcpus), "-m", std::to_string(spec.memoryMib)});
    b.add({"-nodefaults", "-no-user-config", "-display", "none"});
    // seccomp: no obsolete system calls, no setuid/setgid, no fork/exec, no scheduler or
    // affinity changes. Nothing vmr asks of QEMU needs them.
    if (l.sandbox)
        b.add({"-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"});
    b.add({"-chardev", "socket,id=qmp0,fd=" + std::to_string(kQmpChildFd) + ",server=on,wait=off", "-mon",
           "chardev=qmp0,mode=control"});
    // The serial port on a socket the console hub connects to, and a log that keeps every byte
    // even while nobody is connected (wait=off: the guest never blocks on a missing reader).
    std::string log = std::to_string(kConsoleLogChildFd);
    b.add({"-add-fd", "fd=" + log + ",set=" + log + ",opaque=console-log", "-chardev",
           "socket,id=serial0,fd=" + std::to_string(kSerialChildFd) +
               ",server=on,wait=off,logfile=/dev/fdset/" + log + ",logappend=on",
           "-serial", "chardev:serial0"});

    if (!l.machineNone) {
        if (l.bios.opened()) b.add({"-bios", b.procPath(l.bios)});
        if (uefi) {
            b.blockdev(l.uefiCode, "uefi-code", "raw", true);
            b.blockdev(l.uefiVars, "uefi-vars", "raw", false);
        }
        if (l.kernel.opened()) {
            b.add({"-kernel", b.procPath(l.kernel)});
            if (l.initrd.opened()) b.add({"-initrd", b.procPath(l.initrd)});
            if (!spec.cmdline.empty()) b.add({"-append", spec.cmdline});
        }
        if (l.overlay.opened()) {
            std::string backing;
            if (l.base.opened()) {
                b.blockdev(l.base, "base0", l.baseFormat.empty() ? "raw" : l.baseFormat, true);
                backing = ",backing=base0";
            }
            b.blockdev(l.overlay, "disk0", "qcow2", false, backing);
            b.add({"-device", "virtio-blk-pci,drive=disk0"});
        }
        // As a read-only virtio disk rather than a CD-ROM: ~1.1 s faster to find (GUESTS.md).
        if (l.seedIso.opened()) {
            b.blockdev(l.seedIso, "seed0", "raw", true);
            b.add({"-device", "virtio-blk-pci,drive=seed0"});
        }
        b.add({"-device", "virtio-rng-pci"});
    }
    std::vector<std::string> net =
        net::qemuNetArgs(l.machineNone ? net::NetMode::None : spec.network.mode, l.mac, l.sshPort);
    cmd.argv.insert(cmd.argv.end(), net.begin(), net.end());
    // The first free display from :0 to :99; the port is read back with query-vnc.
    if (spec.vnc) b.add({"-vnc", "127.0.0.1:0,to=99"});
    return cmd;
}

RuntimePaths runtimePaths(const store::Layout& layout, model::Backend backend, const std::string& name,
                          const std::string& id)
{
    std::string dir = layout.vmDir(name);
    bool qemu = backend == model::Backend::Qemu;
    return {layout.runtimeSocket(id, qemu ? "qmp" : "api"), layout.runtimeSocket(id, "serial"),
            dir + "/console.log", dir + (qemu ? "/qemu.log" : "/cloud-hypervisor.log")};
}

}  // namespace vmr::vm
