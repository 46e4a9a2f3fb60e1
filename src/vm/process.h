#pragma once

// What both hypervisor drivers do with the process a record names (re-adoption).

#include "model/runtime.h"
#include "reactor/reactor.h"
#include "vm/state.h"

#include <memory>

namespace vmr::vm {

// States in which a hypervisor process should exist.
bool expectsProcess(VmState s) noexcept;

// The process the runtime names, watched through a pidfd, when it is still the one vmrd started:
// same pid and same /proc start time, checked before and again after pidfd_open (the pidfd pins
// the process, so a pid reused in between is caught), and not a zombie (a process that has died
// but whose parent has not reaped it yet is dead). Null when the runtime names none, or the
// process is gone, dead, or another one now.
std::unique_ptr<reactor::Child> adoptRecordedProcess(reactor::Reactor& r, const model::VmRuntime& runtime);

}  // namespace vmr::vm
