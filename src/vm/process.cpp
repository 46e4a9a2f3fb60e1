#include "vm/process.h"

#include "store/proc.h"

namespace vmr::vm {

bool expectsProcess(VmState s) noexcept
{
    return s == VmState::Starting || s == VmState::Running || s == VmState::Paused || s == VmState::Stopping;
}

std::unique_ptr<reactor::Child> adoptRecordedProcess(reactor::Reactor& r, const store::VmRecord& record)
{
    if (!record.pid || !record.pidStartTime) return nullptr;
    pid_t pid = *record.pid;
    auto sameProcess = [&]() {
        auto t = store::processStartTime(pid);
        return t.ok() && *t == *record.pidStartTime;
    };
    if (!sameProcess()) return nullptr;
    auto child = reactor::Child::adopt(r, pid);
    if (!child || !sameProcess()) return nullptr;
    return std::move(*child);
}

}  // namespace vmr::vm
