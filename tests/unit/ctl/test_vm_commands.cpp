#include "vm_commands.h"

#include <catch2/catch.hpp>

#include <stdlib.h>

#include <filesystem>
#include <fstream>

using vmr::ctl::parseVmCommand;

TEST_CASE("create maps vmctl's flags onto vm.create", "[vmrctl]")
{
    auto inv = parseVmCommand({"create", "--name", "web", "--image=/img/base.qcow2", "--vcpus", "2",
                               "--memory=512", "--disk", "4", "--network", "none", "--start"});
    REQUIRE(inv.ok());
    CHECK(inv->method == "vm.create");
    // --start: created and started in one vm.create call.
    CHECK(
        inv->params ==
        R"({"name":"web","image":"/img/base.qcow2","vcpus":2,"memory_mib":512,"disk_gib":4,"network":"none",)"
        R"("start":true})");
    auto noStart = parseVmCommand({"create", "--name", "web", "--image=/img/base.qcow2"});
    REQUIRE(noStart.ok());
    CHECK(noStart->params == R"({"name":"web","image":"/img/base.qcow2"})");
}

TEST_CASE("create sends local paths as absolute paths", "[vmrctl]")
{
    auto inv = parseVmCommand(
        {"create", "--name", "k", "--image", "build-guest/disk.qcow2", "--kernel", "./a/../vmlinux"});
    REQUIRE(inv.ok());
    std::string cwd = std::filesystem::current_path().string();
    CHECK(inv->params.find("\"image\":\"" + cwd + "/build-guest/disk.qcow2\"") != std::string::npos);
    CHECK(inv->params.find("\"kernel\":\"" + cwd + "/vmlinux\"") != std::string::npos);
    auto name = parseVmCommand({"create", "--name", "k", "--image", "no-such-cached-image.qcow2"});
    CHECK(name->params.find("\"image\":\"no-such-cached-image.qcow2\"") != std::string::npos);
}

TEST_CASE("create's usage errors say what is wrong", "[vmrctl]")
{
    CHECK(parseVmCommand({"create", "--image", "/x"}).error().message() ==
          "create: --name is required (it may be left out with --template)");
    // A template gives the image, and a name is made when none is given.
    auto templ = parseVmCommand({"create", "--template", "small"});
    REQUIRE(templ.ok());
    CHECK(templ->params == R"({"template":"small"})");
    CHECK(parseVmCommand({"create", "--name", "a"}).error().message().find("exactly one of --image") !=
          std::string::npos);
    CHECK(parseVmCommand({"create", "--name", "a", "--image", "/x", "--image-url", "http://h/i"})
              .error()
              .message()
              .find("exactly one of --image") != std::string::npos);
    CHECK(parseVmCommand({"create", "--name", "a", "--image", "/x", "--vcpus", "two"}).error().message() ==
          "create: --vcpus must be a positive whole number, not `two`");
    CHECK(parseVmCommand({"create", "--name", "a", "--image", "/x", "--memory", "-5"})
              .error()
              .message()
              .find("positive") != std::string::npos);
    CHECK(parseVmCommand({"create", "--name", "a", "--name", "b"}).error().message() ==
          "create: --name is given twice");
    CHECK(parseVmCommand({"create", "--bogus"}).error().message() == "create: unknown option `--bogus`");
    CHECK(parseVmCommand({"create", "--name"}).error().message() == "create: --name needs a value");
}

TEST_CASE("create reads --ssh-key and --cloud-init as the caller and sends their text", "[vmrctl]")
{
    char dir[] = "/tmp/vmrctl-test-XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    std::string pub = std::string(dir) + "/id.pub";
    std::string ud = std::string(dir) + "/user-data";
    std::string priv = std::string(dir) + "/id";
    {
        std::ofstream(pub) << "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB me@host\n";
        std::ofstream(ud) << "#cloud-config\nhostname: x\n";
        std::ofstream(priv)
            << "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n";
    }
    auto inv = parseVmCommand({"create", "--name", "a", "--image-url", "https://h/i.qcow2", "--sha256",
                               std::string(64, 'a'), "--ssh-key", pub, "--ssh-user", "admin"});
    REQUIRE(inv.ok());
    CHECK(inv->params == R"({"name":"a","image_url":"https://h/i.qcow2","image_sha256":")" +
                             std::string(64, 'a') +
                             R"(","ssh_authorized_keys":["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB me@host"],)"
                             R"("ssh_user":"admin"})");
    auto raw = parseVmCommand({"create", "--name", "a", "--image", "/x", "--cloud-init", ud});
    REQUIRE(raw.ok());
    CHECK(raw->params.find(R"("user_data":"#cloud-config\nhostname: x\n")") != std::string::npos);
    auto wrongKey = parseVmCommand({"create", "--name", "a", "--image", "/x", "--ssh-key", priv});
    REQUIRE_FALSE(wrongKey.ok());
    CHECK(wrongKey.error().message().find("public key file") != std::string::npos);
    auto missing =
        parseVmCommand({"create", "--name", "a", "--image", "/x", "--ssh-key", std::string(dir) + "/nope"});
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().message().find("cannot read") != std::string::npos);
    std::filesystem::remove_all(dir);
}

TEST_CASE("stop takes a timeout and force", "[vmrctl]")
{
    auto inv = parseVmCommand({"stop", "web", "--timeout", "5", "--force"});
    REQUIRE(inv.ok());
    CHECK(inv->method == "vm.stop");
    CHECK(inv->params == R"({"name":"web","timeout":5,"force":true})");
    CHECK(parseVmCommand({"stop", "web"})->params == R"({"name":"web"})");
    CHECK(!parseVmCommand({"stop"}).ok());
    CHECK(!parseVmCommand({"stop", "a", "b"}).ok());
    CHECK(!parseVmCommand({"stop", "a", "--timeout", "soon"}).ok());
    CHECK(!parseVmCommand({"stop", "a", "--now"}).ok());
}

TEST_CASE("the one-name commands", "[vmrctl]")
{
    for (std::string cmd : {"start", "suspend", "resume", "destroy"}) {
        auto inv = parseVmCommand({cmd, "web"});
        REQUIRE(inv.ok());
        CHECK(inv->method == "vm." + cmd);
        CHECK(inv->params == R"({"name":"web"})");
        CHECK(!parseVmCommand({cmd}).ok());
        CHECK(!parseVmCommand({cmd, "--web"}).ok());
        CHECK(!parseVmCommand({cmd, "a", "b"}).ok());
    }
}
