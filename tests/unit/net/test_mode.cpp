#include "net/mode.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace vmr;
using namespace vmr::net;
using Args = std::vector<std::string>;

TEST_CASE("network modes are the model's words")
{
    CHECK(*model::parseWord<NetMode>("user") == NetMode::User);
    CHECK(*model::parseWord<NetMode>("tap") == NetMode::Tap);
    CHECK(*model::parseWord<NetMode>("none") == NetMode::None);
    for (NetMode m : {NetMode::User, NetMode::Tap, NetMode::None})
        CHECK(*model::parseWord<NetMode>(model::wordOf(m)) == m);

    for (const char* bad : {"", "User", "bridge", "slirp", "user "}) {
        INFO(bad);
        auto r = model::parseWord<NetMode>(bad);
        REQUIRE(!r);
        CHECK(r.error().kind() == ErrorKind::InvalidArgument);
        CHECK(r.error().message() ==
              "Unknown network \"" + std::string(bad) + "\"; expected \"user\", \"tap\" or \"none\"");
    }
    CHECK(model::parseWord<NetMode>("usr").error().hint() == "Did you mean \"user\"?");
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
