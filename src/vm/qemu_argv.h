#pragma once

// QEMU's command line for a VM, built as an argv (never a shell line) by a pure function, so
// every flag is tested as an exact string. docs/vm.md lists what each part is for.

#include "net/mode.h"
#include "store/layout.h"
#include "vm/accel.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vmr::vm {

struct VmSpec {
    std::string name;
    std::string id;
    uint32_t vcpus = 1;
    uint64_t memoryMib = 1024;
    std::string overlay;   // the VM's qcow2 disk; empty: no disk
    std::string seedIso;   // cloud-init seed, attached read-only; empty: none
    std::string kernel;    // direct kernel boot; empty: boot from firmware
    std::string initrd;    // only with kernel
    std::string cmdline;   // only with kernel
    std::string firmware;  // -bios FILE; empty: QEMU's SeaBIOS
    // UEFI: OVMF's code as a read-only pflash and the VM's own variable store; both or none.
    std::string uefiCode;
    std::string uefiVars;
    Accel accel = Accel::Tcg;
    AccelOptions accelOptions;
    // Network: qemuNetArgs(network, mac, sshPort) from src/net supplies the fragment.
    net::NetMode network = net::NetMode::None;
    std::string mac;
    std::optional<uint16_t> sshPort;
    bool vnc = false;
    // `-machine none`: no guest at all (no CPU, bus, disk or NIC), for benchmarks and fast
    // driver tests; QMP, the serial chardev and the process lifecycle stay the same.
    bool machineNone = false;
    // QMP on a listening socket vmrd made and passes as this fd (>= 0), rather than a socket
    // QEMU creates at paths.qmpSocket: vmrd can connect at once instead of polling for it.
    int qmpListenFd = -1;
};

// Where a VM's runtime files live (store::Layout: <runtime>/vms/<id>.*, <state>/vms/<name>/).
struct RuntimePaths {
    std::string qmpSocket;
    std::string serialSocket;
    std::string consoleLog;  // the serial output, appended across boots
    std::string qemuLog;     // QEMU's own stderr
};
RuntimePaths runtimePaths(const store::Layout& layout, const std::string& name, const std::string& id);

// The full argv, argv[0] = binary.
std::vector<std::string> buildQemuArgv(const std::string& binary, const VmSpec& spec,
                                       const RuntimePaths& paths);

}  // namespace vmr::vm
