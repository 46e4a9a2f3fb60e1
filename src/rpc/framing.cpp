#include "rpc/framing.h"

#include <cstring>

namespace vmr::rpc {

namespace {

// A pending buffer grown by one huge line is released once that line is done.
constexpr size_t kKeepCapacity = 64 * 1024;

void deliver(std::string_view line, const std::function<void(std::string_view)>& onLine)
{
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) onLine(line);
}

}  // namespace

Result<void> LineFramer::tooLarge()
{
    pending_.clear();
    if (pending_.capacity() > kKeepCapacity) std::string().swap(pending_);
    return Error(ErrorKind::TooLarge, "Request line longer than " + std::to_string(maxLine_) + " bytes",
                 "Send less at once: a request line is limited to " + std::to_string(maxLine_) + " bytes");
}

Result<void> LineFramer::feed(std::string_view data, const std::function<void(std::string_view line)>& onLine)
{
    while (!data.empty()) {
        const void* nl = std::memchr(data.data(), '\n', data.size());
        if (nl == nullptr) {
            // Only a partial line: keep it (bounded) and wait for more.
            if (pending_.size() + data.size() > maxLine_) return tooLarge();
            pending_.append(data);
            return success();
        }
        size_t len = static_cast<size_t>(static_cast<const char*>(nl) - data.data());
        if (pending_.size() + len > maxLine_) return tooLarge();
        if (pending_.empty()) {
            // The common case: a whole line in this chunk, delivered without a copy.
            deliver(data.substr(0, len), onLine);
        } else {
            pending_.append(data.substr(0, len));
            deliver(pending_, onLine);
            pending_.clear();
            if (pending_.capacity() > kKeepCapacity) std::string().swap(pending_);
        }
        data.remove_prefix(len + 1);
    }
    return success();
}

}  // namespace vmr::rpc
