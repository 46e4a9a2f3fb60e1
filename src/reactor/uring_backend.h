#pragma once

// The io_uring backend: one ring; user_data points at the operation record; CQEs are reaped
// in batches; cancel is IORING_OP_ASYNC_CANCEL and the record still waits for its own CQE.

#include "reactor/loop.h"

#include <liburing.h>

#include <array>

namespace vmr::reactor {

class UringReactor final : public Reactor {
public:
    // Creates the ring and probes every opcode this backend uses.
    static Result<std::unique_ptr<UringReactor>> create();
    ~UringReactor() override;

    Backend backend() const noexcept override { return Backend::Uring; }

protected:
    void backendSubmit(detail::Op* op) noexcept override;
    void backendCancel(detail::Op* op) noexcept override;
    Result<void> backendWait(std::optional<std::chrono::nanoseconds> timeout) override;

private:
    UringReactor() = default;
    io_uring_sqe* getSqe() noexcept;
    void reap() noexcept;
    void handleCqe(uint64_t userData, int res) noexcept;
    void link(detail::Op* op) noexcept;
    void unlink(detail::Op* op) noexcept;

    static constexpr unsigned kBatch = 256;
    struct Cqe {
        uint64_t userData;
        int res;
    };

    io_uring ring_{};
    bool ringReady_ = false;
    // Records the kernel holds (a CQE is still due); the backend frees detached ones.
    detail::Op* inflight_ = nullptr;
    std::array<io_uring_cqe*, kBatch> cqes_{};
    std::array<Cqe, kBatch> batch_{};
};

}  // namespace vmr::reactor
