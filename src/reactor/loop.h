#pragma once

// The event loop: the Reactor interface with its two backends (io_uring, libuv), and the
// handles written directly on it, Timer and FdWatch. See docs/reactor.md.

#include "base/result.h"
#include "reactor/op.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace vmr::reactor {

using Clock = std::chrono::steady_clock;
using Duration = std::chrono::milliseconds;

enum class Backend { Uring, Uv };
std::string_view backendName(Backend b);
// "uring" | "io_uring" | "uv" | "libuv"; anything else is InvalidArgument with a hint.
Result<Backend> parseBackend(std::string_view name);

class Timer;

class Reactor {
public:
    // forced: from --reactor; if empty, VMR_REACTOR; if empty, probe (io_uring when the ring can be
    // created and supports every opcode we use, else libuv). Forcing an unavailable backend fails.
    static Result<std::unique_ptr<Reactor>> create(std::optional<Backend> forced = std::nullopt);

    Reactor(const Reactor&) = delete;
    Reactor& operator=(const Reactor&) = delete;
    // Every handle must be destroyed before its reactor.
    virtual ~Reactor();

    virtual Backend backend() const noexcept = 0;

    // Dispatch until stop().
    Result<void> run();
    // Callable from any callback: run() returns after the current batch.
    void stop() noexcept;
    // For tests: run up to d, or until stop().
    Result<void> runFor(Duration d);
    // For tests: run until pred() is true or the timeout passes; returns pred().
    bool runUntil(const std::function<bool()>& pred, Duration timeout);
    // Run fn on the loop soon, never inside the caller.
    void post(std::function<void()> fn);
    Clock::time_point now() const noexcept { return Clock::now(); }

    // Internal to the reactor layer: operation records (see op.h).
    void submitOp(detail::Op* op) noexcept;
    // The record must already be detached (owner == nullptr); the backend frees it after the
    // kernel's final completion.
    void cancelOp(detail::Op* op) noexcept;

protected:
    Reactor() = default;

    virtual void backendSubmit(detail::Op* op) noexcept = 0;
    virtual void backendCancel(detail::Op* op) noexcept = 0;
    // Wait up to timeout (nullopt: no limit; zero: don't block), then dispatch one batch of
    // completions through complete().
    virtual Result<void> backendWait(std::optional<std::chrono::nanoseconds> timeout) = 0;
    // Called by a backend for the final completion of a record: calls its owner, or frees a
    // detached record. The record must not be touched afterwards.
    static void complete(detail::Op* op, int res) noexcept;

private:
    friend class Timer;

    Result<void> runOnce(std::optional<Clock::time_point> limit);
    void runPosted();
    void fireTimers();

    // Armed timers, by (deadline, arm sequence); the handles own themselves.
    std::map<std::pair<Clock::time_point, uint64_t>, Timer*> timers_;
    uint64_t timerSeq_ = 0;
    std::vector<std::function<void()>> posted_;
    bool stop_ = false;
    bool running_ = false;
};

// A timer handle. Fires on the loop; a repeating timer re-arms itself after its callback unless
// the callback restarted or stopped it.
class Timer {
public:
    Timer(Reactor& r, std::function<void()> onFire);
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;
    ~Timer();

    // Re-arming an active timer restarts it.
    void start(Duration after, Duration repeat = Duration::zero());
    void stop() noexcept;
    bool active() const noexcept { return key_.has_value(); }

private:
    friend class Reactor;
    void arm(Clock::time_point deadline);
    void disarm() noexcept;
    void fire() noexcept;

    Reactor& reactor_;
    // Shared so that a callback that destroys the timer keeps its own closure alive.
    std::shared_ptr<std::function<void()>> onFire_;
    Duration repeat_{0};
    uint64_t gen_ = 0;  // bumped by start()/stop(), so fire() can tell the callback touched it
    std::optional<std::pair<Clock::time_point, uint64_t>> key_;  // in reactor_.timers_ when set
    bool* destroyed_ = nullptr;  // set while fire() runs, so a callback may delete the timer
};

enum Events : uint32_t { Readable = 1, Writable = 2 };

// Level-triggered readiness of an fd the watch does not own. Stop (or destroy) the watch before
// closing the fd.
class FdWatch : private detail::OpOwner {
public:
    FdWatch(Reactor& r, int fd, uint32_t events, std::function<void(uint32_t revents)> onReady);
    FdWatch(const FdWatch&) = delete;
    FdWatch& operator=(const FdWatch&) = delete;
    ~FdWatch();

    // 0 pauses the watch.
    void update(uint32_t events);
    void stop() noexcept;
    uint32_t events() const noexcept { return events_; }

private:
    void arm();
    void onOpComplete(detail::Op& op) noexcept override;

    Reactor& reactor_;
    int fd_;
    uint32_t events_;
    std::shared_ptr<std::function<void(uint32_t)>> onReady_;  // shared: see Timer::onFire_
    detail::OpSlot<detail::PollOp> poll_;                     // the armed poll, if any
    bool* destroyed_ = nullptr;
};

// Lets a dispatcher learn that a callback destroyed the object whose `destroyed_` slot this
// guard occupies (the object's destructor sets *slot). Nests. The slot holds the address of a
// local only while the guard lives, which GCC's -Wdangling-pointer cannot see.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
class DestroyGuard {
public:
    explicit DestroyGuard(bool*& slot) noexcept : slot_(slot), prev_(slot) { slot_ = &dead_; }
    DestroyGuard(const DestroyGuard&) = delete;
    DestroyGuard& operator=(const DestroyGuard&) = delete;
    ~DestroyGuard()
    {
        if (dead_) {
            if (prev_ != nullptr) *prev_ = true;
        } else {
            slot_ = prev_;
        }
    }
    bool dead() const noexcept { return dead_; }

private:
    bool*& slot_;
    bool* prev_;
    bool dead_ = false;
};
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic pop
#endif

namespace detail {

template <typename T>
void OpSlot<T>::submit() noexcept
{
    reactor_->submitOp(op_);
}

template <typename T>
void OpSlot<T>::reset() noexcept
{
    if (op_ == nullptr) return;
    T* op = std::exchange(op_, nullptr);
    op->owner = nullptr;
    if (op->inFlight)
        reactor_->cancelOp(op);
    else
        delete op;
}

}  // namespace detail
}  // namespace vmr::reactor
