#pragma once

// The firmware a VM boots with (docs/vm.md, Firmware): QEMU's own BIOS, UEFI through OVMF as
// Debian installs it (code read-only, a per-VM copy of the variable store), or a file given
// by the user (passed as -bios).

#include "base/result.h"

#include <string>
#include <vector>

namespace vmr::vm {

struct Firmware {
    std::string bios;              // -bios FILE; empty: none
    std::string uefiCode;          // OVMF code, a read-only pflash; empty: no UEFI
    std::string uefiVarsTemplate;  // copied once into the VM's folder as its variable store
};

// Where OVMF is looked for, in order: each entry is {code, vars template}.
struct OvmfPair {
    std::string code;
    std::string vars;
};
std::vector<OvmfPair> defaultOvmfLocations();

// `choice`: "" or "bios" (QEMU's BIOS), "uefi", or the path of a firmware file. Every file
// is checked now, so a VM is never created with firmware that is not there.
Result<Firmware> resolveFirmware(const std::string& choice,
                                 const std::vector<OvmfPair>& ovmf = defaultOvmfLocations());

// The VM's own UEFI variable store, in its folder.
constexpr const char* kUefiVarsName = "efivars.fd";

}  // namespace vmr::vm
