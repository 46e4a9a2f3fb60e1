#include "vm/state.h"

#include <simdjson.h>

#include <array>
#include <initializer_list>

namespace vmr::vm {

namespace {

using S = VmState;

// The legal moves out of each state (same-state moves are handled apart). Destroyed is only
// reached from states without a hypervisor process: a running VM is stopped first.
bool inList(VmState to, std::initializer_list<VmState> list)
{
    for (VmState s : list)
        if (s == to) return true;
    return false;
}

std::string quoted(std::string_view name)
{
    return "VM \"" + std::string(name) + "\"";
}

Error badState(std::string_view vmName, std::string sentence, std::string hint)
{
    return Error(ErrorKind::VmBadState, quoted(vmName) + " " + std::move(sentence), std::move(hint));
}

// "is being prepared", "is running"...: how a state reads after the VM's name.
std::string isPhrase(VmState s)
{
    switch (s) {
        case S::Preparing: return "is being prepared";
        case S::Destroyed: return "has been destroyed";
        default: return "is " + std::string(stateName(s));
    }
}

std::string startHint(std::string_view vmName)
{
    return "Start it with `vmrctl start " + std::string(vmName) + "`";
}

// Hints for an operation that needs a live VM (stop, suspend, resume) asked in state s.
std::string notLiveHint(std::string_view vmName, VmState s)
{
    switch (s) {
        case S::Preparing: return "Wait until it is prepared, then start it";
        case S::Prepared:
        case S::Stopped:
        case S::Failed: return startHint(vmName);
        case S::Starting: return "Wait until it is running";
        case S::Stopping: return "It is shutting down; wait until it has stopped";
        default: return "Nothing to do";
    }
}

// Reads data members of an event without failing: absent or mistyped members stay empty.
struct EventData {
    std::optional<bool> guest;
    std::string reason;
    std::string action;
};

EventData parseEventData(std::string_view json)
{
    EventData d;
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(json.data(), json.size()).get(doc) != simdjson::SUCCESS) return d;
    simdjson::dom::object obj;
    if (doc.get(obj) != simdjson::SUCCESS) return d;
    bool b = false;
    if (obj["guest"].get(b) == simdjson::SUCCESS) d.guest = b;
    std::string_view sv;
    if (obj["reason"].get(sv) == simdjson::SUCCESS) d.reason = std::string(sv);
    if (obj["action"].get(sv) == simdjson::SUCCESS) d.action = std::string(sv);
    return d;
}

}  // namespace

bool canTransition(VmState from, VmState to) noexcept
{
    if (from == to) return from != S::Destroyed;
    switch (from) {
        case S::Preparing: return inList(to, {S::Prepared, S::Failed, S::Destroyed});
        case S::Prepared: return inList(to, {S::Preparing, S::Starting, S::Destroyed});
        case S::Starting: return inList(to, {S::Running, S::Paused, S::Stopping, S::Stopped, S::Failed});
        case S::Running: return inList(to, {S::Paused, S::Stopping, S::Stopped, S::Failed});
        case S::Paused: return inList(to, {S::Running, S::Stopping, S::Stopped, S::Failed});
        case S::Stopping: return inList(to, {S::Stopped, S::Failed});
        case S::Stopped: return inList(to, {S::Preparing, S::Starting, S::Destroyed});
        // A failed VM may still have a process (a paused panic): it can be stopped, or started again.
        case S::Failed: return inList(to, {S::Preparing, S::Starting, S::Stopping, S::Stopped, S::Destroyed});
        case S::Destroyed: return false;
    }
    return false;
}

Result<void> checkTransition(VmState from, VmState to)
{
    if (canTransition(from, to)) return success();
    return Error(ErrorKind::Internal, "Illegal VM state transition from " + std::string(stateName(from)) +
                                          " to " + std::string(stateName(to)));
}

std::string_view operationName(Operation op) noexcept
{
    switch (op) {
        case Operation::Start: return "start";
        case Operation::Stop: return "stop";
        case Operation::Suspend: return "suspend";
        case Operation::Resume: return "resume";
        case Operation::Destroy: return "destroy";
    }
    return "unknown";
}

Result<void> checkOperation(std::string_view vmName, VmState s, Operation op)
{
    if (s == S::Destroyed) return badState(vmName, "has been destroyed", "Nothing to do");
    switch (op) {
        case Operation::Start:
            switch (s) {
                case S::Prepared:
                case S::Stopped:
                case S::Failed: return success();
                case S::Starting:
                case S::Running:
                    return badState(vmName, "is already " + std::string(stateName(s)), "Nothing to do");
                case S::Paused:
                    return badState(vmName, "is paused",
                                    "Run `vmrctl resume " + std::string(vmName) + "` to let it run again");
                case S::Preparing:
                    return badState(vmName, isPhrase(s), "Wait until it is prepared, then start it");
                case S::Stopping:
                    return badState(vmName, isPhrase(s), "Wait until it has stopped, then start it");
                default: break;
            }
            break;
        case Operation::Stop:
            switch (s) {
                case S::Starting:
                case S::Running:
                case S::Paused:
                case S::Stopping:
                case S::Failed: return success();
                case S::Stopped: return badState(vmName, "is already stopped", "Nothing to do");
                default: return badState(vmName, isPhrase(s) + ", not running", "Nothing to do");
            }
        case Operation::Suspend:
            if (s == S::Running) return success();
            if (s == S::Paused) return badState(vmName, "is already paused", "Nothing to do");
            return badState(vmName, isPhrase(s) + ", not running", notLiveHint(vmName, s));
        case Operation::Resume:
            if (s == S::Paused) return success();
            if (s == S::Running) return badState(vmName, "is running, not paused", "Nothing to do");
            return badState(vmName, isPhrase(s) + ", not paused", notLiveHint(vmName, s));
        case Operation::Destroy: return success();
    }
    return Error(ErrorKind::Internal, "Unknown operation");
}

StateChange stateForRunState(qmp::RunState s)
{
    std::string name(qmp::runStateName(s));
    switch (qmp::lifecycleOf(s)) {
        case qmp::Lifecycle::Running: return {S::Running, "running"};
        case qmp::Lifecycle::Created: return {S::Paused, "not started yet (" + name + ")"};
        case qmp::Lifecycle::Paused:
            return {S::Paused, s == qmp::RunState::Paused ? std::string("paused") : "paused (" + name + ")"};
        case qmp::Lifecycle::Suspended: return {S::Paused, "guest suspended to RAM (ACPI S3)"};
        case qmp::Lifecycle::Stopped: return {S::Stopping, "guest shut down"};
        case qmp::Lifecycle::Crashed: return {S::Failed, "QEMU reports " + name};
    }
    return {S::Failed, "QEMU reports " + name};
}

StateChange stateForShutdown(bool guest, std::string_view cause)
{
    if (cause == "guest-shutdown") return {S::Stopped, "guest powered off"};
    if (cause == "guest-panic") return {S::Failed, "guest panicked"};
    if (cause == "guest-reset") return {S::Stopped, "guest rebooted (QEMU exits on reset)"};
    if (cause == "host-qmp-quit") return {S::Stopped, "QEMU quit on a QMP request"};
    if (cause == "host-qmp-system-reset") return {S::Stopped, "system reset over QMP"};
    if (cause == "host-signal") return {S::Stopped, "QEMU terminated by a signal"};
    if (cause == "host-ui") return {S::Stopped, "closed from QEMU's user interface"};
    if (cause == "host-error") return {S::Failed, "QEMU shut down on a host error"};
    std::string who = guest ? "guest" : "host";
    std::string what = cause.empty() ? std::string("no reason given") : std::string(cause);
    return {S::Stopped, "shut down by the " + who + " (" + what + ")"};
}

EventEffect effectOfEvent(std::string_view name, std::string_view dataJson)
{
    EventEffect e;
    if (name == "STOP") {
        e.state = S::Paused;
        e.reason = "paused";
    } else if (name == "RESUME") {
        e.state = S::Running;
        e.reason = "running";
    } else if (name == "SHUTDOWN") {
        EventData d = parseEventData(dataJson);
        StateChange final = stateForShutdown(d.guest.value_or(false), d.reason);
        // QEMU exits right after SHUTDOWN: the VM is stopping until the process is gone.
        e.state = S::Stopping;
        e.reason = final.reason;
        e.onExit = std::move(final);
    } else if (name == "POWERDOWN") {
        e.reason = "ACPI power button pressed";
    } else if (name == "RESET") {
        EventData d = parseEventData(dataJson);
        e.reason = d.guest.value_or(false) ? "guest rebooted" : "VM reset by the host";
    } else if (name == "GUEST_PANICKED") {
        EventData d = parseEventData(dataJson);
        e.state = S::Failed;
        e.reason =
            d.action.empty() ? std::string("guest panicked") : "guest panicked (action " + d.action + ")";
    }
    return e;
}

StateChange stateForExit(const std::optional<StateChange>& announced, bool stopRequested, bool clean,
                         std::string_view exitText)
{
    std::string how(exitText);
    if (announced) return *announced;
    if (stopRequested) return {S::Stopped, "stopped (QEMU " + how + ")"};
    if (clean) return {S::Stopped, "QEMU " + how};
    return {S::Failed, "QEMU " + how + " unexpectedly"};
}

}  // namespace vmr::vm
