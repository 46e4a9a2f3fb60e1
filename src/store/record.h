#pragma once

// The VM record, <state>/vms/<name>/vm.json: what the VM is (spec) and what vmrd knows
// about its running hypervisor (runtime). docs/state.md describes the format.

#include "base/result.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace vmr::store {

constexpr int kRecordVersion = 1;

struct VmRecord {
    std::string name;
    std::string id;                // 8 lowercase hex digits; names the runtime sockets
    std::string backend = "qemu";  // "qemu" | "chv"
    int64_t created = 0;           // unix seconds

    // Spec.
    std::string image;
    uint32_t vcpus = 1;
    uint64_t memoryMib = 1024;
    std::optional<uint64_t> diskGib;
    std::string network = "user";  // "user" | "tap" | "none"
    std::string kernel;            // empty: none (written as null)
    std::string initrd;
    std::string cmdline;
    std::string accel;  // empty (the daemon's default), "auto", "kvm" or "tcg"
    // Empty: QEMU's BIOS (SeaBIOS); "uefi": OVMF as installed; otherwise a firmware file.
    std::string firmware;
    bool vnc = false;      // a VNC server on 127.0.0.1, first free display
    std::string seed;      // the cloud-init seed ISO attached read-only; empty: none
    std::string imageUrl;  // where the image was downloaded from; empty: a local image
    std::string sshUser;   // the guest user vmrd and `vmrctl ssh` log in as; empty: "vm"
    // The guest's SSH host key, "ssh-ed25519 AAAA...": generated and injected by vmrd, or
    // pinned at first use (raw user-data). Empty: not known yet.
    std::string hostKey;
    // The provisioning steps, a JSON array as vm.create took it (docs/provisioning.md); empty: none.
    std::string provision;
    std::string vmfile;        // the VMFile.kdl this VM was created from; empty: none
    std::string vmfileSha256;  // that file's SHA-256 when the VM was created from it

    // Runtime.
    std::string state = "preparing";
    std::string stateReason;
    std::optional<int32_t> pid;
    std::optional<uint64_t> pidStartTime;  // /proc/<pid>/stat field 22, to tell pid reuse apart
    std::optional<uint16_t> sshPort;
    std::string mac;  // "52:54:00:xx:xx:xx"; empty: none yet
    std::optional<uint16_t> vncPort;
    std::string accelInUse;  // "kvm" | "tcg" while a hypervisor runs; empty otherwise

    // Top-level keys this vmrd does not know (written by a newer one), as raw JSON text,
    // written back unchanged.
    std::map<std::string, std::string> extra;

    bool operator==(const VmRecord&) const = default;
};

// The values of `state`, in the order of the VM state machine.
bool isValidVmState(std::string_view state);

// A fresh random id: 8 lowercase hex digits.
Result<std::string> newVmId();

// One JSON object, keys in a fixed order, starting with "version": 1, ending with a newline.
std::string toJson(const VmRecord& record);

// Parse and validate a record. Errors are ErrorKind::StoreCorrupt and name the field:
// `Field "vcpus": expected an integer from 1 to 1024, got a string`.
Result<VmRecord> recordFromJson(std::string_view json);

}  // namespace vmr::store
