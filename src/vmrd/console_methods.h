#pragma once

// The console methods of the control socket: vm.console (the connection becomes the VM's
// console, raw bytes both ways, through its console::Hub) and vm.log (the tails of console.log
// and provision.log). See docs/console.md.

#include "console/registry.h"
#include "rpc/server.h"
#include "vm/manager.h"

#include <cstdint>
#include <string>

namespace vmr::vmrd {

void registerConsoleMethods(rpc::Server& server, vm::Manager& manager, console::Registry& hubs);

// The last `lines` lines of at most the last `maxBytes` bytes of a file ("" when it does not
// exist; lines == 0: all of those bytes). Reads only the end of the file.
Result<std::string> tailFile(const std::string& path, uint64_t lines, uint64_t maxBytes);

}  // namespace vmr::vmrd
