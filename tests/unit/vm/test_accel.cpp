#include "vm/accel.h"

#include <catch2/catch.hpp>

using namespace vmr;
using namespace vmr::vm;

namespace {

AccelProbe probe(bool usable, bool intel, bool amd)
{
    AccelProbe p;
    p.devKvmUsable = usable;
    if (!usable) p.devKvmError = "Permission denied";
    p.kvmIntel = intel;
    p.kvmAmd = amd;
    return p;
}

}  // namespace

TEST_CASE("accelerator names parse")
{
    CHECK(*parseAccelChoice("") == AccelChoice::Auto);
    CHECK(*parseAccelChoice("auto") == AccelChoice::Auto);
    CHECK(*parseAccelChoice("kvm") == AccelChoice::Kvm);
    CHECK(*parseAccelChoice("tcg") == AccelChoice::Tcg);
    auto bad = parseAccelChoice("hvf");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().kind() == ErrorKind::InvalidArgument);
    CHECK(accelName(Accel::Kvm) == "kvm");
    CHECK(accelName(Accel::Tcg) == "tcg");
}

TEST_CASE("auto takes KVM only when it can boot guests")
{
    struct Row {
        bool usable, intel, amd;
        Accel expected;
        bool degraded;
    };
    const Row rows[] = {
        {true, true, false, Accel::Kvm, false},  {true, false, true, Accel::Kvm, false},
        {true, true, true, Accel::Kvm, false},   {true, false, false, Accel::Tcg, true},  // kvm_pvm only
        {false, true, false, Accel::Tcg, true},  {false, false, true, Accel::Tcg, true},
        {false, false, false, Accel::Tcg, true},
    };
    for (const Row& r : rows) {
        INFO("usable " << r.usable << " intel " << r.intel << " amd " << r.amd);
        auto d = decideAccel(AccelChoice::Auto, probe(r.usable, r.intel, r.amd));
        REQUIRE(d);
        CHECK(d->accel == r.expected);
        CHECK(d->degraded == r.degraded);
        CHECK_FALSE(d->why.empty());
    }
    CHECK(decideAccel(AccelChoice::Auto, probe(true, false, false))->why ==
          "/dev/kvm exists but neither kvm_intel nor kvm_amd is loaded");
    CHECK(decideAccel(AccelChoice::Auto, probe(false, true, false))->why ==
          "/dev/kvm cannot be opened read-write (Permission denied)");
}

TEST_CASE("kvm and tcg force the choice")
{
    for (bool usable : {true, false}) {
        auto t = decideAccel(AccelChoice::Tcg, probe(usable, true, false));
        REQUIRE(t);
        CHECK(t->accel == Accel::Tcg);
        CHECK_FALSE(t->degraded);
    }
    auto k = decideAccel(AccelChoice::Kvm, probe(true, false, false));
    REQUIRE(k);
    CHECK(k->accel == Accel::Kvm);
    auto none = decideAccel(AccelChoice::Kvm, probe(false, false, false));
    REQUIRE_FALSE(none);
    CHECK(none.error().kind() == ErrorKind::Unavailable);
    CHECK(none.error().message() == "KVM was asked for but /dev/kvm cannot be opened: Permission denied");
}

TEST_CASE("QEMU arguments per accelerator")
{
    using V = std::vector<std::string>;
    CHECK(accelArgs(Accel::Kvm, {}) == V{"-accel", "kvm", "-cpu", "host"});
    CHECK(accelArgs(Accel::Tcg, {}) == V{"-accel", "tcg,tb-size=64", "-cpu", "max"});
    CHECK(accelArgs(Accel::Tcg, AccelOptions{16}) == V{"-accel", "tcg,tb-size=16", "-cpu", "max"});
    CHECK(accelArgs(Accel::Tcg, {}, false) == V{"-accel", "tcg,tb-size=64"});
    CHECK(accelArgs(Accel::Kvm, {}, false) == V{"-accel", "kvm"});
}

TEST_CASE("the selector warns once about the fallback")
{
    AccelSelector sel(probe(true, false, false));
    CHECK_FALSE(sel.warned());
    CHECK(sel.choose(AccelChoice::Tcg)->accel == Accel::Tcg);
    CHECK_FALSE(sel.warned());  // asked for: nothing to warn about
    CHECK(sel.choose(AccelChoice::Auto)->accel == Accel::Tcg);
    CHECK(sel.warned());
    CHECK(sel.choose(AccelChoice::Auto)->degraded);

    AccelSelector good(probe(true, true, false));
    CHECK(good.choose(AccelChoice::Auto)->accel == Accel::Kvm);
    CHECK_FALSE(good.warned());
}

TEST_CASE("the host probe reads /dev/kvm and /sys/module")
{
    AccelProbe p = probeHost();
    CHECK(p.devKvmUsable == p.devKvmError.empty());
    // Whatever this host has, auto must never pick KVM without kvm_intel or kvm_amd.
    auto d = decideAccel(AccelChoice::Auto, p);
    REQUIRE(d);
    if (!p.kvmIntel && !p.kvmAmd) CHECK(d->accel == Accel::Tcg);
}
