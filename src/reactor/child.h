#pragma once

// Child processes through pidfds only (STYLE.md, practice 6): spawned with clone3(CLONE_PIDFD)
// (or fork + pidfd_open), watched through the pidfd becoming readable, reaped with
// waitid(P_PIDFD), signalled with pidfd_send_signal. No SIGCHLD handler, no waitpid on a pid.

#include "base/credentials.h"
#include "base/fd.h"
#include "base/result.h"
#include "reactor/loop.h"
#include "reactor/task.h"

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace vmr::reactor {

struct ExitStatus {
    int code = -1;                                            // exit code, or -1
    int signal = 0;                                           // the signal that killed it, or 0
    bool exited() const { return signal == 0 && code >= 0; }  // exited normally (code is valid)
    std::string describe() const;                             // "exited with code 1", "killed by SIGKILL"
};

struct SpawnOptions {
    std::vector<std::string> argv;                // argv[0] is resolved through PATH if it has no '/'
    std::optional<std::vector<std::string>> env;  // default: inherit
    std::string cwd;                              // default: inherit
    bool newSession = false;                      // setsid(): the child survives the daemon (VMs)
    // fd allowlist: {parent fd, child fd}. 0/1/2 are /dev/null unless mapped; every other fd is
    // closed in the child.
    std::vector<std::pair<int, int>> fds;
    std::optional<int> deathSignal;  // prctl(PR_SET_PDEATHSIG) for helpers that must die with us
    // Run as this user (groups, gid, uid set after the fds, before exec; needs root), with
    // no_new_privs: a setuid binary cannot take the rights back.
    std::optional<Credentials> runAs;
};

// The executable a spawn of `name` would run: a name without '/' is looked up in PATH (from
// `env` when given, else vmrd's own), a path must be an executable file. NotFound otherwise.
Result<std::string> findProgram(const std::string& name, const std::vector<std::string>* env = nullptr);

class Child : private detail::OpOwner {
public:
    // A missing program is NotFound ("X not found in PATH"); any failure before exec() in the
    // child is reported here rather than as an exit code.
    static Result<std::unique_ptr<Child>> spawn(Reactor& r, SpawnOptions opts);
    // pidfd_open an existing process. Its exit status is known only if it is our child.
    static Result<std::unique_ptr<Child>> adopt(Reactor& r, pid_t pid);

    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    // Does not kill the process. If it is our child and still running, it is reaped in the
    // background when it exits (no zombie).
    ~Child() override;

    pid_t pid() const noexcept { return pid_; }
    int pidfd() const noexcept { return pidfd_.get(); }
    // Fires once, when the process has exited (on the loop, even if it already has).
    void onExit(std::function<void(ExitStatus)> cb);
    bool exited() const noexcept { return status_.has_value(); }
    std::optional<ExitStatus> status() const { return status_; }
    Result<void> signal(int signo);
    // The exit status, or a Timeout error when it does not exit in time. The Child must outlive
    // the wait.
    Task<Result<ExitStatus>> wait(Duration timeout);

private:
    Child(Reactor& r, pid_t pid, UniqueFd pidfd, bool ours);
    void arm();
    void onOpComplete(detail::Op& op) noexcept override;

    Reactor& reactor_;
    pid_t pid_;
    UniqueFd pidfd_;
    bool ours_;
    std::optional<ExitStatus> status_;
    std::function<void(ExitStatus)> onExit_;
    // Internal waiters (wait()); they never call back into the Child.
    std::map<uint64_t, std::function<void(const ExitStatus&)>> waiters_;
    uint64_t nextWaiter_ = 1;
    detail::OpSlot<detail::PollOp> poll_;
    bool* destroyed_ = nullptr;
    std::shared_ptr<char> alive_ = std::make_shared<char>();
};

// Run a program to completion, capturing stdout and stderr (through pipes read on the loop).
// After `timeout` it is killed (SIGKILL) and the result is a Timeout error.
struct RunResult {
    ExitStatus status;
    std::string out;
    std::string err;
};
Task<Result<RunResult>> run(Reactor& r, SpawnOptions opts, Duration timeout);

}  // namespace vmr::reactor
