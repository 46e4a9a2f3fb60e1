#pragma once

// What vmrd knows about a VM beyond its spec: its identity (id, MAC, host key, seed) and its
// hypervisor process (state, pid, ports). The record is {spec, runtime} (store/record.h).

#include "base/result.h"
#include "model/vocab.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace vmr::json {
class Writer;
}

namespace vmr::model {

struct VmRuntime {
    std::string id;       // 8 lowercase hex digits; names the runtime sockets
    int64_t created = 0;  // unix seconds
    std::string mac;      // "52:54:00:xx:xx:xx"; empty: none yet
    std::string seed;     // the cloud-init seed ISO attached read-only; empty: none
    // The guest's SSH host key, "ssh-ed25519 AAAA...": generated and injected by vmrd, or
    // pinned at first use (raw user-data). Empty: not known yet.
    std::string hostKey;
    // Who created the VM (the caller's uid and primary gid): the paths its spec names (image,
    // kernel, initrd, firmware file) are opened with this user's rights at every start
    // (docs/security.md). Empty in records older than ownership: vmrd's own rights.
    std::optional<uint32_t> ownerUid;
    std::optional<uint32_t> ownerGid;

    VmState state = VmState::Preparing;
    std::string stateReason;
    std::optional<int32_t> pid;
    std::optional<uint64_t> pidStartTime;  // /proc/<pid>/stat field 22, to tell pid reuse apart
    std::optional<uint16_t> sshPort;
    std::optional<uint16_t> vncPort;
    std::optional<Accel> accelInUse;  // while a hypervisor runs

    bool operator==(const VmRuntime&) const = default;
};

// A fresh random id: 8 lowercase hex digits.
Result<std::string> newVmId();
bool isValidVmId(std::string_view id);
bool isValidMac(std::string_view mac);

void writeRuntimeFields(json::Writer& w, const VmRuntime& r);
// The members of a record's "runtime" object; errors are StoreCorrupt naming the field.
// Unknown members (from a newer vmrd) are kept in `unknown`.
Result<VmRuntime> runtimeFromJson(std::string_view json, std::map<std::string, std::string>* unknown);

}  // namespace vmr::model
