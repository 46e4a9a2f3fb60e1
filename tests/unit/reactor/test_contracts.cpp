// The three STYLE.md contracts, on whichever backend VMR_REACTOR selects:
// (1) an operation record owns its buffers until the kernel's final completion, even after cancel;
// (2) cancel = detach, then cancel: no callback after stop()/close()/destructor returns;
// (3) reentrant dispatch: handlers may destroy themselves, re-arm, close, or destroy other
//     handles whose completions are in the same batch.
#include "catch.h"

#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace vmr;
using namespace vmr::reactor;
using vmr::test::makeReactor;
using vmr::test::socketPair;

namespace {
// Put bytes on a socket the test made; the tests check what arrives, not the send.
void put(const UniqueFd& fd, std::string_view bytes)
{
    REQUIRE(::write(fd.get(), bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
}
}  // namespace

TEST_CASE("contract 1: a cancelled recv's record (and buffer) lives until its completion")
{
    auto r = makeReactor();
    size_t base = detail::liveOps();
    auto [a, b] = socketPair();
    auto s = std::make_unique<Stream>(*r, std::move(a));
    s->start({.onData = [](std::string_view) { FAIL("callback after destruction"); }});
    REQUIRE(r->runFor(5ms));  // the recv is now in the kernel
    CHECK(detail::liveOps() == base + 1);
    s.reset();  // cancel: detach, then cancel
    if (r->backend() == Backend::Uring) {
        // The kernel has not confirmed yet: the record must still be alive.
        CHECK(detail::liveOps() == base + 1);
    }
    // Data arriving now must not reach anyone; the record goes when the kernel is done.
    (void)::send(b.get(), "late", 4, MSG_NOSIGNAL);
    REQUIRE(r->runUntil([&] { return detail::liveOps() == base; }, 2s));
}

TEST_CASE("contract 1: a recv completing with data while being cancelled writes into a live buffer")
{
    // Under ASan this catches any write into (or read of) a freed record.
    auto r = makeReactor();
    size_t base = detail::liveOps();
    for (int i = 0; i < 200; ++i) {
        auto [a, b] = socketPair();
        auto s = std::make_unique<Stream>(*r, std::move(a));
        s->start({.onData = [](std::string_view) { FAIL("callback after destruction"); }});
        REQUIRE(r->runFor(0ms));
        std::string blob(8192, static_cast<char>('a' + i % 26));
        REQUIRE(::write(b.get(), blob.data(), blob.size()) == static_cast<ssize_t>(blob.size()));
        s.reset();
    }
    REQUIRE(r->runUntil([&] { return detail::liveOps() == base; }, 5s));
}

TEST_CASE("contract 1: an in-flight send keeps its queued bytes after the stream is gone")
{
    auto r = makeReactor();
    size_t base = detail::liveOps();
    auto [a, b] = socketPair();
    auto s = std::make_unique<Stream>(*r, std::move(a));
    s->start({});
    auto shared = std::make_shared<const std::string>(4 << 20, 'z');
    std::weak_ptr<const std::string> watch = shared;
    s->write(std::move(shared));
    REQUIRE(r->runFor(5ms));  // the socket buffer fills; the send waits in the kernel
    s.reset();
    REQUIRE(r->runUntil([&] { return detail::liveOps() == base; }, 2s));
    CHECK(watch.expired());  // released once the record went
}

TEST_CASE("contract 2: no callback after stop(), close() or destruction, even if already complete")
{
    auto r = makeReactor();
    // FdWatch: the fd is ready before the loop runs; stop() before dispatch.
    auto [a, b] = socketPair();
    put(b, "x");
    int watchCalls = 0;
    FdWatch w(*r, a.get(), Readable, [&](uint32_t) { ++watchCalls; });
    REQUIRE(r->runUntil([&] { return watchCalls > 0; }, 1s));
    w.stop();
    int after = watchCalls;
    REQUIRE(r->runFor(20ms));
    CHECK(watchCalls == after);

    // Stream: data waiting, closed before the loop delivers it.
    auto [c, d] = socketPair();
    Stream s(*r, std::move(c));
    int dataCalls = 0, closeCalls = 0;
    s.start(
        {.onData = [&](std::string_view) { ++dataCalls; }, .onClose = [&](const Error*) { ++closeCalls; }});
    put(d, "y");
    d.reset();
    s.close();
    REQUIRE(r->runFor(20ms));
    CHECK(dataCalls == 0);
    CHECK(closeCalls == 0);
    CHECK(s.closed());
    s.write("ignored");  // harmless on a closed stream
    CHECK(s.pendingWriteBytes() == 0);

    // Timer: expired, stopped before dispatch.
    int timerCalls = 0;
    Timer t(*r, [&] { ++timerCalls; });
    t.start(0ms);
    ::usleep(2000);
    t.stop();
    REQUIRE(r->runFor(10ms));
    CHECK(timerCalls == 0);

    // Listener: a connection pending; stopped before dispatch.
    test::TempDir dir;
    auto lfd = listenUnix(dir / "l.sock", 0600);
    REQUIRE(lfd);
    int accepts = 0;
    Listener l(*r, std::move(*lfd), [&](UniqueFd) { ++accepts; });
    UniqueFd cl(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    auto p = dir / "l.sock";
    std::memcpy(addr.sun_path, p.data(), p.size());
    REQUIRE(::connect(cl.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    l.stop();
    REQUIRE(r->runFor(20ms));
    CHECK(accepts == 0);

    // Child: exited, handle destroyed before dispatch.
    int exits = 0;
    {
        auto ch = Child::spawn(*r, {.argv = {"true"}});
        REQUIRE(ch);
        (*ch)->onExit([&](ExitStatus) { ++exits; });
        ::usleep(50000);
    }
    REQUIRE(r->runFor(20ms));
    CHECK(exits == 0);
}

TEST_CASE("contract 3: a handler destroys its own handle")
{
    auto r = makeReactor();
    // Timer
    auto t = std::make_unique<Timer>(*r, std::function<void()>());
    bool fired = false;
    t = std::make_unique<Timer>(*r, [&] {
        fired = true;
        t.reset();
    });
    t->start(1ms, 1ms);  // repeating: must not re-arm a destroyed timer
    REQUIRE(r->runUntil([&] { return fired; }, 1s));
    CHECK(!t);
    REQUIRE(r->runFor(10ms));

    // FdWatch
    auto [a, b] = socketPair();
    put(b, "x");
    std::unique_ptr<FdWatch> w;
    int calls = 0;
    w = std::make_unique<FdWatch>(*r, a.get(), Readable, [&](uint32_t) {
        ++calls;
        w.reset();
    });
    REQUIRE(r->runUntil([&] { return !w; }, 1s));
    REQUIRE(r->runFor(10ms));
    CHECK(calls == 1);

    // Stream, from onData (with fds and data) and from onClose
    auto [c, d] = socketPair();
    auto s = std::make_unique<Stream>(*r, std::move(c));
    std::string seen;
    s->start({.onData = [&](std::string_view data) {
        seen = std::string(data);
        s.reset();
        CHECK(data == seen);  // the buffer outlives the handle during the callback
    }});
    put(d, "bye");
    REQUIRE(r->runUntil([&] { return !s; }, 1s));
    CHECK(seen == "bye");

    auto [e, f] = socketPair();
    auto s2 = std::make_unique<Stream>(*r, std::move(e));
    s2->start({.onClose = [&](const Error*) { s2.reset(); }});
    f.reset();
    REQUIRE(r->runUntil([&] { return !s2; }, 1s));

    // Child
    auto ch = Child::spawn(*r, {.argv = {"true"}});
    REQUIRE(ch);
    std::unique_ptr<Child> child = std::move(*ch);
    child->onExit([&](ExitStatus) { child.reset(); });
    REQUIRE(r->runUntil([&] { return !child; }, 5s));

    // Listener
    test::TempDir dir;
    auto lfd = listenUnix(dir / "x.sock", 0600);
    REQUIRE(lfd);
    std::unique_ptr<Listener> l;
    l = std::make_unique<Listener>(*r, std::move(*lfd), [&](UniqueFd) { l.reset(); });
    auto conn = test::runTask(*r, connectUnix(*r, dir / "x.sock", 1s));
    REQUIRE(conn);
    REQUIRE(r->runUntil([&] { return !l; }, 1s));

    // SignalSet
    std::unique_ptr<SignalSet> sig;
    sig = std::make_unique<SignalSet>(*r, std::initializer_list<int>{SIGUSR2}, [&](int) { sig.reset(); });
    ::raise(SIGUSR2);
    REQUIRE(r->runUntil([&] { return !sig; }, 1s));
}

TEST_CASE("contract 3: a handler closes its connection and re-arms its timer")
{
    auto r = makeReactor();
    auto [a, b] = socketPair();
    Stream s(*r, std::move(a));
    int data = 0, closes = 0;
    s.start({.onData =
                 [&](std::string_view) {
                     ++data;
                     s.write("reply-dropped");
                     s.close();
                 },
             .onClose = [&](const Error*) { ++closes; }});
    put(b, "one");
    REQUIRE(r->runUntil([&] { return data == 1; }, 1s));
    (void)::send(b.get(), "two", 3, MSG_NOSIGNAL);
    REQUIRE(r->runFor(20ms));
    CHECK(data == 1);
    CHECK(closes == 0);
    // Closed: the peer sees EOF (a write already handed to the kernel may precede it).
    char buf[64];
    ssize_t got;
    while ((got = ::read(b.get(), buf, sizeof(buf))) > 0) {
    }
    CHECK(got == 0);

    int n = 0;
    std::vector<Clock::time_point> when;
    Timer* self = nullptr;
    Timer t(*r, [&] {
        when.push_back(Clock::now());
        if (++n < 3) self->start(10ms);
    });
    self = &t;
    t.start(1ms);
    REQUIRE(r->runUntil([&] { return n == 3; }, 2s));
    CHECK(when[2] - when[1] >= 10ms);
    CHECK(!t.active());
}

TEST_CASE("contract 3: a handler destroys other handles whose completions are in the same batch")
{
    auto r = makeReactor();
    // Two fd watches, both ready before the loop runs: whichever fires first destroys the other.
    {
        auto [a1, b1] = socketPair();
        auto [a2, b2] = socketPair();
        put(b1, "x");
        put(b2, "x");
        std::unique_ptr<FdWatch> w1, w2;
        int fired = 0;
        w1 = std::make_unique<FdWatch>(*r, a1.get(), Readable, [&](uint32_t) {
            ++fired;
            w2.reset();
            w1.reset();
        });
        w2 = std::make_unique<FdWatch>(*r, a2.get(), Readable, [&](uint32_t) {
            ++fired;
            w1.reset();
            w2.reset();
        });
        REQUIRE(r->runUntil([&] { return fired > 0; }, 1s));
        REQUIRE(r->runFor(10ms));
        CHECK(fired == 1);
    }
    // Many streams with data ready: the first handler destroys all of them.
    {
        std::vector<UniqueFd> peers;
        std::vector<std::unique_ptr<Stream>> streams;
        int calls = 0;
        for (int i = 0; i < 20; ++i) {
            auto [a, b] = socketPair();
            streams.push_back(std::make_unique<Stream>(*r, std::move(a)));
            peers.push_back(std::move(b));
        }
        for (auto& s : streams)
            s->start({.onData = [&](std::string_view) {
                ++calls;
                streams.clear();
            }});
        REQUIRE(r->runFor(5ms));
        for (auto& p : peers) put(p, "data");
        REQUIRE(r->runUntil([&] { return calls > 0; }, 1s));
        REQUIRE(r->runFor(10ms));
        CHECK(calls == 1);
    }
    // Two timers expiring together: the first destroys the second.
    {
        std::unique_ptr<Timer> t1, t2;
        int fired = 0;
        t1 = std::make_unique<Timer>(*r, [&] {
            ++fired;
            t2.reset();
        });
        t2 = std::make_unique<Timer>(*r, [&] {
            ++fired;
            t1.reset();
        });
        t1->start(1ms);
        t2->start(1ms);
        REQUIRE(r->runFor(20ms));
        CHECK(fired == 1);
    }
    // Two children exiting together: the first exit handler destroys the other handle.
    {
        auto c1 = Child::spawn(*r, {.argv = {"true"}});
        auto c2 = Child::spawn(*r, {.argv = {"true"}});
        REQUIRE(c1);
        REQUIRE(c2);
        std::unique_ptr<Child> h1 = std::move(*c1), h2 = std::move(*c2);
        ::usleep(50000);
        int exits = 0;
        h1->onExit([&](ExitStatus) {
            ++exits;
            h2.reset();
        });
        h2->onExit([&](ExitStatus) {
            ++exits;
            h1.reset();
        });
        REQUIRE(r->runUntil([&] { return exits > 0; }, 5s));
        REQUIRE(r->runFor(10ms));
        CHECK(exits == 1);
    }
}
