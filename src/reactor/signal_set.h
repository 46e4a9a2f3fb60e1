#pragma once

// Signals through a signalfd (no signal handlers): the set's signals are blocked in the thread's
// mask while it lives, and read from the signalfd on the loop.

#include "base/fd.h"
#include "reactor/loop.h"

#include <signal.h>

#include <functional>
#include <initializer_list>
#include <memory>

namespace vmr::reactor {

class SignalSet : private detail::OpOwner {
public:
    SignalSet(Reactor& r, std::initializer_list<int> signals, std::function<void(int signo)> onSignal);
    SignalSet(const SignalSet&) = delete;
    SignalSet& operator=(const SignalSet&) = delete;
    // Drains signals still pending (so they are not delivered with their default action), then
    // unblocks the signals it blocked.
    ~SignalSet() override;

    // False when the signalfd could not be created (then nothing was blocked).
    bool ok() const noexcept { return fd_.valid(); }

private:
    void arm();
    void drain(bool dispatch) noexcept;
    void onOpComplete(detail::Op& op) noexcept override;

    Reactor& reactor_;
    std::shared_ptr<std::function<void(int)>> onSignal_;  // shared: a callback may destroy the set
    sigset_t mask_{};
    sigset_t blockedByUs_{};  // not blocked before we came
    UniqueFd fd_;
    detail::OpSlot<detail::PollOp> poll_;
    bool* destroyed_ = nullptr;
};

}  // namespace vmr::reactor
