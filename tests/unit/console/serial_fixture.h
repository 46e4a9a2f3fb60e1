#pragma once

// For the console tests and benchmark: a synthetic serial console (a unix socket server that
// plays the VM's side, as QEMU's `-chardev socket,server=on` does) and viewer connections.

#include "reactor/reactor.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>

namespace vmr::console::testing {

// byte i of the synthetic console stream: a pattern whose every byte depends on its position.
inline char patternByte(uint64_t i)
{
    return static_cast<char>((i * 131 + (i >> 13) * 7) & 0xff);
}

inline std::string pattern(uint64_t from, size_t n)
{
    std::string s(n, '\0');
    for (size_t k = 0; k < n; ++k) s[k] = patternByte(from + k);
    return s;
}

// The VM's end of the serial socket: listens, accepts one client at a time (a new one replaces
// the old, as QEMU's does), records what the client types, writes what the test says.
class FakeSerial {
public:
    FakeSerial(reactor::Reactor& r, std::string path) : r_(r), path_(std::move(path)) {}
    ~FakeSerial() { vanish(); }

    bool listen()
    {
        auto fd = reactor::listenUnix(path_, 0600);
        if (!fd) return false;
        listener_ = std::make_unique<reactor::Listener>(r_, std::move(*fd),
                                                        [this](UniqueFd c) { accept(std::move(c)); });
        return true;
    }
    // Drop the client, as a hypervisor does when another one connects.
    void kick() { conn_.reset(); }
    // The socket goes away (the hypervisor exits).
    void vanish()
    {
        conn_.reset();
        listener_.reset();
        ::unlink(path_.c_str());
    }
    bool connected() const { return conn_ && !conn_->closed(); }
    void write(std::string data)
    {
        if (connected()) conn_->write(std::move(data));
    }
    size_t pending() const { return connected() ? conn_->pendingWriteBytes() : 0; }
    void pauseInput() { conn_->pauseReading(); }
    void resumeInput() { conn_->resumeReading(); }

    std::string input;  // what viewers typed, as the VM received it
    int accepts = 0;
    bool echo = false;  // write what is typed back, as a shell does

private:
    void accept(UniqueFd c)
    {
        ++accepts;
        conn_ = std::make_unique<reactor::Stream>(r_, std::move(c));
        reactor::Stream::Callbacks cbs;
        cbs.onData = [this](std::string_view d) {
            input.append(d);
            if (echo) conn_->write(std::string(d));
        };
        conn_->start(std::move(cbs));
    }

    reactor::Reactor& r_;
    std::string path_;
    std::unique_ptr<reactor::Listener> listener_;
    std::unique_ptr<reactor::Stream> conn_;
};

// A connected pair: `hubSide` for Hub::attach, `fd` the viewer's end.
struct ViewerPair {
    std::unique_ptr<reactor::Stream> hubSide;
    UniqueFd fd;
};

inline ViewerPair viewerPair(reactor::Reactor& r)
{
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) return {};
    return ViewerPair{std::make_unique<reactor::Stream>(r, UniqueFd(sv[0])), UniqueFd(sv[1])};
}

}  // namespace vmr::console::testing
