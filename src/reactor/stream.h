#pragma once

// Unix stream sockets on the reactor: Stream (a connection), Listener, listenUnix(),
// connectUnix().

#include "base/fd.h"
#include "base/result.h"
#include "reactor/loop.h"
#include "reactor/scope.h"
#include "reactor/task.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmr::reactor {

// A connected stream socket; owns its fd (made non-blocking and close-on-exec). One read
// buffer (64 KiB) is reused for every read; queued writes go out several per sendmsg().
// Peer EOF stops reading; the stream closes (and onClose(nullptr) runs) once the queued
// writes have been flushed, so replies to a half-closed peer are not lost.
class Stream : private detail::OpOwner {
public:
    struct Callbacks {
        std::function<void(std::string_view data)> onData;     // bytes as they arrive
        std::function<void(std::vector<UniqueFd> fds)> onFds;  // SCM_RIGHTS, before the bytes they came with
        std::function<void(const Error* err)> onClose;         // peer EOF (nullptr) or error; called once
        std::function<void()> onDrained;                       // the write queue became empty
    };

    static constexpr size_t kReadBufferSize = 64 * 1024;

    Stream(Reactor& r, UniqueFd fd);
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;
    // Cancels everything; no callback runs after it returns.
    ~Stream() override;

    void start(Callbacks cbs);
    void pauseReading();
    void resumeReading();
    void write(std::string data);
    void write(std::shared_ptr<const std::string> data);
    // Pass fds with SCM_RIGHTS along with data (which must not be empty); they are dup'ed here
    // and kept until sent.
    void writeFds(std::string data, std::vector<int> fds);
    size_t pendingWriteBytes() const noexcept { return pendingBytes_; }
    // After the queued data is flushed, shutdown(SHUT_WR).
    void shutdownWrite();
    // Close now, drop the queue, no more callbacks.
    void close() noexcept;
    int fd() const noexcept { return fd_.get(); }
    bool closed() const noexcept { return closed_; }
    Result<ucred> peerCredentials() const;

private:
    void onOpComplete(detail::Op& op) noexcept override;
    void armRead();
    void handleRead(int res);
    void deliver(int res);
    void armWrite();
    void handleWrite(int res);
    void enqueue(detail::Chunk c);
    void fail(Error err);
    void finishEof();

    Reactor& reactor_;
    UniqueFd fd_;
    // Shared so that a callback that destroys the stream keeps its own closure alive.
    std::shared_ptr<Callbacks> cbs_ = std::make_shared<Callbacks>();
    // Operation records: owned here while idle, by the backend while in flight.
    detail::OpSlot<detail::RecvOp> recv_;
    detail::OpSlot<detail::SendOp> send_;
    // Queued writes after those the send record holds.
    std::deque<detail::Chunk> queue_;
    size_t pendingBytes_ = 0;
    std::optional<int> stashed_;  // a read that completed while paused (bytes in recv_'s buffer)
    bool started_ = false;
    bool paused_ = false;
    bool eof_ = false;
    bool shutdownRequested_ = false;
    bool writeShut_ = false;
    bool closed_ = false;
    bool* destroyed_ = nullptr;
    TaskScope scope_;  // posted work
};

// Accepts on a listening socket it owns; each connection arrives non-blocking and CLOEXEC.
class Listener : private detail::OpOwner {
public:
    Listener(Reactor& r, UniqueFd listening, std::function<void(UniqueFd conn)> onAccept);
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;
    ~Listener() override;
    void stop() noexcept;
    int fd() const noexcept { return fd_.get(); }

private:
    void onOpComplete(detail::Op& op) noexcept override;
    void arm();

    Reactor& reactor_;
    UniqueFd fd_;
    std::shared_ptr<std::function<void(UniqueFd)>> onAccept_;  // shared: see Stream::cbs_
    detail::OpSlot<detail::AcceptOp> accept_;
    Timer backoff_;  // out of fds: retry later instead of spinning
    bool stopped_ = false;
    bool* destroyed_ = nullptr;
};

// Create, bind and listen on a unix socket path. A stale socket file is removed only if nothing
// answers on it; a live server there is ErrorKind::Busy. The socket file gets `mode`.
Result<UniqueFd> listenUnix(const std::string& path, mode_t mode, int backlog = 512);

// Connect to a unix socket path within `timeout`.
Task<Result<UniqueFd>> connectUnix(Reactor& r, std::string path, Duration timeout);

}  // namespace vmr::reactor
