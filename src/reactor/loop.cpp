#include "reactor/loop.h"

#include "base/log.h"
#include "reactor/uring_backend.h"

#include "config.h"
#if VMR_HAVE_UV
#include "reactor/uv_backend.h"
#endif

#include <poll.h>

#include <cstdlib>
#include <cstring>

namespace vmr::reactor {

// ---- operation records -------------------------------------------------------------------

namespace detail {

namespace {
size_t gLiveOps = 0;  // the reactor is single-threaded
}

Op::Op(OpKind k) noexcept : kind(k)
{
    ++gLiveOps;
}

Op::~Op()
{
    --gLiveOps;
}

size_t liveOps() noexcept
{
    return gLiveOps;
}

RecvOp::RecvOp(size_t cap) : Op(OpKind::RecvMsg), buf(new char[cap]), capacity(cap)
{
    prepare();
}

void RecvOp::prepare() noexcept
{
    iov.iov_base = buf.get();
    iov.iov_len = capacity;
    msg = msghdr{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
}

void SendOp::prepare() noexcept
{
    msg = msghdr{};
    size_t n = 0;
    for (size_t i = 0; i < chunks.size() && n < kMaxIov; ++i) {
        auto& c = chunks[i];
        if (i > 0 && !c.fds.empty()) break;  // its fds must ride on its own first byte
        if (c.remaining() == 0) continue;
        iov[n].iov_base = const_cast<char*>(c.data() + c.offset);
        iov[n].iov_len = c.remaining();
        ++n;
    }
    msg.msg_iov = iov;
    msg.msg_iovlen = n;
    if (!chunks.empty() && !chunks[0].fds.empty() && chunks[0].offset == 0) {
        size_t nfds = std::min(chunks[0].fds.size(), kMaxFds);
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        std::memset(control, 0, sizeof(control));
        cmsghdr* cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        auto* out = reinterpret_cast<int*>(CMSG_DATA(cm));
        for (size_t i = 0; i < nfds; ++i) out[i] = chunks[0].fds[i].get();
    }
}

}  // namespace detail

// ---- backend choice ---------------------------------------------------------------------

std::string_view backendName(Backend b)
{
    return b == Backend::Uring ? "uring" : "uv";
}

Result<Backend> parseBackend(std::string_view name)
{
    if (name == "uring" || name == "io_uring") return Backend::Uring;
    if (name == "uv" || name == "libuv") return Backend::Uv;
    return Error(ErrorKind::InvalidArgument, "Unknown event loop backend '" + std::string(name) + "'",
                 "Use 'uring' or 'uv'");
}

Result<std::unique_ptr<Reactor>> Reactor::create(std::optional<Backend> forced)
{
    auto& log = log::get("reactor");
    const char* how = "forced by --reactor";
    if (!forced) {
        const char* env = std::getenv("VMR_REACTOR");
        if (env != nullptr && *env != '\0') {
            auto b = parseBackend(env);
            if (!b)
                return Error(ErrorKind::InvalidArgument, "Invalid VMR_REACTOR")
                    .causedBy(std::move(b).error());
            forced = *b;
            how = "forced by VMR_REACTOR";
        }
    }
    std::unique_ptr<Reactor> r;
    if (forced == Backend::Uring || !forced) {
        auto u = UringReactor::create();
        if (u) {
            r = std::move(*u);
            if (!forced) how = "probed";
        } else if (forced) {
            return Error(ErrorKind::Unsupported, "The io_uring event loop is not available")
                .causedBy(std::move(u).error())
                .withHint("Use --reactor=uv (or VMR_REACTOR=uv)");
        } else {
            log.debug("io_uring unavailable, falling back to libuv: {}", u.error().what());
#if !VMR_HAVE_UV
            return Error(ErrorKind::Unsupported,
                         "No usable event loop: io_uring is unavailable and vmr was "
                         "built without libuv")
                .causedBy(std::move(u).error());
#endif
            how = "probed, io_uring unavailable";
        }
    }
    if (!r) {
#if VMR_HAVE_UV
        auto v = UvReactor::create();
        if (!v) return std::move(v).error();
        r = std::move(*v);
#else
        return Error(ErrorKind::Unsupported, "vmr was built without the libuv event loop",
                     "Use --reactor=uring, or rebuild with -Duv=enabled");
#endif
    }
    log.info("Event loop: {} ({})", backendName(r->backend()), how);
    return r;
}

// ---- the loop ---------------------------------------------------------------------------

Reactor::~Reactor() = default;

void Reactor::submitOp(detail::Op* op) noexcept
{
    op->inFlight = true;
    backendSubmit(op);
}

void Reactor::cancelOp(detail::Op* op) noexcept
{
    backendCancel(op);
}

void Reactor::complete(detail::Op* op, int res) noexcept
{
    op->inFlight = false;
    op->res = res;
    if (op->owner == nullptr) {
        delete op;
        return;
    }
    op->owner->onOpComplete(*op);
}

void Reactor::stop() noexcept
{
    stop_ = true;
}

void Reactor::post(std::function<void()> fn)
{
    posted_.push_back(std::move(fn));
}

void Reactor::runPosted()
{
    if (posted_.empty()) return;
    auto batch = std::move(posted_);
    posted_.clear();
    for (auto& fn : batch) fn();
}

void Reactor::fireTimers()
{
    if (timers_.empty()) return;
    auto t = Clock::now();
    // Timers armed during this pass (inside a callback) wait for the next iteration, so a
    // callback re-arming with 0 cannot spin here.
    uint64_t seqLimit = timerSeq_;
    for (;;) {
        auto it = timers_.begin();
        while (it != timers_.end() && it->first.first <= t && it->first.second >= seqLimit) ++it;
        if (it == timers_.end() || it->first.first > t) break;
        Timer* timer = it->second;
        timers_.erase(it);
        timer->key_.reset();
        timer->fire();  // may delete any timer, including this one
    }
}

Result<void> Reactor::runOnce(std::optional<Clock::time_point> limit)
{
    std::optional<std::chrono::nanoseconds> timeout;
    auto t = Clock::now();
    std::optional<Clock::time_point> wake = limit;
    if (!timers_.empty()) {
        auto first = timers_.begin()->first.first;
        if (!wake || first < *wake) wake = first;
    }
    if (wake) timeout = std::max(std::chrono::nanoseconds(0), *wake - t);
    if (!posted_.empty() || stop_) timeout = std::chrono::nanoseconds(0);
    VMR_TRY(backendWait(timeout));
    fireTimers();
    // Last, so that what completions and timers posted (coroutine resumptions) has run when
    // runOnce() returns.
    runPosted();
    return success();
}

Result<void> Reactor::run()
{
    running_ = true;
    Result<void> r;
    while (!stop_) {
        r = runOnce(std::nullopt);
        if (!r) break;
    }
    stop_ = false;
    running_ = false;
    return r;
}

Result<void> Reactor::runFor(Duration d)
{
    auto deadline = Clock::now() + d;
    running_ = true;
    Result<void> r;
    while (!stop_ && Clock::now() < deadline) {
        r = runOnce(deadline);
        if (!r) break;
    }
    stop_ = false;
    running_ = false;
    return r;
}

bool Reactor::runUntil(const std::function<bool()>& pred, Duration timeout)
{
    auto deadline = Clock::now() + timeout;
    running_ = true;
    while (!pred() && Clock::now() < deadline) {
        if (!runOnce(deadline)) break;
    }
    stop_ = false;
    running_ = false;
    return pred();
}

// ---- Timer ------------------------------------------------------------------------------

Timer::Timer(Reactor& r, std::function<void()> onFire)
    : reactor_(r), onFire_(std::make_shared<std::function<void()>>(std::move(onFire)))
{
}

Timer::~Timer()
{
    stop();
    if (destroyed_ != nullptr) *destroyed_ = true;
}

void Timer::arm(Clock::time_point deadline)
{
    disarm();
    key_.emplace(deadline, reactor_.timerSeq_++);
    reactor_.timers_.emplace(*key_, this);
}

void Timer::disarm() noexcept
{
    if (!key_) return;
    reactor_.timers_.erase(*key_);
    key_.reset();
}

void Timer::start(Duration after, Duration repeat)
{
    ++gen_;
    repeat_ = repeat;
    arm(Clock::now() + after);
}

void Timer::stop() noexcept
{
    ++gen_;
    disarm();
}

void Timer::fire() noexcept
{
    DestroyGuard guard(destroyed_);
    uint64_t gen = gen_;
    auto next = Clock::now() + repeat_;
    auto cb = onFire_;  // survives the timer's destruction inside the callback
    if (*cb) (*cb)();
    if (guard.dead()) return;
    // A repeating timer re-arms itself unless its callback restarted or stopped it.
    if (repeat_ > Duration::zero() && gen == gen_) arm(next);
}

// ---- FdWatch ----------------------------------------------------------------------------

FdWatch::FdWatch(Reactor& r, int fd, uint32_t events, std::function<void(uint32_t)> onReady)
    : reactor_(r),
      fd_(fd),
      events_(events),
      onReady_(std::make_shared<std::function<void(uint32_t)>>(std::move(onReady)))
{
    arm();
}

FdWatch::~FdWatch()
{
    stop();
    if (destroyed_ != nullptr) *destroyed_ = true;
}

void FdWatch::arm()
{
    if (events_ == 0 || poll_.inFlight()) return;
    if (!poll_) poll_.attach(reactor_, new detail::PollOp(), this);
    poll_->fd = fd_;
    poll_->pollMask = ((events_ & Readable) ? POLLIN : 0) | ((events_ & Writable) ? POLLOUT : 0);
    poll_.submit();
}

void FdWatch::update(uint32_t events)
{
    if (events == events_) return;
    events_ = events;
    poll_.reset();  // detach + cancel the poll with the old mask
    arm();
}

void FdWatch::stop() noexcept
{
    events_ = 0;
    poll_.reset();
}

void FdWatch::onOpComplete(detail::Op& op) noexcept
{
    uint32_t revents = 0;
    if (op.res < 0) {
        // The fd is unusable (EBADF...): report it as ready so the owner finds out by using it.
        revents = events_;
    } else {
        if (op.res & (POLLIN | POLLHUP | POLLERR | POLLRDHUP | POLLNVAL)) revents |= Readable;
        if (op.res & (POLLOUT | POLLERR | POLLHUP | POLLNVAL)) revents |= Writable;
        revents &= events_;
    }
    if (revents != 0 && *onReady_) {
        DestroyGuard guard(destroyed_);
        auto cb = onReady_;
        (*cb)(revents);
        if (guard.dead()) return;
    }
    arm();
}

}  // namespace vmr::reactor
