#pragma once

// Shared by the client and driver tests: fake-chv (tests/fakes) as a real process, next to the
// VM driver tests' helpers (a reactor on the backend VMR_REACTOR selects, a short temp folder).

#include "../vm/helpers.h"
#include "reactor/reactor.h"

#include <catch2/catch.hpp>

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

extern char** environ;

namespace vmr::chv::test {

using namespace std::chrono_literals;
using reactor::Reactor;
using reactor::Task;
// A reactor, finish() and TempDir come from the VM driver tests.
using vm::test::finish;
using vm::test::makeReactor;
using vm::test::TempDir;

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

}  // namespace vmr::chv::test
