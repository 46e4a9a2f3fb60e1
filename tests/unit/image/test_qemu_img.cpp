#include "catch.h"
#include "image/qemu_img.h"

#include <catch2/catch.hpp>

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace vmr;
using vmr::test::TempDir;
using namespace vmr::image;
using vmr::reactor::Reactor;
using vmr::reactor::Task;

namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;

std::unique_ptr<Reactor> makeReactor()
{
    auto r = Reactor::create();  // the backend VMR_REACTOR names (meson runs the suite per backend)
    if (!r) FAIL("Reactor::create: " << r.error().what());
    return std::move(*r);
}

template <typename T>
T runTask(Reactor& r, Task<T> t)
{
    t.start();
    REQUIRE(r.runUntil([&] { return t.done(); }, 30s));
    return t.result();
}

// Run a helper program (qemu-img, qemu-io) to completion on the reactor; REQUIREs exit 0.
std::string tool(Reactor& r, std::vector<std::string> argv)
{
    auto res = runTask(r, reactor::run(r, {.argv = std::move(argv)}, 30s));
    REQUIRE(res);
    INFO(res->err);
    REQUIRE(res->status.code == 0);
    return res->out;
}

bool haveQemuIo()
{
    for (const char* dir : {"/usr/bin", "/usr/local/bin", "/bin"})
        if (::access((std::string(dir) + "/qemu-io").c_str(), X_OK) == 0) return true;
    return false;
}

std::string readAll(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

struct FileStamp {
    std::string bytes;
    int64_t mtimeNs = 0;
    bool operator==(const FileStamp&) const = default;
};

FileStamp stamp(const std::string& path)
{
    struct stat st;
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return {readAll(path), st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec};
}

// A base image of `format` with a 0xab pattern in its first 64 KiB.
std::string makeBase(Reactor& r, const TempDir& dir, const std::string& format, uint64_t size)
{
    std::string path = dir / ("base." + format);
    tool(r, {"qemu-img", "create", "-f", format, path, std::to_string(size)});
    if (haveQemuIo()) tool(r, {"qemu-io", "-f", format, "-c", "write -P 0xab 0 64k", path});
    return path;
}

}  // namespace

TEST_CASE("parseImageInfo: qemu-img's JSON, with and without a backing file")
{
    auto overlay = parseImageInfo(R"({
        "backing-filename-format": "raw", "virtual-size": 16777216, "filename": "ov.qcow2",
        "cluster-size": 65536, "format": "qcow2", "actual-size": 200704,
        "format-specific": {"type": "qcow2", "data": {"compat": "1.1", "corrupt": false}},
        "full-backing-filename": "/tmp/b.raw", "backing-filename": "/tmp/b.raw", "dirty-flag": false})");
    REQUIRE(overlay);
    CHECK(overlay->format == "qcow2");
    CHECK(overlay->virtualSize == 16777216);
    CHECK(overlay->actualSize == uint64_t{200704});
    CHECK(overlay->backingFilename == "/tmp/b.raw");
    CHECK(overlay->backingFormat == "raw");
    CHECK(!overlay->dirty);

    auto raw =
        parseImageInfo(R"({"virtual-size": 512, "filename": "t", "format": "raw", "dirty-flag": true})");
    REQUIRE(raw);
    CHECK(raw->format == "raw");
    CHECK(raw->virtualSize == 512);
    CHECK(!raw->actualSize);
    CHECK(raw->backingFilename.empty());
    CHECK(raw->backingFormat.empty());
    CHECK(raw->dirty);

    for (const char* bad : {"", "[]", "{", R"({"virtual-size": 1})", R"({"format": "raw"})",
                            R"({"format": "raw", "virtual-size": -1})", R"({"format": 3, "virtual-size": 1})",
                            R"({"format": "raw", "virtual-size": 1, "dirty-flag": "no"})",
                            R"({"format": "raw", "virtual-size": 1, "backing-filename": 7})"}) {
        INFO(bad);
        auto r = parseImageInfo(bad);
        REQUIRE(!r);
        CHECK(r.error().kind() == ErrorKind::ParseError);
    }
    CHECK(parseImageInfo(R"({"format": "raw"})").error().message().find("\"virtual-size\"") !=
          std::string::npos);
}

// createOverlay() on a base probed as vmrd does for its own images.
Result<void> overlayOn(Reactor& r, const std::string& base, const std::string& overlay,
                       std::optional<uint64_t> size)
{
    auto probed = probeBaseFile(base);
    if (!probed) return std::move(probed).error();
    return runTask(r, createOverlay(r, *probed, base, overlay, size));
}

TEST_CASE("inspect: raw and qcow2 images, and a file that is not an image")
{
    auto r = makeReactor();
    TempDir dir;
    std::string raw = makeBase(*r, dir, "raw", 16 * kMiB);
    std::string qcow = makeBase(*r, dir, "qcow2", 32 * kMiB);

    auto ri = runTask(*r, inspect(*r, raw));
    REQUIRE(ri);
    CHECK(ri->format == "raw");
    CHECK(ri->virtualSize == 16 * kMiB);
    CHECK(ri->actualSize.has_value());
    CHECK(ri->backingFilename.empty());

    auto qi = runTask(*r, inspect(*r, qcow));
    REQUIRE(qi);
    CHECK(qi->format == "qcow2");
    CHECK(qi->virtualSize == 32 * kMiB);
    CHECK(!qi->dirty);

    // qemu-img probes the contents: a text file is "raw", its size rounded up to 512 bytes.
    std::string text = dir / "notes.txt";
    std::ofstream(text) << "not a disk image\n";
    auto ti = runTask(*r, inspect(*r, text));
    REQUIRE(ti);
    CHECK(ti->format == "raw");
    CHECK(ti->virtualSize == 512);
}

TEST_CASE("inspect: a missing file is NotFound; an unreadable one carries qemu-img's stderr")
{
    auto r = makeReactor();
    TempDir dir;
    auto missing = runTask(*r, inspect(*r, dir / "nope.qcow2"));
    REQUIRE(!missing);
    CHECK(missing.error().kind() == ErrorKind::NotFound);
    CHECK(missing.error().message().find(dir / "nope.qcow2") != std::string::npos);
    CHECK(!missing.error().hint().empty());

    // A directory exists but is no image: qemu-img fails, and says why.
    auto isDir = runTask(*r, inspect(*r, dir.path()));
    REQUIRE(!isDir);
    CHECK(isDir.error().kind() == ErrorKind::InvalidArgument);
    CHECK(isDir.error().message().find("Cannot inspect image " + dir.path() + ": qemu-img:") == 0);
    CHECK(isDir.error().message().back() != '\n');
}

TEST_CASE("createOverlay: on a raw and on a qcow2 base; the base is never written")
{
    auto r = makeReactor();
    TempDir dir;
    for (std::string format : {"raw", "qcow2"}) {
        SECTION(format)
        {
            std::string base = makeBase(*r, dir, format, 16 * kMiB);
            FileStamp before = stamp(base);
            std::string overlay = dir / "overlay.qcow2";
            auto made = overlayOn(*r, base, overlay, std::nullopt);
            INFO((made ? std::string() : made.error().what()));
            REQUIRE(made);

            auto info = runTask(*r, inspect(*r, overlay));
            REQUIRE(info);
            CHECK(info->format == "qcow2");
            CHECK(info->virtualSize == 16 * kMiB);
            CHECK(info->backingFilename == base);
            CHECK(info->backingFormat == format);
            struct stat st;
            REQUIRE(::stat(overlay.c_str(), &st) == 0);
            CHECK((st.st_mode & 0777) == 0600);

            if (haveQemuIo()) {
                // The overlay reads the base's data, and takes writes without touching the base.
                tool(*r, {"qemu-io", "-f", "qcow2", "-c", "read -P 0xab 0 64k", overlay});
                tool(*r, {"qemu-io", "-f", "qcow2", "-c", "write -P 0xcd 0 64k", overlay});
                tool(*r, {"qemu-io", "-f", "qcow2", "-c", "read -P 0xcd 0 64k", overlay});
            } else {
                WARN("qemu-io not installed: writing into the overlay is not exercised");
            }
            CHECK(stamp(base) == before);
        }
    }
}

TEST_CASE("createOverlay: a relative base path is recorded as an absolute one")
{
    auto r = makeReactor();
    TempDir dir;
    std::string base = makeBase(*r, dir, "raw", 4 * kMiB);
    auto cwd = std::filesystem::current_path();
    std::filesystem::current_path(dir.path());
    auto made = overlayOn(*r, "./base.raw", "ov.qcow2", std::nullopt);
    std::filesystem::current_path(cwd);
    REQUIRE(made);
    auto info = runTask(*r, inspect(*r, dir / "ov.qcow2"));
    REQUIRE(info);
    CHECK(info->backingFilename == base);
}

TEST_CASE("createOverlay: a larger size resizes; a smaller one is refused before anything exists")
{
    auto r = makeReactor();
    TempDir dir;
    std::string base = makeBase(*r, dir, "qcow2", 16 * kMiB);
    auto before = vmr::test::listDir(dir.path());

    auto grown = overlayOn(*r, base, dir / "big.qcow2", 2 * kGiB);
    REQUIRE(grown);
    auto info = runTask(*r, inspect(*r, dir / "big.qcow2"));
    REQUIRE(info);
    CHECK(info->virtualSize == 2 * kGiB);
    CHECK(info->backingFilename == base);

    auto same = overlayOn(*r, base, dir / "same.qcow2", 16 * kMiB);
    REQUIRE(same);

    auto small = overlayOn(*r, base, dir / "small.qcow2", 8 * kMiB);
    REQUIRE(!small);
    CHECK(small.error().kind() == ErrorKind::InvalidArgument);
    CHECK(small.error().message().find("Disk must be at least 1 GiB") == 0);
    CHECK(!std::filesystem::exists(dir / "small.qcow2"));

    // N is the base's virtual size rounded up to whole GiB.
    std::string big = dir / "base3g.raw";
    tool(*r, {"qemu-img", "create", "-f", "raw", big, std::to_string(2 * kGiB + kMiB)});
    auto tooSmall = overlayOn(*r, big, dir / "t.qcow2", 2 * kGiB);
    REQUIRE(!tooSmall);
    CHECK(tooSmall.error().message().find("Disk must be at least 3 GiB") == 0);
    CHECK(!std::filesystem::exists(dir / "t.qcow2"));
}

TEST_CASE("createOverlay: missing base, existing overlay, and failures leave nothing behind")
{
    auto r = makeReactor();
    TempDir dir;
    auto missing = overlayOn(*r, dir / "gone.raw", dir / "ov.qcow2", std::nullopt);
    REQUIRE(!missing);
    CHECK(missing.error().kind() == ErrorKind::NotFound);
    CHECK(missing.error().message().find(dir / "gone.raw") != std::string::npos);
    CHECK(!missing.error().hint().empty());
    CHECK(vmr::test::listDir(dir.path()).empty());

    std::string base = makeBase(*r, dir, "raw", 4 * kMiB);
    std::string existing = dir / "keep.qcow2";
    std::ofstream(existing) << "precious";
    auto clash = overlayOn(*r, base, existing, std::nullopt);
    REQUIRE(!clash);
    CHECK(clash.error().kind() == ErrorKind::InvalidArgument);
    CHECK(readAll(existing) == "precious");

    // qemu-img itself fails (a size it cannot parse as a qcow2 size): its stderr is in the
    // message and the claimed overlay file is gone.
    auto huge = overlayOn(*r, base, dir / "huge.qcow2", uint64_t{1} << 62);
    REQUIRE(!huge);
    CHECK(huge.error().message().find("Cannot create overlay " + (dir / "huge.qcow2") + ": qemu-img:") == 0);
    CHECK(!std::filesystem::exists(dir / "huge.qcow2"));

    // A base qemu-img cannot open (a directory): inspect fails first, nothing is created.
    std::filesystem::create_directory(dir / "sub");
    auto notImage = overlayOn(*r, dir / "sub", dir / "x.qcow2", std::nullopt);
    REQUIRE(!notImage);
    CHECK(!std::filesystem::exists(dir / "x.qcow2"));
    CHECK(vmr::test::listDir(dir.path()) == std::vector<std::string>{"base.raw", "keep.qcow2", "sub"});
}

TEST_CASE("qemu-img missing from PATH is ToolMissing, with a hint to install qemu-utils")
{
    auto r = makeReactor();
    TempDir dir;
    std::string base = dir / "base.raw";
    std::ofstream(base) << std::string(4096, '\0');
    const char* old = std::getenv("PATH");
    std::string saved = old != nullptr ? old : "";
    ::setenv("PATH", dir.path().c_str(), 1);
    auto info = runTask(*r, inspect(*r, base));
    auto made = overlayOn(*r, base, dir / "ov.qcow2", std::nullopt);
    ::setenv("PATH", saved.c_str(), 1);
    REQUIRE(!info);
    CHECK(info.error().kind() == ErrorKind::ToolMissing);
    CHECK(info.error().hint().find("qemu-utils") != std::string::npos);
    REQUIRE(!made);
    CHECK(made.error().kind() == ErrorKind::ToolMissing);
    CHECK(!std::filesystem::exists(dir / "ov.qcow2"));
}

TEST_CASE("probeBaseImage: standalone qcow2 and raw are taken, with their sizes")
{
    auto r = makeReactor();
    TempDir dir;
    auto qcow = probeBaseFile(makeBase(*r, dir, "qcow2", 32 * kMiB));
    REQUIRE(qcow);
    CHECK(qcow->format == "qcow2");
    CHECK(qcow->virtualSize == 32 * kMiB);
    auto raw = probeBaseFile(makeBase(*r, dir, "raw", 16 * kMiB));
    REQUIRE(raw);
    CHECK(raw->format == "raw");
    CHECK(raw->virtualSize == 16 * kMiB);
    // Anything that is no image format is a raw disk of its own size.
    std::ofstream(dir / "notes.txt") << "not a disk image\n";
    auto text = probeBaseFile(dir / "notes.txt");
    REQUIRE(text);
    CHECK(text->format == "raw");
    CHECK(text->virtualSize == 17);
}

TEST_CASE("probeBaseImage: an image that names another file, or that vmr cannot read, is refused")
{
    auto r = makeReactor();
    TempDir dir;
    std::string base = makeBase(*r, dir, "raw", 4 * kMiB);
    struct Case {
        std::string name;
        std::vector<std::string> create;
        std::string says;
    };
    std::vector<Case> cases = {
        {"backing.qcow2",
         {"qemu-img", "create", "-f", "qcow2", "-F", "raw", "-b", base, dir / "backing.qcow2"},
         "refers to a backing file"},
        {"datafile.qcow2",
         {"qemu-img", "create", "-f", "qcow2", "-o", "data_file=" + (dir / "data.raw"),
          dir / "datafile.qcow2", "4M"},
         "keeps its data in an external file"},
        {"secret.qcow2",
         {"qemu-img", "create", "-f", "qcow2", "--object", "secret,id=s0,data=pw", "-o",
          "encrypt.format=luks,encrypt.key-secret=s0", dir / "secret.qcow2", "4M"},
         "is encrypted"},
        {"disk.vmdk", {"qemu-img", "create", "-f", "vmdk", dir / "disk.vmdk", "4M"}, "is a vmdk image"},
        {"disk.vdi", {"qemu-img", "create", "-f", "vdi", dir / "disk.vdi", "4M"}, "is a vdi image"},
        {"disk.vhdx", {"qemu-img", "create", "-f", "vhdx", dir / "disk.vhdx", "4M"}, "is a vhdx image"},
        {"disk.qed", {"qemu-img", "create", "-f", "qed", dir / "disk.qed", "4M"}, "is a qed image"},
    };
    for (const auto& c : cases) {
        SECTION(c.name)
        {
            tool(*r, c.create);
            auto probed = probeBaseFile(dir / c.name);
            REQUIRE(!probed);
            CHECK(probed.error().kind() == ErrorKind::InvalidArgument);
            CHECK(probed.error().message() ==
                  "Image " + (dir / c.name) + " " + c.says +
                      (c.says.rfind("is a ", 0) == 0 ? "; vmr boots qcow2 and raw images only"
                       : c.says == "is encrypted"    ? "; vmr cannot give QEMU its key"
                                                     : ""));
            CHECK(probed.error().hint().find("qemu-img convert -O qcow2 " + (dir / c.name)) !=
                  std::string::npos);
        }
    }
}

TEST_CASE("probeBaseHeader: truncated and unknown qcow2 headers")
{
    std::string head("QFI\xfb\0\0\0\x03", 8);
    auto cut = probeBaseHeader(head, 8, "/x");
    REQUIRE(!cut);
    CHECK(cut.error().message() == "Image /x has a truncated qcow2 header");
    std::string v9 = std::string("QFI\xfb\0\0\0\x09", 8) + std::string(100, '\0');
    auto unknown = probeBaseHeader(v9, v9.size(), "/x");
    REQUIRE(!unknown);
    CHECK(unknown.error().message() == "Image /x is qcow2 version 9, which vmr does not know");
    CHECK(probeBaseHeader("", 0, "/empty")->format == "raw");
}

TEST_CASE("probeBaseHeader: a qcow2 header QEMU could not open is refused as corrupt")
{
    auto r = makeReactor();
    TempDir dir;
    std::string good = vmr::test::readFile(makeBase(*r, dir, "qcow2", 4 * kMiB)).substr(0, 512);
    REQUIRE(probeBaseHeader(good, 4 * kMiB, "/x"));
    // Big-endian `bytes` at `at`, in a copy of the good header.
    auto patched = [&](size_t at, size_t bytes, uint64_t value) {
        std::string h = good;
        for (size_t i = 0; i < bytes; ++i)
            h[at + bytes - 1 - i] = static_cast<char>((value >> (8 * i)) & 0xff);
        return h;
    };
    struct Case {
        std::string head;
        std::string says;
    };
    for (const auto& c : std::vector<Case>{
             {patched(20, 4, 0), "cluster_bits is 0, not 9 to 21"},
             {patched(20, 4, 30), "cluster_bits is 30, not 9 to 21"},
             {patched(48, 8, 0), "its tables are not where a qcow2 header puts them"},
             {patched(40, 8, 12345), "its tables are not where a qcow2 header puts them"},
             {patched(100, 4, 8), "its header length is 8"},
             // The header vmr's tests once made by hand: a magic, a version and zeros.
             {std::string("QFI\xfb\0\0\0\x03", 8) + std::string(200, '\0'), "cluster_bits is 0, not 9 to 21"},
         }) {
        auto probed = probeBaseHeader(c.head, 4 * kMiB, "/x");
        REQUIRE(!probed);
        CHECK(probed.error().message() == "Image /x is not a valid qcow2 image: " + c.says);
        CHECK(probed.error().hint() == "Check that the file is complete (qemu-img check /x)");
    }
}

TEST_CASE("createOverlay: a full disk is no_space, naming the folder and its free space")
{
    if (::geteuid() != 0) {
        WARN("not root: cannot mount a tiny file system to fill");
        return;
    }
    auto r = makeReactor();
    TempDir dir;
    std::string base = makeBase(*r, dir, "raw", 4 * kMiB);
    std::string full = dir / "full";
    std::filesystem::create_directories(full);
    // A 16 KiB tmpfs in a mount namespace of this test program's own: a qcow2 header does not fit.
    REQUIRE(::unshare(CLONE_NEWNS) == 0);
    REQUIRE(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
    REQUIRE(::mount("tmpfs", full.c_str(), "tmpfs", 0, "size=16k") == 0);
    auto made = overlayOn(*r, base, full + "/ov.qcow2", 64 * kGiB);
    ::umount(full.c_str());
    REQUIRE_FALSE(made);
    CHECK(made.error().kind() == ErrorKind::NoSpace);
    CHECK(made.error().kindName() == "no_space");
    CHECK_THAT(made.error().message(), Catch::StartsWith("Cannot create overlay " + full + "/ov.qcow2: "));
    CHECK_THAT(made.error().hint(), Catch::StartsWith("The file system of " + full + " is full ("));
    CHECK_THAT(made.error().hint(), Catch::EndsWith(" MiB free): free space there, then try again"));
    CHECK(Error::fromErrno(ENOSPC, "x").kind() == ErrorKind::NoSpace);
    CHECK(Error::fromErrno(EDQUOT, "x").kind() == ErrorKind::NoSpace);
}
