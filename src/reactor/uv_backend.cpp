#include "reactor/uv_backend.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <optional>

namespace vmr::reactor {

namespace {

enum UvState : uint8_t { kIdle = 0, kWaiting = 1, kCompleted = 2, kRetry = 3 };

constexpr auto kConnectRetry = std::chrono::milliseconds(5);

int wantedEvents(const detail::Op* op)
{
    switch (op->kind) {
        case detail::OpKind::Poll:
            return ((op->pollMask & POLLIN) ? UV_READABLE : 0) | ((op->pollMask & POLLOUT) ? UV_WRITABLE : 0);
        case detail::OpKind::RecvMsg:
        case detail::OpKind::Accept: return UV_READABLE;
        case detail::OpKind::SendMsg:
        case detail::OpKind::Connect: return UV_WRITABLE;
    }
    return 0;
}

// A non-blocking syscall, retried on EINTR: its result (a count or an fd) or -errno; nullopt
// when it would block.
template <typename Call>
std::optional<int> nonBlocking(Call call)
{
    ssize_t n;
    do n = call();
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return std::nullopt;
    return n < 0 ? -errno : static_cast<int>(n);
}

}  // namespace

Result<std::unique_ptr<UvReactor>> UvReactor::create()
{
    std::unique_ptr<UvReactor> r(new UvReactor());
    int ret = uv_loop_init(&r->loop_);
    if (ret < 0) return Error::fromErrno(-ret, "Cannot create a libuv loop");
    r->loopReady_ = true;
    uv_async_init(&r->loop_, &r->keepAlive_, [](uv_async_t*) {});
    uv_timer_init(&r->loop_, &r->waitTimer_);
    return r;
}

UvReactor::~UvReactor()
{
    if (!loopReady_) return;
    for (auto& [fd, p] : polls_) {
        for (detail::Op* op = p->head; op != nullptr;) {
            detail::Op* next = op->listNext;
            delete op;
            op = next;
        }
        p->head = p->tail = nullptr;
        uv_close(reinterpret_cast<uv_handle_t*>(&p->handle),
                 [](uv_handle_t* h) { delete static_cast<FdPoll*>(h->data); });
    }
    polls_.clear();
    for (auto* op : completed_) delete op;
    for (auto* op : connectRetry_) delete op;
    uv_close(reinterpret_cast<uv_handle_t*>(&keepAlive_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&waitTimer_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);  // runs the close callbacks
    uv_loop_close(&loop_);
}

bool UvReactor::tryOp(detail::Op* op, int uvEvents) noexcept
{
    std::optional<int> res;  // nullopt: not ready yet
    switch (op->kind) {
        case detail::OpKind::Poll: {
            int rev = ((uvEvents & UV_READABLE) ? POLLIN : 0) | ((uvEvents & UV_WRITABLE) ? POLLOUT : 0);
            rev &= static_cast<int>(op->pollMask);
            if (rev != 0) res = rev;
            break;
        }
        case detail::OpKind::RecvMsg: {
            auto* r = static_cast<detail::RecvOp*>(op);
            r->prepare();
            res = nonBlocking([&] { return ::recvmsg(op->fd, &r->msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC); });
            break;
        }
        case detail::OpKind::SendMsg: {
            auto* s = static_cast<detail::SendOp*>(op);
            s->prepare();
            res = nonBlocking([&] { return ::sendmsg(op->fd, &s->msg, MSG_DONTWAIT | MSG_NOSIGNAL); });
            break;
        }
        case detail::OpKind::Accept:
            res = nonBlocking(
                [&] { return ::accept4(op->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC); });
            break;
        case detail::OpKind::Connect: {
            int err = 0;
            socklen_t len = sizeof(err);
            if (::getsockopt(op->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
            res = -err;
            break;
        }
    }
    if (!res) return false;
    op->res = *res;
    return true;
}

void UvReactor::finish(detail::Op* op) noexcept
{
    op->uvState = kCompleted;
    completed_.push_back(op);
}

void UvReactor::startConnect(detail::ConnectOp* op) noexcept
{
    int ret;
    do ret = ::connect(op->fd, reinterpret_cast<sockaddr*>(&op->addr), op->addrLen);
    while (ret < 0 && errno == EINTR);
    if (ret == 0) {
        op->res = 0;
        finish(op);
    } else if (errno == EINPROGRESS) {
        op->started = true;
        addWaiter(op);
    } else if (errno == EAGAIN) {
        // A unix socket's backlog is full: connect() has no "in progress" state; try again soon.
        op->uvState = kRetry;
        connectRetry_.push_back(op);
    } else {
        op->res = -errno;
        finish(op);
    }
}

void UvReactor::backendSubmit(detail::Op* op) noexcept
{
    switch (op->kind) {
        case detail::OpKind::Poll: addWaiter(op); return;
        case detail::OpKind::Connect: startConnect(static_cast<detail::ConnectOp*>(op)); return;
        default:
            // Try at once: a stream usually has data or buffer space; the completion is still
            // dispatched later, never inside the caller.
            if (tryOp(op, UV_READABLE | UV_WRITABLE))
                finish(op);
            else
                addWaiter(op);
    }
}

void UvReactor::addWaiter(detail::Op* op) noexcept
{
    FdPoll* p;
    auto it = polls_.find(op->fd);
    if (it != polls_.end()) {
        p = it->second;
    } else {
        p = new FdPoll();
        p->self = this;
        p->fd = op->fd;
        int ret = uv_poll_init(&loop_, &p->handle, op->fd);
        if (ret < 0) {
            delete p;  // never initialised: no close callback
            op->res = ret;
            finish(op);
            return;
        }
        p->handle.data = p;
        polls_.emplace(op->fd, p);
    }
    op->uvState = kWaiting;
    op->listNext = nullptr;
    op->listPrev = p->tail;
    if (p->tail != nullptr)
        p->tail->listNext = op;
    else
        p->head = op;
    p->tail = op;
    updatePoll(p);
}

void UvReactor::removeWaiter(FdPoll* p, detail::Op* op) noexcept
{
    if (op->listPrev != nullptr)
        op->listPrev->listNext = op->listNext;
    else
        p->head = op->listNext;
    if (op->listNext != nullptr)
        op->listNext->listPrev = op->listPrev;
    else
        p->tail = op->listPrev;
    op->listPrev = op->listNext = nullptr;
    op->uvState = kIdle;
}

void UvReactor::updatePoll(FdPoll* p) noexcept
{
    int events = 0;
    for (detail::Op* op = p->head; op != nullptr; op = op->listNext) events |= wantedEvents(op);
    if (events == 0) {
        // Stop now (the fd may be closed right after), free in the close callback.
        polls_.erase(p->fd);
        uv_close(reinterpret_cast<uv_handle_t*>(&p->handle),
                 [](uv_handle_t* h) { delete static_cast<FdPoll*>(h->data); });
        return;
    }
    if (events == p->events) return;
    p->events = events;
    int ret = uv_poll_start(&p->handle, events, &UvReactor::onPoll);
    if (ret < 0) {
        // Not pollable (a regular file...): fail everything waiting on it.
        while (p->head != nullptr) {
            detail::Op* op = p->head;
            removeWaiter(p, op);
            op->res = op->kind == detail::OpKind::Poll ? POLLERR : ret;
            finish(op);
        }
        updatePoll(p);
    }
}

void UvReactor::onPoll(uv_poll_t* h, int status, int events)
{
    auto* p = static_cast<FdPoll*>(h->data);
    UvReactor* self = p->self;
    if (status < 0) events = UV_READABLE | UV_WRITABLE;  // let each operation find the error itself
    for (detail::Op* op = p->head; op != nullptr;) {
        detail::Op* next = op->listNext;
        if ((events & wantedEvents(op)) != 0 && self->tryOp(op, events)) {
            self->removeWaiter(p, op);
            self->finish(op);
        }
        op = next;
    }
    self->updatePoll(p);
}

void UvReactor::backendCancel(detail::Op* op) noexcept
{
    switch (op->uvState) {
        case kWaiting: {
            // Nothing is in the kernel: the record can go now; the uv_poll_t is closed (and
            // freed in its close callback) if nobody else waits on the fd.
            auto it = polls_.find(op->fd);
            if (it != polls_.end()) {
                removeWaiter(it->second, op);
                updatePoll(it->second);
            }
            delete op;
            break;
        }
        case kRetry:
            connectRetry_.erase(std::find(connectRetry_.begin(), connectRetry_.end(), op));
            delete op;
            break;
        default: break;  // completed: freed when its completion is dispatched
    }
}

Result<void> UvReactor::backendWait(std::optional<std::chrono::nanoseconds> timeout)
{
    if (!completed_.empty()) timeout = std::chrono::nanoseconds(0);
    if (!connectRetry_.empty() && (!timeout || *timeout > kConnectRetry)) timeout = kConnectRetry;
    if (timeout && timeout->count() == 0) {
        uv_run(&loop_, UV_RUN_NOWAIT);
    } else {
        if (timeout) {
            auto ms = std::chrono::ceil<std::chrono::milliseconds>(*timeout).count();
            uv_update_time(&loop_);
            // The timer may already be due when uv_run() runs its timers, before it polls;
            // a no-op callback would then leave no timer and poll would block forever.
            // uv_stop() makes that poll return at once instead.
            uv_timer_start(
                &waitTimer_, [](uv_timer_t* t) { uv_stop(t->loop); }, static_cast<uint64_t>(ms), 0);
        }
        uv_run(&loop_, UV_RUN_ONCE);
        uv_timer_stop(&waitTimer_);
    }
    if (!connectRetry_.empty()) {
        auto retry = std::move(connectRetry_);
        connectRetry_.clear();
        for (auto* op : retry) startConnect(op);
    }
    dispatching_.swap(completed_);
    for (auto* op : dispatching_) {
        op->uvState = kIdle;
        complete(op, op->res);
    }
    dispatching_.clear();
    return success();
}

}  // namespace vmr::reactor
