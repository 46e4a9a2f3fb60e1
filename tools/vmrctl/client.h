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
    // Connect to the daemon's socket. Unavailable when nothing listens there; PermissionDenied
    // (naming the socket and its group) when its mode keeps this user out.
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

    // After a call that turned the connection into a byte stream (vm.console): the socket, made
    // blocking, and the bytes that came after the reply. The client is empty afterwards.
    struct Stream {
        UniqueFd fd;
        std::string early;
    };
    Stream release() &&;

private:
    Client(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
    Result<void> sendAll(std::string_view data);
    // vmrd refuses a peer it does not serve with one error line (id null), then closes: when a
    // send fails, that line (if it came) says why.
    std::optional<Error> refusal();
    // Read one line; nullopt at EOF.
    Result<std::optional<std::string>> readLine(std::optional<std::chrono::milliseconds> timeout);

    UniqueFd fd_;
    std::string path_;
    std::string buf_;
    uint64_t nextId_ = 1;
};

// Connect to a vmrd that serves many users (the system one) at `socket`. When that socket keeps
// this user out (EACCES), its read-only socket next to it is tried; when that fails too (or is
// not there), PermissionDenied naming the socket, with the groups to join in the hint.
Result<Client> connectShared(const std::string& socket, std::chrono::milliseconds timeout);

// vmrctl's own folder, where the user vmrd it starts keeps its socket and log and where
// `vmrctl ssh` pins host keys: $XDG_RUNTIME_DIR/vmr, else /tmp/vmr-<uid>.
std::string runtimeDir();

// That folder, checked before anything in it is used: anyone can make /tmp/vmr-<uid> first.
// It must be a real directory of this user's with mode 0700 (base/files.h, ensurePrivateDir);
// with `create` a missing one is made, without it a missing one is NotFound. One of this user's
// that others may read but not write in is narrowed to 0700; any other folder that fails the
// checks is PermissionDenied, and is left as it is.
Result<void> checkRuntimeDir(const std::string& dir, bool create);

}  // namespace vmr::ctl
