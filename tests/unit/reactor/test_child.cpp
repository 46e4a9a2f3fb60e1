#include "catch.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>

using namespace std::chrono_literals;
using namespace vmr;
using namespace vmr::reactor;
using vmr::test::makeReactor;
using vmr::test::runTask;
using vmr::test::TempDir;

TEST_CASE("Child: exit code, onExit fires once from the pidfd")
{
    auto r = makeReactor();
    auto c = Child::spawn(*r, {.argv = {"sh", "-c", "exit 7"}});
    REQUIRE(c);
    CHECK((*c)->pid() > 0);
    CHECK((*c)->pidfd() >= 0);
    int calls = 0;
    ExitStatus got;
    (*c)->onExit([&](ExitStatus s) {
        ++calls;
        got = s;
    });
    REQUIRE(r->runUntil([&] { return calls == 1; }, 5s));
    CHECK(got.exited());
    CHECK(got.code == 7);
    CHECK(got.describe() == "exited with code 7");
    CHECK((*c)->exited());
    REQUIRE(r->runFor(20ms));
    CHECK(calls == 1);
    // Reaped: the pid is gone (not a zombie).
    CHECK(::kill((*c)->pid(), 0) < 0);
    // Signalling an exited child is a clear error, not a signal to a recycled pid.
    CHECK(!(*c)->signal(SIGTERM));
}

TEST_CASE("Child: killed by a signal; wait() with and without timeout")
{
    auto r = makeReactor();
    auto c = Child::spawn(*r, {.argv = {"sleep", "30"}});
    REQUIRE(c);
    auto early = runTask(*r, (*c)->wait(50ms));
    REQUIRE(!early);
    CHECK(early.error().kind() == ErrorKind::Timeout);
    REQUIRE((*c)->signal(SIGKILL));
    auto st = runTask(*r, (*c)->wait(5s));
    REQUIRE(st);
    CHECK(!st->exited());
    CHECK(st->signal == SIGKILL);
    CHECK(st->describe() == "killed by SIGKILL");
    // Already exited: returns at once.
    auto again = runTask(*r, (*c)->wait(1ms));
    REQUIRE(again);
    CHECK(again->signal == SIGKILL);
}

TEST_CASE("Child: a missing program or cwd is a clear error, not exit 127")
{
    auto r = makeReactor();
    auto missing = Child::spawn(*r, {.argv = {"qemu-system-vmr-test-missing"}});
    REQUIRE(!missing);
    CHECK(missing.error().kind() == ErrorKind::NotFound);
    CHECK(missing.error().message() == "qemu-system-vmr-test-missing not found in PATH");
    CHECK(!missing.error().hint().empty());

    auto abs = Child::spawn(*r, {.argv = {"/nonexistent/bin/tool"}});
    REQUIRE(!abs);
    CHECK(abs.error().kind() == ErrorKind::NotFound);

    auto cwd = Child::spawn(*r, {.argv = {"true"}, .cwd = "/nonexistent-dir"});
    REQUIRE(!cwd);
    CHECK(cwd.error().message().find("working directory") != std::string::npos);

    TempDir dir;
    auto script = dir / "noexec.sh";
    UniqueFd f(::open(script.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    REQUIRE(::write(f.get(), "#!/bin/sh\n", 10) == 10);
    f.reset();
    auto denied = Child::spawn(*r, {.argv = {script}});
    REQUIRE(!denied);
    CHECK(denied.error().kind() == ErrorKind::PermissionDenied);
}

TEST_CASE("Child: fd allowlist: the child sees only 0/1/2 and its mapped fds")
{
    auto r = makeReactor();
    // Fds the child must not inherit, even without CLOEXEC.
    UniqueFd leak(::open("/dev/null", O_RDONLY));
    REQUIRE(leak);
    int p[2];
    REQUIRE(::pipe(p) == 0);
    UniqueFd pr(p[0]), pw(p[1]);
    auto res = runTask(
        *r, run(*r, {.argv = {"sh", "-c", "ls /proc/self/fd; echo mapped >&5"}, .fds = {{pw.get(), 5}}}, 5s));
    REQUIRE(res);
    CHECK(res->status.code == 0);
    // ls opens one fd of its own for the listing (3); sh's fds are the allowlist.
    std::string fds = res->out;
    CHECK(fds.find("0\n1\n2\n") == 0);
    CHECK(fds.find("5\n") != std::string::npos);
    bool leaked = leak.get() != 3 && leak.get() != 5 &&
                  fds.find(std::to_string(leak.get()) + "\n") != std::string::npos;
    CHECK(!leaked);
    int count = 0;
    for (char ch : fds) count += ch == '\n';
    CHECK(count <= 5);  // 0 1 2 5 and ls's own directory fd
    pw.reset();
    char buf[16] = {};
    CHECK(::read(pr.get(), buf, sizeof(buf)) == 7);
    CHECK(std::string(buf, 7) == "mapped\n");
}

TEST_CASE("Child: fd mapping where a source is another mapping's target")
{
    auto r = makeReactor();
    int a[2], b[2];
    REQUIRE(::pipe2(a, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(b, O_CLOEXEC) == 0);
    UniqueFd ar(a[0]), br(b[0]), aw0(a[1]), bw0(b[1]);
    // High, fixed numbers (unused here), swapped in the child: 60 -> 61 and 61 -> 60.
    UniqueFd aw(::dup3(aw0.get(), 60, O_CLOEXEC)), bw(::dup3(bw0.get(), 61, O_CLOEXEC));
    REQUIRE(aw.get() == 60);
    REQUIRE(bw.get() == 61);
    auto inode = [](int fd) {
        struct stat st {};
        REQUIRE(::fstat(fd, &st) == 0);
        return "pipe:[" + std::to_string(st.st_ino) + "]";
    };
    auto res = runTask(*r, run(*r,
                               {.argv = {"sh", "-c", "readlink /proc/self/fd/60 /proc/self/fd/61"},
                                .fds = {{aw.get(), 61}, {bw.get(), 60}}},
                               5s));
    REQUIRE(res);
    CHECK(res->status.code == 0);
    CHECK(res->out == inode(bw.get()) + "\n" + inode(aw.get()) + "\n");
}

TEST_CASE("run: captures stdout and stderr, env and cwd; a timeout kills")
{
    auto r = makeReactor();
    TempDir dir;
    auto res = runTask(*r, run(*r,
                               {.argv = {"sh", "-c", "echo out; echo err >&2; echo $FOO; pwd; exit 3"},
                                .env = std::vector<std::string>{"FOO=bar", "PATH=/usr/bin:/bin"},
                                .cwd = dir.path()},
                               5s));
    REQUIRE(res);
    CHECK(res->status.code == 3);
    CHECK(res->out == "out\nbar\n" + dir.path() + "\n");
    CHECK(res->err == "err\n");

    // Large output through the pipe while the loop reads it.
    auto big = runTask(*r, run(*r, {.argv = {"head", "-c", "3000000", "/dev/zero"}}, 10s));
    REQUIRE(big);
    CHECK(big->out.size() == 3000000);

    auto start = Clock::now();
    auto slow = runTask(*r, run(*r, {.argv = {"sleep", "30"}}, 100ms));
    REQUIRE(!slow);
    CHECK(slow.error().kind() == ErrorKind::Timeout);
    CHECK(Clock::now() - start < 5s);
}

TEST_CASE("Child: adopt() an existing process; newSession")
{
    auto r = makeReactor();
    auto c = Child::spawn(*r, {.argv = {"sleep", "30"}, .newSession = true});
    REQUIRE(c);
    CHECK(::getsid((*c)->pid()) == (*c)->pid());
    auto adopted = Child::adopt(*r, (*c)->pid());
    REQUIRE(adopted);
    CHECK((*adopted)->pid() == (*c)->pid());
    bool adoptedSaw = false;
    (*adopted)->onExit([&](ExitStatus) { adoptedSaw = true; });
    REQUIRE((*adopted)->signal(SIGTERM));
    REQUIRE(r->runUntil([&] { return adoptedSaw && (*c)->exited(); }, 5s));
    // One of the two handles reaped it; the reaper knows the status.
    auto st = (*c)->exited() && (*c)->status()->signal == SIGTERM ? (*c)->status() : (*adopted)->status();
    CHECK(st->signal == SIGTERM);

    auto gone = Child::adopt(*r, 999999999);
    REQUIRE(!gone);
}

TEST_CASE("Child: destroying the handle of a running child still reaps it")
{
    auto r = makeReactor();
    pid_t pid;
    {
        auto c = Child::spawn(*r, {.argv = {"sh", "-c", "sleep 0.05"}});
        REQUIRE(c);
        pid = (*c)->pid();
    }
    REQUIRE(r->runUntil([&] { return ::kill(pid, 0) < 0; }, 5s));
}

TEST_CASE("SignalSet: SIGUSR1 and SIGHUP raised to self arrive on the loop")
{
    auto r = makeReactor();
    std::vector<int> got;
    {
        SignalSet s(*r, {SIGUSR1, SIGHUP}, [&](int signo) { got.push_back(signo); });
        REQUIRE(s.ok());
        ::raise(SIGUSR1);
        ::raise(SIGHUP);
        CHECK(got.empty());
        REQUIRE(r->runUntil([&] { return got.size() == 2; }, 2s));
        CHECK(std::count(got.begin(), got.end(), SIGUSR1) == 1);
        CHECK(std::count(got.begin(), got.end(), SIGHUP) == 1);
        sigset_t cur;
        pthread_sigmask(SIG_BLOCK, nullptr, &cur);
        CHECK(sigismember(&cur, SIGUSR1));
        // Pending at destruction: drained, not delivered with the default action (termination).
        ::raise(SIGUSR1);
    }
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, nullptr, &cur);
    CHECK(!sigismember(&cur, SIGUSR1));
    CHECK(!sigismember(&cur, SIGHUP));
}
