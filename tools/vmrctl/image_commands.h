#pragma once

// vmrctl image pull|list|inspect|rm: parsing (pure), output, and the pull's progress display,
// a bar on a terminal (percent, bytes, rate, ETA) and plain lines otherwise.

#include "base/result.h"
#include "client.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace vmr::ctl {

struct ImageInvocation {
    std::string command;  // pull, list, inspect, rm
    std::string method;   // image.pull, ...
    std::string params;   // JSON object
    std::string url;      // pull: the URL (progress events are matched on it)
};

// args[0] is "image". A usage problem is ErrorKind::InvalidArgument with the message to print;
// the caller exits 2.
Result<ImageInvocation> parseImageCommand(const std::vector<std::string>& args);

// "1.5 GiB", "512 B"
std::string formatBytes(uint64_t n);

// Turns progress samples into a rate and an ETA, and formats them.
class ProgressMeter {
public:
    using Clock = std::chrono::steady_clock;
    explicit ProgressMeter(Clock::time_point start) : start_(start) {}
    void update(uint64_t received, std::optional<uint64_t> total, Clock::time_point now);
    // " 42%  1.2 GiB / 2.9 GiB  35.0 MiB/s  ETA 0:51" (no percent or ETA when the size is unknown)
    std::string line() const;
    // The same with a bar of `width` cells in front, for a terminal.
    std::string bar(size_t width) const;
    double rate() const noexcept { return rate_; }  // bytes per second

private:
    Clock::time_point start_;
    Clock::time_point last_{};
    uint64_t lastBytes_ = 0;
    uint64_t received_ = 0;
    std::optional<uint64_t> total_;
    double rate_ = 0;  // smoothed
};

// The human output of image.list (NAME SIZE FORMAT PATH), image.inspect and image.pull.
int printImageList(const std::string& resultJson);
int printImageInspect(const std::string& resultJson);
int printImagePulled(const std::string& resultJson);

struct ImageIo {
    std::function<Result<Client>()> connect;       // a new connection to vmrd
    std::function<int(const Error&)> reportError;  // prints it, returns the exit code
    bool json = false;                             // print results verbatim
};

// Run an image command; returns vmrctl's exit code.
int runImageCommand(const ImageInvocation& inv, const ImageIo& io);

}  // namespace vmr::ctl
