#pragma once

// Shared by the reactor tests: a reactor on the backend VMR_REACTOR selects (meson runs the
// suite once per backend), socket pairs, temp dirs, and a way to drive a Task to completion.

#include "reactor/reactor.h"

#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>

namespace vmr::reactor::test {

inline std::unique_ptr<Reactor> makeReactor()
{
    auto r = Reactor::create();
    if (!r) FAIL("Reactor::create: " << r.error().what());
    return std::move(*r);
}

inline std::pair<UniqueFd, UniqueFd> socketPair()
{
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    return {UniqueFd(sv[0]), UniqueFd(sv[1])};
}

// A temporary directory removed with everything in it.
class TempDir {
public:
    TempDir()
    {
        std::string tmpl = std::filesystem::temp_directory_path() / "vmr-reactor-XXXXXX";
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path_ = tmpl;
    }
    ~TempDir()
    {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    std::string operator/(const std::string& name) const { return path_ + "/" + name; }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

// Start a task and run the loop until it finishes (or the timeout passes).
template <typename T>
T runTask(Reactor& r, Task<T> t, Duration timeout = std::chrono::seconds(10))
{
    t.start();
    REQUIRE(r.runUntil([&] { return t.done(); }, timeout));
    if constexpr (!std::is_void_v<T>) return t.result();
}

}  // namespace vmr::reactor::test
