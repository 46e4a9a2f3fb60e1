#pragma once

// A small blocking JSON-RPC client for vmrctl: one connection, one request at a time,
// notifications read as they come. vmrctl is a short-lived process, so blocking I/O with
// poll() timeouts keeps it tiny; the daemon is the one that must never block.

#include "base/fd.h"
#include "base/result.h"
#include "rpc/protocol.h"

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace vmr::ctl {

class Client {
public:
    // Connect to the daemon's socket. Unavailable when nothing listens there.
    static Result<Client> connect(const std::string& path, std::chrono::milliseconds timeout);

    // Send a request and wait for its response; notifications that arrive meanwhile (progress,
    // output) go to `onNotification`, or are dropped without one.
    // Returns the raw JSON of `result`, or the daemon's error (kind, message, hint).
    using NotificationFn = std::function<void(const rpc::Notification&)>;
    Result<std::string> call(std::string_view method, std::string_view paramsJson,
                             std::chrono::milliseconds timeout = std::chrono::seconds(60),
                             const NotificationFn& onNotification = nullptr);

    // Next notification (for `vmrctl events`); nullopt when the daemon closed the connection.
    Result<std::optional<rpc::Notification>> nextNotification(
        std::optional<std::chrono::milliseconds> timeout);

    const std::string& path() const noexcept { return path_; }

private:
    Client(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
    Result<void> sendAll(std::string_view data);
    // Read one line; nullopt at EOF.
    Result<std::optional<std::string>> readLine(std::optional<std::chrono::milliseconds> timeout);

    UniqueFd fd_;
    std::string path_;
    std::string buf_;
    uint64_t nextId_ = 1;
};

}  // namespace vmr::ctl
