#pragma once

// Downloads through vmr-fetch, the helper process that does the network and disk work
// (DESIGN.md: nothing that could block the loop runs on the daemon thread). vmr-fetch reports
// on stdout, one JSON object per line (fetch_codec.h); fetch() runs vmr-fetch as a child
// awaited on its pidfd. docs/images.md describes the protocol.

#include "base/result.h"
#include "image/fetch_codec.h"
#include "reactor/reactor.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace vmr::image {

struct Progress {
    uint64_t received = 0;
    std::optional<uint64_t> total;
    uint64_t written = 0;
};
using ProgressFn = std::function<void(const Progress&)>;

struct FetchRequest {
    std::string program = "vmr-fetch";  // a path, or a name looked up in PATH
    std::string url;
    std::string output;                 // must not exist; only ever holds a complete, verified file
    std::optional<std::string> sha256;  // expected, of the bytes as served
    Decompress decompress = Decompress::Auto;
    std::string caFile;  // extra CA certificates to trust (PEM); empty: the system's
    reactor::Duration connectTimeout = std::chrono::seconds(30);
    reactor::Duration readTimeout = std::chrono::seconds(60);  // a stall longer than this fails
    unsigned retries = 3;                                      // resumed attempts after a dropped connection
    reactor::Duration progressInterval = std::chrono::milliseconds(200);
};

struct FetchResult {
    std::string finalUrl;
    uint64_t size = 0;      // of the output file
    uint64_t received = 0;  // body bytes as served
    std::string sha256;
    std::string downloadSha256;
    std::string compression;
};

// Run vmr-fetch and wait for it, relaying its progress. On success `output` holds the whole,
// verified file; on any error (HTTP, network, checksum, disk, cancel through `token`, a stall)
// `output` does not exist. vmr-fetch missing: ToolMissing.
reactor::Task<Result<FetchResult>> fetch(reactor::Reactor& r, FetchRequest req, ProgressFn onProgress,
                                         reactor::CancelToken* token);

}  // namespace vmr::image
