#include "reactor/signal_set.h"

#include <poll.h>
#include <pthread.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>

namespace vmr::reactor {

SignalSet::SignalSet(Reactor& r, std::initializer_list<int> signals, std::function<void(int)> onSignal)
    : reactor_(r), onSignal_(std::make_shared<std::function<void(int)>>(std::move(onSignal)))
{
    sigemptyset(&mask_);
    sigemptyset(&blockedByUs_);
    for (int s : signals) sigaddset(&mask_, s);
    sigset_t old;
    pthread_sigmask(SIG_BLOCK, &mask_, &old);
    for (int s : signals)
        if (!sigismember(&old, s)) sigaddset(&blockedByUs_, s);
    fd_.reset(::signalfd(-1, &mask_, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!fd_) {
        pthread_sigmask(SIG_UNBLOCK, &blockedByUs_, nullptr);
        sigemptyset(&blockedByUs_);
        return;
    }
    arm();
}

SignalSet::~SignalSet()
{
    poll_.reset();
    if (fd_) {
        drain(false);
        pthread_sigmask(SIG_UNBLOCK, &blockedByUs_, nullptr);
    }
    if (destroyed_ != nullptr) *destroyed_ = true;
}

void SignalSet::arm()
{
    poll_.submitPoll(reactor_, this, fd_.get(), POLLIN);
}

void SignalSet::drain(bool dispatch) noexcept
{
    DestroyGuard guard(destroyed_);
    auto cb = onSignal_;
    for (;;) {
        signalfd_siginfo info[8];
        ssize_t n = ::read(fd_.get(), info, sizeof(info));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        for (size_t i = 0; i < static_cast<size_t>(n) / sizeof(signalfd_siginfo); ++i) {
            if (!dispatch || !*cb) continue;
            (*cb)(static_cast<int>(info[i].ssi_signo));
            if (guard.dead()) return;
        }
    }
}

void SignalSet::onOpComplete(detail::Op&) noexcept
{
    DestroyGuard guard(destroyed_);
    drain(true);
    if (guard.dead()) return;
    arm();
}

}  // namespace vmr::reactor
