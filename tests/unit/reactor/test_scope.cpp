// TaskScope: the tasks an object owns never resume after it is gone.

#include "catch.h"
#include "reactor/reactor.h"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using namespace vmr;
using namespace vmr::reactor;
using vmr::test::makeReactor;

namespace {

struct Flags {
    bool started = false;
    bool finished = false;
    bool unwound = false;  // the frame's locals were destroyed
};

struct Unwind {
    Flags* f;
    ~Unwind() { f->unwound = true; }
};

Task<void> sleeper(Reactor& r, Flags* f, Duration d)
{
    Unwind u{f};
    f->started = true;
    (void)co_await sleep(r, d);
    f->finished = true;
}

}  // namespace

TEST_CASE("a scope's tasks run to completion and leave it", "[scope]")
{
    auto r = makeReactor();
    TaskScope scope;
    Flags f;
    scope.spawn(sleeper(*r, &f, 1ms));
    CHECK(f.started);
    CHECK(scope.running() == 1);
    REQUIRE(r->runUntil([&] { return f.finished; }, 5s));
    CHECK(f.unwound);
    CHECK(scope.running() == 0);
}

TEST_CASE("a scope that goes cancels its tasks: they never resume", "[scope]")
{
    auto r = makeReactor();
    Flags f;
    {
        TaskScope scope;
        scope.spawn(sleeper(*r, &f, 20ms));
        CHECK(f.started);
    }
    CHECK(f.unwound);  // the frame unwound at its suspension point
    (void)r->runUntil([] { return false; }, 60ms);
    CHECK_FALSE(f.finished);
}

TEST_CASE("posted work and watches know when the scope is gone", "[scope]")
{
    auto r = makeReactor();
    int ran = 0;
    TaskScope::Watch watch;
    {
        TaskScope scope;
        watch = scope.watch();
        CHECK(watch.alive());
        scope.post(*r, [&] { ++ran; });
        scope.post(*r, [&] { ++ran; });
        REQUIRE(r->runUntil([&] { return ran == 2; }, 1s));
        scope.post(*r, [&] { ++ran; });  // the scope is gone before the loop turns
    }
    CHECK_FALSE(watch.alive());
    (void)r->runUntil([] { return false; }, 20ms);
    CHECK(ran == 2);
}

TEST_CASE("cancelAll while another task of the scope is being destroyed", "[scope]")
{
    auto r = makeReactor();
    TaskScope scope;
    Flags a, b;
    scope.spawn(sleeper(*r, &a, 1s));
    scope.spawn(sleeper(*r, &b, 1s));
    CHECK(scope.running() == 2);
    scope.cancelAll();
    CHECK(scope.running() == 0);
    CHECK(a.unwound);
    CHECK(b.unwound);
}
