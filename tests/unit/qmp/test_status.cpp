// query-status decoding: every RunState, faithfully.

#include "qmp/status.h"

#include <catch2/catch.hpp>

#include <string>

using namespace vmr;
using namespace vmr::qmp;

TEST_CASE("every run state maps to its enum and lifecycle")
{
    struct Row {
        const char* name;
        RunState state;
        Lifecycle lifecycle;
    };
    const Row table[] = {
        {"debug", RunState::Debug, Lifecycle::Paused},
        {"inmigrate", RunState::InMigrate, Lifecycle::Created},
        {"internal-error", RunState::InternalError, Lifecycle::Crashed},
        {"io-error", RunState::IoError, Lifecycle::Paused},
        {"paused", RunState::Paused, Lifecycle::Paused},
        {"postmigrate", RunState::PostMigrate, Lifecycle::Paused},
        {"prelaunch", RunState::Prelaunch, Lifecycle::Created},
        {"finish-migrate", RunState::FinishMigrate, Lifecycle::Paused},
        {"restore-vm", RunState::RestoreVm, Lifecycle::Paused},
        {"running", RunState::Running, Lifecycle::Running},
        {"save-vm", RunState::SaveVm, Lifecycle::Paused},
        {"shutdown", RunState::Shutdown, Lifecycle::Stopped},
        {"suspended", RunState::Suspended, Lifecycle::Suspended},
        {"watchdog", RunState::Watchdog, Lifecycle::Paused},
        {"guest-panicked", RunState::GuestPanicked, Lifecycle::Crashed},
        {"colo", RunState::Colo, Lifecycle::Paused},
    };
    for (const auto& row : table) {
        INFO(row.name);
        auto s = parseRunState(row.name);
        REQUIRE(s.ok());
        CHECK(*s == row.state);
        CHECK(runStateName(row.state) == row.name);
        CHECK(lifecycleOf(row.state) == row.lifecycle);

        bool running = row.state == RunState::Running;
        std::string json = std::string(R"({"running": )") + (running ? "true" : "false") +
                           R"(, "singlestep": false, "status": ")" + row.name + "\"}";
        auto info = parseStatusInfo(json);
        REQUIRE(info.ok());
        CHECK(info->status == row.state);
        CHECK(info->running == running);
        REQUIRE(info->singlestep);
        CHECK_FALSE(*info->singlestep);
    }
    // Only "running" is running.
    int runningCount = 0;
    for (const auto& row : table) runningCount += lifecycleOf(row.state) == Lifecycle::Running;
    CHECK(runningCount == 1);
}

TEST_CASE("query-status without singlestep (QEMU 8.1+)")
{
    auto info = parseStatusInfo(R"({"status":"paused","running":false})");
    REQUIRE(info.ok());
    CHECK(info->status == RunState::Paused);
    CHECK_FALSE(info->running);
    CHECK_FALSE(info->singlestep);
}

TEST_CASE("malformed query-status replies")
{
    auto fails = [](std::string_view json) {
        auto r = parseStatusInfo(json);
        if (r) FAIL("should fail: " << json);
        CHECK(r.error().kind() == ErrorKind::ParseError);
        return r.error().message();
    };
    CHECK_THAT(fails(R"({"running": true, "status": "sleeping"})"), Catch::Contains("'sleeping'"));
    CHECK_THAT(fails(R"({"running": true, "status": "Running"})"), Catch::Contains("'Running'"));
    CHECK_THAT(fails(R"({"status": "running"})"), Catch::Contains("'running'"));
    CHECK_THAT(fails(R"({"running": 1, "status": "running"})"), Catch::Contains("'running'"));
    CHECK_THAT(fails(R"({"running": true})"), Catch::Contains("'status'"));
    CHECK_THAT(fails(R"({"running": true, "status": 3})"), Catch::Contains("'status'"));
    CHECK_THAT(fails(R"({"running": true, "status": "running", "singlestep": "no"})"),
               Catch::Contains("'singlestep'"));
    CHECK_THAT(fails("[]"), Catch::Contains("not a JSON object"));
    CHECK_THAT(fails("{"), Catch::Contains("not valid JSON"));
    CHECK(lifecycleName(Lifecycle::Crashed) == "crashed");
}

TEST_CASE("query-vnc: the port of an enabled server, nothing when disabled")
{
    auto on = parseVncPort(
        R"({"enabled":true,"host":"127.0.0.1","service":"5901","family":"ipv4","auth":"none","clients":[]})");
    REQUIRE(on.ok());
    CHECK(*on == std::optional<uint16_t>(5901));
    auto off = parseVncPort(R"({"enabled":false})");
    REQUIRE(off.ok());
    CHECK_FALSE(off->has_value());
    for (const char* bad :
         {R"([])", R"({"service":"5900"})", R"({"enabled":true})", R"({"enabled":true,"service":"vnc"})",
          R"({"enabled":true,"service":"70000"})", R"({"enabled":true,"service":5900})", "{"}) {
        INFO(bad);
        auto r = parseVncPort(bad);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind() == ErrorKind::ParseError);
    }
}
