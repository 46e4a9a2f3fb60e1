#pragma once

// Shared by the client and driver tests: fake-chv (tests/fakes) as a real process, and a
// harness of ChvDrivers on it (a temp layout, recorded transitions), on the reactor backend
// VMR_REACTOR selects.

#include "catch.h"
#include "reactor/reactor.h"
#include "store/layout.h"
#include "vm/chv_driver.h"
#include "vm/launch.h"

#include <catch2/catch.hpp>

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

extern char** environ;

namespace vmr::chv::test {

using namespace std::chrono_literals;
using reactor::Reactor;
using reactor::Task;
using vmr::test::finish;
using vmr::test::makeReactor;
using vmr::test::TempDir;

// The fake-chv binary: $FAKE_CHV, else the one built next to the tests.
inline std::string fakeChvPath()
{
    const char* env = std::getenv("FAKE_CHV");
    std::string path = env != nullptr && *env != '\0' ? env : VMR_FAKE_CHV;
    if (::access(path.c_str(), X_OK) != 0)
        FAIL(path << " is missing: build it first (ninja tests/fakes/fake-chv)");
    return path;
}

// vmrd's environment plus `extra` ("NAME=value"), for fake-chv's test controls.
inline std::vector<std::string> environment(const std::vector<std::string>& extra)
{
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
        std::string s = *e;
        if (s.rfind("FAKE_CHV_", 0) != 0) env.push_back(s);
    }
    env.insert(env.end(), extra.begin(), extra.end());
    return env;
}

// fake-chv serving an API socket in a temp dir; killed (and awaited) at the end of the test.
class FakeVmm {
public:
    FakeVmm(Reactor& r, std::vector<std::string> env = {}, std::vector<std::string> args = {}) : r_(r)
    {
        api_ = dir_.path() + "/api";
        reactor::SpawnOptions opts;
        opts.argv = {fakeChvPath(), "--api-socket", "path=" + api_};
        opts.argv.insert(opts.argv.end(), args.begin(), args.end());
        opts.env = environment(env);
        opts.fds = {{2, 2}};
        auto c = reactor::Child::spawn(r, std::move(opts));
        if (!c) FAIL("spawn fake-chv: " << c.error().what());
        child_ = std::move(*c);
    }
    ~FakeVmm()
    {
        if (!child_->exited()) {
            (void)child_->signal(SIGKILL);
            r_.runUntil([&] { return child_->exited(); }, 10s);
        }
    }
    const std::string& api() const { return api_; }
    const std::string& dir() const { return dir_.path(); }
    reactor::Child& child() { return *child_; }

private:
    Reactor& r_;
    TempDir dir_;
    std::string api_;
    std::unique_ptr<reactor::Child> child_;
};

struct Transition {
    vm::VmState from;
    vm::VmState to;
    std::string reason;
};

// ChvDrivers on fake-chv in a temp layout, recording every state change.
struct DriverHarness {
    TempDir dir;
    store::Layout layout{settings(dir.path())};
    std::vector<Transition> changes;

    static config::Settings settings(const std::string& root)
    {
        config::Settings s;
        s.stateDir = root + "/state";
        s.runtimeDir = root + "/run";
        return s;
    }

    // A kernel-booted VM without disk or NIC, on fake-chv (which runs without KVM).
    vm::DriverConfig chvConfig(const std::string& name, const std::string& id)
    {
        vm::DriverConfig c;
        c.binary = fakeChvPath();
        c.id = id;
        c.requireKvm = false;
        c.spec.name = name;
        c.spec.backend = model::Backend::Chv;
        c.spec.memoryMib = 64;
        c.spec.network.mode = model::NetMode::None;
        c.spec.kernel = dir.path() + "/vmlinux";
        c.spec.cmdline = "console=ttyS0";
        std::ofstream(c.spec.kernel) << "not really a kernel";
        c.launch.accel = vm::Accel::Kvm;
        c.paths = vm::runtimePaths(layout, model::Backend::Chv, name, id);
        c.startTimeout = 10s;
        c.requestTimeout = 2s;
        c.termGrace = 1s;
        return c;
    }

    std::unique_ptr<vm::ChvDriver> make(Reactor& r, vm::DriverConfig c,
                                        vm::VmState initial = vm::VmState::Prepared)
    {
        auto d = std::make_unique<vm::ChvDriver>(r, std::move(c), initial);
        d->onStateChange([this](vm::VmState from, vm::VmState to, const std::string& why) {
            changes.push_back({from, to, why});
        });
        return d;
    }

    bool saw(vm::VmState from, vm::VmState to) const
    {
        for (const auto& c : changes)
            if (c.from == from && c.to == to) return true;
        return false;
    }
    bool saw(vm::VmState from, vm::VmState to, const std::string& reason) const
    {
        for (const auto& c : changes)
            if (c.from == from && c.to == to && c.reason == reason) return true;
        return false;
    }
};

}  // namespace vmr::chv::test
