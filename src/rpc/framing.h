#pragma once

// Line framing for the control socket: one JSON text per '\n'-terminated line.

#include "base/result.h"

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace vmr::rpc {

inline constexpr size_t kMaxLineBytes = size_t{1} << 20;  // 1 MiB, the documented limit

// Splits a byte stream into lines, holding at most one partial line (bounded by maxLine).
// Each input byte is scanned once, so a long line arriving in many small pieces costs O(n).
class LineFramer {
public:
    explicit LineFramer(size_t maxLine = kMaxLineBytes) : maxLine_(maxLine) {}

    // Calls onLine for each complete line, without its '\n' and a '\r' before it; empty lines
    // are skipped. A line is a view valid only during the call. Returns a TooLarge error as
    // soon as a line (or the pending part of one) exceeds maxLine bytes; the pending bytes are
    // dropped and the caller is expected to reply with an error and close the connection.
    Result<void> feed(std::string_view data, const std::function<void(std::string_view line)>& onLine);

    // Bytes of the pending partial line.
    size_t buffered() const noexcept { return pending_.size(); }
    size_t maxLine() const noexcept { return maxLine_; }

    // Drop the pending partial line.
    void reset() noexcept { pending_.clear(); }

private:
    Result<void> tooLarge();

    size_t maxLine_;
    std::string pending_;  // the partial line received so far (no '\n' in it)
};

}  // namespace vmr::rpc
