#include "reactor/stream.h"

#include "reactor/await.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vmr::reactor {

namespace {

constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);

Result<sockaddr_un> unixAddress(const std::string& path)
{
    sockaddr_un addr{};
    if (path.empty() || path.size() >= sizeof(addr.sun_path))
        return Error(
            ErrorKind::InvalidArgument,
            "Socket path must be 1 to " + std::to_string(sizeof(addr.sun_path) - 1) + " bytes long: " + path,
            "Use a shorter runtime directory");
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    return addr;
}

Error connectError(int err, const std::string& path)
{
    if (err == ENOENT)
        return Error(ErrorKind::NotFound, "No socket at " + path).causedBy(Error::fromErrno(err, "connect"));
    if (err == ECONNREFUSED)
        return Error(ErrorKind::Unavailable, "Nothing is listening on " + path)
            .causedBy(Error::fromErrno(err, "connect"));
    return Error::fromErrno(err, "Cannot connect to " + path);
}

}  // namespace

// ---- Stream -----------------------------------------------------------------------------

Stream::Stream(Reactor& r, UniqueFd fd) : reactor_(r), fd_(std::move(fd))
{
    int fl = ::fcntl(fd_.get(), F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK)) ::fcntl(fd_.get(), F_SETFL, fl | O_NONBLOCK);
    int fdfl = ::fcntl(fd_.get(), F_GETFD);
    if (fdfl >= 0 && !(fdfl & FD_CLOEXEC)) ::fcntl(fd_.get(), F_SETFD, fdfl | FD_CLOEXEC);
}

Stream::~Stream()
{
    close();
    if (destroyed_ != nullptr) *destroyed_ = true;
}

void Stream::start(Callbacks cbs)
{
    cbs_ = std::make_shared<Callbacks>(std::move(cbs));
    started_ = true;
    armRead();
}

void Stream::armRead()
{
    if (closed_ || eof_ || paused_ || !started_ || stashed_ || recv_.inFlight()) return;
    if (!recv_) recv_.attach(reactor_, new detail::RecvOp(kReadBufferSize), this);
    recv_->fd = fd_.get();
    recv_.submit();
}

void Stream::pauseReading()
{
    paused_ = true;  // an in-flight read is kept (stashed) until resumeReading()
}

void Stream::resumeReading()
{
    if (!paused_) return;
    paused_ = false;
    if (!stashed_) {
        armRead();
        return;
    }
    scope_.post(reactor_, [this] {
        if (closed_ || paused_ || !stashed_) return;
        int res = *stashed_;
        stashed_.reset();
        deliver(res);
    });
}

void Stream::onOpComplete(detail::Op& op) noexcept
{
    if (&op == recv_.get())
        handleRead(op.res);
    else
        handleWrite(op.res);
}

void Stream::handleRead(int res)
{
    if (res == -EAGAIN || res == -EINTR) {
        armRead();
        return;
    }
    if (paused_) {
        stashed_ = res;
        return;
    }
    deliver(res);
}

void Stream::deliver(int res)
{
    if (res == 0) {
        eof_ = true;
        finishEof();
        return;
    }
    if (res < 0) {
        fail(Error::fromErrno(-res, "Cannot read from the connection"));
        return;
    }
    // Hold the record (and its buffer) while callbacks run: one may close or destroy us.
    std::unique_ptr<detail::RecvOp> hold(recv_.release());
    std::vector<UniqueFd> fds;
    msghdr& msg = hold->msg;
    for (cmsghdr* cm = msg.msg_controllen > 0 ? CMSG_FIRSTHDR(&msg) : nullptr; cm != nullptr;
         cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
        size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const auto* data = reinterpret_cast<const unsigned char*>(CMSG_DATA(cm));
        for (size_t i = 0; i < n; ++i) {
            int fd;
            std::memcpy(&fd, data + i * sizeof(int), sizeof(int));
            fds.emplace_back(fd);
        }
    }
    DestroyGuard guard(destroyed_);
    auto cbs = cbs_;
    if (!fds.empty() && cbs->onFds) {
        cbs->onFds(std::move(fds));
        if (guard.dead() || closed_) return;
    }
    fds.clear();
    if (cbs->onData) {
        cbs->onData(std::string_view(hold->buf.get(), static_cast<size_t>(res)));
        if (guard.dead() || closed_) return;
    }
    if (!recv_) recv_.attach(reactor_, hold.release(), this);
    armRead();
}

void Stream::finishEof()
{
    if (closed_ || pendingBytes_ > 0 || send_.inFlight()) return;  // handleWrite calls again
    auto cbs = cbs_;
    close();
    if (cbs->onClose) cbs->onClose(nullptr);
}

void Stream::fail(Error err)
{
    if (closed_) return;
    auto cbs = cbs_;
    close();
    if (cbs->onClose) cbs->onClose(&err);
}

void Stream::enqueue(detail::Chunk c)
{
    if (closed_ || writeShut_ || (c.remaining() == 0 && c.fds.empty())) return;
    pendingBytes_ += c.remaining();
    queue_.push_back(std::move(c));
    armWrite();
}

void Stream::write(std::string data)
{
    detail::Chunk c;
    c.owned = std::move(data);
    enqueue(std::move(c));
}

void Stream::write(std::shared_ptr<const std::string> data)
{
    if (!data) return;
    detail::Chunk c;
    c.shared = std::move(data);
    enqueue(std::move(c));
}

void Stream::writeFds(std::string data, std::vector<int> fds)
{
    if (closed_ || writeShut_) return;
    detail::Chunk c;
    c.owned = data.empty() ? std::string(1, '\0') : std::move(data);  // fds need at least one byte
    for (int fd : fds) {
        int d = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (d < 0) {
            fail(Error::fromErrno(errno, "Cannot duplicate an fd to pass"));
            return;
        }
        c.fds.emplace_back(d);
    }
    if (c.fds.size() > detail::SendOp::kMaxFds) {
        fail(Error(ErrorKind::InvalidArgument,
                   "Too many fds in one message (at most " + std::to_string(detail::SendOp::kMaxFds) + ")"));
        return;
    }
    enqueue(std::move(c));
}

void Stream::armWrite()
{
    if (closed_ || send_.inFlight()) return;
    if (!send_) send_.attach(reactor_, new detail::SendOp(), this);
    auto& chunks = send_->chunks;
    while (!queue_.empty() && chunks.size() < detail::SendOp::kMaxIov) {
        if (!chunks.empty() && !queue_.front().fds.empty()) break;
        chunks.push_back(std::move(queue_.front()));
        queue_.pop_front();
    }
    if (chunks.empty()) return;
    send_->fd = fd_.get();
    send_.submit();
}

void Stream::handleWrite(int res)
{
    if (res == -EAGAIN || res == -EINTR) {
        armWrite();
        return;
    }
    if (res < 0) {
        fail(Error::fromErrno(-res, "Cannot write to the connection"));
        return;
    }
    auto& chunks = send_->chunks;
    size_t left = static_cast<size_t>(res);
    size_t done = 0;
    for (auto& c : chunks) {
        if (!c.fds.empty() && c.offset == 0 && left > 0) c.fds.clear();  // sent with the first byte
        size_t take = std::min(left, c.remaining());
        c.offset += take;
        left -= take;
        pendingBytes_ -= take;
        if (c.remaining() > 0) break;
        ++done;
    }
    chunks.erase(chunks.begin(), chunks.begin() + static_cast<std::ptrdiff_t>(done));
    if (pendingBytes_ > 0) {
        armWrite();
        return;
    }
    if (shutdownRequested_ && !writeShut_) {
        writeShut_ = true;
        ::shutdown(fd_.get(), SHUT_WR);
    }
    DestroyGuard guard(destroyed_);
    auto cbs = cbs_;
    if (cbs->onDrained) {
        cbs->onDrained();
        if (guard.dead() || closed_) return;
    }
    if (eof_) finishEof();
}

void Stream::shutdownWrite()
{
    if (closed_ || shutdownRequested_) return;
    shutdownRequested_ = true;
    if (pendingBytes_ == 0 && !send_.inFlight()) {
        writeShut_ = true;
        ::shutdown(fd_.get(), SHUT_WR);
    }
}

void Stream::close() noexcept
{
    if (closed_) return;
    closed_ = true;
    // Detach and cancel first (records live on until their completions), then close the fd.
    recv_.reset();
    send_.reset();
    queue_.clear();
    pendingBytes_ = 0;
    stashed_.reset();
    fd_.reset();
}

Result<ucred> Stream::peerCredentials() const
{
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(fd_.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return Error::fromErrno(errno, "Cannot read the peer's credentials");
    return cred;
}

// ---- Listener ---------------------------------------------------------------------------

Listener::Listener(Reactor& r, UniqueFd listening, std::function<void(UniqueFd)> onAccept)
    : reactor_(r),
      fd_(std::move(listening)),
      onAccept_(std::make_shared<std::function<void(UniqueFd)>>(std::move(onAccept))),
      backoff_(r, [this] { arm(); })
{
    arm();
}

Listener::~Listener()
{
    stop();
    if (destroyed_ != nullptr) *destroyed_ = true;
}

void Listener::stop() noexcept
{
    stopped_ = true;
    backoff_.stop();
    accept_.reset();
}

void Listener::arm()
{
    if (stopped_ || accept_.inFlight()) return;
    if (!accept_) accept_.attach(reactor_, new detail::AcceptOp(), this);
    accept_->fd = fd_.get();
    accept_.submit();
}

void Listener::onOpComplete(detail::Op& op) noexcept
{
    int res = op.res;
    if (res >= 0) {
        DestroyGuard guard(destroyed_);
        auto cb = onAccept_;
        (*cb)(UniqueFd(res));
        if (guard.dead()) return;
    } else if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
        backoff_.start(kAcceptBackoff);
        return;
    } else if (res == -EBADF || res == -EINVAL || res == -ENOTSOCK) {
        return;  // not a listening socket any more: nothing to retry
    }
    arm();
}

// ---- listenUnix / connectUnix -------------------------------------------------------------

Result<UniqueFd> listenUnix(const std::string& path, mode_t mode, int backlog)
{
    auto addr = unixAddress(path);
    if (!addr) return std::move(addr).error();
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return Error(ErrorKind::Busy, path + " exists and is not a socket",
                         "Remove it or choose another socket path");
        UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!probe) return Error::fromErrno(errno, "Cannot create a socket");
        int ret = ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr));
        if (ret == 0 || errno == EAGAIN || errno == EINPROGRESS)
            return Error(ErrorKind::Busy, "Another server is already listening on " + path,
                         "Stop it first, or use another socket path");
        if (errno != ECONNREFUSED && errno != ENOENT) return connectError(errno, path);
        if (::unlink(path.c_str()) < 0 && errno != ENOENT)
            return Error::fromErrno(errno, "Cannot remove the stale socket " + path);
    }
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return Error::fromErrno(errno, "Cannot create a socket");
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) < 0)
        return Error::fromErrno(errno, "Cannot bind " + path);
    if (::chmod(path.c_str(), mode) < 0) return Error::fromErrno(errno, "Cannot set the mode of " + path);
    if (::listen(fd.get(), backlog) < 0) return Error::fromErrno(errno, "Cannot listen on " + path);
    return fd;
}

namespace {

struct Connector final : detail::OpOwner {
    detail::OpSlot<detail::ConnectOp> op;
    Completion<int> done;
    void onOpComplete(detail::Op& o) noexcept override { done.fulfil(o.res); }
};

}  // namespace

Task<Result<UniqueFd>> connectUnix(Reactor& r, std::string path, Duration timeout)
{
    auto addr = unixAddress(path);
    if (!addr) co_return std::move(addr).error();
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) co_return Error::fromErrno(errno, "Cannot create a socket");
    auto deadline = Clock::now() + timeout;
    auto timedOut = [&] {
        return Error(ErrorKind::Timeout,
                     "Timed out after " + std::to_string(timeout.count()) + " ms connecting to " + path,
                     "Is the server overloaded or stuck?");
    };
    for (;;) {
        auto left = std::chrono::ceil<Duration>(deadline - Clock::now());
        if (left <= Duration::zero()) co_return timedOut();
        int res;
        {
            // Destroyed before fd: a timed-out connect is cancelled before the close.
            Connector c;
            c.op.attach(r, new detail::ConnectOp(), &c);
            c.op->fd = fd.get();
            c.op->addr = *addr;
            c.op->addrLen = sizeof(sockaddr_un);
            c.op.submit();
            auto done = co_await awaitWithTimeout(r, c.done, left);
            if (!done) co_return timedOut();
            res = *done;
        }
        if (res == 0) co_return std::move(fd);
        // A unix listener's backlog is full and the socket is non-blocking (io_uring reports it
        // rather than waiting): try again shortly.
        if (res != -EAGAIN) co_return connectError(-res, path);
        auto pause = std::min<Duration>(std::chrono::milliseconds(5), left);
        VMR_CO_TRY(co_await sleep(r, pause));
    }
}

}  // namespace vmr::reactor
