#include "vm/qemu_argv.h"

#include "net/mode.h"

#include <initializer_list>

namespace vmr::vm {

namespace {

// A value inside a QEMU option list: a comma would start the next option, QEMU reads ",," as one.
std::string optValue(const std::string& v)
{
    std::string out;
    for (char c : v) {
        out += c;
        if (c == ',') out += ',';
    }
    return out;
}

}  // namespace

RuntimePaths runtimePaths(const store::Layout& layout, model::Backend backend, const std::string& name,
                          const std::string& id)
{
    std::string dir = layout.vmDir(name);
    bool qemu = backend == model::Backend::Qemu;
    return {layout.runtimeSocket(id, qemu ? "qmp" : "api"), layout.runtimeSocket(id, "serial"),
            dir + "/console.log", dir + (qemu ? "/qemu.log" : "/cloud-hypervisor.log")};
}

std::vector<std::string> buildQemuArgv(const std::string& binary, const model::VmSpec& spec,
                                       const Launch& launch, const RuntimePaths& paths, int qmpListenFd)
{
    const Launch& l = launch;
    std::vector<std::string> a = {binary, "-name", spec.name};
    auto add = [&a](std::initializer_list<std::string> words) { a.insert(a.end(), words); };

    add({"-machine", l.machineNone ? "none" : "q35"});
    std::vector<std::string> accel = accelArgs(l.accel, l.accelOptions, !l.machineNone);
    a.insert(a.end(), accel.begin(), accel.end());
    add({"-smp", std::to_string(spec.vcpus), "-m", std::to_string(spec.memoryMib)});
    add({"-nodefaults", "-no-user-config", "-display", "none"});
    if (qmpListenFd >= 0) {
        add({"-chardev", "socket,id=qmp0,fd=" + std::to_string(qmpListenFd) + ",server=on,wait=off", "-mon",
             "chardev=qmp0,mode=control"});
    } else {
        add({"-qmp", "unix:" + optValue(paths.control) + ",server=on,wait=off"});
    }
    // A socket the console hub connects to, and a log that keeps every byte even while
    // nobody is connected (wait=off: the guest never blocks on a missing reader).
    add({"-chardev",
         "socket,id=serial0,path=" + optValue(paths.serialSocket) +
             ",server=on,wait=off,logfile=" + optValue(paths.consoleLog) + ",logappend=on",
         "-serial", "chardev:serial0"});

    if (!l.machineNone) {
        if (!l.bios.empty()) add({"-bios", l.bios});
        if (!l.uefiCode.empty()) {
            add({"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + optValue(l.uefiCode), "-drive",
                 "if=pflash,format=raw,unit=1,file=" + optValue(l.uefiVars)});
        }
        if (!spec.kernel.empty()) {
            add({"-kernel", spec.kernel});
            if (!spec.initrd.empty()) add({"-initrd", spec.initrd});
            if (!spec.cmdline.empty()) add({"-append", spec.cmdline});
        }
        if (!l.overlay.empty()) {
            add({"-drive", "if=none,id=disk0,file=" + optValue(l.overlay) + ",format=qcow2", "-device",
                 "virtio-blk-pci,drive=disk0"});
        }
        // As a read-only virtio disk rather than a CD-ROM: ~1.1 s faster to find (GUESTS.md).
        if (!l.seedIso.empty()) {
            add({"-drive", "if=none,id=seed0,file=" + optValue(l.seedIso) + ",format=raw,readonly=on",
                 "-device", "virtio-blk-pci,drive=seed0"});
        }
        add({"-device", "virtio-rng-pci"});
    }
    std::vector<std::string> net =
        net::qemuNetArgs(l.machineNone ? net::NetMode::None : spec.network.mode, l.mac, l.sshPort);
    a.insert(a.end(), net.begin(), net.end());
    // The first free display from :0 to :99; the port is read back with query-vnc.
    if (spec.vnc) add({"-vnc", "127.0.0.1:0,to=99"});
    return a;
}

}  // namespace vmr::vm
