#pragma once

// QMP wire messages: a pure parser for what QEMU sends (greeting, return, error, event), the
// command encoder, and the line splitter that frames QEMU's output. No sockets here; the
// client (client.h) drives these. See docs/qmp.md.

#include "base/result.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace vmr::qmp {

struct Version {
    int64_t major = 0;
    int64_t minor = 0;
    int64_t micro = 0;
    std::string package;  // free text, e.g. "Debian 1:7.2+dfsg-7"
};

// {"QMP": {"version": {"qemu": {...}, "package": ...}, "capabilities": [...]}}
struct Greeting {
    Version version;
    std::vector<std::string> capabilities;
};

// {"return": <any>, "id": <any>}
struct Return {
    std::string json;               // the value of "return", as JSON text
    std::optional<std::string> id;  // the echoed id as JSON text; none when absent
};

// {"error": {"class": ..., "desc": ...}, "id": <any>}. QEMU answers a request it could not
// parse with an error that has no id.
struct ErrorReply {
    std::string errorClass;  // GenericError, CommandNotFound, DeviceNotFound...
    std::string desc;        // human text; never parsed
    std::optional<std::string> id;
};

struct Timestamp {
    int64_t seconds = 0;
    int64_t microseconds = 0;
};

// {"event": NAME, "data": {...}, "timestamp": {"seconds": N, "microseconds": N}}
struct Event {
    std::string name;
    std::string data = "{}";  // the value of "data" as JSON text; "{}" when the event has none
    Timestamp timestamp;
};

using Message = std::variant<Greeting, Return, ErrorReply, Event>;

// Classify and decode one message (one line of QEMU output). Unknown keys are ignored, as
// the protocol asks; anything else wrong is a ParseError whose message names the problem.
Result<Message> parseMessage(std::string_view json);

// One command object, without a line terminator. argumentsJson and idJson are JSON text
// inserted verbatim (the caller validates them, see validateArguments); either may be empty
// to leave the member out. The command name is escaped.
std::string encodeCommand(std::string_view execute, std::string_view argumentsJson = {},
                          std::string_view idJson = {});

// Arguments of a command must be one JSON object (empty text means none). InvalidArgument
// otherwise, so a caller's typo never reaches QEMU (whose answer to bad JSON has no id).
Result<void> validateArguments(std::string_view argumentsJson);

// The ErrorKind a QMP error class maps to (CommandNotFound → Unsupported...).
ErrorKind errorKindForClass(std::string_view errorClass) noexcept;

// Events vmr knows about (NOTES.md, "Events a VM manager should handle"); others are logged at
// debug and still delivered.
bool isKnownEvent(std::string_view name) noexcept;

// Splits QEMU's output into lines. QEMU ends each message with "\r\n"; "\n" alone is accepted
// too, and blank lines are skipped. A line longer than the limit is a TooLarge error, after
// which the splitter stays failed (the stream cannot be resynchronised safely).
class LineSplitter {
public:
    static constexpr size_t kMaxLine = 16 * 1024 * 1024;  // query-qmp-schema is ~200 KiB; be generous

    explicit LineSplitter(size_t maxLine = kMaxLine) : maxLine_(maxLine) {}

    void append(std::string_view data);
    // The next complete line (without its terminator), nullopt when none is buffered yet.
    // The view is valid until the next call to append() or next().
    Result<std::optional<std::string_view>> next();
    size_t buffered() const noexcept { return buf_.size() - pos_; }

private:
    std::string buf_;
    size_t pos_ = 0;   // start of the first unconsumed line
    size_t scan_ = 0;  // where the search for '\n' resumes (everything before has none)
    size_t maxLine_;
    bool failed_ = false;
};

}  // namespace vmr::qmp
