#pragma once

// What every test program shares (tests/support): temp folders, small files, a reactor on the
// backend meson chose (VMR_REACTOR), running a task to completion, the test guest. Blocking code
// is fine here: tests are processes, not the daemon. No Catch2 in here: benchmarks link it too
// (catch.h adds the assertions).

#include "base/fd.h"
#include "reactor/reactor.h"

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace vmr::test {

using namespace std::chrono_literals;

// A fresh folder under /tmp (short, so unix socket paths fit in 108 bytes), removed with
// everything in it at the end. Aborts the test program when it cannot be made.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string operator/(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

// The processes (other than this one) whose command line names a path under `dir`, or that
// hold a file under it open: what a test started there (TempDir kills them at its end).
std::vector<pid_t> processesUsing(const std::string& dir);

// Whole small files; writeFile creates missing folders.
void writeFile(const std::string& path, const std::string& data);
std::string readFile(const std::string& path);
std::vector<std::string> listDir(const std::string& path);  // sorted names

// A reactor on the backend VMR_REACTOR names (the default probe otherwise); aborts on failure.
std::unique_ptr<reactor::Reactor> makeReactor();
std::pair<UniqueFd, UniqueFd> socketPair();

// Start a task and run the loop until it finishes; false when `timeout` passed first.
template <typename T>
bool runUntilDone(reactor::Reactor& r, reactor::Task<T>& t,
                  reactor::Duration timeout = std::chrono::seconds(30))
{
    t.start();
    return r.runUntil([&] { return t.done(); }, timeout);
}

// Poll `pred` every 5 ms (without running any reactor) until true or `timeout` passes.
bool eventuallyTrue(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

// Whether `name` is an executable in PATH.
bool haveProgram(const std::string& name);

// The tiny test guest tests/guest/build.sh makes ($VMR_TEST_GUEST, default /tmp/vmr-guest).
std::string guestDir();
bool haveGuest();

}  // namespace vmr::test
