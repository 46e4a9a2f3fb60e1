#include "reactor/task.h"

namespace vmr::reactor {

namespace {

// Owns nothing: the detached task's promise frees the frame at its final suspend.
void startDetached(Task<void>::Handle h)
{
    h.promise().detached = true;
    h.resume();
}

}  // namespace

void spawnDetached(Task<void> t)
{
    if (!t.valid()) return;
    startDetached(t.release());
}

CancelToken::CancelToken() : state_(std::make_shared<State>()) {}

CancelToken::~CancelToken() = default;

bool CancelToken::cancelled() const noexcept
{
    return state_->cancelled;
}

void CancelToken::cancel()
{
    if (state_->cancelled) return;
    state_->cancelled = true;
    auto keep = state_;  // a callback may destroy this token
    // One at a time: a callback may unregister callbacks that have not run yet.
    while (!keep->callbacks.empty()) {
        auto node = keep->callbacks.extract(keep->callbacks.begin());
        node.mapped()();
    }
}

CancelToken::Registration CancelToken::onCancel(std::function<void()> fn)
{
    if (state_->cancelled) {
        fn();
        return {};
    }
    uint64_t id = state_->nextId++;
    state_->callbacks.emplace(id, std::move(fn));
    return Registration(std::weak_ptr<void>(state_), id);
}

CancelToken::Registration& CancelToken::Registration::operator=(Registration&& o) noexcept
{
    if (this != &o) {
        reset();
        state_ = std::move(o.state_);
        id_ = std::exchange(o.id_, 0);
    }
    return *this;
}

void CancelToken::Registration::reset() noexcept
{
    if (id_ == 0) return;
    if (auto s = std::static_pointer_cast<CancelToken::State>(state_.lock())) s->callbacks.erase(id_);
    id_ = 0;
    state_.reset();
}

}  // namespace vmr::reactor
