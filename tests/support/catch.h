#pragma once

// Catch2 helpers on top of support.h, for the unit and integration tests.

#include "support.h"

#include <catch2/catch.hpp>

#include <sys/stat.h>

namespace vmr::test {

// Run `t` to completion (REQUIRE it finishes in time) and return its result.
template <typename T>
T finish(reactor::Reactor& r, reactor::Task<T>& t, reactor::Duration timeout = std::chrono::seconds(30))
{
    REQUIRE(runUntilDone(r, t, timeout));
    if constexpr (!std::is_void_v<T>) return t.result();
}
template <typename T>
T finish(reactor::Reactor& r, reactor::Task<T>&& t, reactor::Duration timeout = std::chrono::seconds(30))
{
    return finish(r, t, timeout);
}

// The permission bits of a path (not following a final symlink).
inline mode_t modeOf(const std::string& path)
{
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

// The same, by the name the reactor tests use.
template <typename T>
T runTask(reactor::Reactor& r, reactor::Task<T>&& t, reactor::Duration timeout = std::chrono::seconds(10))
{
    return finish(r, t, timeout);
}

}  // namespace vmr::test
