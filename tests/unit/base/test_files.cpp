#include "base/files.h"
#include "catch.h"

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace vmr;
using namespace vmr::test;

TEST_CASE("writeFileAtomic writes content at the given mode and leaves no temp file", "[atomic]")
{
    TempDir dir;
    std::string path = dir / "vm.json";
    mode_t oldMask = ::umask(077);
    auto r = writeFileAtomic(path, "{\"a\":1}\n", 0644);
    ::umask(oldMask);
    REQUIRE(r.ok());
    CHECK(test::readFile(path) == "{\"a\":1}\n");
    CHECK(modeOf(path) == 0644);
    CHECK(listDir(dir.path()) == std::vector<std::string>{"vm.json"});

    REQUIRE(writeFileAtomic(path, "second", 0600).ok());
    CHECK(test::readFile(path) == "second");
    CHECK(modeOf(path) == 0600);
    CHECK(listDir(dir.path()) == std::vector<std::string>{"vm.json"});

    std::string big(1 << 20, 'z');
    REQUIRE(writeFileAtomic(path, big, 0600).ok());
    CHECK(test::readFile(path) == big);
    REQUIRE(writeFileAtomic(path, "", 0600).ok());
    CHECK(test::readFile(path).empty());
}

TEST_CASE("a Host-durable write replaces the file the same way, without flushing", "[atomic]")
{
    TempDir dir;
    std::string path = dir / "vm.json";
    REQUIRE(writeFileAtomic(path, "old", 0600).ok());
    REQUIRE(writeFileAtomic(path, "new", 0640, Durability::Host).ok());
    CHECK(test::readFile(path) == "new");
    CHECK(modeOf(path) == 0640);
    CHECK(listDir(dir.path()) == std::vector<std::string>{"vm.json"});
    // Its failures clean up exactly like a Disk write.
    CHECK_FALSE(writeFileAtomic(dir / "missing/vm.json", "x", 0600, Durability::Host).ok());
    CHECK(listDir(dir.path()) == std::vector<std::string>{"vm.json"});
}

TEST_CASE("a failed rename removes the temp file and leaves the target as it was", "[atomic]")
{
    TempDir dir;
    std::string path = dir / "vm.json";
    writeFile(path + "/keep", "precious");
    auto r = writeFileAtomic(path, "new", 0600);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error().message(), Catch::StartsWith("Cannot replace " + path));
    CHECK(r.error().sysErrno() != 0);
    CHECK(listDir(dir.path()) == std::vector<std::string>{"vm.json"});
    CHECK(test::readFile(path + "/keep") == "precious");
}

TEST_CASE("a failed write removes the temp file and leaves the old file intact", "[atomic]")
{
    TempDir dir;
    std::string path = dir / "vm.json";
    REQUIRE(writeFileAtomic(path, "old content", 0600).ok());

    // Make write() fail with EFBIG past 4 KiB.
    struct rlimit saved {};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
    auto oldHandler = ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = saved;
    small.rlim_cur = 4096;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    auto r = writeFileAtomic(path, std::string(64 * 1024, 'x'), 0600);
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &saved) == 0);
    ::signal(SIGXFSZ, oldHandler);

    REQUIRE_FALSE(r.ok());
    CHECK(r.error().sysErrno() == EFBIG);
    CHECK(test::readFile(path) == "old content");
    CHECK(listDir(dir.path()) == std::vector<std::string>{"vm.json"});
}

TEST_CASE("writeFileAtomic into a missing directory fails cleanly", "[atomic]")
{
    TempDir dir;
    auto r = writeFileAtomic(dir / "missing/vm.json", "x", 0600);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind() == ErrorKind::NotFound);
    CHECK(listDir(dir.path()).empty());
    CHECK_FALSE(writeFileAtomic(dir.path() + "/", "x", 0600).ok());
}

TEST_CASE("temp names are recognised", "[atomic]")
{
    CHECK(isAtomicTempName(".vm.json.tmp-0123456789abcdef", "vm.json"));
    CHECK(isAtomicTempName(".vm.json.tmp-x", "vm.json"));
    CHECK_FALSE(isAtomicTempName(".vm.json.tmp-", "vm.json"));
    CHECK_FALSE(isAtomicTempName("vm.json.tmp-abc", "vm.json"));
    CHECK_FALSE(isAtomicTempName(".vm.json", "vm.json"));
    CHECK_FALSE(isAtomicTempName(".other.tmp-abc", "vm.json"));
    CHECK_FALSE(isAtomicTempName("vm.json.corrupt-20240101T000000Z", "vm.json"));
}

TEST_CASE("readFile reads regular files within a size limit", "[atomic]")
{
    TempDir dir;
    writeFile(dir / "f", "hello");
    auto r = vmr::readFile(dir / "f");
    REQUIRE(r.ok());
    CHECK(*r == "hello");

    auto big = vmr::readFile(dir / "f", 4);
    REQUIRE_FALSE(big.ok());
    CHECK(big.error().kind() == ErrorKind::TooLarge);

    auto missing = vmr::readFile(dir / "nope");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().kind() == ErrorKind::NotFound);

    auto notFile = vmr::readFile(dir.path());
    REQUIRE_FALSE(notFile.ok());
    CHECK_THAT(notFile.error().message(), Catch::Contains("not a regular file"));
}

TEST_CASE("makeDirs creates missing parents at exactly the mode and keeps existing ones", "[files]")
{
    TempDir dir;
    mode_t oldMask = ::umask(077);
    auto r = makeDirs(dir / "a/b//c/", 0755);
    ::umask(oldMask);
    REQUIRE(r.ok());
    CHECK(modeOf(dir / "a") == 0755);
    CHECK(modeOf(dir / "a/b") == 0755);
    CHECK(modeOf(dir / "a/b/c") == 0755);

    // An existing folder keeps its mode.
    REQUIRE(makeDirs(dir / "a/b/c/d", 0700).ok());
    CHECK(modeOf(dir / "a/b") == 0755);
    CHECK(modeOf(dir / "a/b/c/d") == 0700);

    writeFile(dir / "file", "x");
    auto blocked = makeDirs(dir / "file/sub", 0700);
    REQUIRE_FALSE(blocked.ok());
    CHECK_THAT(blocked.error().message(), Catch::Contains("is not a directory"));
    CHECK_FALSE(makeDirs("", 0700).ok());
}

TEST_CASE("readFile refuses a FIFO without waiting for a writer", "[files]")
{
    TempDir dir;
    REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
    auto r = vmr::readFile(dir / "fifo");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error().message(), Catch::Contains("not a regular file"));
}

TEST_CASE("ensurePrivateDir creates a missing folder (and parents) at exactly 0700", "[files][private]")
{
    TempDir dir;
    mode_t oldMask = ::umask(0);
    auto r = ensurePrivateDir(dir / "a/b/run/");
    ::umask(oldMask);
    REQUIRE(r.ok());
    CHECK(modeOf(dir / "a") == 0700);
    CHECK(modeOf(dir / "a/b/run") == 0700);
    // Under a strict umask too, and again on the existing folder.
    oldMask = ::umask(0777);
    auto strict = ensurePrivateDir(dir / "other");
    ::umask(oldMask);
    REQUIRE(strict.ok());
    CHECK(modeOf(dir / "other") == 0700);
    CHECK(ensurePrivateDir(dir / "a/b/run").ok());
    CHECK(checkOwnDir(dir / "a/b/run", 0700).ok());
}

TEST_CASE("ensurePrivateDir refuses a folder it cannot trust, and changes nothing", "[files][private]")
{
    TempDir dir;
    std::string path = dir / "vmr-1000";
    auto refused = [&](const std::string& says) {
        auto r = ensurePrivateDir(path);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind() == ErrorKind::PermissionDenied);
        CHECK_THAT(r.error().message(), Catch::StartsWith("Cannot use " + path + ": "));
        CHECK_THAT(r.error().message(), Catch::Contains(says));
        CHECK_FALSE(r.error().hint().empty());
        return r.error();
    };
    SECTION("a symlink, even to a private folder of ours")
    {
        REQUIRE(::mkdir((dir / "mine").c_str(), 0700) == 0);
        REQUIRE(::symlink((dir / "mine").c_str(), path.c_str()) == 0);
        auto e = refused("is a symbolic link to " + dir / "mine");
        CHECK_THAT(e.hint(), Catch::Contains("rm " + path));
        // With a trailing slash, lstat would follow the link: it is refused all the same.
        CHECK_FALSE(ensurePrivateDir(path + "/").ok());
        CHECK_FALSE(checkOwnDir(path + "//", 0700).ok());
        CHECK(modeOf(path) == 0777);  // the link itself
        CHECK(modeOf(dir / "mine") == 0700);
    }
    SECTION("a file")
    {
        writeFile(path, "x");
        refused("is not a directory owned by uid " + std::to_string(::geteuid()));
        CHECK(test::readFile(path) == "x");
    }
    SECTION("a folder others can write in")
    {
        REQUIRE(::mkdir(path.c_str(), 0700) == 0);
        REQUIRE(::chmod(path.c_str(), 0777) == 0);
        auto e = refused("its mode 0777 lets other users put files in it");
        CHECK_THAT(e.hint(), Catch::Contains("rm -r " + path));
        CHECK(modeOf(path) == 0777);
        REQUIRE(::chmod(path.c_str(), 01733) == 0);  // sticky, like /tmp: still not private
        refused("its mode 1733");
    }
    SECTION("a folder of ours others can read: checkOwnDir refuses it, ensurePrivateDir narrows it")
    {
        REQUIRE(::mkdir(path.c_str(), 0700) == 0);
        REQUIRE(::chmod(path.c_str(), 0755) == 0);
        auto e = checkOwnDir(path, 0700);
        REQUIRE_FALSE(e.ok());
        CHECK(e.error().message() == "Cannot use " + path + ": its mode is 0755, wider than 0700");
        CHECK_THAT(e.error().hint(), Catch::Contains("chmod 0700 " + path));
        CHECK(modeOf(path) == 0755);
        CHECK(ensurePrivateDir(path).ok());
        CHECK(modeOf(path) == 0700);
    }
    SECTION("a folder another user made")
    {
        if (::geteuid() != 0) {
            WARN("not root: cannot make a folder owned by someone else");
            return;
        }
        REQUIRE(::mkdir(path.c_str(), 0700) == 0);
        REQUIRE(::chown(path.c_str(), 12345, 12345) == 0);
        auto e = refused("not a directory owned by uid 0 (root): uid 12345 made it");
        CHECK_THAT(e.hint(), Catch::Contains("sudo rm -r " + path));
        struct stat st {};
        REQUIRE(::lstat(path.c_str(), &st) == 0);
        CHECK(st.st_uid == 12345);
        CHECK(modeOf(path) == 0700);
    }
}

TEST_CASE("checkOwnDir creates nothing; ensureOwnDir allows the bits of its mode", "[files][private]")
{
    TempDir dir;
    auto missing = checkOwnDir(dir / "none", 0700);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().kind() == ErrorKind::NotFound);
    CHECK(listDir(dir.path()).empty());

    // A shared runtime folder (vmrd in system mode): readable by all, writable by its owner.
    REQUIRE(ensureOwnDir(dir / "run", 0755).ok());
    CHECK(modeOf(dir / "run") == 0755);
    REQUIRE(::chmod((dir / "run").c_str(), 0711) == 0);
    CHECK(ensureOwnDir(dir / "run", 0755).ok());
    REQUIRE(::chmod((dir / "run").c_str(), 0775) == 0);
    auto groupWritable = ensureOwnDir(dir / "run", 0755);
    REQUIRE_FALSE(groupWritable.ok());
    CHECK(groupWritable.error().kind() == ErrorKind::PermissionDenied);
    CHECK_FALSE(ensurePrivateDir("").ok());
}
