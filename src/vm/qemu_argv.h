#pragma once

// QEMU's command line for a VM, built as an argv (never a shell line) by a pure function, so
// every flag is tested as an exact string. docs/vm.md lists what each part is for.

#include "model/spec.h"
#include "vm/launch.h"

#include <string>
#include <vector>

namespace vmr::vm {

// The full argv, argv[0] = binary. QMP is served on `qmpListenFd` (>= 0), a listening socket vmrd
// made and hands over, so that vmrd can connect at once; otherwise QEMU creates paths.control.
std::vector<std::string> buildQemuArgv(const std::string& binary, const model::VmSpec& spec,
                                       const Launch& launch, const RuntimePaths& paths, int qmpListenFd = -1);

}  // namespace vmr::vm
