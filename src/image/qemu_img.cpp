#include "image/qemu_img.h"

#include "base/fd.h"
#include "base/log.h"

#include <simdjson.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>
#include <vector>

namespace vmr::image {

namespace {

constexpr uint64_t kGiB = uint64_t{1} << 30;

std::string trim(std::string_view s)
{
    constexpr std::string_view kSpace = " \t\r\n";
    size_t b = s.find_first_not_of(kSpace);
    if (b == std::string_view::npos) return {};
    size_t e = s.find_last_not_of(kSpace);
    return std::string(s.substr(b, e - b + 1));
}

// Run qemu-img with args; a failure to run it or a non-zero exit is an error whose message
// starts with `what` and carries qemu-img's stderr.
reactor::Task<Result<reactor::RunResult>> runQemuImg(reactor::Reactor& r, std::vector<std::string> argv,
                                                     std::string what, ErrorKind failKind,
                                                     std::optional<Credentials> as = std::nullopt,
                                                     std::vector<std::pair<int, int>> fds = {})
{
    log::command("image", argv);
    // Named, not a braced temporary inside the co_await: with GCC 12 the options arrived
    // corrupted in run()'s frame (free(): invalid pointer).
    reactor::SpawnOptions opts;
    opts.argv = std::move(argv);
    opts.fds = std::move(fds);
    if (as && !(as->uid == ::geteuid() && as->gid == ::getegid())) opts.runAs = std::move(as);
    auto running = reactor::run(r, std::move(opts), kQemuImgTimeout);
    auto res = co_await running;
    if (!res) {
        if (res.error().kind() == ErrorKind::NotFound)
            co_return Error(ErrorKind::ToolMissing, what + ": qemu-img not found in PATH",
                            "Install qemu-img (Debian/Ubuntu: apt install qemu-utils)");
        co_return Error(res.error().kind(), what).causedBy(std::move(res).error());
    }
    if (!res->status.exited() || res->status.code != 0) {
        std::string err = trim(res->err);
        if (err.empty()) err = "qemu-img " + res->status.describe();
        // A full disk is the host's state, not vmr's bug.
        if (err.find(std::strerror(ENOSPC)) != std::string::npos ||
            err.find(std::strerror(EDQUOT)) != std::string::npos)
            failKind = ErrorKind::NoSpace;
        co_return Error(failKind, what + ": " + err);
    }
    co_return std::move(*res);
}

}  // namespace

Result<ImageInfo> parseImageInfo(std::string_view json)
{
    simdjson::dom::parser parser;
    simdjson::padded_string padded(json);
    simdjson::dom::element root;
    if (auto err = parser.parse(padded).get(root); err != simdjson::SUCCESS)
        return Error(ErrorKind::ParseError,
                     std::string("qemu-img info printed invalid JSON: ") + simdjson::error_message(err));
    simdjson::dom::object obj;
    if (root.get_object().get(obj) != simdjson::SUCCESS)
        return Error(ErrorKind::ParseError, "qemu-img info printed JSON that is not an object");
    auto bad = [](std::string_view field, std::string_view expected) {
        return Error(ErrorKind::ParseError, "qemu-img info: field \"" + std::string(field) + "\": expected " +
                                                std::string(expected));
    };

    ImageInfo info;
    std::string_view s;
    if (obj["format"].get_string().get(s) != simdjson::SUCCESS) return bad("format", "a string");
    info.format = s;
    uint64_t n = 0;
    if (obj["virtual-size"].get_uint64().get(n) != simdjson::SUCCESS)
        return bad("virtual-size", "a non-negative integer");
    info.virtualSize = n;
    if (auto f = obj["actual-size"]; f.error() != simdjson::NO_SUCH_FIELD) {
        if (f.get_uint64().get(n) != simdjson::SUCCESS) return bad("actual-size", "a non-negative integer");
        info.actualSize = n;
    }
    if (auto f = obj["backing-filename"]; f.error() != simdjson::NO_SUCH_FIELD) {
        if (f.get_string().get(s) != simdjson::SUCCESS) return bad("backing-filename", "a string");
        info.backingFilename = s;
    }
    if (auto f = obj["backing-filename-format"]; f.error() != simdjson::NO_SUCH_FIELD) {
        if (f.get_string().get(s) != simdjson::SUCCESS) return bad("backing-filename-format", "a string");
        info.backingFormat = s;
    }
    if (auto f = obj["dirty-flag"]; f.error() != simdjson::NO_SUCH_FIELD) {
        bool b = false;
        if (f.get_bool().get(b) != simdjson::SUCCESS) return bad("dirty-flag", "true or false");
        info.dirty = b;
    }
    return info;
}

reactor::Task<Result<ImageInfo>> inspect(reactor::Reactor& r, std::string path, std::optional<Credentials> as)
{
    // Opened with the rights qemu-img will have (a path the caller cannot reach is reported as
    // such, not in qemu-img's words), and handed to it: qemu-img reads what was opened, whatever
    // the path names by then.
    VMR_CO_TRY_ASSIGN(UniqueFd fd,
                      openAs(as.value_or(Credentials::self()), path, O_RDONLY | O_NONBLOCK, "image"));
    constexpr int kImageFd = 3;
    // Built outside the co_await: GCC 12 rejects a braced list of literals inside one
    // ("array used as initializer").
    std::vector<std::string> argv = {"qemu-img", "info", "-U", "--output=json",
                                     "/dev/fd/" + std::to_string(kImageFd)};
    std::vector<std::pair<int, int>> fds = {{fd.get(), kImageFd}};
    auto res = co_await runQemuImg(r, std::move(argv), "Cannot inspect image " + path,
                                   ErrorKind::InvalidArgument, std::move(as), std::move(fds));
    if (!res) co_return std::move(res).error();
    auto info = parseImageInfo(res->out);
    if (!info)
        co_return Error(ErrorKind::ParseError, "Cannot inspect image " + path)
            .causedBy(std::move(info).error());
    co_return std::move(*info);
}

Result<BaseImage> probeBaseFile(const std::string& path)
{
    VMR_TRY_ASSIGN(UniqueFd fd, openFileAs(Credentials::self(), path, O_RDONLY, "image"));
    return probeBaseImage(fd.get(), path);
}

static std::string freeSpaceHint(const std::string& path)
{
    std::string dir = std::filesystem::path(path).parent_path().string();
    struct statvfs fs {};
    std::string free =
        ::statvfs(dir.c_str(), &fs) == 0
            ? std::to_string(static_cast<unsigned long long>(fs.f_bavail) * fs.f_frsize >> 20) + " MiB free"
            : "its free space unknown";
    return "The file system of " + dir + " is full (" + free + "): free space there, then try again";
}

reactor::Task<Result<void>> createOverlay(reactor::Reactor& r, BaseImage base, std::string basePath,
                                          std::string overlay, std::optional<uint64_t> sizeBytes)
{
    std::error_code ec;
    std::filesystem::path absBase = std::filesystem::absolute(basePath, ec);
    if (ec) co_return Error::fromErrno(ec.value(), "Cannot resolve the path of base image " + basePath);
    absBase = absBase.lexically_normal();

    if (sizeBytes && *sizeBytes < base.virtualSize) {
        uint64_t minGib = (base.virtualSize + kGiB - 1) / kGiB;
        co_return Error(
            ErrorKind::InvalidArgument,
            "Disk must be at least " + std::to_string(minGib) + " GiB: base image " + absBase.string() +
                " is " + std::to_string(base.virtualSize) + " bytes",
            "Ask for a disk of " + std::to_string(minGib) + " GiB or more, or leave the size out");
    }

    // Claim the path first, so that an existing file is never overwritten and the file removed
    // on failure is always our own. qemu-img create truncates and reuses it (mode 0600 kept).
    UniqueFd claim(::open(overlay.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!claim) {
        int err = errno;
        if (err == EEXIST)
            co_return Error(ErrorKind::InvalidArgument,
                            "Cannot create overlay " + overlay + ": it already exists",
                            "Remove it first, or choose another path");
        co_return Error::fromErrno(err, "Cannot create overlay " + overlay);
    }
    claim.reset();

    // -u: the base is not opened (it was probed by descriptor; a path could have changed since).
    // The recorded name is for people and qemu-img; vmr hands the hypervisor the base itself.
    std::vector<std::string> argv = {"qemu-img",
                                     "create",
                                     "-f",
                                     "qcow2",
                                     "-F",
                                     base.format,
                                     "-b",
                                     absBase.string(),
                                     "-u",
                                     overlay,
                                     std::to_string(sizeBytes.value_or(base.virtualSize))};
    auto res =
        co_await runQemuImg(r, std::move(argv), "Cannot create overlay " + overlay, ErrorKind::Internal);
    if (!res) {
        ::unlink(overlay.c_str());
        Error e = std::move(res).error();
        if (e.kind() == ErrorKind::NoSpace) e.withHint(freeSpaceHint(overlay));
        co_return e;
    }
    co_return success();
}

}  // namespace vmr::image
