#include "base/fd.h"
#include "net/port_allocator.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <optional>
#include <set>
#include <string>

using namespace vmr;
using vmr::net::PortAllocator;

namespace {

// A listening socket on 127.0.0.1:port held by the test (a "foreign" user of the port), or an
// invalid fd when the port cannot be bound.
UniqueFd holdPort(uint16_t port)
{
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) return {};
    REQUIRE(::listen(fd.get(), 1) == 0);
    return fd;
}

// A run of `count` consecutive ports that are all free on this host now, above `from`.
uint16_t freeRun(uint16_t from, int count)
{
    for (uint32_t start = from; start + count < 65000; start += count) {
        bool ok = true;
        for (int i = 0; i < count && ok; ++i)
            ok = PortAllocator::isFreeOnHost(static_cast<uint16_t>(start + i));
        if (ok) return static_cast<uint16_t>(start);
    }
    FAIL("no run of " << count << " free ports on this host");
    return 0;
}

std::string vm(int i)
{
    return "vm" + std::to_string(i);
}

}  // namespace

TEST_CASE("PortAllocator: the default range is network.ssh_port_range's default")
{
    PortAllocator a;
    CHECK(a.range().first == 10022);
    CHECK(a.range().last == 10999);
}

TEST_CASE("PortAllocator: isFreeOnHost sees a bound socket, and releases its own probe")
{
    uint16_t p = freeRun(31000, 1);
    CHECK(PortAllocator::isFreeOnHost(p));
    CHECK(PortAllocator::isFreeOnHost(p));  // the probe closed its socket
    {
        UniqueFd held = holdPort(p);
        REQUIRE(held);
        CHECK(!PortAllocator::isFreeOnHost(p));
    }
    CHECK(PortAllocator::isFreeOnHost(p));
}

TEST_CASE("PortAllocator: 500 VMs get 500 distinct ports in the range")
{
    PortAllocator a({20022, 20999});
    std::set<uint16_t> seen;
    for (int i = 0; i < 500; ++i) {
        auto p = a.allocate(vm(i), std::nullopt);
        REQUIRE(p);
        CHECK(*p >= 20022);
        CHECK(*p <= 20999);
        CHECK(seen.insert(*p).second);
        CHECK(a.ownerOf(*p) == vm(i));
    }
    CHECK(seen.size() == 500);
    CHECK(a.size() == 500);
    // Asking again for a VM that holds a port gives the same port, whatever previous says.
    auto again = a.allocate(vm(7), uint16_t{20998});
    REQUIRE(again);
    CHECK(*again == *a.portOf(vm(7)));
    CHECK(a.size() == 500);
}

TEST_CASE("PortAllocator: a VM gets its previous port back after release, unless someone took it")
{
    uint16_t base = freeRun(32000, 8);
    PortAllocator a({base, static_cast<uint16_t>(base + 7)});
    auto p0 = a.allocate("alpha", std::nullopt);
    auto p1 = a.allocate("beta", std::nullopt);
    REQUIRE(p0);
    REQUIRE(p1);
    CHECK(*p0 == base);
    CHECK(*p1 == base + 1);

    // Restart of alpha: released, then allocated with its recorded port.
    a.release("alpha");
    CHECK(!a.portOf("alpha"));
    CHECK(a.ownerOf(*p0).empty());
    auto back = a.allocate("alpha", *p0);
    REQUIRE(back);
    CHECK(*back == *p0);

    // The cursor moved on: a new VM does not get alpha's old port while others are free.
    a.release("alpha");
    auto gamma = a.allocate("gamma", std::nullopt);
    REQUIRE(gamma);
    CHECK(*gamma == base + 2);

    // beta's port is taken by beta: alpha asking for it gets another one.
    auto stolen = a.allocate("alpha", *p1);
    REQUIRE(stolen);
    CHECK(*stolen != *p1);
    CHECK(a.ownerOf(*p1) == "beta");

    // A previous port outside the range (the range changed) is not reused.
    a.release("gamma");
    auto outside = a.allocate("gamma", static_cast<uint16_t>(base - 1));
    REQUIRE(outside);
    CHECK(*outside >= base);
    CHECK(*outside <= base + 7);
}

TEST_CASE("PortAllocator: a port held by a foreign socket is skipped, and so is a previous one")
{
    uint16_t base = freeRun(33000, 4);
    PortAllocator a({base, static_cast<uint16_t>(base + 3)});
    UniqueFd held = holdPort(base);
    REQUIRE(held);
    auto p = a.allocate("one", std::nullopt);
    REQUIRE(p);
    CHECK(*p == base + 1);

    UniqueFd held2 = holdPort(static_cast<uint16_t>(base + 3));
    REQUIRE(held2);
    auto q = a.allocate("two", static_cast<uint16_t>(base + 3));
    REQUIRE(q);
    CHECK(*q == base + 2);
}

TEST_CASE("PortAllocator: reserve records ports from records; a second claim is an error")
{
    PortAllocator a({40022, 40999});
    REQUIRE(a.reserve("a", 40100));
    REQUIRE(a.reserve("a", 40100));  // idempotent
    auto clash = a.reserve("b", 40100);
    REQUIRE(!clash);
    CHECK(clash.error().kind() == ErrorKind::Busy);
    CHECK(clash.error().message() == "SSH port 40100 of VM b is already held by VM a");
    CHECK(!clash.error().hint().empty());
    CHECK(!a.portOf("b"));
    CHECK(a.ownerOf(40100) == "a");

    // Out of range: accepted (the VM runs with it), never handed to anyone else.
    REQUIRE(a.reserve("old", 10022));
    CHECK(a.portOf("old") == uint16_t{10022});

    // Reserving moves a VM; its old port becomes free for others.
    REQUIRE(a.reserve("a", 40101));
    CHECK(a.ownerOf(40100).empty());
    CHECK(a.portOf("a") == uint16_t{40101});

    // allocate never hands out a reserved port.
    PortAllocator small({40200, 40201});
    REQUIRE(small.reserve("x", 40200));
    auto y = small.allocate("y", uint16_t{40200});
    REQUIRE(y);
    CHECK(*y == 40201);
}

TEST_CASE("PortAllocator: an exhausted range is Busy, with a hint naming the setting")
{
    uint16_t base = freeRun(34000, 3);
    PortAllocator a({base, static_cast<uint16_t>(base + 2)});
    REQUIRE(a.allocate("a", std::nullopt));
    REQUIRE(a.allocate("b", std::nullopt));
    REQUIRE(a.allocate("c", std::nullopt));
    auto none = a.allocate("d", std::nullopt);
    REQUIRE(!none);
    CHECK(none.error().kind() == ErrorKind::Busy);
    CHECK(none.error().message().find(std::to_string(base) + "-" + std::to_string(base + 2)) !=
          std::string::npos);
    CHECK(none.error().hint().find("network.ssh_port_range") != std::string::npos);
    CHECK(none.error().hint().find("vmrd.toml") != std::string::npos);
    CHECK(!a.portOf("d"));

    // A release makes room again, and the freed port is the one handed out.
    uint16_t bPort = *a.portOf("b");
    a.release("b");
    auto d = a.allocate("d", std::nullopt);
    REQUIRE(d);
    CHECK(*d == bPort);

    // Ports busy on the host count as exhaustion too.
    PortAllocator one({static_cast<uint16_t>(base + 5), static_cast<uint16_t>(base + 5)});
    UniqueFd held = holdPort(static_cast<uint16_t>(base + 5));
    if (held) {
        auto r = one.allocate("z", std::nullopt);
        REQUIRE(!r);
        CHECK(r.error().kind() == ErrorKind::Busy);
    }
}

TEST_CASE("PortAllocator: allocation keeps a cursor instead of rescanning from the start")
{
    // With 900 VMs in a 978-port range, every allocation after a release is still unique, and
    // released ports are found again once the cursor wraps.
    PortAllocator a({21022, 21999});
    for (int i = 0; i < 900; ++i) REQUIRE(a.allocate(vm(i), std::nullopt));
    for (int i = 0; i < 900; i += 3) a.release(vm(i));
    std::set<uint16_t> ports;
    for (int i = 0; i < 900; ++i)
        if (auto p = a.portOf(vm(i))) ports.insert(*p);
    for (int i = 1000; i < 1300; ++i) {
        auto p = a.allocate(vm(i), std::nullopt);
        if (!p) {
            CHECK(p.error().kind() == ErrorKind::Busy);
            break;
        }
        CHECK(ports.insert(*p).second);
    }
    CHECK(ports.size() == a.size());
}
