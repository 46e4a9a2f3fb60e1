#pragma once

// The libuv backend: operations run as non-blocking syscalls driven by one uv_poll_t per fd
// (libuv allows only one), timeouts by one uv_timer_t. libuv handles are freed only in their
// close callbacks; user code never runs inside uv_run(): completions are queued and dispatched
// as a batch afterwards, like CQEs.

#include "reactor/loop.h"

#include <uv.h>

#include <unordered_map>

namespace vmr::reactor {

class UvReactor final : public Reactor {
public:
    static Result<std::unique_ptr<UvReactor>> create();
    ~UvReactor() override;

    Backend backend() const noexcept override { return Backend::Uv; }

protected:
    void backendSubmit(detail::Op* op) noexcept override;
    void backendCancel(detail::Op* op) noexcept override;
    Result<void> backendWait(std::optional<std::chrono::nanoseconds> timeout) override;

private:
    // All the operations waiting on one fd, and the one uv_poll_t watching it.
    struct FdPoll {
        uv_poll_t handle{};
        UvReactor* self = nullptr;
        int fd = -1;
        int events = 0;  // UV_READABLE | UV_WRITABLE being watched
        detail::Op* head = nullptr;
        detail::Op* tail = nullptr;
    };

    UvReactor() = default;
    static void onPoll(uv_poll_t* h, int status, int events);
    bool tryOp(detail::Op* op, int uvEvents) noexcept;
    void addWaiter(detail::Op* op) noexcept;
    void removeWaiter(FdPoll* p, detail::Op* op) noexcept;
    void updatePoll(FdPoll* p) noexcept;
    void finish(detail::Op* op) noexcept;
    void startConnect(detail::ConnectOp* op) noexcept;

    uv_loop_t loop_{};
    uv_async_t keepAlive_{};  // keeps uv_run(UV_RUN_ONCE) blocking when nothing else is active
    uv_timer_t waitTimer_{};
    bool loopReady_ = false;
    std::unordered_map<int, FdPoll*> polls_;  // owned; freed in their close callback
    std::vector<detail::Op*> completed_;      // completions waiting for dispatch
    std::vector<detail::Op*> dispatching_;
    std::vector<detail::ConnectOp*> connectRetry_;  // unix connect() said EAGAIN (backlog full)
};

}  // namespace vmr::reactor
