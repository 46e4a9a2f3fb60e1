#include "reactor/await.h"

namespace vmr::reactor {

namespace detail {

Wakeup::Wakeup(Reactor& r, std::optional<Duration> timeout, CancelToken* token)
    : reactor_(r),
      timeout_(timeout),
      timer_(r, [this] { wake(Reason::TimedOut); }),
      shared_(std::make_shared<Shared>())
{
    if (token != nullptr) registration_ = token->onCancel([this] { wake(Reason::Cancelled); });
}

Wakeup::~Wakeup()
{
    shared_->handle = {};  // a resume already posted must not touch this frame
}

void Wakeup::await_suspend(std::coroutine_handle<> h) noexcept
{
    shared_->handle = h;
    if (timeout_) timer_.start(*timeout_);
}

void Wakeup::wake(Reason reason) noexcept
{
    if (reason_ != Reason::None) return;
    reason_ = reason;
    timer_.stop();
    registration_.reset();
    if (!shared_->handle) return;  // not suspended yet: await_ready() sees the reason
    reactor_.post([s = shared_] {
        if (auto h = std::exchange(s->handle, {})) h.resume();
    });
}

Error timeoutError(Duration d)
{
    return Error(ErrorKind::Timeout, "Timed out after " + std::to_string(d.count()) + " ms");
}

Error cancelledError()
{
    return Error(ErrorKind::Cancelled, "Cancelled");
}

}  // namespace detail

Task<Result<void>> sleep(Reactor& r, Duration d, CancelToken* token)
{
    detail::Wakeup w(r, d, token);
    auto reason = co_await w;
    if (reason == detail::Wakeup::Reason::Cancelled) co_return detail::cancelledError();
    co_return success();
}

}  // namespace vmr::reactor
