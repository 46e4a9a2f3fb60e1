// rpc::Server hands a connection over to a method (Method::takeOver): after the success reply
// the connection carries raw bytes, owned by the method. Runs once per reactor backend.

#include "rpc/server.h"

#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

using namespace vmr;
using namespace std::chrono_literals;

namespace {

// A server whose "attach" method hands its connection over to an echo that answers each
// chunk in upper case. params: {"ok": bool, "delay": ms}.
struct Bench {
    std::string dir;
    std::unique_ptr<reactor::Reactor> reactor;
    std::unique_ptr<rpc::Server> server;
    std::vector<std::unique_ptr<reactor::Stream>> taken;  // handed-over streams, owned here
    std::vector<std::string> takenPending;
    size_t takenClosed = 0;  // handed-over streams whose peer went away
    std::string sockPath;

    Bench()
    {
        char tmpl[] = "/tmp/vmr-hand-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        dir = tmpl;
        sockPath = dir + "/c.sock";
        auto r = reactor::Reactor::create();
        REQUIRE(r.ok());
        reactor = std::move(*r);
        auto listening = reactor::listenUnix(sockPath, 0600);
        REQUIRE(listening.ok());
        server = std::make_unique<rpc::Server>(*reactor, std::move(*listening), rpc::Limits{});
        server->addMethod("ping", rpc::Method{.sync = [](const rpc::Call&) -> Result<std::string> {
                              return std::string("\"pong\"");
                          }});
        auto* loop = reactor.get();
        rpc::Method attach;
        attach.async = [loop](rpc::Peer, rpc::Params p) { return decide(*loop, std::move(p)); };
        attach.takeOver = [this](const rpc::Params&, rpc::Handover h) { adopt(std::move(h)); };
        server->addMethod("attach", std::move(attach));
    }
    ~Bench()
    {
        taken.clear();
        server.reset();
        reactor.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }

    static reactor::Task<Result<std::string>> decide(reactor::Reactor& r, rpc::Params p)
    {
        auto delay = p.optInt("delay", 0, 10000);
        if (!delay) co_return std::move(delay).error();
        if (*delay && **delay > 0) {
            auto slept = co_await reactor::sleep(r, std::chrono::milliseconds(**delay));
            if (!slept) co_return std::move(slept).error();
        }
        auto ok = p.optBool("ok");
        if (!ok) co_return std::move(ok).error();
        if (*ok && !**ok) co_return Error(ErrorKind::VmBadState, "Refused", "Ask again later");
        co_return std::string("{\"attached\":true}");
    }

    void adopt(rpc::Handover h)
    {
        takenPending.push_back(h.pending);
        auto* s = h.stream.get();
        taken.push_back(std::move(h.stream));
        auto upper = [](std::string_view d) {
            std::string out(d);
            for (char& ch : out) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
            return out;
        };
        if (!h.pending.empty()) s->write(upper(h.pending));
        reactor::Stream::Callbacks cbs;
        cbs.onData = [s, upper](std::string_view d) { s->write(upper(d)); };
        cbs.onClose = [this](const Error*) { ++takenClosed; };
        s->start(std::move(cbs));
        s->resumeReading();
    }

    int dial()
    {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, sockPath.c_str(), sockPath.size());
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        return fd;
    }

    // Run the loop until `fd` has delivered `want` bytes (or the peer closed); returns them.
    std::string collect(int fd, size_t want, std::chrono::milliseconds timeout = 3000ms)
    {
        std::string got;
        reactor->runUntil(
            [&] {
                char buf[4096];
                ssize_t n;
                while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) got.append(buf, static_cast<size_t>(n));
                return got.size() >= want || n == 0;
            },
            timeout);
        return got;
    }
};

void put(int fd, const std::string& s)
{
    REQUIRE(::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size()));
}

std::string call(int id, const std::string& method, const std::string& params)
{
    return R"({"jsonrpc":"2.0","id":)" + std::to_string(id) + R"(,"method":")" + method + R"(","params":)" +
           params + "}\n";
}

}  // namespace

TEST_CASE("after the success reply the connection is the method's, bytes sent early included", "[handover]")
{
    Bench b;
    int fd = b.dial();
    const std::string reply = R"({"jsonrpc":"2.0","id":7,"result":{"attached":true}})"
                              "\n";
    // Raw bytes right behind the request, in the same write, some looking like JSON-RPC: none
    // of them may be parsed, all of them must reach the new owner unchanged.
    const std::string early = "abc\r\n\n" + call(8, "ping", "{}") + "x";
    put(fd, call(7, "attach", R"({"delay":30})") + early);
    std::string got = b.collect(fd, reply.size() + early.size());
    REQUIRE(got.size() >= reply.size());
    CHECK(got.substr(0, reply.size()) == reply);
    std::string upperEarly = early;
    for (char& ch : upperEarly) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    CHECK(got.substr(reply.size()) == upperEarly);
    REQUIRE(b.takenPending.size() == 1);
    CHECK(b.takenPending[0] == early);
    CHECK(b.server->connectionCount() == 0);  // forgotten by the server

    put(fd, "later bytes");
    CHECK(b.collect(fd, 11) == "LATER BYTES");

    // The handed-over stream outlives the server.
    b.server.reset();
    put(fd, "still");
    CHECK(b.collect(fd, 5) == "STILL");
    ::close(fd);
}

TEST_CASE("a method that fails leaves the connection speaking JSON-RPC", "[handover]")
{
    Bench b;
    int fd = b.dial();
    put(fd, call(1, "attach", R"({"ok":false,"delay":20})") + call(2, "ping", "{}"));
    std::string got = b.collect(fd, 1);
    got += b.collect(fd, 200, 500ms);
    CHECK(got.find(R"("id":1,"error")") != std::string::npos);
    CHECK(got.find("vm.bad_state") != std::string::npos);
    CHECK(got.find(R"({"jsonrpc":"2.0","id":2,"result":"pong"})") != std::string::npos);
    // The refused call came first: nothing after it was read until it finished.
    CHECK(got.find(R"("id":1)") < got.find(R"("id":2)"));
    CHECK(b.taken.empty());
    put(fd, call(3, "ping", "{}"));
    CHECK(b.collect(fd, 1).find(R"("id":3,"result":"pong")") != std::string::npos);
    CHECK(b.server->connectionCount() == 1);
    ::close(fd);
}

TEST_CASE("hand-over methods are refused in a batch and ignored as notifications", "[handover]")
{
    Bench b;
    int fd = b.dial();
    put(fd, "[" + call(1, "attach", "{}").substr(0, call(1, "attach", "{}").size() - 1) + "]\n");
    std::string got = b.collect(fd, 1);
    CHECK(got.find("cannot be part of a batch") != std::string::npos);
    CHECK(got.find("invalid_request") != std::string::npos);
    put(fd, R"({"jsonrpc":"2.0","method":"attach","params":{}})"
            "\n" +
                call(2, "ping", "{}"));
    got = b.collect(fd, 1);
    CHECK(got == R"({"jsonrpc":"2.0","id":2,"result":"pong"})"
                 "\n");
    CHECK(b.taken.empty());
    ::close(fd);
}

TEST_CASE("a client that leaves while the method runs ends its handed-over stream", "[handover]")
{
    Bench b;
    int fd = b.dial();
    put(fd, call(1, "attach", R"({"delay":50})"));
    b.reactor->runUntil([&] { return b.server->connectionCount() == 1; }, 1000ms);
    // The server reads nothing while the method runs, so the new owner is the one to see the
    // EOF, at once.
    ::close(fd);
    CHECK(b.reactor->runUntil([&] { return b.takenClosed == 1; }, 2000ms));
    CHECK(b.taken.size() == 1);
    CHECK(b.server->connectionCount() == 0);
}

TEST_CASE("a client that leaves before the method starts is forgotten", "[handover]")
{
    Bench b;
    int fd = b.dial();
    b.reactor->runUntil([&] { return b.server->connectionCount() == 1; }, 1000ms);
    // The request and the close arrive together: the server sees the EOF after the request line
    // only once the method is done (it reads nothing meanwhile), so the handover happens and the
    // new owner gets the EOF; with a failing method the connection just closes.
    put(fd, call(1, "attach", R"({"ok":false})"));
    ::close(fd);
    CHECK(b.reactor->runUntil([&] { return b.server->connectionCount() == 0; }, 2000ms));
    CHECK(b.taken.empty());
}
