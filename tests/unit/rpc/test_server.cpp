// The JSON-RPC server on a real reactor and a real unix socket: dispatch, async methods,
// batches, events, and client limits. Runs once per reactor backend (VMR_REACTOR).

#include "base/json.h"
#include "reactor/await.h"
#include "rpc/server.h"

#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

using namespace vmr;
using namespace std::chrono_literals;

namespace {

struct Fixture {
    std::string dir;
    std::string path;
    std::unique_ptr<reactor::Reactor> reactor;
    std::unique_ptr<rpc::Server> server;

    explicit Fixture(rpc::Limits limits = {})
    {
        char tmpl[] = "/tmp/vmr-srv-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        dir = tmpl;
        path = dir + "/s.sock";
        auto r = reactor::Reactor::create();
        REQUIRE(r.ok());
        reactor = std::move(*r);
        auto fd = reactor::listenUnix(path, 0660);
        REQUIRE(fd.ok());
        server = std::make_unique<rpc::Server>(*reactor, std::move(*fd), limits);
    }
    ~Fixture()
    {
        server.reset();
        reactor.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }

    int connect()
    {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        // Let the server accept it.
        size_t before = server->connectionCount();
        reactor->runUntil([&] { return server->connectionCount() > before; }, 2000ms);
        return fd;
    }

    // Run the loop until `fd` has `lines` complete lines, and return them.
    std::vector<std::string> readLines(int fd, size_t lines, std::chrono::milliseconds timeout = 3000ms)
    {
        std::string buf;
        std::vector<std::string> out;
        reactor->runUntil(
            [&] {
                char chunk[65536];
                ssize_t n;
                while ((n = ::recv(fd, chunk, sizeof chunk, 0)) > 0)
                    buf.append(chunk, static_cast<size_t>(n));
                size_t nl;
                while ((nl = buf.find('\n')) != std::string::npos) {
                    out.push_back(buf.substr(0, nl));
                    buf.erase(0, nl + 1);
                }
                return out.size() >= lines;
            },
            timeout);
        return out;
    }
};

void sendAll(int fd, const std::string& s)
{
    REQUIRE(::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == ssize_t(s.size()));
}

bool peerClosed(Fixture& f, int fd)
{
    return f.reactor->runUntil(
        [&] {
            char c[65536];
            for (;;) {
                ssize_t n = ::recv(fd, c, sizeof c, 0);
                if (n > 0) continue;  // drain what was queued before the close
                return n == 0 || (n < 0 && errno != EAGAIN);
            }
        },
        3000ms);
}

reactor::Task<Result<std::string>> slowEcho(reactor::Reactor& r, rpc::Params params)
{
    auto slept = co_await reactor::sleep(r, 50ms);
    if (!slept) co_return std::move(slept).error();
    auto v = params.string("v");
    if (!v) co_return std::move(v).error();
    co_return "{\"echo\":" + json::quote(*v) + "}";
}

void addMethods(Fixture& f, rpc::Peer* seen = nullptr)
{
    f.server->addMethod("ping", rpc::Method{.sync = [seen](const rpc::Call& c) -> Result<std::string> {
                            if (seen != nullptr) *seen = c.peer;
                            return std::string("\"pong\"");
                        }});
    f.server->addMethod("fail", rpc::Method{.sync = [](const rpc::Call&) -> Result<std::string> {
                            return Error(ErrorKind::VmNotFound, "No VM named \"x\"",
                                         "Run `vmrctl list` to see VMs");
                        }});
    f.server->addMethod("pretty", rpc::Method{.sync = [](const rpc::Call&) -> Result<std::string> {
                            return std::string("{\n  \"a\": \"x\\ny\"\n}\n");
                        }});
    auto* r = f.reactor.get();
    f.server->addMethod(
        "slow", rpc::Method{.async = [r](rpc::Peer, rpc::Params p) { return slowEcho(*r, std::move(p)); }});
    f.server->addMethod("sub", rpc::Method{.sync = [](const rpc::Call&) -> Result<std::string> {
                                               return std::string("true");
                                           },
                                           .after =
                                               [](rpc::Server& s, uint64_t conn, const rpc::Params& p) {
                                                   std::set<std::string> topics;
                                                   if (auto t = p.optString("topic"); t && *t)
                                                       topics.insert(**t);
                                                   std::string vm;
                                                   if (auto v = p.optString("vm"); v && *v) vm = **v;
                                                   s.subscribe(conn, topics, vm);
                                               }});
}

std::string req(int id, const std::string& method, const std::string& params = "")
{
    std::string s = "{\"jsonrpc\":\"2.0\",\"id\":" + std::to_string(id) + ",\"method\":\"" + method + "\"";
    if (!params.empty()) s += ",\"params\":" + params;
    return s + "}\n";
}

}  // namespace

TEST_CASE("sync methods answer with results and mapped errors; peers are identified", "[server]")
{
    Fixture f;
    rpc::Peer seen;
    addMethods(f, &seen);
    int c = f.connect();
    sendAll(c, req(1, "ping") + req(2, "fail") + req(3, "nope") + req(4, "ping", "{\"x\":1}"));
    auto lines = f.readLines(c, 4);
    REQUIRE(lines.size() == 4);
    CHECK(lines[0] == R"({"jsonrpc":"2.0","id":1,"result":"pong"})");
    CHECK(lines[1].find("\"code\":-32003") != std::string::npos);
    CHECK(lines[1].find("vm.not_found") != std::string::npos);
    CHECK(lines[2].find("-32601") != std::string::npos);
    CHECK(lines[3].find("\"id\":4,\"result\"") != std::string::npos);
    CHECK(seen.uid == ::getuid());
    CHECK(seen.pid == ::getpid());
    ::close(c);
}

TEST_CASE("a pretty-printed result still goes out as one line", "[server]")
{
    Fixture f;
    addMethods(f);
    int c = f.connect();
    sendAll(c, req(1, "pretty") + req(2, "ping"));
    auto lines = f.readLines(c, 2);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0].find("\"x\\ny\"") != std::string::npos);
    CHECK(lines[1].find("\"id\":2") != std::string::npos);
    ::close(c);
}

TEST_CASE("async methods do not hold up other requests on the connection", "[server]")
{
    Fixture f;
    addMethods(f);
    int c = f.connect();
    sendAll(c, req(1, "slow", "{\"v\":\"later\"}") + req(2, "ping"));
    auto lines = f.readLines(c, 2);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0].find("\"id\":2") != std::string::npos);  // the quick one first
    CHECK(lines[1] == R"({"jsonrpc":"2.0","id":1,"result":{"echo":"later"}})");
    ::close(c);
}

TEST_CASE("a batch with async items is answered once, as one array", "[server]")
{
    Fixture f;
    addMethods(f);
    int c = f.connect();
    sendAll(c, "[" + req(1, "slow", "{\"v\":\"a\"}").substr(0, req(1, "slow", "{\"v\":\"a\"}").size() - 1) +
                   "," + R"({"jsonrpc":"2.0","method":"ping"},{"jsonrpc":"2.0","id":3,"method":"ping"}])" +
                   "\n");
    auto lines = f.readLines(c, 1);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].front() == '[');
    CHECK(lines[0].find("\"echo\":\"a\"") != std::string::npos);
    CHECK(lines[0].find("\"id\":3") != std::string::npos);
    // Only two replies: the notification has none.
    size_t count = 0;
    for (size_t p = 0; (p = lines[0].find("\"jsonrpc\"", p)) != std::string::npos; ++p) ++count;
    CHECK(count == 2);

    // A batch of notifications only: no reply at all; the next request is answered next.
    sendAll(c, R"([{"jsonrpc":"2.0","method":"ping"},{"jsonrpc":"2.0","method":"ping"}])"
               "\n" +
                   req(9, "ping"));
    auto next = f.readLines(c, 1);
    REQUIRE(next.size() == 1);
    CHECK(next[0].find("\"id\":9") != std::string::npos);
    ::close(c);
}

TEST_CASE("a connection closed while its async call runs is forgotten safely", "[server]")
{
    Fixture f;
    addMethods(f);
    int c = f.connect();
    sendAll(c, req(1, "slow", "{\"v\":\"x\"}"));
    (void)f.reactor->runFor(10ms);
    ::close(c);
    f.reactor->runUntil([&] { return f.server->connectionCount() == 0; }, 2000ms);
    (void)f.reactor->runFor(100ms);  // the coroutine finishes and finds no connection
    CHECK(f.server->connectionCount() == 0);
}

TEST_CASE("events reach the matching subscribers only", "[server][events]")
{
    Fixture f;
    addMethods(f);
    int all = f.connect();
    int web = f.connect();
    int other = f.connect();
    sendAll(all, req(1, "sub"));
    sendAll(web, req(1, "sub", R"({"topic":"vm.state","vm":"web"})"));
    REQUIRE(f.readLines(all, 1).size() == 1);
    REQUIRE(f.readLines(web, 1).size() == 1);

    f.server->publish("vm.state", "db", R"({"topic":"vm.state","vm":"db"})");
    f.server->publish("vm.state", "web", R"({"topic":"vm.state","vm":"web"})");
    f.server->publish("daemon.reloaded", "", R"({"topic":"daemon.reloaded"})");
    auto a = f.readLines(all, 3);
    auto w = f.readLines(web, 1);
    REQUIRE(a.size() == 3);
    REQUIRE(w.size() == 1);
    CHECK(w[0] == R"({"jsonrpc":"2.0","method":"event","params":{"topic":"vm.state","vm":"web"}})");
    CHECK(f.readLines(web, 1, 100ms).empty());
    CHECK(f.readLines(other, 1, 100ms).empty());
    ::close(all);
    ::close(web);
    ::close(other);
}

TEST_CASE("notify() reaches one connection, before the reply of the call that sent it", "[server]")
{
    Fixture f;
    rpc::Server* srv = f.server.get();
    auto* r = f.reactor.get();
    f.server->addMethod("progress", rpc::Method{.async = [srv, r](rpc::Peer peer, rpc::Params p) {
                            return [](rpc::Server* s, reactor::Reactor* re, rpc::Peer who,
                                      rpc::Params) -> reactor::Task<Result<std::string>> {
                                CHECK(s->notify(who.connection, "progress", R"({"done":1})"));
                                (void)co_await reactor::sleep(*re, 10ms);
                                CHECK(s->notify(who.connection, "progress", R"({"done":2})"));
                                co_return std::string("\"finished\"");
                            }(srv, r, peer, std::move(p));
                        }});
    int caller = f.connect();
    int other = f.connect();
    sendAll(caller, req(7, "progress"));
    auto lines = f.readLines(caller, 3);
    REQUIRE(lines.size() == 3);
    CHECK(lines[0] == R"({"jsonrpc":"2.0","method":"progress","params":{"done":1}})");
    CHECK(lines[1] == R"({"jsonrpc":"2.0","method":"progress","params":{"done":2}})");
    CHECK(lines[2] == R"({"jsonrpc":"2.0","id":7,"result":"finished"})");
    CHECK(f.readLines(other, 1, 100ms).empty());
    CHECK_FALSE(f.server->notify(999999, "progress", "{}"));
    ::close(caller);
    ::close(other);
}

TEST_CASE("a subscriber that stops reading is disconnected; others go on", "[server][limits]")
{
    rpc::Limits limits;
    limits.maxClientBacklog = 256 << 10;
    Fixture f(limits);
    addMethods(f);
    int stalled = f.connect();
    int reader = f.connect();
    sendAll(stalled, req(1, "sub"));
    sendAll(reader, req(1, "sub"));
    REQUIRE(f.readLines(stalled, 1).size() == 1);
    REQUIRE(f.readLines(reader, 1).size() == 1);

    std::string big = "{\"topic\":\"t\",\"pad\":\"" + std::string(16 << 10, 'x') + "\"}";
    size_t got = 0;
    for (int i = 0; i < 200; ++i) {
        f.server->publish("t", "", big);
        got += f.readLines(reader, 1, 1000ms).size();
    }
    CHECK(got == 200);
    CHECK(f.server->connectionCount() == 1);
    CHECK(peerClosed(f, stalled));
    ::close(stalled);
    ::close(reader);
}

TEST_CASE("an oversized line gets a too_large error, then the connection closes", "[server][limits]")
{
    rpc::Limits limits;
    limits.maxRequestBytes = 4096;
    Fixture f(limits);
    addMethods(f);
    int c = f.connect();
    std::string line =
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"p\":\"" + std::string(5000, 'a');
    sendAll(c, line);
    auto lines = f.readLines(c, 1);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].find("too_large") != std::string::npos);
    CHECK(peerClosed(f, c));
    ::close(c);
}

TEST_CASE("past max_clients a new client gets a busy error", "[server][limits]")
{
    rpc::Limits limits;
    limits.maxClients = 2;
    Fixture f(limits);
    addMethods(f);
    int a = f.connect();
    int b = f.connect();
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, f.path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    auto lines = f.readLines(fd, 1);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].find("\"busy\"") != std::string::npos);
    CHECK(f.server->connectionCount() == 2);
    ::close(fd);
    ::close(a);
    ::close(b);
}

TEST_CASE("destroying the server with an async call in flight is safe", "[server]")
{
    auto f = std::make_unique<Fixture>();
    addMethods(*f);
    int c = f->connect();
    sendAll(c, req(1, "slow", "{\"v\":\"x\"}"));
    (void)f->reactor->runFor(10ms);
    f->server.reset();
    (void)f->reactor->runFor(100ms);  // the coroutine completes after its server is gone
    ::close(c);
    SUCCEED();
}
