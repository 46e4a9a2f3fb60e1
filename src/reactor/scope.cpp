#include "reactor/scope.h"

namespace vmr::reactor {

Task<void> TaskScope::run(std::weak_ptr<State> state, uint64_t id, Task<void> t)
{
    co_await t;
    if (auto s = state.lock()) s->tasks.erase(id);
}

void TaskScope::spawn(Task<void> t)
{
    if (!t.valid()) return;
    uint64_t id = state_->next++;
    auto h = run(state_, id, std::move(t)).release();
    h.promise().detached = true;  // frees its own frame when it finishes
    state_->tasks.emplace(id, h);
    h.resume();
}

void TaskScope::cancelAll() noexcept
{
    // A destroyed frame may start or end other tasks of this scope: take them one at a time.
    while (!state_->tasks.empty()) {
        auto node = state_->tasks.extract(state_->tasks.begin());
        node.mapped().destroy();
    }
}

void TaskScope::post(Reactor& r, std::function<void()> fn) const
{
    r.post([w = std::weak_ptr<State>(state_), fn = std::move(fn)] {
        if (!w.expired()) fn();
    });
}

}  // namespace vmr::reactor
