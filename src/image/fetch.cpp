#include "image/fetch.h"

#include "base/json.h"
#include "base/log.h"

#include <simdjson.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <csignal>
#include <utility>
#include <vector>

namespace vmr::image {

namespace {

// Read what is available on a non-blocking pipe; true at EOF or on an error.
bool readPipe(int fd, std::string& into)
{
    char buf[16384];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0) {
            into.append(buf, static_cast<size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        return !(n < 0 && errno == EAGAIN);
    }
}

std::string trimmed(std::string s)
{
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
    return s;
}

std::string seconds(reactor::Duration d)
{
    auto s = std::chrono::duration_cast<std::chrono::seconds>(d).count();
    return std::to_string(s < 1 ? 1 : s);
}

}  // namespace

reactor::Task<Result<FetchResult>> fetch(reactor::Reactor& r, FetchRequest req, ProgressFn onProgress,
                                         reactor::CancelToken* token)
{
    auto decompress = std::string(req.decompress == Decompress::Zstd   ? "zstd"
                                  : req.decompress == Decompress::None ? "none"
                                                                       : "auto");
    std::vector<std::string> argv = {req.program,
                                     "--url",
                                     req.url,
                                     "--output",
                                     req.output,
                                     "--decompress",
                                     decompress,
                                     "--connect-timeout",
                                     seconds(req.connectTimeout),
                                     "--read-timeout",
                                     seconds(req.readTimeout),
                                     "--retries",
                                     std::to_string(req.retries),
                                     "--progress-interval",
                                     std::to_string(req.progressInterval.count())};
    if (req.sha256) {
        argv.emplace_back("--sha256");
        argv.push_back(*req.sha256);
    }
    if (!req.caFile.empty()) {
        argv.emplace_back("--ca-file");
        argv.push_back(req.caFile);
    }
    log::command("image", argv);

    int outp[2], errp[2];
    if (::pipe2(outp, O_CLOEXEC | O_NONBLOCK) < 0) co_return Error::fromErrno(errno, "Cannot create a pipe");
    UniqueFd outRead(outp[0]), outWrite(outp[1]);
    if (::pipe2(errp, O_CLOEXEC | O_NONBLOCK) < 0) co_return Error::fromErrno(errno, "Cannot create a pipe");
    UniqueFd errRead(errp[0]), errWrite(errp[1]);
    // The child's ends must block: vmr-fetch writes with plain stdio.
    ::fcntl(outWrite.get(), F_SETFL, 0);
    ::fcntl(errWrite.get(), F_SETFL, 0);

    reactor::Completion<reactor::ExitStatus> exited;
    reactor::SpawnOptions opts;
    opts.argv = std::move(argv);
    opts.fds = {{outWrite.get(), 1}, {errWrite.get(), 2}};
    opts.deathSignal = SIGKILL;  // a download must not outlive vmrd and write into its cache
    auto child = reactor::Child::spawn(r, std::move(opts));
    if (!child) {
        if (child.error().kind() == ErrorKind::NotFound)
            co_return Error(ErrorKind::ToolMissing,
                            "Cannot download " + req.url + ": " + child.error().message(),
                            "Install vmr-fetch next to vmrd, or set images.fetch_program in vmrd.toml");
        co_return Error(ErrorKind::DownloadFailed, "Cannot start " + req.program)
            .causedBy(std::move(child).error());
    }
    outWrite.reset();
    errWrite.reset();
    (*child)->onExit([&exited](reactor::ExitStatus s) { exited.fulfil(s); });

    std::optional<FetchResult> done;
    std::optional<Error> reported;
    std::optional<Error> protocolError;
    std::string errText;
    LineSplitter lines;
    auto lastActivity = reactor::Clock::now();
    auto onLine = [&](std::string_view line) {
        lastActivity = reactor::Clock::now();
        auto ev = parseFetchEvent(line);
        if (!ev) {
            if (!protocolError) protocolError = std::move(ev).error();
            return;
        }
        switch (ev->type) {
            case FetchEvent::Type::Start:
            case FetchEvent::Type::Progress:
            case FetchEvent::Type::Retry:
                if (ev->type == FetchEvent::Type::Retry)
                    log::get("image").debug("{}: retrying from byte {}: {}", req.url, ev->offset, ev->reason);
                if (onProgress && ev->type != FetchEvent::Type::Retry) {
                    Progress p{ev->received, ev->total, ev->written};
                    onProgress(p);
                }
                break;
            case FetchEvent::Type::Done:
                done = FetchResult{ev->url,    ev->written,        ev->received,
                                   ev->sha256, ev->downloadSha256, ev->compression};
                break;
            case FetchEvent::Type::Error: reported = Error(ev->errorKind, ev->message, ev->hint); break;
        }
    };
    std::string chunk;
    auto drainOut = [&]() {
        chunk.clear();
        bool eof = readPipe(outRead.get(), chunk);
        auto fed = lines.feed(chunk, onLine);
        if (!fed && !protocolError) protocolError = std::move(fed).error();
        return eof;
    };
    auto drainErr = [&]() {
        std::string more;
        bool eof = readPipe(errRead.get(), more);
        if (errText.size() < 4096) errText += more.substr(0, 4096 - errText.size());
        return eof;
    };
    std::optional<reactor::FdWatch> outWatch, errWatch;
    outWatch.emplace(r, outRead.get(), reactor::Readable, [&](uint32_t) {
        if (drainOut()) outWatch->stop();
    });
    errWatch.emplace(r, errRead.get(), reactor::Readable, [&](uint32_t) {
        if (drainErr()) errWatch->stop();
    });

    // vmr-fetch fails on its own when the server stalls; this catches a helper that hangs.
    const auto stallLimit = req.connectTimeout + req.readTimeout + std::chrono::seconds(15);
    std::optional<Error> failure;
    for (;;) {
        auto waiting = reactor::awaitWithTimeout(r, exited, std::chrono::seconds(1), token);
        auto w = co_await waiting;
        if (w) break;
        if (w.error().kind() == ErrorKind::Cancelled) {
            failure = Error(ErrorKind::Cancelled, "Download of " + req.url + " was cancelled");
            break;
        }
        if (reactor::Clock::now() - lastActivity > stallLimit) {
            failure = Error(ErrorKind::Timeout,
                            "Download of " + req.url + " made no progress for " + seconds(stallLimit) +
                                " s and was stopped",
                            "Check the network, or try again later");
            break;
        }
    }
    if (failure) {
        (void)(*child)->signal(SIGKILL);
        auto reaping = (*child)->wait(std::chrono::seconds(10));
        (void)co_await reaping;
        ::unlink(req.output.c_str());
        co_return std::move(*failure);
    }
    reactor::ExitStatus status = exited.take();
    drainOut();
    drainErr();

    auto fail = [&](Error e) {
        ::unlink(req.output.c_str());
        return e;
    };
    if (status.exited() && status.code == 0 && done && !protocolError) {
        if (req.sha256 && done->downloadSha256 != *req.sha256)
            co_return fail(Error(
                ErrorKind::ChecksumMismatch,
                "Download of " + req.url + " has SHA-256 " + done->downloadSha256 + ", not " + *req.sha256));
        if (::access(req.output.c_str(), F_OK) != 0)
            co_return fail(Error(ErrorKind::Internal,
                                 "vmr-fetch reported success but " + req.output + " does not exist"));
        co_return std::move(*done);
    }
    if (reported) co_return fail(std::move(*reported));
    if (protocolError)
        co_return fail(
            Error(ErrorKind::Internal, "Cannot understand vmr-fetch").causedBy(std::move(*protocolError)));
    std::string why = trimmed(errText);
    co_return fail(Error(ErrorKind::DownloadFailed, "Download of " + req.url + " failed: vmr-fetch " +
                                                        status.describe() + (why.empty() ? "" : ": " + why)));
}

}  // namespace vmr::image
