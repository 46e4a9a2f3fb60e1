#include "qmp/client.h"

#include "base/log.h"

#include <cerrno>
#include <charconv>
#include <utility>

namespace vmr::qmp {

namespace {

spdlog::logger& logger()
{
    return log::get("qmp");
}

std::optional<uint64_t> parseId(const std::optional<std::string>& id)
{
    if (!id) return std::nullopt;
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(id->data(), id->data() + id->size(), n);
    if (ec != std::errc() || end != id->data() + id->size()) return std::nullopt;
    return n;
}

Duration remaining(reactor::Reactor& r, reactor::Clock::time_point deadline)
{
    auto now = r.now();
    if (deadline <= now) return Duration::zero();
    return std::chrono::ceil<Duration>(deadline - now);
}

}  // namespace

Client::Client(reactor::Reactor& r, UniqueFd fd, Handlers handlers)
    : reactor_(r),
      handlers_(std::move(handlers)),
      stream_(std::make_unique<reactor::Stream>(r, std::move(fd))),
      greetingDone_(std::make_unique<reactor::Completion<Result<void>>>())
{
    reactor::Stream::Callbacks cbs;
    cbs.onData = [this](std::string_view data) { onData(data); };
    cbs.onClose = [this](const Error* err) { onStreamClose(err); };
    stream_->start(std::move(cbs));
}

Client::~Client()
{
    if (destroyed_ != nullptr) *destroyed_ = true;
    shutdown(std::nullopt, false);
}

reactor::Task<Result<std::unique_ptr<Client>>> Client::connect(reactor::Reactor& r, std::string path,
                                                               Duration timeout, Handlers handlers)
{
    auto deadline = r.now() + timeout;
    auto fd = co_await reactor::connectUnix(r, path, timeout);
    if (!fd) {
        auto kind = fd.error().kind() == ErrorKind::Timeout ? ErrorKind::Timeout : ErrorKind::Unavailable;
        co_return Error(kind, "Cannot connect to the QMP socket " + path).causedBy(std::move(fd).error());
    }
    co_return co_await open(r, std::move(*fd), remaining(r, deadline), std::move(handlers));
}

reactor::Task<Result<std::unique_ptr<Client>>> Client::open(reactor::Reactor& r, UniqueFd fd,
                                                            Duration timeout, Handlers handlers)
{
    auto deadline = r.now() + timeout;
    std::unique_ptr<Client> c(new Client(r, std::move(fd), std::move(handlers)));

    auto greeting = co_await reactor::awaitWithTimeout(r, *c->greetingDone_, timeout);
    if (!greeting) {
        co_return Error(ErrorKind::Timeout,
                        "QEMU sent no QMP greeting within " + std::to_string(timeout.count()) + " ms");
    }
    if (!*greeting) co_return std::move(*greeting).error();

    auto caps = co_await c->execute("qmp_capabilities", {}, remaining(r, deadline));
    if (!caps) {
        co_return Error(caps.error().kind(), "QMP capabilities negotiation failed")
            .causedBy(std::move(caps).error());
    }
    co_return std::move(c);
}

reactor::Task<Result<std::string>> Client::execute(std::string_view command, std::string_view argsJson,
                                                   Duration timeout)
{
    if (closed_) {
        return ready(Error(ErrorKind::Unavailable,
                           "QMP connection is closed; cannot run '" + std::string(command) + "'"));
    }
    if (command.empty()) return ready(Error(ErrorKind::InvalidArgument, "QMP command name is empty"));
    if (auto valid = validateArguments(argsJson); !valid) return ready(std::move(valid).error());

    auto p = std::make_shared<Pending>();
    p->id = nextId_++;
    p->command = std::string(command);
    std::string line = encodeCommand(command, argsJson, std::to_string(p->id));
    line += "\r\n";
    logger().trace("-> {}", line.substr(0, line.size() - 2));
    stream_->write(std::move(line));
    pending_.emplace(p->id, p);
    return awaitReply(reactor_, scope_.watch(), this, std::move(p), reactor_.now() + timeout, timeout);
}

reactor::Task<Result<std::string>> Client::awaitReply(reactor::Reactor& r, reactor::TaskScope::Watch alive,
                                                      Client* self, std::shared_ptr<Pending> p,
                                                      reactor::Clock::time_point deadline, Duration timeout)
{
    auto reply = co_await reactor::awaitWithTimeout(r, p->done, remaining(r, deadline));
    if (!reply) {
        // A late reply for this id is dropped on arrival.
        if (alive) self->pending_.erase(p->id);
        co_return Error(ErrorKind::Timeout, "QEMU did not answer '" + p->command + "' within " +
                                                std::to_string(timeout.count()) + " ms");
    }
    co_return std::move(*reply);
}

reactor::Task<Result<std::string>> Client::ready(Result<std::string> r)
{
    co_return r;
}

void Client::close() noexcept
{
    shutdown(std::nullopt, false);
}

void Client::onData(std::string_view data) noexcept
{
    lines_.append(data);
    reactor::DestroyGuard guard(destroyed_);
    while (!closed_) {
        auto line = lines_.next();
        if (!line) {
            shutdown(Error(ErrorKind::Unavailable, "QEMU broke the QMP protocol")
                         .causedBy(std::move(line).error()),
                     true);
            return;
        }
        if (!*line) return;
        logger().trace("<- {}", **line);
        auto msg = parseMessage(**line);
        if (!msg) {
            shutdown(
                Error(ErrorKind::Unavailable, "QEMU broke the QMP protocol").causedBy(std::move(msg).error()),
                true);
            return;
        }
        dispatch(std::move(*msg));
        if (guard.dead()) return;
    }
}

void Client::dispatch(Message msg)
{
    if (auto* g = std::get_if<Greeting>(&msg)) {
        if (haveGreeting_) {
            logger().debug("Ignoring a second QMP greeting");
            return;
        }
        haveGreeting_ = true;
        greeting_ = std::move(*g);
        greetingDone_->fulfil(success());
        return;
    }
    if (!haveGreeting_) {
        shutdown(Error(ErrorKind::Unavailable, "QEMU broke the QMP protocol")
                     .causedBy(Error(ErrorKind::ParseError, "QMP message before the greeting")),
                 true);
        return;
    }

    if (auto* ev = std::get_if<Event>(&msg)) {
        if (!isKnownEvent(ev->name)) logger().debug("QMP event {} (not used by vmr): {}", ev->name, ev->data);
        if (handlers_.onEvent) handlers_.onEvent(*ev);
        return;
    }

    const std::optional<std::string>* rawId = nullptr;
    if (auto* ret = std::get_if<Return>(&msg)) rawId = &ret->id;
    auto* err = std::get_if<ErrorReply>(&msg);
    if (err != nullptr) rawId = &err->id;

    std::shared_ptr<Pending> p;
    if (auto id = parseId(*rawId)) {
        auto it = pending_.find(*id);
        if (it != pending_.end()) p = it->second;
    } else if (!*rawId && err != nullptr && !pending_.empty()) {
        // QEMU answers a request it could not parse without an id; it answers in order, so
        // the oldest command is the one it is talking about.
        p = pending_.begin()->second;
    }
    if (!p) {
        logger().debug("Dropping a QMP reply with id {} that no command waits for",
                       rawId->value_or("(none)"));
        return;
    }
    pending_.erase(p->id);

    if (err != nullptr) {
        p->done.fulfil(Error(errorKindForClass(err->errorClass),
                             "QEMU refused '" + p->command + "' (" + err->errorClass + "): " + err->desc));
        return;
    }
    if (p->command == "qmp_capabilities") negotiated_ = true;
    p->done.fulfil(std::move(std::get<Return>(msg).json));
}

void Client::onStreamClose(const Error* err) noexcept
{
    // QEMU reads a command up to its closing brace, so after `quit` our line terminator is still
    // unread when it exits, and the kernel reports a reset instead of EOF: that is a clean close.
    bool eof = err == nullptr || err->sysErrno() == ECONNRESET;
    shutdown(eof ? std::nullopt : std::optional<Error>(*err), true);
}

void Client::shutdown(std::optional<Error> cause, bool notify)
{
    if (closed_) return;
    closed_ = true;
    stream_->close();

    auto closedError = [&](std::string what) {
        Error e(ErrorKind::Unavailable, "QMP connection closed before " + what);
        if (cause) e.causedBy(*cause);
        return e;
    };
    if (!haveGreeting_) greetingDone_->fulfil(closedError("the greeting"));
    // Completions resume their awaiters from the loop, never in here.
    auto pending = std::exchange(pending_, {});
    for (auto& [id, p] : pending) p->done.fulfil(closedError("'" + p->command + "' was answered"));

    if (notify && negotiated_ && handlers_.onClose) {
        auto onClose = std::move(handlers_.onClose);  // may destroy this client
        onClose(cause ? &*cause : nullptr);
    }
}

}  // namespace vmr::qmp
