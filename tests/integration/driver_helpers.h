#pragma once

// Shared by the driver tests against real QEMU: QEMU drivers on a temp layout, recording every
// state change.

#include "catch.h"
#include "reactor/reactor.h"
#include "store/layout.h"
#include "vm/driver.h"
#include "vm/launch.h"
#include "vm/launch_files.h"

#include <catch2/catch.hpp>

#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace vmr::vm::test {

using namespace std::chrono_literals;
using reactor::Reactor;
using reactor::Task;

using vmr::test::finish;
using vmr::test::makeReactor;
using vmr::test::TempDir;

inline bool haveQemu()
{
    return vmr::test::haveProgram("qemu-system-x86_64");
}

struct Transition {
    VmState from;
    VmState to;
    std::string reason;
};

// Open the launch's files with the test's own rights, as the manager does before a start
// (vm/launch_files.h); a -bios file counts as the owner's.
inline void openFiles(DriverConfig& c, const std::string& copiesDir)
{
    auto opened =
        openLaunchFiles(c.launch, FileRights{Credentials::self(), "", copiesDir, std::nullopt}, true);
    INFO((opened ? std::string() : opened.error().what()));
    REQUIRE(opened);
}

// A driver on a temp layout, recording every state change.
struct DriverHarness {
    TempDir dir;
    store::Layout layout{settings(dir.path())};
    std::vector<Transition> changes;

    static config::Settings settings(const std::string& root)
    {
        config::Settings s;
        // The test's own daemon: QEMU runs as the test (system mode's hypervisor_user and
        // roles are test_access's business).
        s.mode = config::Mode::User;
        s.stateDir = root + "/state";
        s.runtimeDir = root + "/run";
        return s;
    }

    // A QEMU VM's driver config: -machine none unless asked (no guest, ~50 ms to start).
    DriverConfig config(const std::string& name, const std::string& id, bool machineNone = true)
    {
        DriverConfig c;
        c.binary = "qemu-system-x86_64";
        c.id = id;
        c.spec.name = name;
        c.spec.memoryMib = 64;
        c.spec.network.mode = model::NetMode::None;
        c.launch.machineNone = machineNone;
        c.launch.accelOptions.tcgTbSizeMib = 16;
        c.paths = runtimePaths(layout, model::Backend::Qemu, name, id);
        return c;
    }

    std::unique_ptr<Driver> make(Reactor& r, DriverConfig c, VmState initial = VmState::Prepared)
    {
        auto made = makeDriver(r, std::move(c), initial);
        REQUIRE(made);
        std::unique_ptr<Driver> d = std::move(*made);
        d->onStateChange([this](VmState from, VmState to, const std::string& why) {
            changes.push_back({from, to, why});
        });
        return d;
    }

    bool saw(VmState from, VmState to) const
    {
        for (const auto& c : changes)
            if (c.from == from && c.to == to) return true;
        return false;
    }
};

}  // namespace vmr::vm::test
