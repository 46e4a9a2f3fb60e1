#include "vm/process.h"

#include "base/proc.h"

namespace vmr::vm {

bool expectsProcess(VmState s) noexcept
{
    return s == VmState::Starting || s == VmState::Running || s == VmState::Paused || s == VmState::Stopping;
}

std::unique_ptr<reactor::Child> adoptRecordedProcess(reactor::Reactor& r, const model::VmRuntime& runtime)
{
    if (!runtime.pid || !runtime.pidStartTime) return nullptr;
    pid_t pid = *runtime.pid;
    auto sameProcess = [&]() {
        auto t = vmr::processStartTime(pid);
        return t.ok() && *t == *runtime.pidStartTime && !vmr::isZombie(pid);
    };
    if (!sameProcess()) return nullptr;
    auto child = reactor::Child::adopt(r, pid);
    if (!child || !sameProcess()) return nullptr;
    return std::move(*child);
}

}  // namespace vmr::vm
