// vmrctl ssh: the ssh command line built from vm.status (what vmrd sent is checked before it
// reaches ssh), and the known_hosts file that pins a VM's host key.

#include "ssh_commands.h"
#include "support.h"

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

using vmr::ErrorKind;
using vmr::ctl::pinHostKey;
using vmr::ctl::sshArgv;
using vmr::ctl::SshTarget;
using vmr::test::TempDir;

namespace {

constexpr const char* kKey =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB";

std::string status(const std::string& id, const std::string& port, const std::string& user)
{
    return R"({"name":"web","state":"running","id":")" + id + R"(","ssh_port":)" + port + R"(,"ssh_user":")" +
           user + R"(","work_dir":"/nonexistent","host_key":")" + kKey + "\"}";
}

bool has(const std::vector<std::string>& argv, const std::string& arg)
{
    return std::find(argv.begin(), argv.end(), arg) != argv.end();
}

mode_t modeOf(const std::string& path)
{
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("ssh's command line comes from the VM's status", "[vmrctl][ssh]")
{
    SshTarget t{"web", "", "", {"uname", "-a"}};
    auto argv = sshArgv(t, status("0a1b2c3d", "10022", "ada"), "/run/k");
    REQUIRE(argv);
    CHECK(has(*argv, "10022"));
    CHECK(has(*argv, "UserKnownHostsFile=/run/k"));
    CHECK(has(*argv, "StrictHostKeyChecking=yes"));
    CHECK(has(*argv, "HostKeyAlias=vmr-0a1b2c3d"));
    CHECK(has(*argv, "ada@127.0.0.1"));
    CHECK(argv->back() == "-a");
    t.user = "root";
    CHECK(has(*sshArgv(t, status("0a1b2c3d", "10022", "ada"), "/run/k"), "root@127.0.0.1"));
}

TEST_CASE("what vmrd sent cannot smuggle options onto ssh's command line", "[vmrctl][ssh]")
{
    SshTarget t{"web", "", "", {}};
    auto refused = [&](const std::string& json, ErrorKind kind) {
        INFO(json);
        auto argv = sshArgv(t, json, "/run/k");
        REQUIRE_FALSE(argv);
        CHECK(argv.error().kind() == kind);
    };
    refused(status("0a1b2c3d", "10022", "-oProxyCommand=touch /tmp/pwned"), ErrorKind::InvalidArgument);
    refused(status("0a1b2c3d", "10022", "ada@evil"), ErrorKind::InvalidArgument);
    refused(status("../../x", "10022", "ada"), ErrorKind::ParseError);
    refused(status("", "10022", "ada"), ErrorKind::ParseError);
    refused(status("0a1b2c3d", "70000", "ada"), ErrorKind::ParseError);
    refused(status("0a1b2c3d", "\"22 -oX\"", "ada"), ErrorKind::ParseError);
    t.user = "-F/tmp/config";
    refused(status("0a1b2c3d", "10022", "ada"), ErrorKind::InvalidArgument);
}

TEST_CASE("a pinned host key is written 0600, replacing whatever is at that name", "[vmrctl][ssh]")
{
    TempDir dir;
    auto path = pinHostKey(dir.path(), "0a1b2c3d", kKey);
    REQUIRE(path);
    CHECK(*path == dir / "known_hosts-0a1b2c3d");
    CHECK(vmr::test::readFile(*path) == std::string("vmr-0a1b2c3d ") + kKey + "\n");
    CHECK(modeOf(*path) == 0600);

    // A link planted at that name is replaced; its target is not written.
    vmr::test::writeFile(dir / "victim", "precious\n");
    REQUIRE(::unlink(path->c_str()) == 0);
    REQUIRE(::symlink((dir / "victim").c_str(), path->c_str()) == 0);
    REQUIRE(pinHostKey(dir.path(), "0a1b2c3d", kKey));
    CHECK(vmr::test::readFile(dir / "victim") == "precious\n");
    CHECK(modeOf(*path) == 0600);  // a file now, not the link

    // No key pinned yet: the name only (ssh keeps the first key it sees there).
    auto unpinned = pinHostKey(dir.path(), "ffff0000", "");
    REQUIRE(unpinned);
    CHECK(*unpinned == dir / "known_hosts-ffff0000");
    CHECK(::access(unpinned->c_str(), F_OK) != 0);
}

TEST_CASE("an id or a key that would escape the file or its line is refused", "[vmrctl][ssh]")
{
    TempDir dir;
    for (const std::string& id :
         std::vector<std::string>{"../known_hosts", "a/b", "", "x y", std::string(65, 'a')}) {
        INFO(id);
        auto r = pinHostKey(dir.path(), id, kKey);
        REQUIRE_FALSE(r);
        CHECK(r.error().kind() == ErrorKind::InvalidArgument);
    }
    auto twoLines = pinHostKey(dir.path(), "0a1b2c3d", std::string(kKey) + "\n@cert-authority * " + kKey);
    REQUIRE_FALSE(twoLines);
    CHECK(twoLines.error().kind() == ErrorKind::InvalidArgument);
    CHECK(vmr::test::listDir(dir.path()).empty());
}
