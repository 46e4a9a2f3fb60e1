#pragma once

// Internal to the reactor layer: one-shot operation records shared by both backends.
//
// An Op is a request (libuv's word): it owns every buffer the kernel touches (the msghdr,
// iovecs, control buffer, data, socket address) until the backend reports its final
// completion. A handle (Stream, Listener, FdWatch, Child, SignalSet) owns its idle records
// through an OpSlot; while a record is in flight the backend holds it too. Cancelling detaches
// the owner first (no callback afterwards) and leaves deletion to the backend, which deletes
// the record only after the kernel's own completion for it (STYLE.md, practice 3).

#include "base/fd.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace vmr::reactor {

class Reactor;

namespace detail {

enum class OpKind : uint8_t { Poll, RecvMsg, SendMsg, Accept, Connect };

struct Op;

// Receives completions of the records it owns. Called from dispatch only, never from
// submitOp()/cancelOp().
class OpOwner {
public:
    virtual ~OpOwner() = default;
    virtual void onOpComplete(Op& op) noexcept = 0;
};

struct Op {
    explicit Op(OpKind k) noexcept;
    Op(const Op&) = delete;
    Op& operator=(const Op&) = delete;
    virtual ~Op();

    const OpKind kind;
    int fd = -1;
    uint32_t pollMask = 0;     // Poll: POLLIN/POLLOUT wanted
    int res = 0;               // Poll: revents; others: bytes, new fd, 0, or -errno
    OpOwner* owner = nullptr;  // nullptr once detached: the backend deletes the record
    bool inFlight = false;     // submitted and its completion not yet dispatched

    // Backend bookkeeping.
    int kernelRefs = 0;      // io_uring: CQEs still expected (the op's and its cancel's)
    uint8_t uvState = 0;     // libuv: waiting / completed
    Op* listPrev = nullptr;  // detached list / libuv per-fd waiter list
    Op* listNext = nullptr;
};

// Readiness of one fd (POLL_ADD / uv_poll_t).
struct PollOp final : Op {
    PollOp() noexcept : Op(OpKind::Poll) {}
};

// recvmsg into a buffer the record owns and reuses; receives SCM_RIGHTS.
struct RecvOp final : Op {
    static constexpr size_t kMaxFds = 32;
    explicit RecvOp(size_t capacity);
    void prepare() noexcept;  // reset msghdr fields the kernel rewrote

    std::unique_ptr<char[]> buf;
    size_t capacity;
    msghdr msg{};
    iovec iov{};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
};

// One piece of the write queue: bytes it owns or shares, and fds to pass with its first byte.
struct Chunk {
    std::string owned;
    std::shared_ptr<const std::string> shared;
    size_t offset = 0;
    std::vector<UniqueFd> fds;

    const char* data() const noexcept { return shared ? shared->data() : owned.data(); }
    size_t size() const noexcept { return shared ? shared->size() : owned.size(); }
    size_t remaining() const noexcept { return size() - offset; }
};

// sendmsg of several queued chunks at once; the record owns the chunks while in flight.
struct SendOp final : Op {
    static constexpr size_t kMaxIov = 64;
    static constexpr size_t kMaxFds = RecvOp::kMaxFds;
    SendOp() noexcept : Op(OpKind::SendMsg) {}
    // Build msg/iov from chunks (fds only from the first chunk; stops before a later chunk with fds).
    void prepare() noexcept;

    std::vector<Chunk> chunks;
    msghdr msg{};
    iovec iov[kMaxIov]{};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
};

struct AcceptOp final : Op {
    AcceptOp() noexcept : Op(OpKind::Accept) {}
};

struct ConnectOp final : Op {
    ConnectOp() noexcept : Op(OpKind::Connect) {}
    sockaddr_un addr{};
    socklen_t addrLen = 0;
    bool started = false;  // libuv: connect() issued, waiting for the outcome
};

// Records alive right now (tests check that a cancelled record lives until its completion).
size_t liveOps() noexcept;

// Owner of one record while it is idle; hands it to the backend while in flight.
template <typename T>
class OpSlot {
public:
    OpSlot() = default;
    OpSlot(const OpSlot&) = delete;
    OpSlot& operator=(const OpSlot&) = delete;
    ~OpSlot() { reset(); }

    void attach(Reactor& r, T* op, OpOwner* owner) noexcept
    {
        reset();
        reactor_ = &r;
        op_ = op;
        op_->owner = owner;
    }
    T* get() const noexcept { return op_; }
    T* operator->() const noexcept { return op_; }
    explicit operator bool() const noexcept { return op_ != nullptr; }
    bool inFlight() const noexcept { return op_ != nullptr && op_->inFlight; }

    void submit() noexcept;
    // A PollOp slot: watch `fd` for `mask` (POLLIN/POLLOUT), making the record on first use.
    void submitPoll(Reactor& r, OpOwner* owner, int fd, uint32_t mask) noexcept
    {
        if (op_ == nullptr) attach(r, new T(), owner);
        op_->fd = fd;
        op_->pollMask = mask;
        submit();
    }
    // Take an idle record out of the slot (it stays attached to its owner).
    T* release() noexcept { return std::exchange(op_, nullptr); }
    // Detach and cancel an in-flight record (the backend frees it), or free an idle one.
    void reset() noexcept;

private:
    Reactor* reactor_ = nullptr;
    T* op_ = nullptr;
};

}  // namespace detail
}  // namespace vmr::reactor
