#include "catch.h"
#include "store/layout.h"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>

using namespace vmr;
using namespace vmr::store;
using namespace vmr::test;

namespace {

config::Settings settingsIn(const TempDir& dir, config::Mode mode)
{
    config::Settings s;
    s.mode = mode;
    s.stateDir = dir / "a/b/state";
    s.runtimeDir = dir / "run/";
    s.socket = dir / "run/vmrd.sock";
    return s;
}

}  // namespace

TEST_CASE("layout paths", "[layout]")
{
    config::Settings s;
    s.stateDir = "/var/lib/vmr/";
    s.runtimeDir = "/run/vmr";
    Layout l(s);
    CHECK(l.stateDir() == "/var/lib/vmr");
    CHECK(l.vmsDir() == "/var/lib/vmr/vms");
    CHECK(l.imagesDir() == "/var/lib/vmr/images");
    CHECK(l.vmDir("web") == "/var/lib/vmr/vms/web");
    CHECK(l.recordPath("web") == "/var/lib/vmr/vms/web/vm.json");
    CHECK(l.runtimeVmsDir() == "/run/vmr/vms");
    CHECK(l.runtimeSocket("0a1b2c3d", "qmp") == "/run/vmr/vms/0a1b2c3d.qmp");
}

TEST_CASE("ensureDirs creates every directory at its mode", "[layout]")
{
    TempDir dir;
    mode_t oldMask = ::umask(0);
    SECTION("user mode: private")
    {
        Layout l(settingsIn(dir, config::Mode::User));
        REQUIRE(l.ensureDirs().ok());
        CHECK(modeOf(dir / "a") == 0700);
        CHECK(modeOf(l.stateDir()) == 0700);
        CHECK(modeOf(l.vmsDir()) == 0700);
        CHECK(modeOf(l.imagesDir()) == 0700);
        CHECK(modeOf(l.runtimeDir()) == 0700);
        CHECK(modeOf(l.runtimeVmsDir()) == 0700);
        REQUIRE(l.ensureVmDir("web").ok());
        CHECK(modeOf(l.vmDir("web")) == 0700);
        // Idempotent.
        REQUIRE(l.ensureDirs().ok());
        REQUIRE(l.ensureVmDir("web").ok());
    }
    SECTION("system mode: state private, the runtime folder (sockets) reachable")
    {
        Layout l(settingsIn(dir, config::Mode::System));
        REQUIRE(l.ensureDirs().ok());
        CHECK(modeOf(l.stateDir()) == 0700);
        CHECK(modeOf(l.vmsDir()) == 0700);
        CHECK(modeOf(l.imagesDir()) == 0700);
        CHECK(modeOf(l.runtimeDir()) == 0755);
        CHECK(modeOf(l.runtimeVmsDir()) == 0700);
        REQUIRE(l.ensureVmDir("web").ok());
        CHECK(modeOf(l.vmDir("web")) == 0700);
    }
    SECTION("modes are exact even under a strict umask")
    {
        ::umask(077);
        Layout l(settingsIn(dir, config::Mode::System));
        REQUIRE(l.ensureDirs().ok());
        CHECK(modeOf(l.stateDir()) == 0700);
        CHECK(modeOf(l.runtimeDir()) == 0755);
    }
    ::umask(oldMask);
}

TEST_CASE("ensureDirs refuses what is not a directory of ours", "[layout]")
{
    TempDir dir;
    config::Settings s = settingsIn(dir, config::Mode::User);
    SECTION("a file in the way")
    {
        writeFile(dir / "a/b", "not a dir");
        auto r = Layout(s).ensureDirs();
        REQUIRE_FALSE(r.ok());
        CHECK_THAT(r.error().message(), Catch::Contains("is not a directory"));
    }
    SECTION("a runtime dir that is a symlink")
    {
        std::filesystem::create_directories(dir / "elsewhere");
        std::filesystem::create_directory_symlink(dir / "elsewhere", dir / "run");
        auto r = Layout(s).ensureDirs();
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind() == ErrorKind::PermissionDenied);
    }
    SECTION("a runtime dir owned by someone else")
    {
        if (::geteuid() != 0) {
            WARN("not root: cannot make a directory owned by someone else");
            return;
        }
        std::filesystem::create_directories(dir / "run");
        REQUIRE(::chown((dir / "run").c_str(), 12345, 12345) == 0);
        auto r = Layout(s).ensureDirs();
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind() == ErrorKind::PermissionDenied);
        CHECK_THAT(r.error().message(), Catch::Contains("not a directory owned by uid 0"));
    }
}
