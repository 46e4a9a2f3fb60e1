#pragma once

// The QMP client: one persistent connection to a QEMU monitor, on the reactor. It reads the
// greeting, negotiates capabilities, then runs commands (many may be in flight; replies are
// matched by id) and delivers events as they arrive. See docs/qmp.md.

#include "base/fd.h"
#include "base/result.h"
#include "qmp/message.h"
#include "reactor/reactor.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace vmr::qmp {

using reactor::Duration;

class Client {
public:
    struct Handlers {
        // Every event, in arrival order (also those that arrive between a command and its reply).
        std::function<void(const Event& ev)> onEvent;
        // The connection ended without close(): QEMU closed it (nullptr: EOF, or a reset, which
        // is how QEMU exiting with unread input looks) or it failed (I/O error, protocol
        // violation). Pending commands have already failed. Called once.
        std::function<void(const Error* err)> onClose;
    };

    static constexpr Duration kDefaultTimeout = std::chrono::seconds(10);

    // Connect to a QMP unix socket, read the greeting and negotiate capabilities, all within
    // `timeout`. Handlers are installed before the first byte is read, so no event is missed.
    static reactor::Task<Result<std::unique_ptr<Client>>> connect(reactor::Reactor& r, std::string path,
                                                                  Duration timeout, Handlers handlers = {});
    // The same on an already connected fd.
    static reactor::Task<Result<std::unique_ptr<Client>>> open(reactor::Reactor& r, UniqueFd fd,
                                                               Duration timeout, Handlers handlers = {});

    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;
    // Fails every pending command with Unavailable (their awaiters resume later, on the loop);
    // no handler runs after it returns. May be called from a handler.
    ~Client();

    // Send a command now; the task yields the JSON text of its `return`, or an Error: the QMP
    // error (class and desc in the message, kind from errorKindForClass), Timeout when no reply
    // came within `timeout` of this call, Unavailable when the connection is or goes away,
    // InvalidArgument when argsJson is not a JSON object. argsJson may be empty.
    reactor::Task<Result<std::string>> execute(std::string_view command, std::string_view argsJson = {},
                                               Duration timeout = kDefaultTimeout);

    // Close the connection now; pending commands fail with Unavailable; onClose does not run.
    void close() noexcept;
    bool closed() const noexcept { return closed_; }
    const Greeting& greeting() const noexcept { return greeting_; }
    size_t pendingCommands() const noexcept { return pending_.size(); }

private:
    struct Pending {
        uint64_t id = 0;
        std::string command;
        reactor::Completion<Result<std::string>> done;
    };

    Client(reactor::Reactor& r, UniqueFd fd, Handlers handlers);

    void onData(std::string_view data) noexcept;
    void onStreamClose(const Error* err) noexcept;
    void dispatch(Message msg);
    void complete(std::shared_ptr<Pending> p, Result<std::string> r);
    // Fail everything and drop the connection; runs onClose when notify.
    void shutdown(std::optional<Error> cause, bool notify);

    static reactor::Task<Result<std::string>> awaitReply(reactor::Reactor& r, reactor::TaskScope::Watch alive,
                                                         Client* self, std::shared_ptr<Pending> p,
                                                         reactor::Clock::time_point deadline,
                                                         Duration timeout);
    static reactor::Task<Result<std::string>> ready(Result<std::string> r);

    reactor::Reactor& reactor_;
    Handlers handlers_;
    // Owned: the connection and what is buffered from it.
    std::unique_ptr<reactor::Stream> stream_;
    LineSplitter lines_;
    Greeting greeting_;
    // Until the greeting arrives, open() waits here.
    std::unique_ptr<reactor::Completion<Result<void>>> greetingDone_;
    bool haveGreeting_ = false;
    bool negotiated_ = false;  // qmp_capabilities answered: onClose may run from now on
    // Commands sent and not answered, by id (ascending = oldest first). Shared with the
    // execute() tasks awaiting them.
    std::map<uint64_t, std::shared_ptr<Pending>> pending_;
    uint64_t nextId_ = 1;
    bool closed_ = false;
    bool* destroyed_ = nullptr;  // set while dispatching (DestroyGuard)
    reactor::TaskScope scope_;   // lets execute() tasks, which callers own, outlive us
};

}  // namespace vmr::qmp
