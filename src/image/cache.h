#pragma once

// The image cache: base images downloaded from URLs into <state>/images/ (DESIGN.md, State on
// disk; docs/images.md). Each entry is <name> (the image) and <name>.json (its source and
// checksum). The cache is keyed by URL: a URL is downloaded once, and callers asking for the
// same URL while it downloads share that download. A download is written to <name>.part by
// vmr-fetch and becomes <name> only once it is complete, verified and inspected, so an
// interrupted, failed or cancelled download never becomes an entry.
//
// Single-threaded: call it on the reactor's thread.

#include "base/result.h"
#include "image/fetch.h"
#include "reactor/reactor.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmr::image {

struct CacheConfig {
    std::string dir;                         // <state>/images
    std::string fetchProgram = "vmr-fetch";  // vmr-fetch: a path, or a name looked up in PATH
    std::string caFile;                      // extra CA certificates for HTTPS (PEM); empty: the system's
    reactor::Duration connectTimeout = std::chrono::seconds(30);
    reactor::Duration readTimeout = std::chrono::seconds(60);
    unsigned retries = 3;
    reactor::Duration progressInterval = std::chrono::milliseconds(200);
    // How long one caller waits for a download (the download itself stops on a stall).
    reactor::Duration maxPullTime = std::chrono::hours(24);
};

// One cached image: what <name>.json holds, plus its path.
struct ImageEntry {
    std::string name;
    std::string path;  // <dir>/<name>
    std::string url;
    std::string sha256;          // of the cached file
    std::string downloadSha256;  // of the file as served (differs when it was compressed)
    std::string compression;     // "zstd" or "none"
    std::string format;          // qemu-img's: "qcow2", "raw", ...
    uint64_t size = 0;           // bytes of the cached file
    uint64_t virtualSize = 0;    // bytes the guest sees
    int64_t time = 0;            // when it was cached, unix seconds
    bool operator==(const ImageEntry&) const = default;
};

// The JSON object of <name>.json (path excluded), and back. parseEntry checks every field and
// that the name is the one expected.
std::string toJson(const ImageEntry& e);
Result<ImageEntry> parseEntry(std::string_view json, std::string_view expectedName);

// An image name: 1 to 63 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit
// (the rule of VM names), and not ending in .json or .part.
Result<void> validateImageName(std::string_view name);

// The name a URL's image gets by default: its last path segment without .zst/.zstd.
// InvalidArgument when that is not a valid name.
Result<std::string> nameFromUrl(const Url& url);

// Where vmr-fetch is when the configuration does not say: next to the running program (vmrd
// and vmr-fetch are installed side by side), or in tools/vmr-fetch/ beside it (a build tree),
// else "vmr-fetch" (looked up in PATH).
std::string defaultFetchProgram();

class Cache {
public:
    // The reactor is borrowed and must outlive the cache.
    Cache(reactor::Reactor& r, CacheConfig config);
    Cache(const Cache&) = delete;
    Cache& operator=(const Cache&) = delete;
    // Cancels downloads in flight; their .part files are removed as they stop, which needs the
    // reactor to run a little longer (see idle()).
    ~Cache();

    // Create the folder if needed and clean up what an interrupted vmrd left: every *.part (no
    // download runs yet) and every <name>.json whose image is missing. Returns what was removed.
    Result<std::vector<std::string>> open();

    struct PullRequest {
        std::string url;
        std::string name;                   // empty: nameFromUrl
        std::optional<std::string> sha256;  // expected, of the file as served
    };
    // The entry for the URL: the cached one, or a new download. A URL already cached under
    // another name than the one asked for, a name taken by another URL, or an expected
    // checksum that the cached file does not have are errors that change nothing.
    // onProgress may be called many times before the task finishes; `token` cancels this
    // caller's wait, and the download when no other caller waits for it.
    reactor::Task<Result<ImageEntry>> pull(PullRequest req, ProgressFn onProgress,
                                           reactor::CancelToken* token);

    // For vm.create's image_url: the path of the cached image of `url`, downloading it if needed.
    reactor::Task<Result<std::string>> acquire(std::string url, std::optional<std::string> sha256,
                                               ProgressFn onProgress, reactor::CancelToken* token);

    // Every complete entry, sorted by name.
    Result<std::vector<ImageEntry>> list() const;
    // ImageNotFound when there is no entry by that name.
    Result<ImageEntry> find(std::string_view name) const;
    std::optional<ImageEntry> findByUrl(std::string_view url) const;
    // Remove an entry (the image, then its .json). Busy while it downloads. Whether a VM still
    // uses it is the caller's to check.
    Result<ImageEntry> remove(std::string_view name);

    const CacheConfig& config() const noexcept { return config_; }
    reactor::Reactor& reactor() const noexcept { return reactor_; }
    // Stop every download (callers get Cancelled). For shutdown: call it, then run the reactor
    // until idle() so that each vmr-fetch is reaped and its .part removed.
    void cancelAll();
    // True when no download runs.
    bool idle() const noexcept { return inflight_.empty(); }

private:
    struct Inflight;
    struct Waiter;

    // Detached: a download finishes (reaping vmr-fetch, removing its .part) even if the cache
    // goes first; `alive` says whether `self` still exists.
    static reactor::Task<void> runDownload(reactor::TaskScope::Watch alive, Cache* self,
                                           std::shared_ptr<Inflight> in);
    static reactor::Task<Result<ImageEntry>> download(reactor::Reactor& r, CacheConfig config,
                                                      std::shared_ptr<Inflight> in);
    reactor::Task<Result<ImageEntry>> wait(std::shared_ptr<Inflight> in, ProgressFn onProgress,
                                           reactor::CancelToken* token);
    std::string imagePath(std::string_view name) const { return config_.dir + "/" + std::string(name); }

    // Borrowed.
    reactor::Reactor& reactor_;
    // Owned.
    CacheConfig config_;
    std::map<std::string, std::shared_ptr<Inflight>, std::less<>> inflight_;  // by URL
    reactor::TaskScope scope_;
};

}  // namespace vmr::image
