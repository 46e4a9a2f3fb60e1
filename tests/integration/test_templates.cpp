// VM templates: templates/NAME.toml beside vmrd.toml, `vmrctl create --template`, `vmrctl
// template list`.

#include "harness.h"

#include <catch2/catch.hpp>

#include <filesystem>

using namespace vmr::test;

TEST_CASE("templates make VMs again and again; the request's fields win", "[templates]")
{
    TempDir dir;
    std::filesystem::create_directories(dir / "templates");
    std::string base = dir / "templates/base.img";
    REQUIRE(run({"/usr/bin/qemu-img", "create", "-f", "raw", base, "64M"}).code == 0);
    writeFile(dir / "templates/small.toml",
              "# a small VM\nimage = \"base.img\"\nvcpus = 2\nmemory = 128\n"
              "network = \"none\"\n[ssh]\nuser = \"ops\"\n");
    Daemon::Config cfg;
    // QEMU without a guest: the --start case below needs a process, not a boot.
    cfg.configToml = sshPortsToml(34000, 50) + "\n[qemu]\nmachine = \"none\"\naccel = \"tcg\"\n";
    Daemon d(dir, cfg);
    REQUIRE(d.waitReady());

    auto list = d.ctl({"template", "list"});
    INFO(list.err);
    REQUIRE(list.code == 0);
    CHECK(list.out.find("small") != std::string::npos);
    CHECK(list.out.find(base) != std::string::npos);

    // No name: one more VM each time.
    REQUIRE(d.ctl({"create", "--template", "small"}).code == 0);
    REQUIRE(d.ctl({"create", "--template", "small"}).code == 0);
    auto first = d.ctl({"status", "small-1"}).out;
    CHECK(field(first, "vcpus") == "2");
    CHECK(field(first, "memory_mib") == "128");
    CHECK(field(first, "network") == "none");
    CHECK(field(first, "ssh_user") == "ops");
    CHECK(field(first, "image") == base);
    CHECK(field(d.ctl({"status", "small-2"}).out, "vcpus") == "2");

    // --start without a name: vmrd picks the name and starts that VM, in one call.
    auto started = d.ctl({"create", "--template", "small", "--start"});
    INFO(started.err);
    REQUIRE(started.code == 0);
    CHECK(field(started.out, "name") == "small-3");
    CHECK(field(d.ctl({"status", "small-3"}).out, "state") == "running");
    REQUIRE(d.ctl({"stop", "small-3", "--force"}).code == 0);

    // The request's own fields win over the template's.
    auto named = d.ctl({"create", "--template", "small", "--name", "big", "--vcpus", "4"});
    INFO(named.err);
    REQUIRE(named.code == 0);
    auto big = d.ctl({"status", "big"}).out;
    CHECK(field(big, "vcpus") == "4");
    CHECK(field(big, "memory_mib") == "128");

    auto unknown = d.ctl({"create", "--template", "large"});
    CHECK(unknown.code == 1);
    CHECK(unknown.err.find("No template named \"large\"") != std::string::npos);
    CHECK(unknown.err.find("small") != std::string::npos);  // the hint lists what there is

    // A template with a mistake is refused with its file, line and a suggestion.
    writeFile(dir / "templates/typo.toml", "image = \"base.img\"\nvcpu = 2\n");
    auto bad = d.ctl({"create", "--template", "typo"});
    CHECK(bad.code == 1);
    CHECK(bad.err.find("typo.toml:2:1") != std::string::npos);
    CHECK(bad.err.find("vcpus") != std::string::npos);
    CHECK(!std::filesystem::exists(dir / "state/vms/typo-1"));
}
