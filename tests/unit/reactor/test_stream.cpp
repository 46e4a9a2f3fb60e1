#include "catch.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace vmr;
using namespace vmr::reactor;
using vmr::test::makeReactor;
using vmr::test::runTask;
using vmr::test::socketPair;
using vmr::test::TempDir;

namespace {

std::string pattern(size_t n)
{
    std::string s(n, '\0');
    uint32_t x = 12345;
    for (auto& c : s) {
        x = x * 1103515245u + 12345u;
        c = static_cast<char>(x >> 16);
    }
    return s;
}

}  // namespace

TEST_CASE("Stream: 32 MiB echo through a second stream, in order")
{
    auto r = makeReactor();
    auto [a, b] = socketPair();
    Stream client(*r, std::move(a));
    Stream server(*r, std::move(b));
    server.start({.onData = [&](std::string_view d) { server.write(std::string(d)); }});
    std::string got;
    bool closed = false;
    client.start({.onData = [&](std::string_view d) { got.append(d); },
                  .onClose = [&](const Error*) { closed = true; }});
    const std::string payload = pattern(32 << 20);
    // Many writes of odd sizes, one shared buffer too.
    size_t off = 0;
    size_t step = 1;
    while (off < payload.size() - 1000) {
        size_t n = std::min(step, payload.size() - 1000 - off);
        client.write(payload.substr(off, n));
        off += n;
        step = step * 3 + 7;
        if (step > (1 << 20)) step = 13;
    }
    client.write(std::make_shared<const std::string>(payload.substr(off)));
    CHECK(client.pendingWriteBytes() > 0);
    REQUIRE(r->runUntil([&] { return got.size() == payload.size(); }, 15s));
    CHECK(got == payload);
    CHECK(client.pendingWriteBytes() == 0);
    CHECK(!closed);
}

TEST_CASE("Stream: fragmented writes from a raw peer arrive as one byte sequence")
{
    auto r = makeReactor();
    auto [a, b] = socketPair();
    Stream s(*r, std::move(a));
    std::string got;
    s.start({.onData = [&](std::string_view d) { got.append(d); }});
    const std::string msg = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"vm.list\"}\n";
    for (char c : msg) {
        REQUIRE(::write(b.get(), &c, 1) == 1);
        REQUIRE(r->runFor(1ms));
    }
    CHECK(r->runUntil([&] { return got.size() == msg.size(); }, 1s));
    CHECK(got == msg);
}

TEST_CASE("Stream: SCM_RIGHTS both ways, fds before the bytes they came with")
{
    auto r = makeReactor();
    auto [a, b] = socketPair();
    Stream sender(*r, std::move(a));
    Stream receiver(*r, std::move(b));
    sender.start({});
    std::vector<UniqueFd> fds;
    std::string got;
    size_t bytesWhenFds = 99;
    receiver.start({.onData = [&](std::string_view d) { got.append(d); },
                    .onFds =
                        [&](std::vector<UniqueFd> in) {
                            bytesWhenFds = got.size();
                            for (auto& f : in) fds.push_back(std::move(f));
                        }});
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    UniqueFd pr(p[0]), pw(p[1]);
    sender.write("before");
    sender.writeFds("with-fds", {pr.get(), pw.get()});
    sender.write("after");
    pr.reset();  // the stream keeps its own duplicates until sent
    REQUIRE(r->runUntil([&] { return got == "beforewith-fdsafter" && fds.size() == 2; }, 2s));
    CHECK(bytesWhenFds == 6);
    // The received fds are the pipe: write to ours, read from the received read end.
    REQUIRE(::write(pw.get(), "ping", 4) == 4);
    char buf[8] = {};
    CHECK(::read(fds[0].get(), buf, sizeof(buf)) == 4);
    CHECK(std::string(buf, 4) == "ping");
    CHECK((::fcntl(fds[0].get(), F_GETFD) & FD_CLOEXEC) != 0);
}

TEST_CASE("Stream: peer EOF closes once, after queued writes flush; error close reports an error")
{
    auto r = makeReactor();
    {
        auto [a, b] = socketPair();
        Stream s(*r, std::move(a));
        int closes = 0;
        const Error* errSeen = reinterpret_cast<const Error*>(1);
        s.start({.onData = [&](std::string_view) { s.write("reply"); },
                 .onClose =
                     [&](const Error* e) {
                         ++closes;
                         errSeen = e;
                     }});
        REQUIRE(::write(b.get(), "q", 1) == 1);
        REQUIRE(::shutdown(b.get(), SHUT_WR) == 0);
        REQUIRE(r->runUntil([&] { return closes == 1; }, 2s));
        CHECK(errSeen == nullptr);
        CHECK(s.closed());
        char buf[16];
        CHECK(::read(b.get(), buf, sizeof(buf)) == 5);  // the reply was flushed before the close
        REQUIRE(r->runFor(20ms));
        CHECK(closes == 1);
    }
    {
        auto [a, b] = socketPair();
        Stream s(*r, std::move(a));
        std::string err;
        int closes = 0;
        s.start({.onClose = [&](const Error* e) {
            ++closes;
            if (e != nullptr) err = e->what();
        }});
        b.reset();
        // Writing to a closed peer fails with EPIPE (no SIGPIPE) and closes the stream.
        std::string big(1 << 20, 'x');
        s.write(big);
        REQUIRE(r->runUntil([&] { return closes == 1; }, 2s));
        // Either the EOF or the failed write is seen first; both close exactly once.
        REQUIRE(r->runFor(20ms));
        CHECK(closes == 1);
        CHECK(s.closed());
    }
    {
        auto [a, b] = socketPair();
        Stream s(*r, std::move(a));
        const Error* seen = nullptr;
        bool closed = false;
        s.start({.onClose = [&](const Error* e) {
            closed = true;
            seen = e;
            if (e != nullptr) CHECK(e->message() == "Cannot write to the connection");
        }});
        b.reset();
        s.pauseReading();
        s.write(std::string(1 << 20, 'y'));
        REQUIRE(r->runUntil([&] { return closed; }, 2s));
        CHECK(seen != nullptr);
    }
}

TEST_CASE("Stream: shutdownWrite after flush; pause and resume keep data")
{
    auto r = makeReactor();
    auto [a, b] = socketPair();
    Stream s(*r, std::move(a));
    std::string got;
    s.start({.onData = [&](std::string_view d) { got.append(d); }});
    s.write("last words");
    s.shutdownWrite();
    std::string peer;
    REQUIRE(r->runUntil(
        [&] {
            char buf[64];
            ssize_t n = ::recv(b.get(), buf, sizeof(buf), MSG_DONTWAIT);
            if (n > 0) peer.append(buf, static_cast<size_t>(n));
            return n == 0;
        },
        2s));
    CHECK(peer == "last words");

    s.pauseReading();
    REQUIRE(::write(b.get(), "abc", 3) == 3);
    REQUIRE(r->runFor(30ms));
    CHECK(got.empty());
    s.resumeReading();
    CHECK(got.empty());  // not inside the caller
    REQUIRE(r->runUntil([&] { return got == "abc"; }, 1s));
    REQUIRE(::write(b.get(), "def", 3) == 3);
    REQUIRE(r->runUntil([&] { return got == "abcdef"; }, 1s));
}

TEST_CASE("Stream: peer credentials")
{
    auto r = makeReactor();
    auto [a, b] = socketPair();
    Stream s(*r, std::move(a));
    auto cred = s.peerCredentials();
    REQUIRE(cred);
    CHECK(cred->pid == ::getpid());
    CHECK(cred->uid == ::getuid());
}

TEST_CASE("Listener + connectUnix: accept many, echo")
{
    auto r = makeReactor();
    TempDir dir;
    auto path = dir / "s.sock";
    auto lfd = listenUnix(path, 0660);
    REQUIRE(lfd);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0660);
    std::vector<std::unique_ptr<Stream>> conns;
    Listener l(*r, std::move(*lfd), [&](UniqueFd fd) {
        auto s = std::make_unique<Stream>(*r, std::move(fd));
        auto* sp = s.get();
        sp->start({.onData = [sp](std::string_view d) { sp->write(std::string(d)); }});
        conns.push_back(std::move(s));
    });
    constexpr int kClients = 50;
    std::vector<std::unique_ptr<Stream>> clients;
    int replies = 0;
    for (int i = 0; i < kClients; ++i) {
        auto fd = runTask(*r, connectUnix(*r, path, 2s));
        REQUIRE(fd);
        auto c = std::make_unique<Stream>(*r, std::move(*fd));
        c->start({.onData = [&](std::string_view d) {
            CHECK(d == "hi");
            ++replies;
        }});
        c->write("hi");
        clients.push_back(std::move(c));
    }
    REQUIRE(r->runUntil([&] { return replies == kClients; }, 5s));
    CHECK(conns.size() == kClients);

    // A second server on the same path is refused; after the first goes, a stale file is replaced.
    auto busy = listenUnix(path, 0600);
    REQUIRE(!busy);
    CHECK(busy.error().kind() == ErrorKind::Busy);
}

TEST_CASE("listenUnix: replaces a stale socket file, refuses a non-socket, checks the path length")
{
    TempDir dir;
    auto path = dir / "stale.sock";
    {
        auto fd = listenUnix(path, 0600);
        REQUIRE(fd);
    }  // closed: the file stays behind, nothing answers
    REQUIRE(::access(path.c_str(), F_OK) == 0);
    auto again = listenUnix(path, 0600);
    CHECK(again);
    auto file = dir / "plain";
    UniqueFd f(::open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    auto notSock = listenUnix(file, 0600);
    REQUIRE(!notSock);
    CHECK(notSock.error().kind() == ErrorKind::Busy);
    auto tooLong = listenUnix(dir / std::string(200, 'x'), 0600);
    REQUIRE(!tooLong);
    CHECK(tooLong.error().kind() == ErrorKind::InvalidArgument);
}

TEST_CASE("connectUnix: refused, missing, and a timeout on a full backlog")
{
    auto r = makeReactor();
    TempDir dir;
    auto missing = runTask(*r, connectUnix(*r, dir / "none.sock", 1s));
    REQUIRE(!missing);
    CHECK(missing.error().kind() == ErrorKind::NotFound);

    auto stale = dir / "stale.sock";
    {
        REQUIRE(listenUnix(stale, 0600));
    }
    auto refused = runTask(*r, connectUnix(*r, stale, 1s));
    REQUIRE(!refused);
    CHECK(refused.error().kind() == ErrorKind::Unavailable);

    // backlog 0 holds one pending connection; the next connect waits for an accept that never comes.
    auto full = dir / "full.sock";
    auto lfd = listenUnix(full, 0600, 0);
    REQUIRE(lfd);
    std::vector<UniqueFd> held;
    for (int i = 0; i < 4; ++i) {
        UniqueFd c(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, full.data(), full.size());
        if (::connect(c.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) break;
        held.push_back(std::move(c));
    }
    auto start = Clock::now();
    auto timedOut = runTask(*r, connectUnix(*r, full, 150ms));
    REQUIRE(!timedOut);
    CHECK(timedOut.error().kind() == ErrorKind::Timeout);
    CHECK(Clock::now() - start >= 150ms);
    CHECK(Clock::now() - start < 2s);
    // The cancelled connect's record goes away once the kernel is done with it.
    REQUIRE(r->runUntil([] { return detail::liveOps() == 0; }, 2s));
}
