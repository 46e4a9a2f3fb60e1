#pragma once

// What starting a VM needs beyond its spec (model/spec.h): the files and devices vmrd made or
// resolved for it, and where its runtime files are. The manager fills both in at each start;
// the drivers and the QEMU argv builder read them.

#include "base/credentials.h"
#include "base/fd.h"
#include "model/spec.h"
#include "store/layout.h"
#include "vm/accel.h"

#include <cstdint>
#include <memory>
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

// A file the hypervisor is handed open (docs/security.md): vmrd opened it with the rights of
// whoever named it, and the hypervisor never opens the path itself. Copies share the descriptor;
// it closes with the last one.
struct LaunchFile {
    std::string path;                    // what was opened; empty: no such file
    std::shared_ptr<const UniqueFd> fd;  // empty: not opened (a driver that only watches)

    LaunchFile() = default;
    explicit LaunchFile(std::string p) : path(std::move(p)) {}
    LaunchFile(std::string p, UniqueFd f)
        : path(std::move(p)), fd(std::make_shared<const UniqueFd>(std::move(f)))
    {
    }
    bool empty() const noexcept { return path.empty(); }
    bool opened() const noexcept { return fd && fd->valid(); }
    int get() const noexcept { return fd ? fd->get() : -1; }
};

struct Launch {
    Accel accel = Accel::Tcg;
    AccelOptions accelOptions;
    LaunchFile base;         // the overlay's backing image, read-only
    std::string baseFormat;  // "qcow2" | "raw" (image/base_image.h)
    LaunchFile overlay;      // the VM's qcow2 disk, read-write; empty: no disk
    LaunchFile seedIso;      // cloud-init seed, attached read-only; empty: none
    LaunchFile kernel;       // direct kernel boot; empty: none
    LaunchFile initrd;
    LaunchFile bios;      // a firmware file (QEMU's -bios, cloud-hypervisor's firmware); empty: none
    LaunchFile uefiCode;  // OVMF's code, read-only, and the VM's own variable store: both or none
    LaunchFile uefiVars;
    // The user the hypervisor runs as (system mode); empty: vmrd's own.
    std::optional<Credentials> runAs;
    bool sandbox = false;  // QEMU's seccomp filter (-sandbox)
    std::string mac;
    std::optional<uint16_t> sshPort;  // user network: the host port forwarded to the guest's 22
    std::string tap;                  // tap network: the host device
    // `-machine none`: no guest at all (no CPU, bus, disk or NIC), for benchmarks and fast driver
    // tests; QMP, the serial chardev and the process lifecycle stay the same.
    bool machineNone = false;

    // Once the hypervisor holds its copies: vmrd's descriptors are closed, the paths stay.
    void releaseFiles();
};

}  // namespace vmr::vm
