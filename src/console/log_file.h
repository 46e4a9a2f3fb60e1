#pragma once

// The console log vmrd writes itself, for hypervisors that keep none (cloud-hypervisor): every
// byte of the serial stream appended once, the file capped in size with one rotation
// (console.log -> console.log.1). QEMU writes its own (chardev logfile=) and needs none.

#include "base/fd.h"
#include "base/result.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace vmr::console {

class LogFile {
public:
    // maxBytes: the size past which the file is rotated (a single write larger than that still
    // goes whole into a fresh file). Opens (creates, 0640) and appends to `path`.
    static Result<LogFile> open(std::string path, uint64_t maxBytes);

    LogFile(LogFile&&) noexcept = default;
    LogFile& operator=(LogFile&&) noexcept = default;

    Result<void> append(std::string_view data);

    const std::string& path() const noexcept { return path_; }
    uint64_t size() const noexcept { return size_; }
    uint64_t rotations() const noexcept { return rotations_; }

private:
    LogFile(std::string path, uint64_t maxBytes, UniqueFd fd, uint64_t size)
        : path_(std::move(path)), maxBytes_(maxBytes), fd_(std::move(fd)), size_(size)
    {
    }
    Result<void> rotate();

    std::string path_;
    uint64_t maxBytes_;
    UniqueFd fd_;
    uint64_t size_;
    uint64_t rotations_ = 0;
};

}  // namespace vmr::console
