// Crash points (built with -Dcrash_points=true): vmrd is killed with SIGKILL at each named step
// of create, start and destroy (base/crash_point.h), a new vmrd starts on the same state, and
// everything must be accounted for: no folder without its record, no record without its files,
// no hypervisor that no VM owns, no VM said to run without its process, the name usable again.

#include "audit.h"
#include "catch.h"

#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>

using namespace vmr::test;

namespace {

struct Case {
    std::string point;
    std::vector<std::vector<std::string>> before;  // commands that set the scene
    std::vector<std::string> op;                   // the one that is cut short
    bool vmAfter;                                  // whether VM "a" exists after the restart
};

}  // namespace

TEST_CASE("vmrd killed at any step of create, start or destroy leaves nothing stuck", "[crash]")
{
    if (std::getenv("VMR_CRASH_POINTS") == nullptr || std::string(std::getenv("VMR_CRASH_POINTS")) != "1") {
        WARN("vmrd is built without crash points: configure with -Dcrash_points=true");
        return;
    }
    std::vector<std::string> create = {"create", "--name", "a", "--image", "", "--network", "user"};
    std::vector<Case> cases = {
        {"create.after_overlay", {}, create, false},
        {"create.after_seed", {}, create, false},
        {"create.after_commit", {}, create, true},
        {"start.after_spawn", {create}, {"start", "a"}, true},
        // The record says "destroyed" once the hypervisor is gone: the next vmrd finishes the job.
        {"destroy.after_stop", {create, {"start", "a"}}, {"destroy", "a"}, false},
        {"destroy.after_rename", {create, {"start", "a"}}, {"destroy", "a"}, false},
    };
    for (const auto& c : cases) {
        DYNAMIC_SECTION(c.point)
        {
            TempDir dir;
            std::string base = dir / "base.img";
            writeFile(base, "");
            std::filesystem::resize_file(base, 16 << 20);
            auto withBase = [&](std::vector<std::string> args) {
                std::replace(args.begin(), args.end(), std::string(), base);
                return args;
            };
            Daemon::Config cfg;
            cfg.configToml = sshPortsToml(40000, 40) + "[qemu]\nmachine = \"none\"\naccel = \"tcg\"\n";
            {
                Daemon::Config crashing = cfg;
                crashing.env["VMR_CRASH_AT"] = c.point;
                Daemon d(dir, crashing);
                REQUIRE(d.waitReady());
                for (const auto& step : c.before) {
                    auto r = d.ctl(withBase(step));
                    INFO(step[0] << ": " << r.err);
                    REQUIRE(r.code == 0);
                }
                auto cut = d.ctl(withBase(c.op));
                CHECK(cut.code != 0);
                auto code = d.waitExit(10s);
                REQUIRE(code);
                CHECK(*code == 128 + SIGKILL);
                CHECK(d.log().find("crash point: " + c.point + "\n") != std::string::npos);
            }

            Daemon d(dir, cfg);
            REQUIRE(d.waitReady());
            const std::string vms = d.stateDir() + "/vms";
            // What the crash left half done was finished or rolled back at start-up.
            CHECK(auditState(d, dir) == std::vector<std::string>{});
            CHECK(listVms(d)->count("a") == (c.vmAfter ? 1u : 0u));
            // The name is usable again, and the image cache holds nothing.
            if (c.vmAfter) CHECK(d.ctl({"destroy", "a"}).code == 0);
            auto again = d.ctl(withBase({"create", "--name", "a", "--image", "", "--start"}));
            INFO(again.err);
            CHECK(again.code == 0);
            CHECK(d.ctl({"destroy", "a"}).code == 0);
            CHECK(listDir(vms).empty());
            CHECK(listDir(d.stateDir() + "/images").empty());
        }
    }
}

TEST_CASE("a VM folder without a record is listed as broken and can be destroyed", "[crash]")
{
    TempDir dir;
    Daemon::Config cfg;
    cfg.configToml = sshPortsToml(40000, 40) + "[qemu]\nmachine = \"none\"\naccel = \"tcg\"\n";
    writeFile(dir / "state/vms/c7/overlay.qcow2", "disk");
    writeFile(dir / "state/vms/c7/id_ed25519_generated", "key");
    writeFile(dir / "state/vms/c8/vm.json", "{not json");
    Daemon d(dir, cfg);
    REQUIRE(d.waitReady());
    auto vmsListed = *listVms(d);
    CHECK(vmsListed["c7"].state == "broken");
    CHECK(vmsListed["c8"].state == "broken");
    auto human = d.ctl({"list"});
    CHECK(human.out.find("c7 is broken: its folder has no vm.json (vmrctl destroy c7 removes it)\n") !=
          std::string::npos);
    auto status = d.ctl({"status", "c7"});
    CHECK(status.code == 1);
    CHECK(status.err.find("VM \"c7\" is broken: its folder has no vm.json") != std::string::npos);
    std::string base = dir / "base.img";
    writeFile(base, std::string(1 << 20, '\0'));
    auto taken = d.ctl({"create", "--name", "c7", "--image", base});
    CHECK(taken.code == 1);
    CHECK(taken.err.find("VM \"c7\" exists, broken: its folder has no vm.json") != std::string::npos);
    CHECK(taken.err.find("vmrctl destroy c7") != std::string::npos);

    for (const char* name : {"c7", "c8"}) {
        auto gone = d.ctl({"destroy", name});
        INFO(gone.err);
        CHECK(gone.code == 0);
    }
    CHECK(listDir(d.stateDir() + "/vms").empty());
    CHECK(listVms(d)->empty());
    CHECK(d.ctl({"create", "--name", "c7", "--image", base}).code == 0);
}
