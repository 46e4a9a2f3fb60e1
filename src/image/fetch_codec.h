#pragma once

// The pure parts of the vmr-fetch protocol (docs/images.md): URL checks, the JSON events
// vmr-fetch writes on stdout, line splitting. Linked by vmr-fetch itself and by the image layer.

#include "base/result.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace vmr::image {

// An http:// or https:// URL split for an HTTP client.
struct Url {
    std::string scheme;    // "http" or "https"
    std::string host;      // without brackets for IPv6 literals
    uint16_t port = 0;     // explicit, or the scheme's default
    std::string path;      // from the first '/', with the query; "/" when empty
    std::string hostPort;  // "host:port" as written in the URL (brackets kept)
    std::string fileName;  // last path segment without the query, percent-decoding not applied
};

// InvalidArgument naming what is wrong: another scheme, no host, a bad port, user info,
// spaces or control characters.
Result<Url> parseUrl(std::string_view url);

// How vmr-fetch treats the body: "zstd" is decompressed on the fly; "auto" picks zstd for a
// URL path ending in .zst or .zstd.
enum class Decompress { Auto, Zstd, None };
Result<Decompress> parseDecompress(std::string_view s);
bool wantsZstd(Decompress mode, const Url& url);

// A SHA-256 given by a caller: 64 hex digits (either case) → lowercase; InvalidArgument otherwise.
Result<std::string> normalizeSha256(std::string_view hex);

// One line of vmr-fetch's stdout.
struct FetchEvent {
    enum class Type { Start, Progress, Retry, Done, Error };
    Type type = Type::Progress;
    uint64_t received = 0;          // body bytes received so far (counting a resumed range's offset)
    std::optional<uint64_t> total;  // size of the whole body, when the server said
    uint64_t written = 0;           // bytes written to the output (after decompression)
    uint64_t offset = 0;            // start, retry: where this request starts
    std::string url;                // start: the URL asked for; done: the URL after redirects
    std::string reason;             // retry: why
    std::string sha256;             // done: of the output file
    std::string downloadSha256;     // done: of the bytes as served (before decompression)
    std::string compression;        // done: "zstd" or "none"
    ErrorKind errorKind = ErrorKind::Internal;  // error
    std::string message, hint;                  // error
};

// One line (without '\n') as vmr-fetch writes it, and back. parseFetchEvent: ParseError naming
// the field when the line is not one of vmr-fetch's events.
std::string encodeFetchEvent(const FetchEvent& e);
Result<FetchEvent> parseFetchEvent(std::string_view line);

// The error kind whose kindName() is `name`; Internal for a name this build does not know.
ErrorKind kindFromName(std::string_view name);

// Splits a byte stream into lines as it arrives. A line longer than maxLine is an error.
class LineSplitter {
public:
    explicit LineSplitter(size_t maxLine = 64 * 1024) : maxLine_(maxLine) {}
    // Calls onLine for each complete line (without the '\n').
    Result<void> feed(std::string_view data, const std::function<void(std::string_view)>& onLine);
    bool empty() const noexcept { return buf_.empty(); }

private:
    std::string buf_;
    size_t maxLine_;
};

}  // namespace vmr::image
