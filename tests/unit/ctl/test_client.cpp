// vmrctl's client against real unix sockets in a temp folder: which socket it settles on when
// the main one keeps it out (EACCES, seen as an unprivileged user), and how a vmrd's refusal
// at connect reaches the user.

#include "client.h"
#include "config/settings.h"
#include "rpc/protocol.h"
#include "support.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <optional>
#include <thread>

using namespace std::chrono_literals;
using vmr::Error;
using vmr::ErrorKind;
using vmr::UniqueFd;
using vmr::ctl::Client;
using vmr::test::TempDir;

namespace {

constexpr uid_t kNobody = 65534;

UniqueFd listenAt(const std::string& path, mode_t mode)
{
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof addr.sun_path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd.get(), 16) == 0);
    REQUIRE(::chmod(path.c_str(), mode) == 0);
    return fd;
}

// Run `fn` as a user the sockets' modes apply to: nobody when we are root (in a child process),
// ourselves otherwise. Returns what `fn` returned.
std::string unprivileged(const std::function<std::string()>& fn)
{
    if (::geteuid() != 0) return fn();
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (::setgroups(0, nullptr) != 0 || ::setresgid(kNobody, kNobody, kNobody) != 0 ||
            ::setresuid(kNobody, kNobody, kNobody) != 0)
            ::_exit(1);
        std::string out = fn();
        (void)!::write(p[1], out.data(), out.size());
        ::_exit(0);
    }
    ::close(p[1]);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(p[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    ::close(p[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    return out;
}

// "ok PATH" or "KIND|MESSAGE|HINT".
std::string describe(const vmr::Result<Client>& c)
{
    if (c) return "ok " + c->path();
    return std::string(c.error().kindName()) + "|" + c.error().message() + "|" + c.error().hint();
}

// A folder the unprivileged user can reach, holding the sockets.
struct SocketDir {
    TempDir dir;
    std::string main = dir / "vmrd.sock";
    std::string ro = dir / "vmrd-ro.sock";
    SocketDir() { REQUIRE(::chmod(dir.path().c_str(), 0755) == 0); }
};

// The name of a group other than root's that nobody is not in, for a socket's group.
std::optional<std::pair<gid_t, std::string>> someGroup()
{
    for (gid_t g : {1u, 2u, 3u, 4u}) {
        if (group* gr = ::getgrgid(g); gr != nullptr && gr->gr_name != nullptr)
            return std::pair{g, std::string(gr->gr_name)};
    }
    return std::nullopt;
}

}  // namespace

TEST_CASE("the read-only socket sits next to the main one", "[vmrctl][client]")
{
    CHECK(vmr::config::readOnlySocketPath("/run/vmr/vmrd.sock") == "/run/vmr/vmrd-ro.sock");
    CHECK(vmr::config::readOnlySocketPath("/srv/x/admin.sock") == "/srv/x/vmrd-ro.sock");
}

TEST_CASE("a socket that keeps the user out is permission_denied, naming it", "[vmrctl][client]")
{
    SocketDir d;
    auto fd = listenAt(d.main, 0600);
    auto seen = unprivileged([&] { return describe(Client::connect(d.main, 1s)); });
    CHECK_THAT(seen,
               Catch::StartsWith("permission_denied|Not allowed to connect to vmrd at " + d.main + "|"));
    CHECK_THAT(seen, Catch::Contains("Ask vmrd's administrator"));

    if (auto g = someGroup(); g && ::geteuid() == 0) {
        REQUIRE(::chown(d.main.c_str(), 0, g->first) == 0);
        auto named = unprivileged([&] { return describe(Client::connect(d.main, 1s)); });
        CHECK_THAT(named, Catch::Contains("Join its group " + g->second + ": sudo usermod -aG " + g->second +
                                          " $USER, then log in again"));
    }
    // Nothing there is not a permission problem: vmrctl may start a vmrd.
    auto none = Client::connect(d.dir / "none.sock", 1s);
    REQUIRE_FALSE(none);
    CHECK(none.error().kind() == ErrorKind::Unavailable);
}

TEST_CASE("the system socket falls back to the read-only one on EACCES only", "[vmrctl][client]")
{
    SocketDir d;
    SECTION("main refused, read-only open: the read-only socket")
    {
        auto m = listenAt(d.main, 0600);
        auto r = listenAt(d.ro, 0666);
        CHECK(unprivileged([&] { return describe(vmr::ctl::connectShared(d.main, 1s)); }) == "ok " + d.ro);
    }
    SECTION("main open: the main socket, whatever the read-only one is")
    {
        auto m = listenAt(d.main, 0666);
        auto r = listenAt(d.ro, 0666);
        CHECK(unprivileged([&] { return describe(vmr::ctl::connectShared(d.main, 1s)); }) == "ok " + d.main);
    }
    SECTION("main refused, no read-only socket: permission_denied with the groups to join")
    {
        auto m = listenAt(d.main, 0600);
        auto seen = unprivileged([&] { return describe(vmr::ctl::connectShared(d.main, 1s)); });
        CHECK(seen == "permission_denied|Not allowed to connect to vmrd at " + d.main +
                          "|Join group vmr to manage VMs, or vmr-ro to watch them (e.g. sudo usermod -aG vmr "
                          "$USER, then log in again)");
    }
    SECTION("both refused: both are named")
    {
        auto m = listenAt(d.main, 0600);
        auto r = listenAt(d.ro, 0600);
        auto seen = unprivileged([&] { return describe(vmr::ctl::connectShared(d.main, 1s)); });
        CHECK_THAT(seen, Catch::StartsWith("permission_denied|Not allowed to connect to vmrd at " + d.main +
                                           ", nor at its read-only socket " + d.ro + "|"));
        if (auto g = someGroup(); g && ::geteuid() == 0) {
            // The groups are the sockets' own when they have them.
            REQUIRE(::chown(d.main.c_str(), 0, g->first) == 0);
            auto named = unprivileged([&] { return describe(vmr::ctl::connectShared(d.main, 1s)); });
            CHECK_THAT(named,
                       Catch::Contains("|Join group " + g->second + " to manage VMs, or vmr-ro to watch"));
        }
    }
    SECTION("main missing: unavailable, and the read-only socket is not tried")
    {
        auto r = listenAt(d.ro, 0666);
        auto seen = unprivileged([&] { return describe(vmr::ctl::connectShared(d.main, 1s)); });
        CHECK_THAT(seen, Catch::StartsWith("unavailable|Cannot reach vmrd at " + d.main));
    }
}

namespace {

const Error kRefused(ErrorKind::PermissionDenied, "uid 1000 may not use this vmrd",
                     "To use it, join group vmr to manage VMs");

void sendRefusal(int fd)
{
    std::string line = vmr::rpc::encodeError(vmr::rpc::Id{"null"}, kRefused) + "\n";
    REQUIRE(::send(fd, line.data(), line.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(line.size()));
}

void checkRefused(const vmr::Result<std::string>& r)
{
    REQUIRE_FALSE(r);
    CHECK(r.error().kind() == ErrorKind::PermissionDenied);
    CHECK(r.error().message() == kRefused.message());
    CHECK(r.error().hint() == kRefused.hint());
}

}  // namespace

TEST_CASE("vmrd's refusal at connect is reported as it is", "[vmrctl][client]")
{
    TempDir dir;
    std::string path = dir / "vmrd.sock";
    auto listener = listenAt(path, 0600);
    auto c = Client::connect(path, 1s);
    REQUIRE(c);
    UniqueFd peer(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    REQUIRE(peer);

    SECTION("refused and closed before the request is sent (the send fails)")
    {
        sendRefusal(peer.get());
        peer.reset();
        checkRefused(c->call("vmr.ping", "", 2s));
    }
    SECTION("refused and closed with the request unread (the connection is reset)")
    {
        std::thread server([&] {
            pollfd p{peer.get(), POLLIN, 0};
            ::poll(&p, 1, 2000);
            sendRefusal(peer.get());
            peer.reset();
        });
        auto r = c->call("vmr.ping", "", 2s);
        server.join();
        checkRefused(r);
    }
    SECTION("while waiting for events")
    {
        sendRefusal(peer.get());
        peer.reset();
        auto n = c->nextNotification(2s);
        REQUIRE_FALSE(n);
        CHECK(n.error().message() == kRefused.message());
    }
    SECTION("a close without a word is still `closed`")
    {
        peer.reset();
        auto r = c->call("vmr.ping", "", 2s);
        REQUIRE_FALSE(r);
        CHECK(r.error().kind() == ErrorKind::Unavailable);
    }
}

TEST_CASE("a released connection is blocking and keeps the bytes after the reply", "[vmrctl][client]")
{
    TempDir dir;
    std::string path = dir / "vmrd.sock";
    auto listener = listenAt(path, 0600);
    auto c = Client::connect(path, 1s);
    REQUIRE(c);
    UniqueFd peer(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    REQUIRE(peer);
    std::string reply = vmr::rpc::encodeResult(vmr::rpc::Id{"1"}, "{\"attached\":true}") + "\nlogin: ";
    REQUIRE(::send(peer.get(), reply.data(), reply.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(reply.size()));
    auto r = c->call("vm.console", "{}", 2s);
    REQUIRE(r);
    CHECK(*r == "{\"attached\":true}");
    auto stream = std::move(*c).release();
    CHECK(stream.early == "login: ");
    CHECK((::fcntl(stream.fd.get(), F_GETFL) & O_NONBLOCK) == 0);
}

TEST_CASE("vmrctl's runtime folder: where it is, made 0700, refused when not its own", "[vmrctl][client]")
{
    TempDir dir;
    std::string saved = std::getenv("XDG_RUNTIME_DIR") != nullptr ? std::getenv("XDG_RUNTIME_DIR") : "";
    ::setenv("XDG_RUNTIME_DIR", dir.path().c_str(), 1);
    CHECK(vmr::ctl::runtimeDir() == dir / "vmr");
    ::unsetenv("XDG_RUNTIME_DIR");
    CHECK(vmr::ctl::runtimeDir() == "/tmp/vmr-" + std::to_string(::geteuid()));
    if (!saved.empty()) ::setenv("XDG_RUNTIME_DIR", saved.c_str(), 1);

    std::string run = dir / "vmr";
    auto missing = vmr::ctl::checkRuntimeDir(run, false);
    REQUIRE_FALSE(missing);
    CHECK(missing.error().kind() == ErrorKind::NotFound);
    CHECK(vmr::test::listDir(dir.path()).empty());

    REQUIRE(vmr::ctl::checkRuntimeDir(run, true));
    struct stat st {};
    REQUIRE(::lstat(run.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0700);
    CHECK(vmr::ctl::checkRuntimeDir(run, false));

    REQUIRE(::chmod(run.c_str(), 0777) == 0);
    for (bool create : {false, true}) {
        auto open = vmr::ctl::checkRuntimeDir(run, create);
        REQUIRE_FALSE(open);
        CHECK(open.error().kind() == ErrorKind::PermissionDenied);
        CHECK_THAT(open.error().message(), Catch::Contains(run));
        CHECK_THAT(open.error().hint(), Catch::Contains("rm -r " + run));
        CHECK_THAT(open.error().hint(), Catch::Contains("XDG_RUNTIME_DIR"));
    }
    REQUIRE(::lstat(run.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0777);
}
