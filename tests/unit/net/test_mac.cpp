#include "net/mac.h"

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

using namespace vmr;
using namespace vmr::net;

TEST_CASE("macFor: 52:54:00 and the first six hex digits of the id")
{
    CHECK(macFor("1a2b3c4d") == "52:54:00:1a:2b:3c");
    CHECK(macFor("00000000") == "52:54:00:00:00:00");
    CHECK(macFor("ffffffff") == "52:54:00:ff:ff:ff");
    CHECK(macFor("ABCDEF01") == "52:54:00:ab:cd:ef");
    CHECK(macFor("1a2b3c4d") == macFor("1a2b3c4d"));
}

TEST_CASE("macFor: an id of another shape is hashed, deterministically")
{
    std::string m = macFor("not-an-id");
    CHECK(m.rfind("52:54:00:", 0) == 0);
    CHECK(m.size() == 17);
    CHECK(m == macFor("not-an-id"));
    CHECK(m != macFor("not-an-ie"));
    CHECK(validateMac(m));
    CHECK(validateMac(macFor("")));
}

TEST_CASE("macFor: locally administered unicast, valid, and distinct for distinct ids")
{
    std::set<std::string> macs;
    for (uint32_t i = 0; i < 1000; ++i) {
        char id[9];
        std::snprintf(id, sizeof(id), "%08x", i * 2654435761u);
        std::string m = macFor(id);
        REQUIRE(validateMac(m));
        int first = std::stoi(m.substr(0, 2), nullptr, 16);
        CHECK((first & 0x02) != 0);  // locally administered
        CHECK((first & 0x01) == 0);  // unicast
        macs.insert(m);
    }
    CHECK(macs.size() == 1000);
}

TEST_CASE("validateMac")
{
    CHECK(validateMac("52:54:00:12:34:56"));
    CHECK(validateMac("52:54:00:AB:cd:Ef"));
    CHECK(validateMac("00:16:3e:00:00:01"));  // a vendor (globally administered) address is allowed

    for (const char* bad :
         {"", "52:54:00:12:34", "52:54:00:12:34:567", "52-54-00-12-34-56", "52:54:00:12:34:5g",
          "5254.0012.3456.", "01:00:5e:00:00:01", "00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"}) {
        INFO(bad);
        auto r = validateMac(bad);
        REQUIRE(!r);
        CHECK(r.error().kind() == ErrorKind::InvalidArgument);
        CHECK(r.error().message().find("Invalid MAC address") == 0);
        CHECK(!r.error().hint().empty());
    }
    CHECK(validateMac("01:00:5e:00:00:01").error().message().find("multicast") != std::string::npos);
}

TEST_CASE("findDuplicateMacs")
{
    auto rec = [](std::string name, std::string mac) {
        store::VmRecord r;
        r.spec.name = std::move(name);
        r.runtime.mac = std::move(mac);
        return r;
    };
    std::vector<store::VmRecord> none = {rec("a", "52:54:00:00:00:01"), rec("b", "52:54:00:00:00:02"),
                                         rec("c", ""), rec("d", "")};
    CHECK(findDuplicateMacs(none).empty());
    CHECK(findDuplicateMacs({}).empty());

    std::vector<store::VmRecord> dups = {rec("a", "52:54:00:00:00:01"), rec("b", "52:54:00:AA:00:02"),
                                         rec("c", "52:54:00:00:00:01"), rec("d", "52:54:00:aa:00:02"),
                                         rec("e", "52:54:00:00:00:03"), rec("f", "52:54:00:00:00:01")};
    auto got = findDuplicateMacs(dups);
    REQUIRE(got.size() == 2);
    CHECK(got[0].mac == "52:54:00:00:00:01");
    CHECK(got[0].names == std::vector<std::string>{"a", "c", "f"});
    CHECK(got[1].mac == "52:54:00:aa:00:02");
    CHECK(got[1].names == std::vector<std::string>{"b", "d"});
}
