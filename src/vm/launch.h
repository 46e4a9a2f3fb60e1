#pragma once

// What starting a VM needs beyond its spec (model/spec.h): the files and devices vmrd made or
// resolved for it, and where its runtime files are. The manager fills both in at each start;
// the drivers and the QEMU argv builder read them.

#include "model/spec.h"
#include "store/layout.h"
#include "vm/accel.h"

#include <cstdint>
#include <optional>
#include <string>

namespace vmr::vm {

// Where a VM's runtime files live: <runtime>/vms/<id>.*, <state>/vms/<name>/.
struct RuntimePaths {
    std::string control;       // QMP (QEMU) or the REST API (cloud-hypervisor)
    std::string serialSocket;  // the serial console, a unix socket server
    std::string consoleLog;    // the serial output, appended across boots
    std::string vmmLog;        // the hypervisor's own stderr
};
RuntimePaths runtimePaths(const store::Layout& layout, model::Backend backend, const std::string& name,
                          const std::string& id);

struct Launch {
    Accel accel = Accel::Tcg;
    AccelOptions accelOptions;
    std::string overlay;   // the VM's qcow2 disk; empty: no disk
    std::string seedIso;   // cloud-init seed, attached read-only; empty: none
    std::string bios;      // a firmware file (QEMU's -bios, cloud-hypervisor's firmware); empty: none
    std::string uefiCode;  // OVMF's code, read-only, and the VM's own variable store: both or none
    std::string uefiVars;
    std::string mac;
    std::optional<uint16_t> sshPort;  // user network: the host port forwarded to the guest's 22
    std::string tap;                  // tap network: the host device
    // `-machine none`: no guest at all (no CPU, bus, disk or NIC), for benchmarks and fast driver
    // tests; QMP, the serial chardev and the process lifecycle stay the same.
    bool machineNone = false;
};

}  // namespace vmr::vm
