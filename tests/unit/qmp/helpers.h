#pragma once

// Shared by the QMP client tests: a reactor on the backend VMR_REACTOR selects, a scripted QMP
// peer on the far end of a socketpair, and a way to drive tasks.

#include "catch.h"
#include "qmp/client.h"
#include "reactor/reactor.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace vmr::qmp::test {

using namespace std::chrono_literals;
using reactor::Reactor;
using reactor::Task;

using vmr::test::makeReactor;
using vmr::test::socketPair;

// Run the loop until an already started task finishes; its result.
template <typename T>
T waitFor(Reactor& r, Task<T>& t, reactor::Duration timeout = 10s)
{
    REQUIRE(r.runUntil([&] { return t.done(); }, timeout));
    return t.result();
}

using vmr::test::finish;

// The QEMU side of a connection, driven by the test between turns of the loop.
class Peer {
public:
    explicit Peer(UniqueFd fd) : fd_(std::move(fd))
    {
        int fl = ::fcntl(fd_.get(), F_GETFL);
        REQUIRE(::fcntl(fd_.get(), F_SETFL, fl | O_NONBLOCK) == 0);
    }

    // The fd the client reads: lets the test wait until a write has been consumed.
    void watchClient(int clientFd) { clientFd_ = clientFd; }

    void write(std::string_view data)
    {
        while (!data.empty()) {
            ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
            if (n < 0 && errno == EAGAIN) {
                pollfd p{fd_.get(), POLLOUT, 0};
                ::poll(&p, 1, 1000);
                continue;
            }
            REQUIRE(n > 0);
            data.remove_prefix(static_cast<size_t>(n));
        }
    }

    // Write, then run the loop until the client has read it all, so the next write arrives in
    // a read of its own.
    void writeAndDrain(Reactor& r, std::string_view data)
    {
        write(data);
        drain(r);
    }

    void drain(Reactor& r)
    {
        REQUIRE(clientFd_ >= 0);
        REQUIRE(r.runUntil(
            [&] {
                int n = 0;
                return ::ioctl(clientFd_, FIONREAD, &n) == 0 && n == 0;
            },
            5s));
        // The read has completed in the kernel; let the loop dispatch it.
        (void)r.runFor(1ms);
    }

    // Every byte in a write of its own.
    void writeBytewise(Reactor& r, std::string_view data)
    {
        for (char c : data) writeAndDrain(r, std::string_view(&c, 1));
    }

    // The next line the client sent, without its terminator.
    std::string readLine(Reactor& r, reactor::Duration timeout = 5s)
    {
        std::optional<std::string> line;
        // runUntil() may evaluate the predicate again after it held: take a line only once.
        bool ok = r.runUntil(
            [&] {
                if (!line) line = takeLine();
                return line.has_value();
            },
            timeout);
        if (!ok) FAIL("The client sent no line; buffered: " << in_);
        return *line;
    }

    // True when the client sent nothing more within d.
    bool silentFor(Reactor& r, reactor::Duration d)
    {
        (void)r.runFor(d);
        fill();
        return in_.empty();
    }

    void close() { fd_.reset(); }

private:
    void fill()
    {
        char buf[4096];
        for (;;) {
            ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
            if (n <= 0) return;
            in_.append(buf, static_cast<size_t>(n));
        }
    }

    std::optional<std::string> takeLine()
    {
        fill();
        auto nl = in_.find('\n');
        if (nl == std::string::npos) return std::nullopt;
        std::string line = in_.substr(0, nl);
        in_.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return line;
    }

    UniqueFd fd_;
    int clientFd_ = -1;
    std::string in_;
};

inline constexpr std::string_view kGreeting =
    R"({"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}})"
    "\r\n";

}  // namespace vmr::qmp::test
