#pragma once

// What both hypervisor drivers do with the process a record names (re-adoption).

#include "reactor/reactor.h"
#include "store/record.h"
#include "vm/state.h"

#include <memory>

namespace vmr::vm {

// States in which a hypervisor process should exist.
bool expectsProcess(VmState s) noexcept;

// The process the record names, watched through a pidfd, when it is still the one vmrd started:
// same pid and same /proc start time, checked before and again after pidfd_open (the pidfd pins
// the process, so a pid reused in between is caught). Null when the record names none, or the
// process is gone or is another one now.
std::unique_ptr<reactor::Child> adoptRecordedProcess(reactor::Reactor& r, const store::VmRecord& record);

}  // namespace vmr::vm
