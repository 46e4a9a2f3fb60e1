#pragma once

// TaskScope: the tasks an object starts, owned by that object (STYLE.md, practices 1 and 3).
// spawn() starts a task that nobody awaits; when the scope goes (or cancelAll() is called), the
// frames of the tasks still suspended are destroyed, so no task resumes into an object that is
// gone. Every wait in vmr is a reactor::detail::Wakeup, which unhooks itself when its frame is
// destroyed; a task's own destructors (RAII undo records) run as for any early exit.
// watch() gives a callback that runs later (a posted closure, a task owned by someone else) a
// way to ask whether the scope's owner still exists.

#include "reactor/loop.h"
#include "reactor/task.h"

#include <coroutine>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>

namespace vmr::reactor {

class TaskScope {
    struct State {
        std::map<uint64_t, std::coroutine_handle<>> tasks;
        uint64_t next = 1;
    };

public:
    // True while the scope exists.
    class Watch {
    public:
        Watch() = default;  // watches nothing: never alive
        bool alive() const noexcept { return !state_.expired(); }
        explicit operator bool() const noexcept { return alive(); }

    private:
        friend class TaskScope;
        explicit Watch(std::weak_ptr<State> s) : state_(std::move(s)) {}
        std::weak_ptr<State> state_;
    };

    TaskScope() = default;
    TaskScope(const TaskScope&) = delete;
    TaskScope& operator=(const TaskScope&) = delete;
    ~TaskScope() { cancelAll(); }

    // Start `t` now; it runs until it finishes or the scope cancels it.
    void spawn(Task<void> t);
    // Destroy every task still running (their frames unwind at their suspension point).
    void cancelAll() noexcept;
    size_t running() const noexcept { return state_->tasks.size(); }

    Watch watch() const { return Watch(state_); }
    // Run `fn` on a later loop turn, unless the scope is gone by then.
    void post(Reactor& r, std::function<void()> fn) const;

private:
    static Task<void> run(std::weak_ptr<State> state, uint64_t id, Task<void> t);

    std::shared_ptr<State> state_ = std::make_shared<State>();
};

}  // namespace vmr::reactor
