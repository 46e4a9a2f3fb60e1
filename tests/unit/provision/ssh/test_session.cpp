// Session against a real sshd on 127.0.0.1: connect retry and deadline, host key pinning,
// key authentication, exec streaming and exit status, SFTP upload, timeouts, cancellation and
// several sessions at once on one loop.

#include "provision/ssh/session.h"
#include "sshd.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <utility>
#include <vector>

using namespace vmr;
using namespace vmr::provision;
using namespace vmr::provision::test;

namespace {

struct Chunk {
    OutputStream stream;
    std::string data;
};

// Collects output, merging consecutive chunks of one stream.
struct Output {
    std::vector<Chunk> chunks;
    size_t bytes[2] = {0, 0};

    OutputFn fn()
    {
        return [this](OutputStream s, std::string_view d) {
            bytes[s == OutputStream::Stdout ? 0 : 1] += d.size();
            if (!chunks.empty() && chunks.back().stream == s)
                chunks.back().data += d;
            else
                chunks.push_back(Chunk{s, std::string(d)});
        };
    }
    std::string all(OutputStream s) const
    {
        std::string out;
        for (const auto& c : chunks)
            if (c.stream == s) out += c.data;
        return out;
    }
};

double seconds(reactor::Clock::duration d)
{
    return std::chrono::duration<double>(d).count();
}

}  // namespace

TEST_CASE("connect retries until the server appears")
{
    VMR_REQUIRE_SSHD();
    auto r = makeReactor();
    TempDir dir;
    Sshd sshd(*r, dir);
    auto opts = sshd.options();
    opts.timeout = 20s;
    opts.firstRetryDelay = 50ms;
    opts.maxRetryDelay = 200ms;
    auto start = r->now();
    auto t = Session::connect(*r, opts);
    t.start();
    (void)r->runFor(1500ms);
    REQUIRE_FALSE(t.done());  // refused so far, still trying
    sshd.start();
    REQUIRE(r->runUntil([&] { return t.done(); }, 20s));
    auto s = t.result();
    if (!s) FAIL(s.error().what() << "\n" << sshd.log());
    CHECK(seconds(r->now() - start) >= 1.5);
    CHECK((*s)->authenticatedWith() == sshd.clientKey());
    CHECK((*s)->usable());
}

TEST_CASE("connect retries while a port forward accepts and then drops or ignores connections")
{
    VMR_REQUIRE_SSHD();
    auto r = makeReactor();
    TempDir dir;
    Sshd sshd(*r, dir);

    // What QEMU's user-mode forward does before the guest's sshd is up: accept, then close
    // (the guest refused) or stay silent (the guest is not answering yet).
    bool drop = true;
    SECTION("accepted and dropped")
    {
        drop = true;
    }
    SECTION("accepted and silent")
    {
        drop = false;
    }
    UniqueFd lfd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    int one = 1;
    REQUIRE(::setsockopt(lfd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(sshd.port());
    REQUIRE(::bind(lfd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(lfd.get(), 16) == 0);
    int accepted = 0;
    std::vector<UniqueFd> held;
    auto acceptor = std::make_unique<reactor::FdWatch>(*r, lfd.get(), reactor::Readable, [&](uint32_t) {
        UniqueFd c(::accept4(lfd.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
        if (!c) return;
        ++accepted;
        if (!drop) held.push_back(std::move(c));
    });

    auto opts = sshd.options();
    opts.timeout = 20s;
    opts.attemptTimeout = 300ms;
    opts.firstRetryDelay = 50ms;
    opts.maxRetryDelay = 100ms;
    auto t = Session::connect(*r, opts);
    t.start();
    (void)r->runFor(1500ms);
    REQUIRE_FALSE(t.done());
    CHECK(accepted >= 3);

    acceptor.reset();
    lfd.reset();
    held.clear();
    sshd.start();
    REQUIRE(r->runUntil([&] { return t.done(); }, 20s));
    auto s = t.result();
    if (!s) FAIL(s.error().what() << "\n" << sshd.log());
    CHECK((*s)->usable());
}

namespace {

// A server's first words: its banner and a KEXINIT offering curve25519 and ssh-ed25519, in an
// unencrypted SSH binary packet.
std::string bannerAndKexinit()
{
    std::string payload(1, '\x14');  // SSH_MSG_KEXINIT
    payload.append(16, '\x2a');      // cookie
    auto nameList = [&](const std::string& names) {
        uint32_t n = static_cast<uint32_t>(names.size());
        for (int shift = 24; shift >= 0; shift -= 8) payload += static_cast<char>((n >> shift) & 0xff);
        payload += names;
    };
    for (const char* names : {"curve25519-sha256", "ssh-ed25519", "aes128-ctr", "aes128-ctr", "hmac-sha2-256",
                              "hmac-sha2-256", "none", "none", "", ""})
        nameList(names);
    payload.append(5, '\0');  // first_kex_packet_follows, reserved
    size_t padding = 8 - (5 + payload.size()) % 8;
    if (padding < 4) padding += 8;
    uint32_t len = static_cast<uint32_t>(1 + payload.size() + padding);
    std::string packet;
    for (int shift = 24; shift >= 0; shift -= 8) packet += static_cast<char>((len >> shift) & 0xff);
    packet += static_cast<char>(padding);
    packet += payload;
    packet.append(padding, '\0');
    return "SSH-2.0-OpenSSH_9.2\r\n" + packet;
}

}  // namespace

TEST_CASE("attempts cut off in the middle of the key exchange are retried, and leave nothing behind")
{
    auto r = makeReactor();
    uint16_t port = freePort();
    UniqueFd lfd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    REQUIRE(::bind(lfd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(lfd.get(), 16) == 0);
    // Starts the key exchange, then never answers the client's half of it.
    const std::string hello = bannerAndKexinit();
    std::vector<UniqueFd> held;
    reactor::FdWatch acceptor(*r, lfd.get(), reactor::Readable, [&](uint32_t) {
        UniqueFd c(::accept4(lfd.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!c) return;
        REQUIRE(::send(c.get(), hello.data(), hello.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(hello.size()));
        held.push_back(std::move(c));
    });

    ConnectOptions opts;
    opts.host = "127.0.0.1";
    opts.port = port;
    opts.hostKey = HostKeyPolicy::firstUse();
    opts.timeout = 1500ms;
    opts.attemptTimeout = 300ms;
    opts.firstRetryDelay = 50ms;
    auto s = runTask(*r, Session::connect(*r, opts), 10s);
    REQUIRE_FALSE(s);
    CHECK(s.error().kind() == ErrorKind::Timeout);
    CHECK_THAT(s.error().what(), Catch::Contains("handshake"));
    CHECK(held.size() >= 2);
    // Under the sanitizers, LeakSanitizer checks at exit that the sessions freed mid-exchange
    // left no memory behind (libssh2 1.10 itself would).
}

TEST_CASE("connect gives up at its deadline with a clear error")
{
    VMR_REQUIRE_SSHD();
    auto r = makeReactor();
    ConnectOptions opts;
    opts.host = "127.0.0.1";
    opts.port = freePort();
    opts.hostKey = HostKeyPolicy::firstUse();
    opts.keyFiles = {"/nonexistent/key"};
    opts.timeout = 1s;
    auto start = r->now();
    auto s = runTask(*r, Session::connect(*r, opts), 10s);
    double took = seconds(r->now() - start);
    REQUIRE_FALSE(s);
    CHECK(s.error().kind() == ErrorKind::Timeout);
    CHECK_THAT(s.error().what(), Catch::Contains("Cannot reach") && Catch::Contains("attempts") &&
                                     Catch::Contains("Connection refused"));
    CHECK_FALSE(s.error().hint().empty());
    CHECK(took >= 0.5);
    CHECK(took < 3.0);
}

TEST_CASE("connect stops when cancelled")
{
    auto r = makeReactor();
    ConnectOptions opts;
    opts.host = "127.0.0.1";
    opts.port = freePort();
    opts.hostKey = HostKeyPolicy::firstUse();
    opts.timeout = 30s;
    reactor::CancelToken token;
    reactor::Timer cancel(*r, [&] { token.cancel(); });
    cancel.start(300ms);
    auto start = r->now();
    auto s = runTask(*r, Session::connect(*r, opts, &token), 10s);
    REQUIRE_FALSE(s);
    CHECK(s.error().kind() == ErrorKind::Cancelled);
    CHECK_THAT(s.error().message(), Catch::Contains("127.0.0.1"));
    CHECK(seconds(r->now() - start) < 2.0);
}

TEST_CASE("connect refuses bad options before trying")
{
    auto r = makeReactor();
    ConnectOptions opts;
    opts.host = "guest.example";
    opts.hostKey = HostKeyPolicy::firstUse();
    auto s = runTask(*r, Session::connect(*r, opts));
    REQUIRE_FALSE(s);
    CHECK(s.error().kind() == ErrorKind::InvalidArgument);
    CHECK_THAT(s.error().message(), Catch::Contains("not an IP address"));

    opts.host = "127.0.0.1";
    opts.hostKey = HostKeyPolicy::pin("ssh-ed25519 not*base64");
    s = runTask(*r, Session::connect(*r, opts));
    REQUIRE_FALSE(s);
    CHECK(s.error().kind() == ErrorKind::InvalidArgument);
}

TEST_CASE("host key: pinned key accepted, other key refused, first use returns the key")
{
    VMR_REQUIRE_SSHD();
    Server server;
    auto& [r, dir, sshd] = server;

    SECTION("pinned and matching")
    {
        auto s = server.connect();
        CHECK(s->hostKey().line() + " host_ed25519" == sshd.hostKeyLine());
        // The fingerprint is the one ssh-keygen prints for the key.
        std::string listed =
            runProgram(*r, {"ssh-keygen", "-l", "-E", "sha256", "-f", sshd.hostKey() + ".pub"});
        CHECK_THAT(listed, Catch::Contains(s->hostKeyFingerprint()));
        CHECK(s->hostKeyFingerprint().rfind("SHA256:", 0) == 0);
    }
    SECTION("pinned to another key: refused as a possible man-in-the-middle")
    {
        auto opts = sshd.options();
        std::string other = keygen(*r, dir, "other_host");
        opts.hostKey = HostKeyPolicy::pin(readFile(other + ".pub"));
        auto s = runTask(*r, Session::connect(*r, opts), 30s);
        REQUIRE_FALSE(s);
        CHECK(s.error().kind() == ErrorKind::HostKeyMismatch);
        CHECK_THAT(s.error().message(), Catch::Contains("not the pinned one") && Catch::Contains("SHA256:"));
        CHECK_THAT(s.error().hint(), Catch::Contains("man-in-the-middle") && Catch::Contains("reinstalled"));
    }
    SECTION("pinned to a type the server does not have")
    {
        auto opts = sshd.options();
        std::string ecdsa = keygen(*r, dir, "ecdsa_host", "ecdsa");
        opts.hostKey = HostKeyPolicy::pin(readFile(ecdsa + ".pub"));
        auto s = runTask(*r, Session::connect(*r, opts), 30s);
        REQUIRE_FALSE(s);
        CHECK(s.error().kind() == ErrorKind::HostKeyMismatch);
        CHECK_THAT(s.error().message(), Catch::Contains("ecdsa-sha2-nistp256"));
    }
    SECTION("pin on first use: the key seen comes back as an OpenSSH line")
    {
        auto opts = sshd.options();
        opts.hostKey = HostKeyPolicy::firstUse();
        auto s = connectOrFail(*r, opts, sshd);
        auto line = s->hostKey().line();
        CHECK(line.rfind("ssh-ed25519 AAAA", 0) == 0);
        // Pinning what was seen works next time.
        opts.hostKey = HostKeyPolicy::pin(line);
        connectOrFail(*r, opts, sshd);
    }
}

TEST_CASE("authentication: keys in order, missing ones skipped, and a clear error when all fail")
{
    VMR_REQUIRE_SSHD();
    Server server;
    auto& [r, dir, sshd] = server;
    std::string wrong = keygen(*r, dir, "wrong_ed25519");
    std::string missing = dir / "missing_key";

    SECTION("the accepted key is found after a missing and a refused one")
    {
        auto opts = sshd.options();
        opts.keyFiles = {missing, wrong, sshd.clientKey()};
        auto s = connectOrFail(*r, opts, sshd);
        CHECK(s->authenticatedWith() == sshd.clientKey());
        REQUIRE(s->keysTried().size() == 3);
        CHECK(s->keysTried()[0] == missing + " (missing)");
        CHECK(s->keysTried()[1] == wrong + " (refused)");
        CHECK(s->keysTried()[2] == sshd.clientKey() + " (accepted)");
    }
    SECTION("an ECDSA key (~/.ssh/id_ecdsa is on the default list)")
    {
        std::string ecdsa = keygen(*r, dir, "client_ecdsa", "ecdsa");
        writeFile(dir / "authorized_keys", readFile(ecdsa + ".pub"), 0600);
        auto opts = sshd.options();
        opts.keyFiles = {ecdsa};
        auto s = connectOrFail(*r, opts, sshd);
        CHECK(s->authenticatedWith() == ecdsa);
    }
    SECTION("no key accepted: AuthFailed lists every key tried")
    {
        std::string garbage = dir / "garbage_key";
        writeFile(garbage, "not a key\n", 0600);
        auto opts = sshd.options();
        opts.keyFiles = {missing, garbage, wrong};
        auto s = runTask(*r, Session::connect(*r, opts), 30s);
        REQUIRE_FALSE(s);
        INFO(s.error().what());
        CHECK(s.error().kind() == ErrorKind::AuthFailed);
        CHECK_THAT(s.error().message(), Catch::Contains(missing + " (missing)") &&
                                            Catch::Contains(garbage + " (not a usable private key") &&
                                            Catch::Contains(wrong + " (refused)"));
        CHECK_THAT(s.error().hint(), Catch::Contains("authorized_keys"));
    }
    SECTION("no key at all")
    {
        auto opts = sshd.options();
        opts.keyFiles = {};
        auto s = runTask(*r, Session::connect(*r, opts), 30s);
        REQUIRE_FALSE(s);
        CHECK(s.error().kind() == ErrorKind::AuthFailed);
        CHECK_THAT(s.error().hint(), Catch::Contains("--key"));
    }
}

TEST_CASE("exec: stdout and stderr as they arrive, exit codes and signals")
{
    VMR_REQUIRE_SSHD();
    Server server;
    auto& [r, dir, sshd] = server;
    auto s = server.connect();

    Output out;
    auto exit = runTask(*r,
                        s->exec("echo out1; sleep 0.3; echo err1 >&2; sleep 0.3; echo out2; sleep 0.3; "
                                "echo err2 >&2; exit 3",
                                out.fn(), 10s),
                        15s);
    REQUIRE(exit);
    CHECK(exit->code == 3);
    CHECK_FALSE(exit->ok());
    CHECK(exit->describe() == "exit code 3");
    REQUIRE(out.chunks.size() == 4);
    CHECK(out.chunks[0].stream == OutputStream::Stdout);
    CHECK(out.chunks[0].data == "out1\n");
    CHECK(out.chunks[1].stream == OutputStream::Stderr);
    CHECK(out.chunks[1].data == "err1\n");
    CHECK(out.chunks[2].stream == OutputStream::Stdout);
    CHECK(out.chunks[2].data == "out2\n");
    CHECK(out.chunks[3].stream == OutputStream::Stderr);
    CHECK(out.chunks[3].data == "err2\n");

    // The same session runs the next command; stdin is closed, so `cat` ends at once.
    Output out2;
    exit = runTask(*r, s->exec("cat; echo ok", out2.fn(), 10s), 15s);
    REQUIRE(exit);
    CHECK(exit->ok());
    CHECK(out2.all(OutputStream::Stdout) == "ok\n");

    exit = runTask(*r, s->exec("kill -KILL $$", nullptr, 10s), 15s);
    REQUIRE(exit);
    CHECK(exit->signal == "KILL");
    CHECK(exit->code == -1);
    CHECK(exit->describe() == "killed by signal KILL");
}

TEST_CASE("exec: a command writing several MB on both streams")
{
    VMR_REQUIRE_SSHD();
    Server server;
    auto& [r, dir, sshd] = server;
    auto s = server.connect();

    Output out;
    auto exit = runTask(*r, s->exec("seq 1 600000; seq 1 100000 >&2", out.fn(), 60s), 90s);
    REQUIRE(exit);
    CHECK(exit->ok());
    std::string expected;
    for (int i = 1; i <= 600000; ++i) expected += std::to_string(i) + "\n";
    CHECK(out.bytes[0] == expected.size());
    CHECK(out.all(OutputStream::Stdout) == expected);
    CHECK(out.bytes[1] == 588895);  // the digits and newlines of 1..100000
}

TEST_CASE("upload: a multi-MB file in chunks, with the mode asked for")
{
    VMR_REQUIRE_SSHD();
    Server server;
    auto& [r, dir, sshd] = server;
    auto s = server.connect();

    std::string data;
    data.reserve(5u << 20);
    uint32_t x = 12345;
    while (data.size() < (5u << 20) + 777) {
        x = x * 1103515245u + 12345u;
        data += static_cast<char>(x >> 24);
    }
    std::string local = dir / "payload.bin";
    writeFile(local, data, 0640);

    // The local mode by default; umask on the server does not matter (0757 survives 022).
    std::string remote = dir / "remote.bin";
    auto up = runTask(*r, s->upload(local, remote, std::nullopt, 60s), 90s);
    if (!up) FAIL(up.error().what());
    CHECK(readFile(remote) == data);
    struct stat st {};
    REQUIRE(::stat(remote.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0640);

    up = runTask(*r, s->upload(local, remote, 0757u, 60s), 90s);
    REQUIRE(up);
    REQUIRE(::stat(remote.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0757);

    SECTION("a destination folder that does not exist")
    {
        auto bad = runTask(*r, s->upload(local, dir / "no/such/dir/x", std::nullopt, 10s), 15s);
        REQUIRE_FALSE(bad);
        CHECK_THAT(bad.error().message(), Catch::Contains("no such file"));
        CHECK_FALSE(bad.error().hint().empty());
        CHECK(s->usable());  // the session goes on
    }
    SECTION("a local file that does not exist")
    {
        auto bad = runTask(*r, s->upload(dir / "nope", remote, std::nullopt, 10s), 15s);
        REQUIRE_FALSE(bad);
        CHECK(bad.error().kind() == ErrorKind::NotFound);
    }
}

TEST_CASE("exec: a timeout, a cancel or a dropped connection ends the session")
{
    VMR_REQUIRE_SSHD();
    Server server;
    auto& [r, dir, sshd] = server;

    SECTION("timeout")
    {
        auto s = server.connect();
        auto start = r->now();
        auto exit = runTask(*r, s->exec("sleep 10", nullptr, 300ms), 5s);
        REQUIRE_FALSE(exit);
        CHECK(exit.error().kind() == ErrorKind::Timeout);
        CHECK_THAT(exit.error().message(), Catch::Contains("sleep 10") && Catch::Contains("300 ms"));
        CHECK(seconds(r->now() - start) < 3.0);
        CHECK_FALSE(s->usable());
        auto next = runTask(*r, s->exec("true", nullptr, 5s));
        REQUIRE_FALSE(next);
        CHECK(next.error().kind() == ErrorKind::Unavailable);
    }
    SECTION("cancel")
    {
        auto s = server.connect();
        reactor::CancelToken token;
        reactor::Timer cancel(*r, [&] { token.cancel(); });
        cancel.start(200ms);
        auto exit = runTask(*r, s->exec("sleep 10", nullptr, 10s, &token), 5s);
        REQUIRE_FALSE(exit);
        CHECK(exit.error().kind() == ErrorKind::Cancelled);
        CHECK_FALSE(s->usable());
    }
    SECTION("the connection drops under a running command")
    {
        auto s = server.connect();
        // The command's parent is sshd's process for this connection: killing it drops the
        // connection, as a guest that reboots or crashes would.
        auto exit = runTask(*r, s->exec("echo before; kill -KILL $PPID; sleep 5", nullptr, 10s), 8s);
        REQUIRE_FALSE(exit);
        CHECK(exit.error().kind() == ErrorKind::Unavailable);
        CHECK_THAT(exit.error().what(), Catch::Contains("127.0.0.1"));
        CHECK_FALSE(s->usable());
    }
    SECTION("one operation at a time")
    {
        auto s = server.connect();
        auto first = s->exec("sleep 0.3", nullptr, 5s);
        first.start();
        auto second = runTask(*r, s->exec("true", nullptr, 5s));
        REQUIRE_FALSE(second);
        CHECK(second.error().kind() == ErrorKind::Busy);
        REQUIRE(r->runUntil([&] { return first.done(); }, 5s));
        CHECK(first.result());
    }
}

TEST_CASE("several sessions on one loop run side by side without blocking it")
{
    VMR_REQUIRE_SSHD();
    Server server;
    auto& [r, dir, sshd] = server;

    constexpr int kSessions = 5;
    std::vector<std::unique_ptr<Session>> sessions;
    for (int i = 0; i < kSessions; ++i) sessions.push_back(server.connect());

    int ticks = 0;
    reactor::Timer ticker(*r, [&] { ++ticks; });
    ticker.start(50ms, 50ms);
    std::vector<Output> outs(kSessions);
    std::vector<Task<Result<ExitInfo>>> runs;
    auto start = r->now();
    for (int i = 0; i < kSessions; ++i)
        runs.push_back(sessions[i]->exec("sleep 1; echo done " + std::to_string(i), outs[i].fn(), 10s));
    REQUIRE(runAll(*r, runs, 20s));
    double took = seconds(r->now() - start);
    for (int i = 0; i < kSessions; ++i) {
        auto res = runs[i].result();
        REQUIRE(res);
        CHECK(res->ok());
        CHECK(outs[i].all(OutputStream::Stdout) == "done " + std::to_string(i) + "\n");
    }
    // One after another would be at least 5 s; side by side about 1 s (loose: the machine may be
    // busy).
    CHECK(took < 4.0);
    // The timer kept firing while they ran (every 50 ms for at least a second).
    CHECK(ticks >= 12);
}
