#pragma once

// The VMFile methods of the control socket: vmfile.up, vmfile.down and vmfile.provision.
// vmrctl reads and checks the VMFile as the caller (docs/vmfile.md) and sends the resolved
// definitions, each as vm.create's params; vmrd brings the VMs up side by side and streams
// what it does to the caller:
//   "vmfile.progress"  {vm, message}   ("creating", "created", "already running: skipped"...)
//   "image.progress"   {url, received, total}   (an image_url being downloaded)
//   "provision.step" / "provision.output"   (as vm.provision, with "vm")
// The reply is {"file", "vms": [{name, action, ok, error?}]}; when any VM failed, the call fails
// instead, with an error naming each VM that failed.

#include "image/cache.h"
#include "rpc/server.h"
#include "vm/manager.h"

#include <string>
#include <vector>

namespace vmr::vmrd {

void registerVmfileMethods(rpc::Server& server, vm::Manager& manager, image::Cache& cache);

// What happened to one VM of a VMFile call.
struct VmfileOutcome {
    std::string name;
    std::string action;  // created, started, resumed, skipped, provisioned, stopped, destroyed, ...
    std::optional<Error> error;
};

// {"file":..., "vms":[{"name","action","ok","error"?: {"kind","message","hint"?}}]}
std::string outcomesJson(const std::string& file, const std::vector<VmfileOutcome>& outcomes);
// Success when no VM failed; otherwise one error naming each failed VM with its message (the
// kind and hint of the first failure).
Result<void> combinedError(const std::vector<VmfileOutcome>& outcomes);

}  // namespace vmr::vmrd
