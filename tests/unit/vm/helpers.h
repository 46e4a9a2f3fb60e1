#pragma once

// Shared by the driver tests: a reactor on the backend VMR_REACTOR selects, a short temp
// folder (unix socket paths have 108 bytes), and QEMU drivers on it.

#include "reactor/reactor.h"
#include "store/layout.h"
#include "vm/qemu_driver.h"

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

inline std::unique_ptr<Reactor> makeReactor()
{
    auto r = Reactor::create();
    if (!r) FAIL("Reactor::create: " << r.error().what());
    return std::move(*r);
}

// Start a task and run the loop until it finishes; its result.
template <typename T>
T finish(Reactor& r, Task<T>& t, reactor::Duration timeout = 30s)
{
    t.start();
    REQUIRE(r.runUntil([&] { return t.done(); }, timeout));
    return t.result();
}
template <typename T>
T finish(Reactor& r, Task<T>&& t, reactor::Duration timeout = 30s)
{
    return finish(r, t, timeout);
}

inline bool haveQemu()
{
    const char* path = std::getenv("PATH");
    std::string rest = path != nullptr ? path : "/usr/bin:/bin";
    size_t pos = 0;
    while (pos <= rest.size()) {
        size_t end = rest.find(':', pos);
        if (end == std::string::npos) end = rest.size();
        if (::access((rest.substr(pos, end - pos) + "/qemu-system-x86_64").c_str(), X_OK) == 0) return true;
        pos = end + 1;
    }
    return false;
}

class TempDir {
public:
    TempDir()
    {
        std::string tmpl = "/tmp/vmr-vm-XXXXXX";
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path_ = tmpl;
    }
    ~TempDir()
    {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

struct Transition {
    VmState from;
    VmState to;
    std::string reason;
};

// A driver on a temp layout, recording every state change.
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

    QemuDriverConfig config(const std::string& name, const std::string& id, bool machineNone = true)
    {
        QemuDriverConfig c;
        c.spec.name = name;
        c.spec.id = id;
        c.spec.memoryMib = 64;
        c.spec.machineNone = machineNone;
        c.spec.accelOptions.tcgTbSizeMib = 16;
        c.paths = runtimePaths(layout, name, id);
        return c;
    }

    std::unique_ptr<QemuDriver> make(Reactor& r, QemuDriverConfig c, VmState initial = VmState::Preparing)
    {
        auto d = std::make_unique<QemuDriver>(r, std::move(c), initial);
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
