#pragma once

// cloud-hypervisor's event monitor (`--event-monitor fd=N`): a stream of pretty-printed JSON
// objects, one after another, each spread over several lines, so it is split by tracking
// JSON nesting rather than by lines. Pure: bytes in, events out.

#include "base/result.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vmr::chv {

struct Event {
    std::string source;  // "vmm", "vm", "guest", "virtio-device", ...
    std::string event;   // "booted", "paused", "panic", ...
    uint64_t secs = 0;   // timestamp (monotonic time of the VMM)
    uint32_t nanos = 0;
    std::string propertiesJson;  // "null" or a JSON object

    // "vm/booted"
    std::string name() const { return source + "/" + event; }
};

// One event object; ParseError naming what is missing.
Result<Event> parseEvent(std::string_view json);

class EventStream {
public:
    static constexpr size_t kMaxObject = 64 * 1024;

    explicit EventStream(size_t maxObject = kMaxObject) : maxObject_(maxObject) {}

    void append(std::string_view data) { buf_.append(data); }
    // The next complete event; nullopt when more bytes are needed. A ParseError (text between
    // objects that is not whitespace, a malformed object) or TooLarge leaves the stream failed:
    // every later call returns the same error.
    Result<std::optional<Event>> next();

private:
    size_t maxObject_;
    std::string buf_;
    size_t scan_ = 0;  // bytes of the current object already scanned
    int depth_ = 0;    // nesting depth at scan_
    bool inString_ = false;
    bool escape_ = false;
    std::optional<Error> failed_;
};

}  // namespace vmr::chv
