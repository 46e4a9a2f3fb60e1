#pragma once

// The VM methods of the control socket: vm.create, vm.start, vm.stop, vm.suspend,
// vm.resume, vm.destroy, vm.list and vm.status, on top of vm::Manager.

#include "rpc/server.h"
#include "store/record.h"
#include "vm/manager.h"

#include <string>

namespace vmr::vmrd {

void registerVmMethods(rpc::Server& server, vm::Manager& manager);

// {"vms":[{name, backend, state, vcpus, memory_mib, network, pid, ssh_port}, ...]}
std::string vmListJson(const vm::Manager& manager);

}  // namespace vmr::vmrd
