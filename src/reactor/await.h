#pragma once

// Awaiting reactor events from a Task: sleep(), and Completion<T>, a bridge that lets a
// callback API be awaited with a timeout. Every wait has a timeout (STYLE.md).

#include "base/result.h"
#include "reactor/loop.h"
#include "reactor/task.h"

#include <coroutine>
#include <memory>
#include <optional>
#include <string>

namespace vmr::reactor {

namespace detail {

// One suspension that several sources may end (wake(), the timeout, a cancel token); the first
// wins. The coroutine is resumed from the loop (through post), never inside the waker. Must
// stay where it was constructed (a local in the coroutine frame).
class Wakeup {
public:
    enum class Reason { None, Woken, TimedOut, Cancelled };

    Wakeup(Reactor& r, std::optional<Duration> timeout, CancelToken* token);
    Wakeup(const Wakeup&) = delete;
    Wakeup& operator=(const Wakeup&) = delete;
    ~Wakeup();

    void wake(Reason reason = Reason::Woken) noexcept;

    bool await_ready() const noexcept { return reason_ != Reason::None; }
    void await_suspend(std::coroutine_handle<> h) noexcept;
    Reason await_resume() const noexcept { return reason_; }

private:
    struct Shared {
        std::coroutine_handle<> handle;  // cleared when resumed or when the Wakeup goes away
    };

    Reactor& reactor_;
    Reason reason_ = Reason::None;
    std::optional<Duration> timeout_;
    Timer timer_;
    CancelToken::Registration registration_;
    std::shared_ptr<Shared> shared_;
};

Error timeoutError(Duration d);
Error cancelledError();

}  // namespace detail

// Sleep for d; a Cancelled error when token fires first.
Task<Result<void>> sleep(Reactor& r, Duration d, CancelToken* token = nullptr);

// A value a callback delivers once; awaitWithTimeout() waits for it. Must outlive the wait.
template <typename T>
class Completion {
public:
    Completion() = default;
    Completion(const Completion&) = delete;
    Completion& operator=(const Completion&) = delete;

    // The first value wins; later ones are ignored. Never resumes the waiter inside the caller.
    void fulfil(T value)
    {
        if (value_) return;
        value_.emplace(std::move(value));
        if (waiter_ != nullptr) waiter_->wake();
    }
    bool ready() const noexcept { return value_.has_value(); }
    const std::optional<T>& value() const noexcept { return value_; }
    T take() { return std::move(*value_); }

private:
    template <typename U>
    friend Task<Result<U>> awaitWithTimeout(Reactor&, Completion<U>&, Duration, CancelToken*);

    std::optional<T> value_;
    detail::Wakeup* waiter_ = nullptr;  // the suspended awaitWithTimeout(), if any
};

// Wait for c to be fulfilled: its value, or a Timeout error after `timeout`, or a Cancelled
// error when token fires.
template <typename T>
Task<Result<T>> awaitWithTimeout(Reactor& r, Completion<T>& c, Duration timeout, CancelToken* token = nullptr)
{
    if (!c.ready()) {
        detail::Wakeup w(r, timeout, token);
        struct Unhook {
            Completion<T>& c;
            ~Unhook() { c.waiter_ = nullptr; }
        } unhook{c};
        c.waiter_ = &w;
        auto reason = co_await w;
        if (reason == detail::Wakeup::Reason::TimedOut) co_return detail::timeoutError(timeout);
        if (reason == detail::Wakeup::Reason::Cancelled) co_return detail::cancelledError();
    }
    co_return Result<T>(std::in_place, c.take());
}

}  // namespace vmr::reactor
