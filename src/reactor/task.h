#pragma once

// Task<T>: a lazily started coroutine, so multi-step flows read top to bottom. A Task runs when
// it is co_awaited (or handed to spawnDetached); it resumes its awaiter by symmetric transfer
// when it finishes. Move-only; destroying a Task that has not finished destroys its frame.
// Exceptions are not used: a coroutine that throws terminates the process (STYLE.md, 7).

#include "base/result.h"

#include <coroutine>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <utility>

namespace vmr::reactor {

template <typename T>
class Task;

namespace detail {

struct TaskPromiseBase {
    std::coroutine_handle<> continuation;
    bool detached = false;  // spawnDetached: the frame frees itself at the end

    std::suspend_always initial_suspend() noexcept { return {}; }
    void unhandled_exception() noexcept { std::terminate(); }

    struct FinalAwaiter {
        bool await_ready() noexcept { return false; }
        template <typename P>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept
        {
            auto& p = h.promise();
            if (p.detached) {
                h.destroy();
                return std::noop_coroutine();
            }
            return p.continuation ? p.continuation : std::noop_coroutine();
        }
        void await_resume() noexcept {}
    };
    FinalAwaiter final_suspend() noexcept { return {}; }
};

template <typename T>
struct TaskPromise : TaskPromiseBase {
    std::optional<T> value;
    Task<T> get_return_object() noexcept;
    template <typename U>
    void return_value(U&& v)
    {
        value.emplace(std::forward<U>(v));
    }
};

template <>
struct TaskPromise<void> : TaskPromiseBase {
    Task<void> get_return_object() noexcept;
    void return_void() noexcept {}
};

}  // namespace detail

template <typename T = void>
class [[nodiscard]] Task {
public:
    using promise_type = detail::TaskPromise<T>;
    using Handle = std::coroutine_handle<promise_type>;

    Task() noexcept = default;
    explicit Task(Handle h) noexcept : h_(h) {}
    Task(Task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
    Task& operator=(Task&& o) noexcept
    {
        if (this != &o) {
            if (h_) h_.destroy();
            h_ = std::exchange(o.h_, {});
        }
        return *this;
    }
    Task(const Task&) = delete;
    Task& operator=(const Task&) = delete;
    ~Task()
    {
        if (h_) h_.destroy();
    }

    bool valid() const noexcept { return static_cast<bool>(h_); }
    bool done() const noexcept { return h_ && h_.done(); }

    // co_await: start the task; resume the awaiter when it finishes.
    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiter) noexcept
    {
        h_.promise().continuation = awaiter;
        return h_;
    }
    T await_resume()
    {
        if constexpr (!std::is_void_v<T>) return std::move(*h_.promise().value);
    }

    // Start without an awaiter and keep ownership (tests; the caller checks done()/result()).
    void start()
    {
        if (h_ && !h_.done()) h_.resume();
    }
    // The value of a finished task.
    T result() requires(!std::is_void_v<T>) { return std::move(*h_.promise().value); }

    Handle release() noexcept { return std::exchange(h_, {}); }

private:
    Handle h_;
};

namespace detail {

template <typename T>
Task<T> TaskPromise<T>::get_return_object() noexcept
{
    return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}

inline Task<void> TaskPromise<void>::get_return_object() noexcept
{
    return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}

}  // namespace detail

// Start a Task<void> that nobody awaits; its frame frees itself when it finishes.
void spawnDetached(Task<void> t);

// A cancellation token: cancel() runs the registered callbacks (once, in registration order)
// and makes cancelled() true. Registrations unregister when destroyed; a registration may
// outlive its token.
class CancelToken {
public:
    class Registration {
    public:
        Registration() = default;
        Registration(Registration&& o) noexcept : state_(std::move(o.state_)), id_(std::exchange(o.id_, 0)) {}
        Registration& operator=(Registration&& o) noexcept;
        Registration(const Registration&) = delete;
        Registration& operator=(const Registration&) = delete;
        ~Registration() { reset(); }
        void reset() noexcept;

    private:
        friend class CancelToken;
        Registration(std::weak_ptr<void> state, uint64_t id) : state_(std::move(state)), id_(id) {}
        std::weak_ptr<void> state_;
        uint64_t id_ = 0;
    };

    CancelToken();
    CancelToken(const CancelToken&) = delete;
    CancelToken& operator=(const CancelToken&) = delete;
    ~CancelToken();

    void cancel();
    bool cancelled() const noexcept;
    // Runs fn at cancel(); if already cancelled, runs it now and returns an empty registration.
    [[nodiscard]] Registration onCancel(std::function<void()> fn);

private:
    struct State {
        bool cancelled = false;
        uint64_t nextId = 1;
        std::map<uint64_t, std::function<void()>> callbacks;
    };
    std::shared_ptr<State> state_;
};

}  // namespace vmr::reactor

// VMR_TRY for coroutines: co_return the error of a Result-valued expression (often a co_await).
#define VMR_CO_TRY(expr)                                                                  \
    do {                                                                                  \
        auto vmr_try_r_ = (expr);                                                         \
        if (!vmr_try_r_.ok()) co_return ::vmr::Unexpected(std::move(vmr_try_r_).error()); \
    } while (0)

// VMR_TRY_ASSIGN for coroutines: VMR_CO_TRY_ASSIGN(auto rec, co_await m.start(name));
#define VMR_CO_TRY_ASSIGN(lhs, expr) VMR_CO_TRY_ASSIGN_IMPL_(VMR_CONCAT_(vmr_try_v_, __LINE__), lhs, expr)
#define VMR_CO_TRY_ASSIGN_IMPL_(tmp, lhs, expr)                         \
    auto tmp = (expr);                                                  \
    if (!tmp.ok()) co_return ::vmr::Unexpected(std::move(tmp).error()); \
    lhs = std::move(tmp).value()
