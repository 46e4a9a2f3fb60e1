#include "image/cache.h"

#include "base/fd.h"
#include "base/files.h"
#include "base/json.h"
#include "base/log.h"
#include "image/qemu_img.h"

#include <simdjson.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <filesystem>
#include <utility>

namespace vmr::image {

namespace {

constexpr size_t kMaxNameLength = 63;
constexpr std::string_view kJsonSuffix = ".json";
constexpr std::string_view kPartSuffix = ".part";
constexpr int kEntryVersion = 1;
constexpr mode_t kDirMode = 0700;
constexpr mode_t kFileMode = 0644;

spdlog::logger& logger()
{
    return log::get("image");
}

bool endsWith(std::string_view s, std::string_view suffix)
{
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool exists(const std::string& path)
{
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;
}

Result<void> syncDir(const std::string& dir)
{
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return Error::fromErrno(errno, "Cannot open " + dir);
    if (::fsync(fd.get()) != 0) return Error::fromErrno(errno, "Cannot flush " + dir);
    return success();
}

Error notCached(std::string_view name)
{
    return Error(ErrorKind::ImageNotFound, "No image named `" + std::string(name) + "` in the cache",
                 "Run `vmrctl image list` to see cached images");
}

std::string quoted(std::string_view s)
{
    return json::quote(s);
}

}  // namespace

// A download in flight, shared by the task that runs it and every caller waiting for it.
struct Cache::Inflight {
    std::string url;
    std::string name;
    std::optional<std::string> sha256;
    reactor::CancelToken cancel;  // fired when the last waiter gives up, or by ~Cache
    std::map<uint64_t, Waiter*> waiters;
    uint64_t nextWaiter = 1;
    std::optional<Progress> last;  // for callers that join late
    bool finished = false;
    std::optional<Result<ImageEntry>> result;  // set when finished (a spawn may fail at once)
};

// One caller of pull(); lives in its frame.
struct Cache::Waiter {
    reactor::Completion<Result<ImageEntry>> done;
    ProgressFn onProgress;
};

std::string toJson(const ImageEntry& e)
{
    json::Writer w;
    w.beginObject()
        .field("version", kEntryVersion)
        .field("name", e.name)
        .field("url", e.url)
        .field("sha256", e.sha256)
        .field("download_sha256", e.downloadSha256)
        .field("compression", e.compression)
        .field("format", e.format)
        .field("size", static_cast<unsigned long long>(e.size))
        .field("virtual_size", static_cast<unsigned long long>(e.virtualSize))
        .field("time", static_cast<long long>(e.time))
        .endObject();
    return w.take();
}

Result<ImageEntry> parseEntry(std::string_view text, std::string_view expectedName)
{
    simdjson::dom::parser parser;
    simdjson::padded_string padded(text);
    simdjson::dom::object obj;
    if (parser.parse(padded).get(obj) != simdjson::SUCCESS)
        return Error(ErrorKind::StoreCorrupt, "Image metadata is not a JSON object");
    auto bad = [](std::string_view key, std::string_view expected) {
        return Error(ErrorKind::StoreCorrupt,
                     "Image metadata: key \"" + std::string(key) + "\": expected " + std::string(expected));
    };
    ImageEntry e;
    int64_t version = 0;
    if (obj["version"].get_int64().get(version) != simdjson::SUCCESS || version != kEntryVersion)
        return bad("version", "1");
    for (auto [key, field] : {std::pair<const char*, std::string*>{"name", &e.name},
                              {"url", &e.url},
                              {"sha256", &e.sha256},
                              {"download_sha256", &e.downloadSha256},
                              {"compression", &e.compression},
                              {"format", &e.format}}) {
        std::string_view s;
        if (obj[key].get_string().get(s) != simdjson::SUCCESS) return bad(key, "a string");
        *field = s;
    }
    if (obj["size"].get_uint64().get(e.size) != simdjson::SUCCESS)
        return bad("size", "a non-negative integer");
    if (obj["virtual_size"].get_uint64().get(e.virtualSize) != simdjson::SUCCESS)
        return bad("virtual_size", "a non-negative integer");
    if (obj["time"].get_int64().get(e.time) != simdjson::SUCCESS) return bad("time", "an integer");
    if (e.name != expectedName) return bad("name", "\"" + std::string(expectedName) + "\" (the file's name)");
    if (!normalizeSha256(e.sha256) || !normalizeSha256(e.downloadSha256))
        return bad("sha256", "64 hexadecimal digits");
    return e;
}

Result<void> validateImageName(std::string_view name)
{
    auto fail = [&](std::string why) {
        return Error(ErrorKind::InvalidArgument, "Image name " + quoted(name) + " " + why,
                     "A name is 1 to 63 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit, "
                     "and not ending in .json or .part");
    };
    if (name.empty()) return fail("is empty");
    if (name.size() > kMaxNameLength) return fail("is longer than 63 characters");
    auto alnum = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    };
    if (!alnum(name.front())) return fail("does not start with a letter or digit");
    for (char c : name) {
        if (!alnum(c) && c != '.' && c != '_' && c != '-')
            return fail("contains a character other than A-Z a-z 0-9 . _ -");
    }
    if (endsWith(name, kJsonSuffix) || endsWith(name, kPartSuffix)) return fail("ends in .json or .part");
    return success();
}

Result<std::string> nameFromUrl(const Url& url)
{
    std::string name = url.fileName;
    for (std::string_view suffix : {".zst", ".zstd"}) {
        if (endsWith(name, suffix)) {
            name.resize(name.size() - suffix.size());
            break;
        }
    }
    if (auto ok = validateImageName(name); !ok)
        return Error(ErrorKind::InvalidArgument,
                     "Cannot name the image of " + url.scheme + "://" + url.hostPort + url.path +
                         " after its file name: " + ok.error().message(),
                     "Give a name with --name");
    return name;
}

std::string defaultFetchProgram()
{
    std::error_code ec;
    auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        // Installed side by side; in a build tree, meson puts it under tools/vmr-fetch/.
        for (const auto& beside :
             {self.parent_path() / "vmr-fetch", self.parent_path() / "tools" / "vmr-fetch" / "vmr-fetch"}) {
            if (::access(beside.c_str(), X_OK) == 0) return beside.string();
        }
    }
    return "vmr-fetch";
}

Cache::Cache(reactor::Reactor& r, CacheConfig config) : reactor_(r), config_(std::move(config)) {}

Cache::~Cache()
{
    cancelAll();
    inflight_.clear();
}

void Cache::cancelAll()
{
    auto inflight = inflight_;  // cancel() may end a download, which erases it
    for (auto& [url, in] : inflight) in->cancel.cancel();
}

Result<std::vector<std::string>> Cache::open()
{
    VMR_TRY(vmr::makeDirs(config_.dir, kDirMode));
    std::vector<std::string> removed;
    std::error_code ec;
    std::filesystem::directory_iterator it(config_.dir, ec);
    if (ec) return Error::fromErrno(ec.value(), "Cannot read " + config_.dir);
    std::vector<std::string> names;
    for (const auto& e : it) names.push_back(e.path().filename().string());
    for (const auto& n : names) {
        std::string path = imagePath(n);
        bool stale = false;
        if (endsWith(n, kPartSuffix) && inflight_.empty()) {
            stale = true;  // a download that vmrd did not finish
        } else if (endsWith(n, kJsonSuffix) && n.front() != '.') {
            std::string image = n.substr(0, n.size() - kJsonSuffix.size());
            stale = validateImageName(image).ok() && !exists(imagePath(image));  // the rename never happened
        }
        if (!stale) continue;
        if (::unlink(path.c_str()) != 0) return Error::fromErrno(errno, "Cannot remove " + path);
        logger().info("Removed {}, left by an interrupted download", path);
        removed.push_back(path);
    }
    return removed;
}

Result<std::vector<ImageEntry>> Cache::list() const
{
    std::vector<ImageEntry> out;
    std::error_code ec;
    std::filesystem::directory_iterator it(config_.dir, ec);
    if (ec) {
        if (ec == std::errc::no_such_file_or_directory) return out;
        return Error::fromErrno(ec.value(), "Cannot read " + config_.dir);
    }
    for (const auto& de : it) {
        std::string n = de.path().filename().string();
        if (!endsWith(n, kJsonSuffix)) continue;
        std::string name = n.substr(0, n.size() - kJsonSuffix.size());
        if (!validateImageName(name)) continue;
        auto e = find(name);
        if (!e) {
            if (e.error().kind() != ErrorKind::ImageNotFound)
                logger().warn("Skipping image {}: {}", name, e.error().what());
            continue;
        }
        out.push_back(std::move(*e));
    }
    std::sort(out.begin(), out.end(),
              [](const ImageEntry& a, const ImageEntry& b) { return a.name < b.name; });
    return out;
}

Result<ImageEntry> Cache::find(std::string_view name) const
{
    VMR_TRY(validateImageName(name));
    std::string path = imagePath(name);
    std::string meta = path + std::string(kJsonSuffix);
    if (!exists(path) || !exists(meta)) return notCached(name);
    auto text = vmr::readFile(meta, 1 << 20);
    if (!text) return Error(text.error().kind(), "Cannot read " + meta).causedBy(std::move(text).error());
    auto e = parseEntry(*text, name);
    if (!e)
        return Error(ErrorKind::StoreCorrupt, "Cannot read " + meta,
                     "Remove the image with `vmrctl image rm " + std::string(name) + "` and pull it again")
            .causedBy(std::move(e).error());
    e->path = path;
    return e;
}

std::optional<ImageEntry> Cache::findByUrl(std::string_view url) const
{
    auto all = list();
    if (!all) return std::nullopt;
    for (auto& e : *all) {
        if (e.url == url) return std::move(e);
    }
    return std::nullopt;
}

Result<ImageEntry> Cache::remove(std::string_view name)
{
    VMR_TRY(validateImageName(name));
    for (const auto& [url, in] : inflight_) {
        if (in->name == name)
            return Error(ErrorKind::Busy, "Image `" + std::string(name) + "` is still downloading",
                         "Wait for the download to finish, or cancel it, then remove the image");
    }
    auto e = find(name);
    if (!e) return std::move(e).error();
    std::string path = imagePath(name);
    std::string meta = path + std::string(kJsonSuffix);
    if (::unlink(path.c_str()) != 0) return Error::fromErrno(errno, "Cannot remove " + path);
    if (::unlink(meta.c_str()) != 0 && errno != ENOENT)
        return Error::fromErrno(errno, "Cannot remove " + meta);
    VMR_TRY(syncDir(config_.dir));
    logger().info("Removed image {} ({})", e->name, e->url);
    return e;
}

reactor::Task<Result<std::string>> Cache::acquire(std::string url, std::optional<std::string> sha256,
                                                  ProgressFn onProgress, reactor::CancelToken* token)
{
    PullRequest req;
    req.url = std::move(url);
    req.sha256 = std::move(sha256);
    auto pulling = pull(std::move(req), std::move(onProgress), token);
    auto e = co_await pulling;
    if (!e) co_return std::move(e).error();
    co_return std::move(e->path);
}

reactor::Task<Result<ImageEntry>> Cache::pull(PullRequest req, ProgressFn onProgress,
                                              reactor::CancelToken* token)
{
    auto url = parseUrl(req.url);
    if (!url) co_return std::move(url).error();
    if (req.sha256) {
        auto sha = normalizeSha256(*req.sha256);
        if (!sha) co_return std::move(sha).error();
        req.sha256 = std::move(*sha);
    }
    std::string name = req.name;
    if (name.empty()) {
        auto derived = nameFromUrl(*url);
        if (!derived) co_return std::move(derived).error();
        name = std::move(*derived);
    } else {
        VMR_CO_TRY(validateImageName(name));
    }
    auto askedOtherName = [&](const std::string& actual) -> std::optional<Error> {
        if (req.name.empty() || req.name == actual) return std::nullopt;
        return Error(ErrorKind::InvalidArgument, req.url + " is already cached as `" + actual + "`",
                     "Use the image `" + actual + "`, or remove it with `vmrctl image rm " + actual +
                         "` and pull again");
    };
    auto checkSha = [&](const ImageEntry& e) -> std::optional<Error> {
        if (!req.sha256 || e.downloadSha256 == *req.sha256) return std::nullopt;
        return Error(ErrorKind::ChecksumMismatch,
                     "Cached image `" + e.name + "` from " + e.url + " has SHA-256 " + e.downloadSha256 +
                         ", not " + *req.sha256,
                     "If the file at the URL changed, remove the image with `vmrctl image rm " + e.name +
                         "` and pull it again");
    };

    // Someone is downloading this URL already: wait for the same download.
    if (auto it = inflight_.find(req.url); it != inflight_.end()) {
        if (auto err = askedOtherName(it->second->name)) co_return std::move(*err);
        auto waiting = wait(it->second, std::move(onProgress), token);
        auto e = co_await waiting;
        if (!e) co_return std::move(e).error();
        if (auto err = checkSha(*e)) co_return std::move(*err);
        co_return std::move(*e);
    }
    if (auto cached = findByUrl(req.url)) {
        if (auto err = askedOtherName(cached->name)) co_return std::move(*err);
        if (auto err = checkSha(*cached)) co_return std::move(*err);
        co_return std::move(*cached);
    }
    for (const auto& [u, in] : inflight_) {
        if (in->name == name)
            co_return Error(ErrorKind::Busy, "An image named `" + name + "` is downloading from " + u,
                            "Choose another name with --name");
    }
    if (exists(imagePath(name)) || exists(imagePath(name) + std::string(kJsonSuffix))) {
        auto other = find(name);
        std::string from = other ? " (from " + other->url + ")" : "";
        co_return Error(ErrorKind::InvalidArgument, "An image named `" + name + "` already exists" + from,
                        "Choose another name with --name, or remove it with `vmrctl image rm " + name + "`");
    }

    auto in = std::make_shared<Inflight>();
    in->url = req.url;
    in->name = name;
    in->sha256 = req.sha256;
    inflight_.emplace(req.url, in);
    logger().info("Downloading {} as image {}", req.url, name);
    reactor::spawnDetached(runDownload(scope_.watch(), this, in));
    auto waiting = wait(in, std::move(onProgress), token);
    auto e = co_await waiting;
    co_return e;
}

reactor::Task<Result<ImageEntry>> Cache::wait(std::shared_ptr<Inflight> in, ProgressFn onProgress,
                                              reactor::CancelToken* token)
{
    if (in->result) co_return *in->result;
    Waiter me;
    me.onProgress = std::move(onProgress);
    uint64_t id = in->nextWaiter++;
    in->waiters.emplace(id, &me);
    if (in->last && me.onProgress) me.onProgress(*in->last);
    auto waiting = reactor::awaitWithTimeout(reactor_, me.done, config_.maxPullTime, token);
    auto res = co_await waiting;
    in->waiters.erase(id);
    if (!res) {
        // This caller gives up; the download goes on for the others, or stops if none is left.
        if (in->waiters.empty() && !in->finished) in->cancel.cancel();
        Error err = std::move(res).error();
        if (err.kind() == ErrorKind::Cancelled)
            co_return Error(ErrorKind::Cancelled, "Download of " + in->url + " was cancelled");
        co_return Error(err.kind(), "Gave up waiting for the download of " + in->url)
            .causedBy(std::move(err));
    }
    co_return std::move(*res);
}

reactor::Task<void> Cache::runDownload(reactor::TaskScope::Watch alive, Cache* self,
                                       std::shared_ptr<Inflight> in)
{
    auto downloading = download(self->reactor_, self->config_, in);
    auto result = co_await downloading;
    in->finished = true;
    in->result = result;
    if (alive) self->inflight_.erase(in->url);
    if (result)
        logger().info("Cached {} as image {} ({} bytes, {})", in->url, in->name, result->size,
                      result->format);
    else
        logger().info("Download of {} failed: {}", in->url, result.error().what());
    auto waiters = in->waiters;
    for (auto& [id, w] : waiters) w->done.fulfil(result);
}

reactor::Task<Result<ImageEntry>> Cache::download(reactor::Reactor& r, CacheConfig config,
                                                  std::shared_ptr<Inflight> in)
{
    VMR_CO_TRY(vmr::makeDirs(config.dir, kDirMode));
    std::string target = config.dir + "/" + in->name;
    std::string part = target + std::string(kPartSuffix);
    std::string meta = target + std::string(kJsonSuffix);
    if (::unlink(part.c_str()) != 0 && errno != ENOENT)
        co_return Error::fromErrno(errno, "Cannot remove the stale download " + part);

    FetchRequest req;
    req.program = config.fetchProgram;
    req.url = in->url;
    req.output = part;
    req.sha256 = in->sha256;
    req.caFile = config.caFile;
    req.connectTimeout = config.connectTimeout;
    req.readTimeout = config.readTimeout;
    req.retries = config.retries;
    req.progressInterval = config.progressInterval;
    Inflight* raw = in.get();
    ProgressFn relay = [raw](const Progress& p) {
        raw->last = p;
        auto waiters = raw->waiters;
        for (auto& [id, w] : waiters) {
            if (w->onProgress) w->onProgress(p);
        }
    };
    auto fetching = fetch(r, std::move(req), std::move(relay), &in->cancel);
    auto fetched = co_await fetching;
    if (!fetched) co_return std::move(fetched).error();

    // From here on the .part is complete and ours: remove it on every error.
    auto discard = [&](Error e) {
        ::unlink(part.c_str());
        return e;
    };
    auto inspecting = inspect(r, part);
    auto info = co_await inspecting;
    if (!info)
        co_return discard(Error(info.error().kind(), "Cannot inspect the download of " + in->url)
                              .causedBy(std::move(info).error()));
    if (!info->backingFilename.empty())
        co_return discard(Error(ErrorKind::InvalidArgument,
                                "The image at " + in->url + " refers to a backing file (" +
                                    info->backingFilename +
                                    "); vmr does not cache images that read other files",
                                "Use a self-contained image (qemu-img convert can flatten it)"));
    if (in->cancel.cancelled())
        co_return discard(Error(ErrorKind::Cancelled, "Download of " + in->url + " was cancelled"));
    if (exists(target) || exists(meta))
        co_return discard(
            Error(ErrorKind::InvalidArgument,
                  "An image named `" + in->name + "` appeared in " + config.dir + " during the download",
                  "Remove it, or pull again with another --name"));

    ImageEntry e;
    e.name = in->name;
    e.path = target;
    e.url = in->url;
    e.sha256 = fetched->sha256;
    e.downloadSha256 = fetched->downloadSha256;
    e.compression = fetched->compression;
    e.format = info->format;
    e.size = fetched->size;
    e.virtualSize = info->virtualSize;
    e.time = static_cast<int64_t>(std::time(nullptr));
    // The metadata first: a crash before the rename leaves a .json without its image, which
    // open() removes; the image never appears without its metadata.
    auto written = vmr::writeFileAtomic(meta, toJson(e), kFileMode);
    if (!written) co_return discard(std::move(written).error());
    if (::rename(part.c_str(), target.c_str()) != 0) {
        int err = errno;
        ::unlink(meta.c_str());
        co_return discard(Error::fromErrno(err, "Cannot move " + part + " to " + target));
    }
    if (auto synced = syncDir(config.dir); !synced) {
        ::unlink(target.c_str());
        ::unlink(meta.c_str());
        co_return std::move(synced).error();
    }
    co_return e;
}

}  // namespace vmr::image
