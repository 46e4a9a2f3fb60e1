#pragma once

// HTTP/1.1 as cloud-hypervisor's API server speaks it (docs/chv.md): a request writer and an
// incremental message parser (status or request line, headers, Content-Length and chunked
// bodies), with every size bounded. Pure: no I/O, so it is fuzzed and tested without sockets.
// The parser reads responses for the API client and requests for tests/fakes/fake-chv.

#include "base/result.h"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmr::chv::http {

struct Header {
    std::string name;
    std::string value;
};

// A parsed request or response; the fields of the other kind stay empty.
struct Message {
    // Request.
    std::string method;
    std::string target;
    // Response.
    int status = 0;
    std::string reason;

    int versionMinor = 1;  // HTTP/1.<minor>
    std::vector<Header> headers;
    std::string body;

    // The value of the first header of that name (case-insensitive).
    std::optional<std::string_view> header(std::string_view name) const;
};

struct Limits {
    size_t maxHeadBytes = 16 * 1024;   // start line + headers (and chunked trailers)
    size_t maxHeaders = 64;            // header lines
    size_t maxBody = 8 * 1024 * 1024;  // decoded body
    size_t maxChunkLine = 256;         // a chunk-size line with its extensions
};

class Parser {
public:
    enum class Kind { Request, Response };

    explicit Parser(Kind kind, Limits limits = {});

    // Buffer bytes and parse as far as they go. True once a whole message is in: take() it.
    // Bytes after that message stay buffered for the next one (feed({}) parses them). A
    // ParseError names what is malformed; TooLarge names the limit that was passed. After an
    // error the parser is unusable.
    Result<bool> feed(std::string_view data);
    // The peer closed the connection: a response without a length ends here. True when that
    // completes the message; an error when the peer stopped in the middle of one.
    Result<bool> finish();
    // The complete message; the parser starts on the next one.
    Message take();
    // Some bytes of a message have arrived (an EOF now would cut it short).
    bool started() const noexcept { return state_ != State::StartLine || pos_ < buf_.size(); }

private:
    enum class State {
        StartLine,
        Headers,
        Body,
        UntilEof,
        ChunkSize,
        ChunkData,
        ChunkEnd,
        Trailers,
        Done,
        Failed
    };

    Result<bool> parse();
    // The next line (without CRLF/LF) if a whole one is buffered; a TooLarge error when more
    // than `limit` bytes arrived without a line end.
    Result<std::optional<std::string_view>> line(size_t limit, std::string_view what);
    Result<void> startLine(std::string_view l);
    Result<void> headerLine(std::string_view l);
    Result<void> endOfHead();
    Result<void> chunkSize(std::string_view l);
    Error fail(Error e);
    void compact();

    Kind kind_;
    Limits limits_;
    std::string buf_;
    size_t pos_ = 0;  // first unparsed byte of buf_
    State state_ = State::StartLine;
    Message msg_;
    size_t headBytes_ = 0;
    size_t remaining_ = 0;  // body or chunk bytes still to read
};

// A request with Host, Accept, Content-Type (when there is a body), Content-Length and
// `Connection: close` (one request per connection). InvalidArgument when the method or the
// target holds a byte that would break the request line.
Result<std::string> encodeRequest(std::string_view method, std::string_view target,
                                  std::string_view body = {});

// A response as cloud-hypervisor's server writes one (for fake-chv and tests): a JSON body
// when not empty, Content-Length always.
std::string encodeResponse(int status, std::string_view body = {}, bool keepAlive = false);

std::string_view reasonPhrase(int status) noexcept;

// The error chain of a non-2xx answer: cloud-hypervisor sends a JSON array of strings,
// outermost error first. Anything else gives the body itself (trimmed and cut at 512 bytes) as
// one entry, or nothing when it is empty.
std::vector<std::string> errorChain(std::string_view body);

}  // namespace vmr::chv::http
