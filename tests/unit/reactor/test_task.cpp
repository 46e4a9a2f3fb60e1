#include "catch.h"

#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace vmr;
using namespace vmr::reactor;
using vmr::test::makeReactor;
using vmr::test::runTask;

namespace {

Task<int> addLater(Reactor& r, int a, int b)
{
    (void)co_await sleep(r, 5ms);
    co_return a + b;
}

Task<Result<int>> step(Reactor& r, int x)
{
    if (x < 0) co_return Error(ErrorKind::InvalidArgument, "Negative step");
    VMR_CO_TRY(co_await sleep(r, 1ms));
    co_return x * 2;
}

Task<Result<int>> chain(Reactor& r, std::vector<int> xs)
{
    int sum = 0;
    for (int x : xs) {
        auto v = co_await step(r, x);
        if (!v) co_return Error(ErrorKind::Internal, "Chain failed").causedBy(std::move(v).error());
        sum += *v;
    }
    co_return sum;
}

Task<> setFlag(Reactor& r, bool& flag, Duration delay = 2ms)
{
    (void)co_await sleep(r, delay);
    flag = true;
}

}  // namespace

TEST_CASE("Task: lazily started, chains top to bottom, errors propagate with their cause")
{
    auto r = makeReactor();
    auto t = addLater(*r, 2, 3);
    CHECK(!t.done());
    REQUIRE(r->runFor(10ms));
    CHECK(!t.done());  // lazy: nothing ran before start
    CHECK(runTask(*r, std::move(t)) == 5);

    auto ok = runTask(*r, chain(*r, {1, 2, 3}));
    REQUIRE(ok);
    CHECK(*ok == 12);
    auto bad = runTask(*r, chain(*r, {1, -1, 3}));
    REQUIRE(!bad);
    CHECK(bad.error().kind() == ErrorKind::Internal);
    REQUIRE(bad.error().cause() != nullptr);
    CHECK(bad.error().cause()->kind() == ErrorKind::InvalidArgument);
    CHECK(bad.error().what() == "Chain failed: Negative step");
}

TEST_CASE("Task: spawnDetached frees its frame; destroying a suspended task cancels its waits")
{
    auto r = makeReactor();
    bool flag = false;
    spawnDetached(setFlag(*r, flag));
    REQUIRE(r->runUntil([&] { return flag; }, 1s));

    // A task suspended in sleep() is destroyed: its timer goes, nothing resumes it later.
    bool flag2 = false;
    {
        auto t = setFlag(*r, flag2, 30ms);
        t.start();
        REQUIRE(r->runFor(1ms));
    }
    REQUIRE(r->runFor(60ms));
    CHECK(!flag2);
}

TEST_CASE("CancelToken: cancels sleep; callbacks run once; registrations unregister")
{
    auto r = makeReactor();
    CancelToken token;
    auto t = sleep(*r, 10s, &token);
    t.start();
    Timer canceller(*r, [&] { token.cancel(); });
    canceller.start(10ms);
    auto start = Clock::now();
    REQUIRE(r->runUntil([&] { return t.done(); }, 2s));
    auto res = t.result();
    REQUIRE(!res);
    CHECK(res.error().kind() == ErrorKind::Cancelled);
    CHECK(Clock::now() - start < 1s);
    CHECK(token.cancelled());

    // Already cancelled: the wait ends at once.
    auto again = runTask(*r, sleep(*r, 10s, &token), 1s);
    CHECK(!again);

    CancelToken t2;
    int a = 0, b = 0;
    auto ra = t2.onCancel([&] { ++a; });
    {
        auto rb = t2.onCancel([&] { ++b; });
    }
    // A callback that unregisters a later one: that one must not run.
    CancelToken::Registration rc;
    auto rd = t2.onCancel([&] { rc.reset(); });
    rc = t2.onCancel([&] { FAIL("unregistered callback ran"); });
    t2.cancel();
    t2.cancel();
    CHECK(a == 1);
    CHECK(b == 0);
    int late = 0;
    auto rl = t2.onCancel([&] { ++late; });
    CHECK(late == 1);

    // A registration may outlive its token.
    CancelToken::Registration outlive;
    {
        CancelToken t3;
        outlive = t3.onCancel([] {});
    }
    outlive.reset();
}

TEST_CASE("Completion + awaitWithTimeout: value, timeout, never resumed inside fulfil()")
{
    auto r = makeReactor();
    Completion<std::string> c;
    auto t = awaitWithTimeout(*r, c, 1s);
    t.start();
    REQUIRE(r->runFor(5ms));
    CHECK(!t.done());
    c.fulfil("event");
    CHECK(!t.done());    // resumed from the loop
    c.fulfil("second");  // ignored
    REQUIRE(r->runUntil([&] { return t.done(); }, 1s));
    auto v = t.result();
    REQUIRE(v);
    CHECK(*v == "event");

    Completion<int> never;
    auto start = Clock::now();
    auto to = runTask(*r, awaitWithTimeout(*r, never, 30ms));
    REQUIRE(!to);
    CHECK(to.error().kind() == ErrorKind::Timeout);
    CHECK(Clock::now() - start >= 30ms);

    Completion<int> early;
    early.fulfil(4);
    auto e = runTask(*r, awaitWithTimeout(*r, early, 1ms));
    REQUIRE(e);
    CHECK(*e == 4);
}
