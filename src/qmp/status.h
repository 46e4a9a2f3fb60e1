#pragma once

// Typed decoding of `query-status` (qapi/run-state.json: StatusInfo and RunState) and of
// `query-vnc` (qapi/ui.json: VncInfo).

#include "base/result.h"

#include <cstdint>
#include <optional>
#include <string_view>

namespace vmr::qmp {

// Every RunState QEMU defines, one for one.
enum class RunState {
    Debug,
    InMigrate,
    InternalError,
    IoError,
    Paused,
    PostMigrate,
    Prelaunch,
    FinishMigrate,
    RestoreVm,
    Running,
    SaveVm,
    Shutdown,
    Suspended,
    Watchdog,
    GuestPanicked,
    Colo,
};

// What a manager makes of a RunState (NOTES.md, query-status).
enum class Lifecycle {
    Created,  // prelaunch, inmigrate: exists, never started
    Running,  // running
    Paused,  // paused or busy: paused, io-error, watchdog, (post|finish)migrate, save/restore-vm, debug, colo
    Suspended,  // ACPI S3
    Stopped,    // shutdown (only with -no-shutdown)
    Crashed,    // guest-panicked, internal-error
};

struct StatusInfo {
    bool running = false;
    std::optional<bool> singlestep;  // QEMU < 8.1 only
    RunState status = RunState::Prelaunch;
};

// The wire name ("guest-panicked"...).
std::string_view runStateName(RunState s) noexcept;
// ParseError naming the value when it is not a RunState.
Result<RunState> parseRunState(std::string_view name);
Lifecycle lifecycleOf(RunState s) noexcept;
std::string_view lifecycleName(Lifecycle l) noexcept;

// Decode the `return` of query-status (JSON text, as Client::execute returns it).
Result<StatusInfo> parseStatusInfo(std::string_view returnJson);

// Decode the `return` of query-vnc: the TCP port ("service") of an enabled VNC server, empty
// when VNC is disabled. ParseError when the reply is malformed or the service is no port.
Result<std::optional<uint16_t>> parseVncPort(std::string_view returnJson);

}  // namespace vmr::qmp
