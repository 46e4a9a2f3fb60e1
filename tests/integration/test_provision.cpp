// SSH and provisioning end to end: vmrd makes the keys and the cloud-init seed, the tiny test
// guest ($VMR_TEST_GUEST) applies it, and vmrctl ssh / vmrctl provision reach the guest with
// its host key checked.

#include "harness.h"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

using namespace vmr::test;

namespace {

Daemon::Config config()
{
    Daemon::Config cfg;
    cfg.configToml = sshPortsToml(45000, 50);
    return cfg;
}

struct Guest {
    TempDir dir;
    Daemon d{dir, config()};
    std::string base = dir / "base.img";
    std::string key = dir / "id_user";

    Guest()
    {
        REQUIRE(d.waitReady());
        REQUIRE(run({"/usr/bin/qemu-img", "create", "-f", "raw", base, "64M"}).code == 0);
        REQUIRE(run({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "user@test", "-f", key})
                    .code == 0);
    }

    void start(const std::string& name, std::vector<std::string> extra = {})
    {
        std::vector<std::string> args = {"create",
                                         "--name",
                                         name,
                                         "--image",
                                         base,
                                         "--kernel",
                                         guestDir() + "/vmlinux",
                                         "--initrd",
                                         guestDir() + "/initramfs.cpio.gz",
                                         "--cmdline",
                                         "console=ttyS0",
                                         "--memory",
                                         "256",
                                         "--start"};
        args.insert(args.end(), extra.begin(), extra.end());
        auto r = d.ctl(args, 120s);
        INFO(r.err << d.log());
        REQUIRE(r.code == 0);
        REQUIRE(eventually(
            [&] {
                return readFile(dir / ("state/vms/" + name + "/console.log")).find("VMR-GUEST-READY") !=
                       std::string::npos;
            },
            90s));
    }

    std::string console(const std::string& name)
    {
        return readFile(dir / ("state/vms/" + name + "/console.log"));
    }
};

}  // namespace

TEST_CASE("the seed carries the user, keys and host key; vmrctl ssh checks the pinned key", "[provision]")
{
    if (!haveGuest()) {
        WARN("no test guest at " << guestDir());
        return;
    }
    Guest g;
    g.start("s1", {"--ssh-key", g.key + ".pub", "--ssh-user", "admin"});
    std::string console = g.console("s1");
    INFO(console.substr(console.find("VMR-")));
    CHECK(console.find("VMR-SEED-APPLIED hostname=s1") != std::string::npos);
    CHECK(console.find("hostkey=yes") != std::string::npos);
    auto status = g.d.ctl({"status", "s1"}).out;
    CHECK(field(status, "ssh_user") == "admin");
    CHECK(field(status, "host_key").rfind("ssh-ed25519 ", 0) == 0);
    CHECK(std::filesystem::exists(g.dir / "state/vms/s1/seed.iso"));
    CHECK((std::filesystem::status(g.dir / "state/vms/s1/id_ed25519_generated").permissions() &
           std::filesystem::perms::group_all) == std::filesystem::perms::none);

    // With vmrd's generated key, and with the caller's own.
    auto uname = g.d.ctl({"ssh", "s1", "--", "uname", "-s"}, 60s);
    INFO(uname.err);
    CHECK(uname.code == 0);
    CHECK(uname.out.find("Linux") != std::string::npos);
    auto who = g.d.ctl({"ssh", "s1", "--key", g.key, "--", "id", "-un"}, 60s);
    INFO(who.err);
    CHECK(who.code == 0);
    CHECK(who.out.find("admin") != std::string::npos);
    auto host = g.d.ctl({"ssh", "s1", "--", "hostname"}, 60s);
    CHECK(host.out.find("s1") != std::string::npos);
}

TEST_CASE("provisioning streams output, logs each step and stops at the first failure", "[provision]")
{
    if (!haveGuest()) {
        WARN("no test guest at " << guestDir());
        return;
    }
    Guest g;
    std::string steps = R"J([{"type":"shell","inline":"echo provisioned-$(hostname)"},)J"
                        R"J({"type":"shell","inline":"echo to-stderr >&2; touch /tmp/step2"}])J";
    g.start("p1");
    auto ok = g.d.ctl({"provision", "p1", "--shell", "echo provisioned-$(hostname)", "--shell",
                       "echo to-stderr >&2; touch /tmp/step2"},
                      180s);
    INFO(ok.err << g.d.log());
    CHECK(ok.code == 0);
    CHECK(ok.out.find("provisioned-p1") != std::string::npos);
    CHECK(ok.err.find("to-stderr") != std::string::npos);
    CHECK(ok.err.find("step 2/2") != std::string::npos);
    std::string log = readFile(g.dir / "state/vms/p1/provision.log");
    CHECK(log.find("provisioned-p1") != std::string::npos);
    CHECK(log.find("exit code 0") != std::string::npos);

    // A script (uploaded and run) and a file (uploaded with its mode).
    std::string script = g.dir / "setup.sh";
    writeFile(script, "#!/bin/sh\necho script-ran-as-$(id -un)\ncat /tmp/app.conf\n");
    std::string conf = g.dir / "app.conf";
    writeFile(conf, "setting=42\n");
    std::filesystem::permissions(conf, std::filesystem::perms::owner_read |
                                           std::filesystem::perms::owner_write |
                                           std::filesystem::perms::group_read);
    auto files = g.d.ctl({"provision", "p1", "--file", conf + ":/tmp/app.conf", "--script", script, "--shell",
                          "stat -c %a /tmp/app.conf"},
                         180s);
    INFO(files.err);
    CHECK(files.code == 0);
    CHECK(files.out.find("script-ran-as-vm") != std::string::npos);
    CHECK(files.out.find("setting=42") != std::string::npos);
    CHECK(files.out.find("640") != std::string::npos);

    auto failed = g.d.ctl({"provision", "p1", "--shell", "true", "--shell", "echo failing; exit 3", "--shell",
                           "echo never-runs"},
                          180s);
    CHECK(failed.code == 1);
    CHECK(failed.out.find("failing") != std::string::npos);
    CHECK(failed.out.find("never-runs") == std::string::npos);
    CHECK(failed.err.find("3") != std::string::npos);
    CHECK(readFile(g.dir / "state/vms/p1/provision.log").find("never-runs") == std::string::npos);

    // Steps given at create run when none are given.
    auto created =
        g.d.ctl({"--json", "rpc", "vm.create",
                 R"({"name":"p2","image":")" + g.base + R"(","memory_mib":256,"kernel":")" + guestDir() +
                     R"(/vmlinux","initrd":")" + guestDir() +
                     R"(/initramfs.cpio.gz","cmdline":"console=ttyS0","provision":)" + steps + "}"});
    REQUIRE(created.code == 0);
    REQUIRE(g.d.ctl({"start", "p2"}, 120s).code == 0);
    auto fromCreate = g.d.ctl({"provision", "p2"}, 180s);
    INFO(fromCreate.err);
    CHECK(fromCreate.code == 0);
    CHECK(fromCreate.out.find("provisioned-p2") != std::string::npos);
}

TEST_CASE("a guest whose host key is not the pinned one is refused", "[provision]")
{
    if (!haveGuest()) {
        WARN("no test guest at " << guestDir());
        return;
    }
    Guest g;
    g.start("m1");
    // Pin another key in the record, as if the guest had been replaced, then let a new vmrd read it.
    std::string other = g.dir / "other";
    REQUIRE(run({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other}).code == 0);
    std::string pub = readFile(other + ".pub");
    pub = pub.substr(0, pub.find(' ', pub.find(' ') + 1));
    g.d.terminate();
    std::string rec = readFile(g.dir / "state/vms/m1/vm.json");
    auto at = rec.find("\"host_key\":\"");
    REQUIRE(at != std::string::npos);
    auto end = rec.find('"', at + 12);
    rec.replace(at + 12, end - at - 12, pub);
    writeFile(g.dir / "state/vms/m1/vm.json", rec);
    Daemon d(g.dir, config());
    REQUIRE(d.waitReady());
    REQUIRE(eventually([&] { return field(d.ctl({"status", "m1"}).out, "state") == "running"; }, 10s));
    auto r = d.ctl({"--json", "provision", "m1", "--shell", "echo should-not-run"}, 120s);
    INFO(r.err << d.log());
    CHECK(r.code == 1);
    CHECK(r.err.find("ssh.host_key_mismatch") != std::string::npos);
    CHECK(r.out.find("should-not-run") == std::string::npos);
    auto s = d.ctl({"ssh", "m1", "--", "true"}, 60s);
    CHECK(s.code != 0);
    CHECK(d.ctl({"destroy", "m1"}).code == 0);
}
