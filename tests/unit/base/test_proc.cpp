#include "base/proc.h"

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace vmr;

TEST_CASE("processStartTime of this process matches /proc/self/stat", "[proc]")
{
    auto t = processStartTime(::getpid());
    REQUIRE(t.ok());
    CHECK(*t > 0);
    // This executable's comm has no spaces, so a plain split finds field 22.
    std::ifstream in("/proc/self/stat");
    std::vector<std::string> fields{std::istream_iterator<std::string>(in),
                                    std::istream_iterator<std::string>()};
    REQUIRE(fields.size() > 22);
    CHECK(std::to_string(*t) == fields[21]);
    // Stable across calls: it identifies this process.
    auto again = processStartTime(::getpid());
    REQUIRE(again.ok());
    CHECK(*again == *t);
}

TEST_CASE("a child started later has a later or equal start time", "[proc]")
{
    auto self = processStartTime(::getpid());
    REQUIRE(self.ok());
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::pause();
        ::_exit(0);
    }
    auto t = processStartTime(child);
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    REQUIRE(t.ok());
    CHECK(*t >= *self);
    auto gone = processStartTime(child);
    REQUIRE_FALSE(gone.ok());
    CHECK(gone.error().kind() == ErrorKind::NotFound);
}

TEST_CASE("processStartTime of a nonexistent pid is NotFound", "[proc]")
{
    // pid_max is at most 2^22, so this pid cannot exist.
    auto t = processStartTime(0x7ffffff0);
    REQUIRE_FALSE(t.ok());
    CHECK(t.error().kind() == ErrorKind::NotFound);
    CHECK_FALSE(processStartTime(0).ok());
    CHECK_FALSE(processStartTime(-1).ok());
}

TEST_CASE("stat parsing survives spaces and parentheses in comm", "[proc]")
{
    // Fields 3..22: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    // utime stime cutime cstime priority nice num_threads itrealvalue starttime.
    const std::string tail = " S 1 2 3 0 -1 4194560 10 0 0 0 5 6 0 0 20 0 1 0 987654 12345 67\n";
    auto t = parseStatStartTime("1234 (qemu-system-x86_64)" + tail);
    REQUIRE(t.ok());
    CHECK(*t == 987654);
    t = parseStatStartTime("1234 (evil) S 1 2 3 (x) y)" + tail);
    REQUIRE(t.ok());
    CHECK(*t == 987654);
    t = parseStatStartTime("1234 ( ) )" + tail);
    REQUIRE(t.ok());
    CHECK(*t == 987654);

    CHECK_FALSE(parseStatStartTime("").ok());
    CHECK_FALSE(parseStatStartTime("1234 no parens S 1 2").ok());
    CHECK_FALSE(parseStatStartTime("1234 (short) S 1 2 3").ok());
    CHECK_FALSE(
        parseStatStartTime("1234 (x) S 1 2 3 0 -1 4194560 10 0 0 0 5 6 0 0 20 0 1 0 notanumber 1").ok());
    CHECK_FALSE(parseStatStartTime("1234 (x) S 1 2 3 0 -1 4194560 10 0 0 0 5 6 0 0 20 0 1 0 -5 1").ok());
}

TEST_CASE("stat state is the field after the last parenthesis", "[proc]")
{
    CHECK(parseStatState("1234 (qemu-system-x86_64) S 1 2 3\n") == 'S');
    CHECK(parseStatState("1234 (qemu) Z 1 2 3") == 'Z');
    // A comm that looks like a zombie's stat line does not fool it.
    CHECK(parseStatState("1234 (evil) Z 1 2 (x) R 1 2 3") == 'R');
    CHECK(parseStatState("1234 ( ) ) X 1") == 'X');

    CHECK(parseStatState("") == '?');
    CHECK(parseStatState("1234 no parens S 1 2") == '?');
    CHECK(parseStatState("1234 (cut)") == '?');
    CHECK(parseStatState("1234 (cut) ") == '?');
}

TEST_CASE("isZombie tells a dead, unreaped child from a live process", "[proc]")
{
    CHECK_FALSE(isZombie(::getpid()));
    CHECK_FALSE(isZombie(0));
    CHECK_FALSE(isZombie(-1));
    CHECK_FALSE(isZombie(0x7ffffff0));  // no such process: not a zombie either

    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::pause();
        ::_exit(0);
    }
    CHECK_FALSE(isZombie(child));
    ::kill(child, SIGKILL);
    // Wait for it to die but leave it unreaped (WNOWAIT): now it is a zombie.
    siginfo_t info{};
    REQUIRE(::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT) == 0);
    CHECK(isZombie(child));
    // Its start time is still readable: a zombie keeps its pid until reaped.
    CHECK(processStartTime(child).ok());
    REQUIRE(::waitpid(child, nullptr, 0) == child);
    CHECK_FALSE(isZombie(child));
}
