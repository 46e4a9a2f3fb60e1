#include "catch.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace vmr;
using namespace vmr::reactor;
using vmr::test::makeReactor;
using vmr::test::socketPair;

TEST_CASE("backend: chosen by VMR_REACTOR, names parse")
{
    auto r = makeReactor();
    const char* env = std::getenv("VMR_REACTOR");
    if (env != nullptr && *env != '\0') CHECK(backendName(r->backend()) == env);
    CHECK(parseBackend("uring").value() == Backend::Uring);
    CHECK(parseBackend("io_uring").value() == Backend::Uring);
    CHECK(parseBackend("uv").value() == Backend::Uv);
    CHECK(parseBackend("libuv").value() == Backend::Uv);
    auto bad = parseBackend("epoll");
    REQUIRE(!bad);
    CHECK(bad.error().kind() == ErrorKind::InvalidArgument);
    CHECK(!bad.error().hint().empty());
    auto forced = Reactor::create(r->backend());
    REQUIRE(forced);
    CHECK((*forced)->backend() == r->backend());
}

TEST_CASE("post: runs on the loop, not inside the caller, in order")
{
    auto r = makeReactor();
    std::vector<int> seen;
    r->post([&] {
        seen.push_back(1);
        r->post([&] { seen.push_back(3); });
    });
    r->post([&] { seen.push_back(2); });
    CHECK(seen.empty());
    CHECK(r->runUntil([&] { return seen.size() == 3; }, 1s));
    CHECK(seen == std::vector<int>{1, 2, 3});
}

TEST_CASE("run: returns after stop() from a callback")
{
    auto r = makeReactor();
    Timer t(*r, [&] { r->stop(); });
    t.start(10ms);
    auto start = Clock::now();
    REQUIRE(r->run());
    CHECK(Clock::now() - start >= 10ms);
    CHECK(Clock::now() - start < 2s);
}

TEST_CASE("timers: fire in deadline order, not before their time")
{
    auto r = makeReactor();
    std::vector<int> order;
    auto start = Clock::now();
    std::vector<Clock::time_point> when(3);
    Timer a(*r, [&] { order.push_back(30), when[2] = Clock::now(); });
    Timer b(*r, [&] { order.push_back(10), when[0] = Clock::now(); });
    Timer c(*r, [&] { order.push_back(20), when[1] = Clock::now(); });
    a.start(30ms);
    b.start(10ms);
    c.start(20ms);
    CHECK(a.active());
    CHECK(r->runUntil([&] { return order.size() == 3; }, 2s));
    CHECK(order == std::vector<int>{10, 20, 30});
    CHECK(when[0] - start >= 10ms);
    CHECK(when[1] - start >= 20ms);
    CHECK(when[2] - start >= 30ms);
    CHECK(!a.active());
}

TEST_CASE("timers: repeat, stop, and restart")
{
    auto r = makeReactor();
    int n = 0;
    Timer t(*r, [&] {
        if (++n == 5) r->stop();
    });
    t.start(1ms, 5ms);
    REQUIRE(r->runFor(2s));
    CHECK(n == 5);
    CHECK(t.active());
    t.stop();
    CHECK(!t.active());
    REQUIRE(r->runFor(30ms));
    CHECK(n == 5);

    // Restarting an active timer moves its deadline.
    int fired = 0;
    Timer u(*r, [&] { ++fired; });
    u.start(150ms);
    REQUIRE(r->runFor(10ms));
    u.start(600ms);
    REQUIRE(r->runFor(250ms));
    CHECK(fired == 0);
    u.start(0ms);
    CHECK(r->runUntil([&] { return fired == 1; }, 1s));
}

TEST_CASE("timers: a callback re-arms its own timer; zero-delay re-arm does not spin inside one pass")
{
    auto r = makeReactor();
    int n = 0;
    Timer* self = nullptr;
    Timer t(*r, [&] {
        ++n;
        if (n < 100) self->start(0ms);
    });
    self = &t;
    t.start(0ms);
    CHECK(r->runUntil([&] { return n == 100; }, 2s));

    // A repeating timer restarted inside its callback takes the new schedule.
    int m = 0;
    Timer rep(*r, [&] {
        ++m;
        self->start(500ms);  // self now points at rep
    });
    self = &rep;
    rep.start(1ms, 1ms);
    REQUIRE(r->runFor(50ms));
    CHECK(m == 1);
    CHECK(rep.active());
}

TEST_CASE("FdWatch: level-triggered readability, pause, update, stop")
{
    auto r = makeReactor();
    auto [a, b] = socketPair();
    int calls = 0;
    uint32_t last = 0;
    FdWatch w(*r, a.get(), Readable, [&](uint32_t ev) {
        ++calls;
        last = ev;
    });
    REQUIRE(r->runFor(20ms));
    CHECK(calls == 0);
    REQUIRE(::write(b.get(), "x", 1) == 1);
    CHECK(r->runUntil([&] { return calls >= 1; }, 1s));
    CHECK(last == Readable);
    // Level-triggered: unread data keeps reporting.
    int before = calls;
    CHECK(r->runUntil([&] { return calls >= before + 3; }, 1s));
    w.update(0);
    REQUIRE(r->runFor(20ms));
    int paused = calls;
    REQUIRE(r->runFor(20ms));
    CHECK(calls == paused);
    w.update(Writable);
    CHECK(r->runUntil([&] { return calls > paused; }, 1s));
    CHECK(last == Writable);
    w.stop();
    int stopped = calls;
    REQUIRE(r->runFor(20ms));
    CHECK(calls == stopped);
}

TEST_CASE("FdWatch: peer hang-up is reported as readable")
{
    auto r = makeReactor();
    auto [a, b] = socketPair();
    bool ready = false;
    FdWatch w(*r, a.get(), Readable, [&](uint32_t) {
        ready = true;
        char c;
        CHECK(::read(a.get(), &c, 1) == 0);
    });
    b.reset();
    CHECK(r->runUntil([&] { return ready; }, 1s));
    w.stop();
}
