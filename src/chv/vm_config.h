#pragma once

// The JSON bodies vmr exchanges with cloud-hypervisor (v53 API, docs/chv.md): the VmConfig of
// `vm.create`, built from a VM's spec, and the answers of `vmm.ping` and `vm.info`. Pure.

#include "base/result.h"
#include "model/spec.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vmr::chv {

// What a VM's config needs besides its spec: the files and devices vmrd made for it.
struct Attachments {
    std::string firmware;  // a firmware file (the spec's, resolved); empty: boot the kernel
    std::string overlay;   // qcow2 on a backing file; empty: no disk
    std::string seedIso;   // attached read-only; empty: none
    // Network: a tap device and the guest's MAC; empty: no NIC.
    std::string tap;
    std::string mac;
    std::string rngSource = "/dev/urandom";  // empty: no virtio-rng
    std::string serialSocket;                // the serial port as a unix socket server
    // Where cloud-hypervisor reads the spec's kernel and initrd (a /proc/self/fd path of a file
    // vmrd opened for it); empty: the spec's own paths.
    std::string kernel;
    std::string initrd;
};

// The VmConfig JSON: cpus, memory (bytes), payload (the firmware, or the spec's kernel, initrd
// and cmdline), disks (overlay as Qcow2 with backing files, seed read-only), net, rng, serial in
// Socket mode, console explicitly Off (its default, Tty, would take over vmrd's terminal).
// InvalidArgument naming the field when they cannot be expressed: no payload or both, vcpus out
// of range (model::kMaxChvVcpus), a bad MAC or tap name, a serial socket path that does not fit
// a unix socket.
Result<std::string> buildVmConfig(const model::VmSpec& spec, const Attachments& a);

// The states `vm.info` reports.
enum class VmRunState { Created, Running, Shutdown, Paused, BreakPoint };
std::string_view runStateName(VmRunState s) noexcept;
Result<VmRunState> parseRunState(std::string_view name);

struct VmInfo {
    VmRunState state = VmRunState::Created;
    std::string configJson;  // the VmConfig the VMM holds, as JSON
    std::optional<int64_t> memoryActualSize;
};
Result<VmInfo> parseVmInfo(std::string_view json);

struct PingInfo {
    std::string version;  // "v53.0"
    std::string buildVersion;
    std::optional<int64_t> pid;
};
Result<PingInfo> parsePing(std::string_view json);

}  // namespace vmr::chv
