#include "image/qemu_img.h"

#include "base/fd.h"
#include "base/log.h"

#include <simdjson.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
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
                                                     std::string what, ErrorKind failKind)
{
    log::command("image", argv);
    // Named, not a braced temporary inside the co_await: with GCC 12 the options arrived
    // corrupted in run()'s frame (free(): invalid pointer).
    reactor::SpawnOptions opts;
    opts.argv = std::move(argv);
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
        co_return Error(failKind, what + ": " + err);
    }
    co_return std::move(*res);
}

Result<void> checkExists(const std::string& path, std::string_view role)
{
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) return success();
    int err = errno;
    if (err == ENOENT || err == ENOTDIR)
        return Error(ErrorKind::NotFound, std::string(role) + " " + path + " does not exist",
                     "Check the path, and that vmrd can read it");
    return Error::fromErrno(err, "Cannot access " + std::string(role) + " " + path);
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

reactor::Task<Result<ImageInfo>> inspect(reactor::Reactor& r, std::string path)
{
    VMR_CO_TRY(checkExists(path, "Image"));
    // Built outside the co_await: GCC 12 rejects a braced list of literals inside one
    // ("array used as initializer").
    std::vector<std::string> argv = {"qemu-img", "info", "-U", "--output=json", path};
    auto res =
        co_await runQemuImg(r, std::move(argv), "Cannot inspect image " + path, ErrorKind::InvalidArgument);
    if (!res) co_return std::move(res).error();
    auto info = parseImageInfo(res->out);
    if (!info)
        co_return Error(ErrorKind::ParseError, "Cannot inspect image " + path)
            .causedBy(std::move(info).error());
    co_return std::move(*info);
}

reactor::Task<Result<void>> createOverlay(reactor::Reactor& r, std::string base, std::string overlay,
                                          std::optional<uint64_t> sizeBytes)
{
    VMR_CO_TRY(checkExists(base, "Base image"));
    std::error_code ec;
    std::filesystem::path absBase = std::filesystem::absolute(base, ec);
    if (ec) co_return Error::fromErrno(ec.value(), "Cannot resolve the path of base image " + base);
    absBase = absBase.lexically_normal();

    auto info = co_await inspect(r, absBase.string());
    if (!info) co_return std::move(info).error();
    if (sizeBytes && *sizeBytes < info->virtualSize) {
        uint64_t minGib = (info->virtualSize + kGiB - 1) / kGiB;
        co_return Error(
            ErrorKind::InvalidArgument,
            "Disk must be at least " + std::to_string(minGib) + " GiB: base image " + absBase.string() +
                " is " + std::to_string(info->virtualSize) + " bytes",
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

    std::vector<std::string> argv = {"qemu-img", "create",         "-f",   "qcow2", "-F", info->format,
                                     "-b",       absBase.string(), overlay};
    if (sizeBytes) argv.push_back(std::to_string(*sizeBytes));
    auto res =
        co_await runQemuImg(r, std::move(argv), "Cannot create overlay " + overlay, ErrorKind::Internal);
    if (!res) {
        ::unlink(overlay.c_str());
        co_return std::move(res).error();
    }
    co_return success();
}

}  // namespace vmr::image
