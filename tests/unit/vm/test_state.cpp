#include "vm/state.h"

#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <string>

using namespace vmr;
using namespace vmr::vm;

namespace {

constexpr VmState kAll[] = {VmState::Preparing, VmState::Prepared, VmState::Starting,
                            VmState::Running,   VmState::Paused,   VmState::Stopping,
                            VmState::Stopped,   VmState::Failed,   VmState::Destroyed};

// The whole table, written out independently of state.cpp: "from" → every legal "to" other
// than staying put.
const std::map<std::string, std::set<std::string>> kLegal = {
    {"preparing", {"prepared", "failed", "destroyed"}},
    {"prepared", {"preparing", "starting", "destroyed"}},
    {"starting", {"running", "paused", "stopping", "stopped", "failed"}},
    {"running", {"paused", "stopping", "stopped", "failed"}},
    {"paused", {"running", "stopping", "stopped", "failed"}},
    {"stopping", {"stopped", "failed"}},
    {"stopped", {"preparing", "starting", "destroyed"}},
    {"failed", {"preparing", "starting", "stopping", "stopped", "destroyed"}},
    {"destroyed", {}},
};

}  // namespace

TEST_CASE("state names match the record's strings and round-trip")
{
    const char* names[] = {"preparing", "prepared", "starting", "running",  "paused",
                           "stopping",  "stopped",  "failed",   "destroyed"};
    int i = 0;
    for (VmState s : kAll) {
        CHECK(stateName(s) == names[i]);
        auto back = model::parseWord<VmState>(names[i]);
        REQUIRE(back);
        CHECK(*back == s);
        ++i;
    }
    CHECK(i == kVmStateCount);
    auto bad = model::parseWord<VmState>("runing");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().kind() == ErrorKind::InvalidArgument);
    CHECK(bad.error().message() ==
          "Unknown state \"runing\"; expected \"preparing\", \"prepared\", \"starting\", \"running\", "
          "\"paused\", \"stopping\", \"stopped\", \"failed\" or \"destroyed\"");
    CHECK(bad.error().hint() == "Did you mean \"running\"?");
}

TEST_CASE("transition table, all 81 pairs")
{
    int legal = 0;
    for (VmState from : kAll) {
        for (VmState to : kAll) {
            std::string f(stateName(from)), t(stateName(to));
            bool expected = (from == to) ? from != VmState::Destroyed : kLegal.at(f).count(t) == 1;
            INFO(f << " -> " << t);
            CHECK(canTransition(from, to) == expected);
            auto r = checkTransition(from, to);
            CHECK(r.ok() == expected);
            if (!r) {
                CHECK(r.error().kind() == ErrorKind::Internal);
                CHECK(r.error().message() == "Illegal VM state transition from " + f + " to " + t);
            }
            if (expected) ++legal;
        }
    }
    CHECK(legal == 8 + 3 + 3 + 5 + 4 + 4 + 2 + 3 + 5);
}

TEST_CASE("operations allowed per state")
{
    const std::map<Operation, std::set<VmState>> allowed = {
        {Operation::Start, {VmState::Prepared, VmState::Stopped, VmState::Failed}},
        {Operation::Stop,
         {VmState::Starting, VmState::Running, VmState::Paused, VmState::Stopping, VmState::Failed}},
        {Operation::Suspend, {VmState::Running}},
        {Operation::Resume, {VmState::Paused}},
        {Operation::Destroy,
         {VmState::Preparing, VmState::Prepared, VmState::Starting, VmState::Running, VmState::Paused,
          VmState::Stopping, VmState::Stopped, VmState::Failed}},
    };
    for (const auto& [op, states] : allowed) {
        for (VmState s : kAll) {
            INFO(operationName(op) << " in " << stateName(s));
            auto r = checkOperation("x", s, op);
            CHECK(r.ok() == (states.count(s) == 1));
            if (!r) {
                CHECK(r.error().kind() == ErrorKind::VmBadState);
                CHECK(r.error().message().rfind("VM \"x\" ", 0) == 0);
                CHECK_FALSE(r.error().hint().empty());
            }
        }
    }
}

TEST_CASE("operation errors say what is wrong and what to do")
{
    auto check = [](VmState s, Operation op, const std::string& msg, const std::string& hint) {
        auto r = checkOperation("web-1", s, op);
        REQUIRE_FALSE(r);
        CHECK(r.error().message() == msg);
        CHECK(r.error().hint() == hint);
    };
    check(VmState::Running, Operation::Resume, "VM \"web-1\" is running, not paused", "Nothing to do");
    check(VmState::Paused, Operation::Suspend, "VM \"web-1\" is already paused", "Nothing to do");
    check(VmState::Running, Operation::Start, "VM \"web-1\" is already running", "Nothing to do");
    check(VmState::Stopped, Operation::Stop, "VM \"web-1\" is already stopped", "Nothing to do");
    check(VmState::Stopped, Operation::Suspend, "VM \"web-1\" is stopped, not running",
          "Start it with `vmrctl start web-1`");
    check(VmState::Paused, Operation::Start, "VM \"web-1\" is paused",
          "Run `vmrctl resume web-1` to let it run again");
    check(VmState::Stopping, Operation::Start, "VM \"web-1\" is stopping",
          "Wait until it has stopped, then start it");
    check(VmState::Preparing, Operation::Resume, "VM \"web-1\" is being prepared, not paused",
          "Wait until it is prepared, then start it");
    check(VmState::Prepared, Operation::Stop, "VM \"web-1\" is prepared, not running", "Nothing to do");
    check(VmState::Destroyed, Operation::Destroy, "VM \"web-1\" has been destroyed", "Nothing to do");
}

TEST_CASE("query-status values map onto states")
{
    using qmp::RunState;
    CHECK(stateForRunState(RunState::Running) == StateChange{VmState::Running, "running"});
    CHECK(stateForRunState(RunState::Paused) == StateChange{VmState::Paused, "paused"});
    CHECK(stateForRunState(RunState::IoError) == StateChange{VmState::Paused, "paused (io-error)"});
    CHECK(stateForRunState(RunState::Prelaunch) ==
          StateChange{VmState::Paused, "not started yet (prelaunch)"});
    CHECK(stateForRunState(RunState::Suspended) ==
          StateChange{VmState::Paused, "guest suspended to RAM (ACPI S3)"});
    CHECK(stateForRunState(RunState::Shutdown) == StateChange{VmState::Stopping, "guest shut down"});
    CHECK(stateForRunState(RunState::GuestPanicked) ==
          StateChange{VmState::Failed, "QEMU reports guest-panicked"});
    CHECK(stateForRunState(RunState::InternalError) ==
          StateChange{VmState::Failed, "QEMU reports internal-error"});
}

TEST_CASE("QMP events map onto states")
{
    auto stop = effectOfEvent("STOP", "{}");
    CHECK(stop.state == VmState::Paused);
    CHECK_FALSE(stop.onExit);
    CHECK(effectOfEvent("RESUME", "{}").state == VmState::Running);

    auto off = effectOfEvent("SHUTDOWN", R"({"guest": true, "reason": "guest-shutdown"})");
    CHECK(off.state == VmState::Stopping);
    CHECK(off.reason == "guest powered off");
    REQUIRE(off.onExit);
    CHECK(*off.onExit == StateChange{VmState::Stopped, "guest powered off"});

    auto panic = effectOfEvent("SHUTDOWN", R"({"guest": true, "reason": "guest-panic"})");
    REQUIRE(panic.onExit);
    CHECK(panic.onExit->state == VmState::Failed);

    auto quit = effectOfEvent("SHUTDOWN", R"({"guest": false, "reason": "host-qmp-quit"})");
    CHECK(quit.onExit->reason == "QEMU quit on a QMP request");
    auto odd = effectOfEvent("SHUTDOWN", R"({"guest": false, "reason": "snapshot-load"})");
    CHECK(odd.onExit->reason == "shut down by the host (snapshot-load)");
    // Malformed data is never an error: the event still means QEMU is going away.
    auto broken = effectOfEvent("SHUTDOWN", "not json");
    CHECK(broken.state == VmState::Stopping);
    CHECK(broken.onExit->reason == "shut down by the host (no reason given)");

    auto button = effectOfEvent("POWERDOWN", "{}");
    CHECK_FALSE(button.state);
    CHECK(button.reason == "ACPI power button pressed");
    auto reset = effectOfEvent("RESET", R"({"guest": true, "reason": "guest-reset"})");
    CHECK_FALSE(reset.state);
    CHECK(reset.reason == "guest rebooted");
    CHECK(effectOfEvent("RESET", R"({"guest": false, "reason": "host-qmp-system-reset"})").reason ==
          "VM reset by the host");

    auto gp = effectOfEvent("GUEST_PANICKED", R"({"action": "pause"})");
    CHECK(gp.state == VmState::Failed);
    CHECK(gp.reason == "guest panicked (action pause)");

    auto other = effectOfEvent("NIC_RX_FILTER_CHANGED", R"({"path": "/x"})");
    CHECK_FALSE(other.state);
    CHECK(other.reason.empty());
}

TEST_CASE("the process exit decides the final state")
{
    std::optional<StateChange> none;
    CHECK(stateForExit(none, false, false, "killed by SIGKILL") ==
          StateChange{VmState::Failed, "QEMU killed by SIGKILL unexpectedly"});
    CHECK(stateForExit(none, false, true, "exited with code 0") ==
          StateChange{VmState::Stopped, "QEMU exited with code 0"});
    CHECK(stateForExit(none, true, false, "killed by SIGKILL") ==
          StateChange{VmState::Stopped, "stopped (QEMU killed by SIGKILL)"});
    std::optional<StateChange> off = StateChange{VmState::Stopped, "guest powered off"};
    CHECK(stateForExit(off, true, true, "exited with code 0") == *off);
    std::optional<StateChange> panic = StateChange{VmState::Failed, "guest panicked"};
    CHECK(stateForExit(panic, false, true, "exited with code 0") == *panic);
}
