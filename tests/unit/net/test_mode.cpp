#include "net/mode.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace vmr;
using namespace vmr::net;
using Args = std::vector<std::string>;

TEST_CASE("parseNetMode")
{
    CHECK(*parseNetMode("user") == NetMode::User);
    CHECK(*parseNetMode("tap") == NetMode::Tap);
    CHECK(*parseNetMode("none") == NetMode::None);
    for (NetMode m : {NetMode::User, NetMode::Tap, NetMode::None}) CHECK(*parseNetMode(netModeName(m)) == m);

    for (const char* bad : {"", "User", "bridge", "slirp", "user "}) {
        INFO(bad);
        auto r = parseNetMode(bad);
        REQUIRE(!r);
        CHECK(r.error().kind() == ErrorKind::InvalidArgument);
        CHECK(r.error().message() == "Unknown network mode \"" + std::string(bad) + "\"");
        CHECK(r.error().hint() == "Use one of: user, tap, none");
    }
}

TEST_CASE("checkSupported: TAP is not supported yet")
{
    CHECK(checkSupported(NetMode::User));
    CHECK(checkSupported(NetMode::None));
    auto tap = checkSupported(NetMode::Tap);
    REQUIRE(!tap);
    CHECK(tap.error().kind() == ErrorKind::Unsupported);
    CHECK(tap.error().message() == "TAP networking is not supported yet");
    CHECK(tap.error().hint().find("\"user\"") != std::string::npos);
    CHECK(tap.error().hint().find("\"none\"") != std::string::npos);
}

TEST_CASE("qemuNetArgs: exact argv fragments")
{
    CHECK(qemuNetArgs(NetMode::User, "52:54:00:1a:2b:3c", uint16_t{10022}) ==
          Args{"-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:10022-:22", "-device",
               "virtio-net-pci,netdev=net0,mac=52:54:00:1a:2b:3c"});
    CHECK(qemuNetArgs(NetMode::User, "52:54:00:00:00:01", std::nullopt) ==
          Args{"-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0,mac=52:54:00:00:00:01"});
    CHECK(qemuNetArgs(NetMode::None, "52:54:00:00:00:01", uint16_t{10022}) == Args{"-nic", "none"});
}
