#include "reactor/uring_backend.h"

#include <cerrno>

namespace vmr::reactor {

namespace {

constexpr uint64_t kCancelTag = 1;  // records are aligned: the low bit marks a cancel's CQE

constexpr std::array kOpcodes = {
    std::pair{IORING_OP_POLL_ADD, "POLL_ADD"}, std::pair{IORING_OP_RECVMSG, "RECVMSG"},
    std::pair{IORING_OP_SENDMSG, "SENDMSG"},   std::pair{IORING_OP_ACCEPT, "ACCEPT"},
    std::pair{IORING_OP_CONNECT, "CONNECT"},   std::pair{IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
};

}  // namespace

Result<std::unique_ptr<UringReactor>> UringReactor::create()
{
    std::unique_ptr<UringReactor> r(new UringReactor());
    io_uring_params p{};
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
    p.cq_entries = 8192;
    int ret = io_uring_queue_init_params(512, &r->ring_, &p);
    if (ret == -EINVAL) {
        p = io_uring_params{};
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = 8192;
        ret = io_uring_queue_init_params(512, &r->ring_, &p);
    }
    if (ret < 0) return Error::fromErrno(-ret, "Cannot create an io_uring");
    r->ringReady_ = true;
    if (!(p.features & IORING_FEAT_EXT_ARG) || !(p.features & IORING_FEAT_NODROP))
        return Error(ErrorKind::Unsupported,
                     "The kernel's io_uring lacks EXT_ARG or NODROP (Linux 5.11+ needed)");
    io_uring_probe* probe = io_uring_get_probe_ring(&r->ring_);
    if (probe == nullptr) return Error(ErrorKind::Unsupported, "Cannot probe io_uring opcodes");
    for (auto [op, name] : kOpcodes) {
        if (!io_uring_opcode_supported(probe, op)) {
            io_uring_free_probe(probe);
            return Error(ErrorKind::Unsupported, std::string("io_uring lacks IORING_OP_") + name);
        }
    }
    io_uring_free_probe(probe);
    return r;
}

UringReactor::~UringReactor()
{
    if (!ringReady_) return;
    // Cancel what is still in flight and wait for the kernel's completions before the records
    // (and the buffers they own) go away.
    for (detail::Op* op = inflight_; op != nullptr; op = op->listNext) {
        if (op->owner != nullptr) {
            op->owner = nullptr;  // a handle outlived its reactor: a bug, but don't call into it
        }
        io_uring_sqe* sqe = getSqe();
        io_uring_prep_cancel64(sqe, reinterpret_cast<uint64_t>(op), 0);
        io_uring_sqe_set_data64(sqe, reinterpret_cast<uint64_t>(op) | kCancelTag);
        ++op->kernelRefs;
    }
    auto deadline = Clock::now() + std::chrono::seconds(2);
    while (inflight_ != nullptr && Clock::now() < deadline) {
        __kernel_timespec ts{0, 50'000'000};
        io_uring_cqe* cqe = nullptr;
        io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
        reap();
    }
    // Anything left is still owned by the kernel: leaking it is safer than freeing it.
    io_uring_queue_exit(&ring_);
}

io_uring_sqe* UringReactor::getSqe() noexcept
{
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    while (sqe == nullptr) {
        io_uring_submit(&ring_);
        sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
}

void UringReactor::link(detail::Op* op) noexcept
{
    op->listPrev = nullptr;
    op->listNext = inflight_;
    if (inflight_ != nullptr) inflight_->listPrev = op;
    inflight_ = op;
}

void UringReactor::unlink(detail::Op* op) noexcept
{
    if (op->listPrev != nullptr)
        op->listPrev->listNext = op->listNext;
    else
        inflight_ = op->listNext;
    if (op->listNext != nullptr) op->listNext->listPrev = op->listPrev;
    op->listPrev = op->listNext = nullptr;
}

void UringReactor::backendSubmit(detail::Op* op) noexcept
{
    io_uring_sqe* sqe = getSqe();
    switch (op->kind) {
        case detail::OpKind::Poll: io_uring_prep_poll_add(sqe, op->fd, op->pollMask); break;
        case detail::OpKind::RecvMsg: {
            auto* r = static_cast<detail::RecvOp*>(op);
            r->prepare();
            io_uring_prep_recvmsg(sqe, op->fd, &r->msg, MSG_CMSG_CLOEXEC);
            break;
        }
        case detail::OpKind::SendMsg: {
            auto* s = static_cast<detail::SendOp*>(op);
            s->prepare();
            io_uring_prep_sendmsg(sqe, op->fd, &s->msg, MSG_NOSIGNAL);
            break;
        }
        case detail::OpKind::Accept:
            io_uring_prep_accept(sqe, op->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            break;
        case detail::OpKind::Connect: {
            auto* c = static_cast<detail::ConnectOp*>(op);
            io_uring_prep_connect(sqe, op->fd, reinterpret_cast<sockaddr*>(&c->addr), c->addrLen);
            break;
        }
    }
    io_uring_sqe_set_data64(sqe, reinterpret_cast<uint64_t>(op));
    if (op->kernelRefs++ == 0) link(op);
}

void UringReactor::backendCancel(detail::Op* op) noexcept
{
    io_uring_sqe* sqe = getSqe();
    io_uring_prep_cancel64(sqe, reinterpret_cast<uint64_t>(op), 0);
    io_uring_sqe_set_data64(sqe, reinterpret_cast<uint64_t>(op) | kCancelTag);
    ++op->kernelRefs;
    // Submit now: the original SQE (possibly still queued) must reach the kernel while its fd
    // number is still the one it was meant for; the owner may close the fd right after this.
    io_uring_submit(&ring_);
}

Result<void> UringReactor::backendWait(std::optional<std::chrono::nanoseconds> timeout)
{
    int ret;
    if (timeout && timeout->count() == 0) {
        ret = io_uring_submit(&ring_);
    } else {
        io_uring_cqe* cqe = nullptr;
        __kernel_timespec ts{};
        if (timeout) {
            ts.tv_sec = timeout->count() / 1'000'000'000;
            ts.tv_nsec = timeout->count() % 1'000'000'000;
        }
        ret = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, timeout ? &ts : nullptr, nullptr);
    }
    if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EBUSY && ret != -EAGAIN)
        return Error::fromErrno(-ret, "Cannot wait for io_uring completions");
    reap();
    return success();
}

void UringReactor::reap() noexcept
{
    for (;;) {
        unsigned n = io_uring_peek_batch_cqe(&ring_, cqes_.data(), kBatch);
        if (n == 0) return;
        // Copy out and release the CQ slots before dispatch: handlers submit new work.
        for (unsigned i = 0; i < n; ++i) batch_[i] = Cqe{cqes_[i]->user_data, cqes_[i]->res};
        io_uring_cq_advance(&ring_, n);
        for (unsigned i = 0; i < n; ++i) handleCqe(batch_[i].userData, batch_[i].res);
        if (n < kBatch) return;
    }
}

void UringReactor::handleCqe(uint64_t userData, int res) noexcept
{
    auto* op = reinterpret_cast<detail::Op*>(userData & ~kCancelTag);
    bool last = --op->kernelRefs == 0;
    if (last) unlink(op);
    if (userData & kCancelTag) {
        // The cancel's own CQE; the record goes once its original CQE has come too.
        if (last && !op->inFlight) delete op;
        return;
    }
    if (op->owner == nullptr && !last) {
        op->inFlight = false;  // detached; its cancel's CQE is still due
        return;
    }
    complete(op, res);  // calls the owner, or frees a detached record
}

}  // namespace vmr::reactor
