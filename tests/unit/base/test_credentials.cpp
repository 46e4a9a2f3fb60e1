// Opening files with a caller's rights (base/credentials.h). Switching identities needs root;
// elsewhere only the daemon-is-the-caller cases run.
#include "base/credentials.h"
#include "catch.h"

#include <fcntl.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace vmr;
using vmr::test::TempDir;

namespace {

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;
constexpr gid_t kSomeGroup = 54321;  // a group nobody is in, unless the test says so

std::string fileWith(const TempDir& dir, const std::string& name, mode_t mode, gid_t gid = 0)
{
    std::string path = dir / name;
    vmr::test::writeFile(path, "secret\n");
    REQUIRE(::chmod(path.c_str(), mode) == 0);
    if (::geteuid() == 0) REQUIRE(::chown(path.c_str(), 0, gid) == 0);
    return path;
}

std::string contents(const UniqueFd& fd)
{
    char buf[64];
    ssize_t n = ::pread(fd.get(), buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

}  // namespace

TEST_CASE("openAs: vmrd itself opens plainly", "[credentials]")
{
    TempDir dir;
    std::string path = fileWith(dir, "mine", 0600);
    auto fd = openAs(Credentials::self(), path, O_RDONLY, "image");
    REQUIRE(fd);
    CHECK(contents(*fd) == "secret\n");
    auto missing = openAs(Credentials::self(), dir / "none", O_RDONLY, "kernel");
    REQUIRE_FALSE(missing);
    CHECK(missing.error().kind() == ErrorKind::NotFound);
    CHECK(missing.error().message() ==
          "Cannot open the kernel " + (dir / "none") + " as uid " + std::to_string(::geteuid()));
}

TEST_CASE("openAs: another user gets exactly their own rights, then vmrd has its own again", "[credentials]")
{
    if (::geteuid() != 0) {
        WARN("not root: cannot open files as another user");
        return;
    }
    TempDir dir;
    REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
    std::string secret = fileWith(dir, "secret", 0600);
    std::string shared = fileWith(dir, "shared", 0644);
    std::string group = fileWith(dir, "group", 0640, kSomeGroup);
    Credentials nobody{kNobody, kNogroup, {}};

    auto denied = openAs(nobody, secret, O_RDONLY, "image");
    REQUIRE_FALSE(denied);
    CHECK(denied.error().kind() == ErrorKind::PermissionDenied);
    CHECK(denied.error().message() == "Cannot open the image " + secret + " as uid 65534");
    CHECK_THAT(denied.error().hint(), Catch::Contains("with the rights of whoever sent it"));

    auto ok = openAs(nobody, shared, O_RDONLY, "image");
    REQUIRE(ok);
    CHECK(contents(*ok) == "secret\n");
    // Writing is the caller's right too.
    CHECK_FALSE(openAs(nobody, shared, O_WRONLY, "image"));

    // Supplementary groups count, and only the caller's.
    CHECK_FALSE(openAs(nobody, group, O_RDONLY, "firmware"));
    Credentials member{kNobody, kNogroup, {kSomeGroup}};
    CHECK(openAs(member, group, O_RDONLY, "firmware"));
    Credentials primary{kNobody, kSomeGroup, {}};
    CHECK(openAs(primary, group, O_RDONLY, "firmware"));

    // A link is followed with the caller's rights: to a file they cannot read, it is refused.
    std::string link = dir / "link";
    REQUIRE(::symlink(secret.c_str(), link.c_str()) == 0);
    CHECK(openAs(nobody, link, O_RDONLY, "image").error().kind() == ErrorKind::PermissionDenied);

    // vmrd is root again afterwards.
    CHECK(openAs(Credentials::self(), secret, O_RDONLY, "image"));
    CHECK(::setfsuid(static_cast<uid_t>(-1)) == 0);
    CHECK(::setfsgid(static_cast<gid_t>(-1)) == 0);
}

TEST_CASE("openFileAs: only regular files, never blocking on a FIFO", "[credentials]")
{
    TempDir dir;
    std::string fifo = dir / "fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    auto r = openFileAs(Credentials::self(), fifo, O_RDONLY, "initrd");
    REQUIRE_FALSE(r);
    CHECK(r.error().kind() == ErrorKind::InvalidArgument);
    CHECK(r.error().message() == "The initrd " + fifo + " is not a regular file");
    CHECK_FALSE(openFileAs(Credentials::self(), dir.path(), O_RDONLY, "initrd"));
    std::string file = fileWith(dir, "f", 0600);
    auto ok = openFileAs(Credentials::self(), file, O_RDONLY, "initrd");
    REQUIRE(ok);
    CHECK((::fcntl(ok->get(), F_GETFL) & O_NONBLOCK) == 0);
}

TEST_CASE("groupId and userByName", "[credentials]")
{
    CHECK(groupId("root") == gid_t{0});
    CHECK_FALSE(groupId("no-such-group-vmr"));
    CHECK_FALSE(groupId(""));
    auto root = userByName("root");
    REQUIRE(root);
    CHECK(root->uid == 0);
    CHECK(root->gid == 0);
    CHECK_FALSE(userByName("no-such-user-vmr"));
}
