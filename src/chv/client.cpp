#include "chv/client.h"

#include "base/log.h"

#include <memory>
#include <utility>

namespace vmr::chv {

namespace {

spdlog::logger& logger()
{
    return log::get("chv");
}

Duration remaining(reactor::Reactor& r, reactor::Clock::time_point deadline)
{
    auto now = r.now();
    if (deadline <= now) return Duration::zero();
    return std::chrono::ceil<Duration>(deadline - now);
}

// One request's connection state, shared by the stream callbacks and the awaiting task.
struct Exchange {
    explicit Exchange(const http::Limits& limits) : parser(http::Parser::Kind::Response, limits) {}
    http::Parser parser;
    reactor::Completion<Result<Response>> done;
};

ErrorKind kindForStatus(int status)
{
    switch (status) {
        case 400: return ErrorKind::InvalidArgument;
        case 404: return ErrorKind::NotFound;
        case 409:
        case 429: return ErrorKind::Busy;
        default: return ErrorKind::Unavailable;
    }
}

}  // namespace

Client::Client(reactor::Reactor& r, std::string socketPath, http::Limits limits)
    : reactor_(r), path_(std::move(socketPath)), limits_(limits)
{
}

Error statusError(std::string_view method, std::string_view endpoint, const Response& r)
{
    ErrorKind kind = kindForStatus(r.status);
    std::string message = "cloud-hypervisor answered " + std::string(method) + " " + std::string(endpoint) +
                          " with " + std::to_string(r.status) + " " +
                          std::string(http::reasonPhrase(r.status));
    auto chain = http::errorChain(r.body);
    // Innermost first, so each entry becomes the cause of the one before it.
    std::optional<Error> cause;
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
        Error e(kind, *it);
        if (cause) e.causedBy(std::move(*cause));
        cause = std::move(e);
    }
    Error err(kind, std::move(message));
    if (r.status == 404)
        err.withHint("cloud-hypervisor has no VM defined (vm.create was not done or failed)");
    if (cause) err.causedBy(std::move(*cause));
    return err;
}

reactor::Task<Result<Response>> Client::request(std::string method, std::string endpoint, std::string body,
                                                Duration timeout, std::vector<int> fds)
{
    auto deadline = reactor_.now() + timeout;
    std::string what = method + " " + endpoint;
    auto bytes = http::encodeRequest(method, std::string(kPrefix) + endpoint, body);
    if (!bytes) co_return std::move(bytes).error();

    auto fd = co_await reactor::connectUnix(reactor_, path_, timeout);
    if (!fd) {
        auto kind = fd.error().kind() == ErrorKind::Timeout ? ErrorKind::Timeout : ErrorKind::Unavailable;
        co_return Error(kind, "Cannot connect to cloud-hypervisor's API socket " + path_ + " for " + what)
            .causedBy(std::move(fd).error());
    }

    auto ex = std::make_shared<Exchange>(limits_);
    auto stream = std::make_unique<reactor::Stream>(reactor_, std::move(*fd));
    reactor::Stream::Callbacks cbs;
    cbs.onData = [ex, what](std::string_view data) {
        if (ex->done.ready()) return;
        auto complete = ex->parser.feed(data);
        if (!complete) {
            ex->done.fulfil(
                Error(ErrorKind::Unavailable, "cloud-hypervisor sent a malformed answer to " + what)
                    .causedBy(std::move(complete).error()));
        } else if (*complete) {
            http::Message m = ex->parser.take();
            ex->done.fulfil(Response{m.status, std::move(m.body)});
        }
    };
    cbs.onClose = [ex, what](const Error* err) {
        if (ex->done.ready()) return;
        auto complete = ex->parser.finish();
        if (complete && *complete) {
            http::Message m = ex->parser.take();
            ex->done.fulfil(Response{m.status, std::move(m.body)});
            return;
        }
        Error e(ErrorKind::Unavailable, "cloud-hypervisor closed the connection before answering " + what);
        if (err != nullptr) {
            e.causedBy(*err);
        } else if (!complete) {
            e.causedBy(std::move(complete).error());
        }
        ex->done.fulfil(std::move(e));
    };
    stream->start(std::move(cbs));
    logger().trace("-> {} {}", what, body);
    if (fds.empty()) {
        stream->write(std::move(*bytes));
    } else {
        stream->writeFds(std::move(*bytes), std::move(fds));
    }

    auto answer = co_await reactor::awaitWithTimeout(reactor_, ex->done, remaining(reactor_, deadline));
    stream.reset();  // no callback runs after this
    if (!answer) {
        co_return Error(
            ErrorKind::Timeout,
            "cloud-hypervisor did not answer " + what + " within " + std::to_string(timeout.count()) + " ms",
            "The VMM may be hung; stop the VM with --force");
    }
    Result<Response> r = std::move(*answer);
    if (r) logger().trace("<- {} {} {}", what, r->status, r->body);
    co_return r;
}

reactor::Task<Result<Response>> Client::call(std::string method, std::string endpoint, std::string body,
                                             Duration timeout, std::vector<int> fds)
{
    auto r = co_await request(method, endpoint, std::move(body), timeout, std::move(fds));
    if (!r) co_return std::move(r).error();
    if (r->status < 200 || r->status > 299) co_return statusError(method, endpoint, *r);
    co_return r;
}

reactor::Task<Result<PingInfo>> Client::ping(Duration timeout)
{
    auto r = co_await call("GET", "vmm.ping", {}, timeout);
    if (!r) co_return std::move(r).error();
    co_return parsePing(r->body);
}

reactor::Task<Result<VmInfo>> Client::info(Duration timeout)
{
    auto r = co_await call("GET", "vm.info", {}, timeout);
    if (!r) co_return std::move(r).error();
    co_return parseVmInfo(r->body);
}

reactor::Task<Result<void>> Client::put(std::string endpoint, std::string body, Duration timeout,
                                        std::vector<int> fds)
{
    auto r = co_await call("PUT", std::move(endpoint), std::move(body), timeout, std::move(fds));
    if (!r) co_return std::move(r).error();
    co_return success();
}

}  // namespace vmr::chv
