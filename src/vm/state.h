#pragma once

// The per-VM state machine (docs/vm.md): the states a VM record holds, which transitions are
// legal, which user operations each state allows, and how QEMU's view of a VM (query-status,
// QMP events, the process exit) maps onto it. Pure: no I/O.

#include "base/result.h"
#include "model/vocab.h"
#include "qmp/status.h"

#include <optional>
#include <string>
#include <string_view>

namespace vmr::vm {

using model::VmState;  // the states, and their names, are the model's (model/vocab.h)

constexpr int kVmStateCount = 9;

inline std::string_view stateName(VmState s) noexcept
{
    return model::wordOf(s);
}

// Whether the state machine allows from → to. Staying in the same state is allowed (a no-op)
// except for Destroyed, which nothing follows.
bool canTransition(VmState from, VmState to) noexcept;
// The same as an error: Internal (a driver asking for an illegal move is a bug), naming both.
Result<void> checkTransition(VmState from, VmState to);

// What a user can ask of a VM.
enum class Operation { Start, Stop, Suspend, Resume, Destroy };
std::string_view operationName(Operation op) noexcept;

// Whether `op` makes sense in state `s`: VmBadState with a sentence naming the VM and a hint
// ("VM \"x\" is running, not paused", hint "Nothing to do") otherwise.
Result<void> checkOperation(std::string_view vmName, VmState s, Operation op);

// A state with the reason it was entered (VmRecord::stateReason).
struct StateChange {
    VmState state;
    std::string reason;
    bool operator==(const StateChange&) const = default;
};

// query-status of a live QEMU. `shutdown` (only with -no-shutdown) means QEMU is about to
// stop: Stopping. Prelaunch (-S) counts as Paused: `cont` starts it.
StateChange stateForRunState(qmp::RunState s);

// What a QMP event means for the VM. `state` is empty when the event changes no state
// (POWERDOWN, RESET, unknown events); `reason` is then a sentence for the log, or empty.
struct EventEffect {
    std::optional<VmState> state;
    std::string reason;
    // SHUTDOWN: QEMU is about to exit; the exit's final state and reason are these.
    std::optional<StateChange> onExit;
};
// dataJson is the event's "data" object as JSON text ("{}" when none). Malformed data is
// treated as absent members, never as an error: an event cannot be refused.
EventEffect effectOfEvent(std::string_view name, std::string_view dataJson);

// The reason for a SHUTDOWN event's `reason` (ShutdownCause), with `guest` telling who asked.
// guest-shutdown → "guest powered off"; a panic → Failed.
StateChange stateForShutdown(bool guest, std::string_view cause);

// Where a VM goes when its QEMU process ends. `announced`: what the last SHUTDOWN event said
// (if any); `stopRequested`: vmrd itself was stopping it; `exitText`: ExitStatus::describe();
// `clean`: exited with code 0.
StateChange stateForExit(const std::optional<StateChange>& announced, bool stopRequested, bool clean,
                         std::string_view exitText);

}  // namespace vmr::vm
