#include "qmp/status.h"

#include <simdjson.h>

#include <array>
#include <charconv>
#include <string>
#include <utility>

namespace vmr::qmp {

namespace {

constexpr std::array<std::pair<RunState, std::string_view>, 16> kNames = {{
    {RunState::Debug, "debug"},
    {RunState::InMigrate, "inmigrate"},
    {RunState::InternalError, "internal-error"},
    {RunState::IoError, "io-error"},
    {RunState::Paused, "paused"},
    {RunState::PostMigrate, "postmigrate"},
    {RunState::Prelaunch, "prelaunch"},
    {RunState::FinishMigrate, "finish-migrate"},
    {RunState::RestoreVm, "restore-vm"},
    {RunState::Running, "running"},
    {RunState::SaveVm, "save-vm"},
    {RunState::Shutdown, "shutdown"},
    {RunState::Suspended, "suspended"},
    {RunState::Watchdog, "watchdog"},
    {RunState::GuestPanicked, "guest-panicked"},
    {RunState::Colo, "colo"},
}};

Error parseError(std::string message)
{
    return Error(ErrorKind::ParseError, std::move(message));
}

}  // namespace

std::string_view runStateName(RunState s) noexcept
{
    for (const auto& [state, name] : kNames) {
        if (state == s) return name;
    }
    return "unknown";
}

Result<RunState> parseRunState(std::string_view name)
{
    for (const auto& [state, n] : kNames) {
        if (n == name) return state;
    }
    return parseError("Unknown QMP run state '" + std::string(name) + "'");
}

Lifecycle lifecycleOf(RunState s) noexcept
{
    // A switch without default: a new RunState must be placed here to build.
    switch (s) {
        case RunState::Prelaunch:
        case RunState::InMigrate: return Lifecycle::Created;
        case RunState::Running: return Lifecycle::Running;
        case RunState::Paused:
        case RunState::IoError:
        case RunState::Watchdog:
        case RunState::PostMigrate:
        case RunState::FinishMigrate:
        case RunState::SaveVm:
        case RunState::RestoreVm:
        case RunState::Debug:
        case RunState::Colo: return Lifecycle::Paused;
        case RunState::Suspended: return Lifecycle::Suspended;
        case RunState::Shutdown: return Lifecycle::Stopped;
        case RunState::GuestPanicked:
        case RunState::InternalError: return Lifecycle::Crashed;
    }
    return Lifecycle::Crashed;
}

std::string_view lifecycleName(Lifecycle l) noexcept
{
    switch (l) {
        case Lifecycle::Created: return "created";
        case Lifecycle::Running: return "running";
        case Lifecycle::Paused: return "paused";
        case Lifecycle::Suspended: return "suspended";
        case Lifecycle::Stopped: return "stopped";
        case Lifecycle::Crashed: return "crashed";
    }
    return "unknown";
}

Result<StatusInfo> parseStatusInfo(std::string_view returnJson)
{
    // Its own parser: the caller may hold views into parseMessage's.
    thread_local simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (auto err = parser.parse(returnJson.data(), returnJson.size()).get(doc)) {
        return parseError(std::string("query-status reply is not valid JSON: ") +
                          simdjson::error_message(err));
    }
    simdjson::dom::object obj;
    if (doc.get_object().get(obj)) return parseError("query-status reply is not a JSON object");

    StatusInfo info;
    simdjson::dom::element v;
    if (obj.at_key("running").get(v) || v.get_bool().get(info.running)) {
        return parseError("query-status reply: 'running' is missing or not a boolean");
    }
    if (!obj.at_key("singlestep").get(v)) {
        bool b = false;
        if (v.get_bool().get(b)) return parseError("query-status reply: 'singlestep' is not a boolean");
        info.singlestep = b;
    }
    std::string_view status;
    if (obj.at_key("status").get(v) || v.get_string().get(status)) {
        return parseError("query-status reply: 'status' is missing or not a string");
    }
    auto state = parseRunState(status);
    if (!state) return std::move(state).error();
    info.status = *state;
    return info;
}

Result<std::optional<uint16_t>> parseVncPort(std::string_view returnJson)
{
    thread_local simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (auto err = parser.parse(returnJson.data(), returnJson.size()).get(doc))
        return parseError(std::string("query-vnc reply is not valid JSON: ") + simdjson::error_message(err));
    simdjson::dom::object obj;
    if (doc.get_object().get(obj)) return parseError("query-vnc reply is not a JSON object");
    simdjson::dom::element v;
    bool enabled = false;
    if (obj.at_key("enabled").get(v) || v.get_bool().get(enabled))
        return parseError("query-vnc reply: 'enabled' is missing or not a boolean");
    if (!enabled) return std::optional<uint16_t>();
    std::string_view service;
    if (obj.at_key("service").get(v) || v.get_string().get(service))
        return parseError("query-vnc reply: 'service' is missing or not a string");
    unsigned port = 0;
    auto [end, ec] = std::from_chars(service.data(), service.data() + service.size(), port);
    if (ec != std::errc() || end != service.data() + service.size() || port == 0 || port > 65535)
        return parseError("query-vnc reply: 'service' is not a TCP port: \"" + std::string(service) + "\"");
    return std::optional<uint16_t>(static_cast<uint16_t>(port));
}

}  // namespace vmr::qmp
