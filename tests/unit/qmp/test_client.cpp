// The QMP client against a scripted peer on a socketpair: greeting and capabilities, ids,
// events interleaved with replies, fragmented input, error replies, timeouts, disconnects.

#include "helpers.h"
#include "qmp/client.h"

#include <string>
#include <vector>

using namespace vmr;
using namespace vmr::qmp;
using namespace vmr::qmp::test;

namespace {

struct Session {
    std::unique_ptr<Reactor> r = makeReactor();
    std::unique_ptr<Peer> peer;
    std::unique_ptr<Client> client;
    std::vector<Event> events;
    int closeCount = 0;
    std::optional<Error> closeError;
    std::function<void(const Event&)> extraOnEvent;

    Client::Handlers handlers()
    {
        return {[this](const Event& e) {
                    events.push_back(e);
                    if (extraOnEvent) extraOnEvent(e);
                },
                [this](const Error* e) {
                    ++closeCount;
                    if (e != nullptr) closeError = *e;
                }};
    }

    // Start open() on a fresh socketpair; the peer has sent nothing yet.
    Task<Result<std::unique_ptr<Client>>> startOpen(reactor::Duration timeout = 5s)
    {
        auto [a, b] = socketPair();
        peer = std::make_unique<Peer>(std::move(b));
        peer->watchClient(a.get());
        auto t = Client::open(*r, std::move(a), timeout, handlers());
        t.start();
        return t;
    }

    void open()
    {
        auto t = startOpen();
        peer->writeAndDrain(*r, kGreeting);
        CHECK(peer->readLine(*r) == R"({"execute":"qmp_capabilities","id":1})");
        peer->write("{\"return\": {}, \"id\": 1}\r\n");
        auto c = waitFor(*r, t);
        if (!c) FAIL(c.error().what());
        client = std::move(*c);
        CHECK(client->pendingCommands() == 0);
    }
};

std::string id(uint64_t n)
{
    return std::to_string(n);
}

}  // namespace

TEST_CASE("open: greeting and capabilities, split at every byte boundary")
{
    const std::string reply = "{\"return\": {}, \"id\": 1}\r\n";
    for (size_t k = 0; k <= kGreeting.size(); ++k) {
        INFO("split at " << k);
        Session s;
        auto t = s.startOpen();
        s.peer->writeAndDrain(*s.r, kGreeting.substr(0, k));
        s.peer->writeAndDrain(*s.r, kGreeting.substr(k));
        REQUIRE(s.peer->readLine(*s.r) == R"({"execute":"qmp_capabilities","id":1})");
        size_t j = k % (reply.size() + 1);
        s.peer->writeAndDrain(*s.r, std::string_view(reply).substr(0, j));
        s.peer->writeAndDrain(*s.r, std::string_view(reply).substr(j));
        auto c = waitFor(*s.r, t);
        if (!c) FAIL(c.error().what());
        const auto& g = (*c)->greeting();
        CHECK(g.version.major == 7);
        CHECK(g.version.minor == 2);
        CHECK(g.version.micro == 22);
        CHECK(g.version.package == "Debian 1:7.2+dfsg-7+deb12u18+b3");
        CHECK(g.capabilities == std::vector<std::string>{"oob"});
    }
}

namespace {

// Three commands in flight; the peer answers out of order with events in between, its output
// delivered by `deliver`. Checks every outcome.
template <typename Deliver>
void roundTrip(Session& s, uint64_t first, Deliver deliver)
{
    const size_t eventsBefore = s.events.size();
    auto status = s.client->execute("query-status");
    auto stop = s.client->execute("stop", "", 5s);
    auto bad = s.client->execute("no-such-command", R"({"x": [1, "y"]})");
    status.start();
    stop.start();
    bad.start();
    CHECK(s.client->pendingCommands() == 3);
    CHECK(s.peer->readLine(*s.r) == R"({"execute":"query-status","id":)" + id(first) + "}");
    CHECK(s.peer->readLine(*s.r) == R"({"execute":"stop","id":)" + id(first + 1) + "}");
    CHECK(s.peer->readLine(*s.r) ==
          R"({"execute":"no-such-command","arguments":{"x": [1, "y"]},"id":)" + id(first + 2) + "}");

    std::string out;
    out += R"({"timestamp": {"seconds": 1700000000, "microseconds": 5}, "event": "STOP"})"
           "\r\n";
    out += R"({"return": {}, "id": )" + id(first + 1) + "}\r\n";
    out +=
        R"({"timestamp": {"seconds": 1700000001, "microseconds": 6}, "event": "RTC_CHANGE", "data": {"offset": -3, "qom-path": "/machine/unattached/device[3]"}})"
        "\r\n";
    out +=
        R"({"id": )" + id(first + 2) +
        R"(, "error": {"class": "CommandNotFound", "desc": "The command no-such-command has not been found"}})"
        "\r\n";
    out += R"({"return": {"status": "paused", "singlestep": false, "running": false}, "id": )" + id(first) +
           "}\r\n";
    deliver(out);

    auto st = waitFor(*s.r, status);
    REQUIRE(st.ok());
    CHECK(*st == R"({"status":"paused","singlestep":false,"running":false})");
    auto sp = waitFor(*s.r, stop);
    REQUIRE(sp.ok());
    CHECK(*sp == "{}");
    auto b = waitFor(*s.r, bad);
    REQUIRE_FALSE(b.ok());
    CHECK(b.error().kind() == ErrorKind::Unsupported);
    CHECK_THAT(b.error().message(), Catch::Contains("no-such-command") &&
                                        Catch::Contains("CommandNotFound") &&
                                        Catch::Contains("The command no-such-command has not been found"));
    CHECK(s.client->pendingCommands() == 0);

    REQUIRE(s.events.size() == eventsBefore + 2);
    CHECK(s.events[eventsBefore].name == "STOP");
    CHECK(s.events[eventsBefore].data == "{}");
    CHECK(s.events[eventsBefore].timestamp.seconds == 1700000000);
    CHECK(s.events[eventsBefore].timestamp.microseconds == 5);
    CHECK(s.events[eventsBefore + 1].name == "RTC_CHANGE");
    CHECK(s.events[eventsBefore + 1].data == R"({"offset":-3,"qom-path":"/machine/unattached/device[3]"})");
}

}  // namespace

TEST_CASE("commands with ids and interleaved events, split at every byte boundary")
{
    Session s;
    s.open();
    uint64_t next = 2;
    size_t k = 0;
    for (;;) {
        bool last = false;
        roundTrip(s, next, [&](const std::string& out) {
            INFO("split at " << k << " of " << out.size());
            s.peer->writeAndDrain(*s.r, std::string_view(out).substr(0, k));
            s.peer->writeAndDrain(*s.r, std::string_view(out).substr(k));
            last = k >= out.size();
        });
        next += 3;
        if (last) break;
        ++k;
    }
    CHECK(s.closeCount == 0);
}

TEST_CASE("commands with ids and interleaved events, one byte per write")
{
    Session s;
    s.open();
    roundTrip(s, 2, [&](const std::string& out) { s.peer->writeBytewise(*s.r, out); });
    // And all at once.
    roundTrip(s, 5, [&](const std::string& out) { s.peer->writeAndDrain(*s.r, out); });
}

TEST_CASE("an error without id fails the oldest pending command")
{
    Session s;
    s.open();
    auto a = s.client->execute("query-status");
    auto b = s.client->execute("query-version");
    a.start();
    b.start();
    s.peer->readLine(*s.r);
    s.peer->readLine(*s.r);
    s.peer->write(R"({"error": {"class": "GenericError", "desc": "JSON parse error, invalid keyword"}})"
                  "\r\n");
    auto ra = waitFor(*s.r, a);
    REQUIRE_FALSE(ra.ok());
    CHECK(ra.error().kind() == ErrorKind::InvalidArgument);
    CHECK_THAT(ra.error().message(), Catch::Contains("GenericError") && Catch::Contains("JSON parse error"));
    CHECK_FALSE(b.done());
    s.peer->write(R"({"return": {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": ""}, "id": 3})"
                  "\r\n");
    auto rb = waitFor(*s.r, b);
    REQUIRE(rb.ok());
    CHECK_THAT(*rb, Catch::StartsWith(R"({"qemu":{"major":7)"));
}

TEST_CASE("a command times out; its late reply is dropped; later commands still match")
{
    Session s;
    s.open();
    auto slow = s.client->execute("query-block", "", 50ms);
    auto t0 = std::chrono::steady_clock::now();
    auto r = finish(*s.r, slow);
    auto took = std::chrono::steady_clock::now() - t0;
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind() == ErrorKind::Timeout);
    CHECK_THAT(r.error().message(), Catch::Contains("query-block") && Catch::Contains("50 ms"));
    CHECK(took >= 45ms);
    CHECK(took < 2s);
    CHECK(s.client->pendingCommands() == 0);
    CHECK(s.peer->readLine(*s.r) == R"({"execute":"query-block","id":2})");

    auto next = s.client->execute("query-kvm");
    next.start();
    CHECK(s.peer->readLine(*s.r) == R"({"execute":"query-kvm","id":3})");
    s.peer->write(R"({"return": [], "id": 2})"
                  "\r\n"
                  R"({"return": {"enabled": false, "present": true}, "id": 3})"
                  "\r\n");
    auto rn = waitFor(*s.r, next);
    REQUIRE(rn.ok());
    CHECK(*rn == R"({"enabled":false,"present":true})");
    CHECK(s.closeCount == 0);
    CHECK_FALSE(s.client->closed());
}

TEST_CASE("the peer closes mid-command: every pending command fails at once")
{
    Session s;
    s.open();
    auto a = s.client->execute("system_powerdown", "", 30s);
    auto b = s.client->execute("query-status", "", 30s);
    a.start();
    b.start();
    // Read both, so the close is a clean EOF rather than a reset (unread data on a unix socket).
    s.peer->readLine(*s.r);
    s.peer->readLine(*s.r);
    // Half a reply, then the peer goes away.
    s.peer->writeAndDrain(*s.r, R"({"return": {}, "i)");
    auto t0 = std::chrono::steady_clock::now();
    s.peer->close();
    auto ra = waitFor(*s.r, a);
    auto rb = waitFor(*s.r, b);
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);
    REQUIRE_FALSE(ra.ok());
    REQUIRE_FALSE(rb.ok());
    CHECK(ra.error().kind() == ErrorKind::Unavailable);
    CHECK(rb.error().kind() == ErrorKind::Unavailable);
    CHECK_THAT(ra.error().message(), Catch::Contains("system_powerdown"));
    CHECK_THAT(rb.error().message(), Catch::Contains("query-status"));
    CHECK(s.closeCount == 1);
    CHECK_FALSE(s.closeError);  // EOF
    CHECK(s.client->closed());
    CHECK(s.client->pendingCommands() == 0);

    // Later commands fail without waiting.
    auto late = s.client->execute("query-status");
    auto rl = finish(*s.r, late, 100ms);
    REQUIRE_FALSE(rl.ok());
    CHECK(rl.error().kind() == ErrorKind::Unavailable);
    (void)s.r->runFor(10ms);
    CHECK(s.closeCount == 1);
}

TEST_CASE("the peer exits with our command unread: a reset counts as a clean close")
{
    Session s;
    s.open();
    auto a = s.client->execute("quit");
    a.start();
    REQUIRE(s.r->runUntil([&] { return s.client->pendingCommands() == 1; }, 1s));
    (void)s.r->runFor(5ms);  // let the command reach the peer's socket, unread
    s.peer->close();
    auto ra = waitFor(*s.r, a);
    REQUIRE_FALSE(ra.ok());
    CHECK(ra.error().kind() == ErrorKind::Unavailable);
    REQUIRE(s.r->runUntil([&] { return s.closeCount > 0; }, 1s));
    CHECK_FALSE(s.closeError);
}

TEST_CASE("a protocol violation closes the connection and reports why")
{
    Session s;
    s.open();
    auto a = s.client->execute("query-status");
    a.start();
    s.peer->readLine(*s.r);
    s.peer->write("{\"retrun\": {}, \"id\": 2}\r\n");
    auto ra = waitFor(*s.r, a);
    REQUIRE_FALSE(ra.ok());
    CHECK(ra.error().kind() == ErrorKind::Unavailable);
    CHECK_THAT(ra.error().what(), Catch::Contains("none of the keys"));
    CHECK(s.closeCount == 1);
    REQUIRE(s.closeError);
    CHECK(s.closeError->kind() == ErrorKind::Unavailable);
    REQUIRE(s.closeError->cause() != nullptr);
    CHECK(s.closeError->cause()->kind() == ErrorKind::ParseError);
}

TEST_CASE("bad arguments are refused before anything is sent")
{
    Session s;
    s.open();
    for (std::string_view args : {"[1]", "{\"a\":", "1", "{} {}"}) {
        auto t = s.client->execute("device_add", args);
        auto r = finish(*s.r, t, 1s);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind() == ErrorKind::InvalidArgument);
    }
    auto empty = s.client->execute("");
    auto re = finish(*s.r, empty, 1s);
    REQUIRE_FALSE(re.ok());
    CHECK(re.error().kind() == ErrorKind::InvalidArgument);
    CHECK(s.peer->silentFor(*s.r, 20ms));
    CHECK(s.client->pendingCommands() == 0);
}

TEST_CASE("open fails cleanly")
{
    SECTION("no greeting: Timeout")
    {
        Session s;
        auto t = s.startOpen(50ms);
        auto r = waitFor(*s.r, t);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind() == ErrorKind::Timeout);
        CHECK_THAT(r.error().message(), Catch::Contains("greeting"));
    }
    SECTION("the peer closes before the greeting: Unavailable")
    {
        Session s;
        auto t = s.startOpen();
        s.peer->writeAndDrain(*s.r, R"({"QMP": {"vers)");
        s.peer->close();
        auto r = waitFor(*s.r, t);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind() == ErrorKind::Unavailable);
        CHECK(s.closeCount == 0);  // open() reports it; onClose is for an open client
    }
    SECTION("a message before the greeting")
    {
        Session s;
        auto t = s.startOpen();
        s.peer->write(R"({"return": {}, "id": 1})"
                      "\r\n");
        auto r = waitFor(*s.r, t);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind() == ErrorKind::Unavailable);
        CHECK_THAT(r.error().what(), Catch::Contains("before the greeting"));
    }
    SECTION("capabilities refused")
    {
        Session s;
        auto t = s.startOpen();
        s.peer->write(kGreeting);
        s.peer->readLine(*s.r);
        s.peer->write(
            R"({"error": {"class": "GenericError", "desc": "Capabilities negotiation is already complete, command ignored"}, "id": 1})"
            "\r\n");
        auto r = waitFor(*s.r, t);
        REQUIRE_FALSE(r.ok());
        CHECK_THAT(r.error().what(), Catch::Contains("capabilities") && Catch::Contains("already complete"));
    }
    SECTION("nothing listens: Unavailable")
    {
        Session s;
        auto t = Client::connect(*s.r, "/nonexistent/vmr-qmp-test.sock", 1s);
        auto r = finish(*s.r, t);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind() == ErrorKind::Unavailable);
        CHECK_THAT(r.error().what(), Catch::Contains("/nonexistent/vmr-qmp-test.sock"));
    }
}

TEST_CASE("an event handler may destroy the client")
{
    Session s;
    s.open();
    auto pending = s.client->execute("query-status");
    pending.start();
    s.peer->readLine(*s.r);
    s.extraOnEvent = [&](const Event&) { s.client.reset(); };
    // The event and the reply arrive in one read; the reply is never looked at.
    s.peer->write(
        R"({"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RESET", "data": {"guest": true, "reason": "guest-reset"}})"
        "\r\n"
        R"({"return": {"status": "running", "running": true}, "id": 2})"
        "\r\n");
    auto r = waitFor(*s.r, pending);
    CHECK_FALSE(s.client);
    REQUIRE(s.events.size() == 1);
    CHECK(s.events[0].data == R"({"guest":true,"reason":"guest-reset"})");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind() == ErrorKind::Unavailable);
    CHECK(s.closeCount == 0);
}

TEST_CASE("close() and the destructor fail pending commands without calling onClose")
{
    Session s;
    s.open();
    auto a = s.client->execute("query-status");
    a.start();
    s.client->close();
    auto ra = waitFor(*s.r, a);
    REQUIRE_FALSE(ra.ok());
    CHECK(ra.error().kind() == ErrorKind::Unavailable);

    Session s2;
    s2.open();
    auto b = s2.client->execute("query-status", "", 100ms);
    b.start();
    s2.client.reset();
    auto rb = waitFor(*s2.r, b);
    REQUIRE_FALSE(rb.ok());
    CHECK(rb.error().kind() == ErrorKind::Unavailable);
    // The timeout of the awaiting task must not touch the destroyed client.
    (void)s2.r->runFor(150ms);
    CHECK(s.closeCount == 0);
    CHECK(s2.closeCount == 0);
}

TEST_CASE("a task dropped before its reply does not disturb later commands")
{
    Session s;
    s.open();
    {
        auto dropped = s.client->execute("query-status");
        (void)dropped;
    }
    CHECK(s.peer->readLine(*s.r) == R"({"execute":"query-status","id":2})");
    auto kept = s.client->execute("query-name");
    kept.start();
    s.peer->readLine(*s.r);
    s.peer->write(R"({"return": {"status": "running", "running": true}, "id": 2})"
                  "\r\n"
                  R"({"return": {}, "id": 3})"
                  "\r\n");
    auto r = waitFor(*s.r, kept);
    REQUIRE(r.ok());
    CHECK(*r == "{}");
    CHECK(s.client->pendingCommands() == 0);
}
