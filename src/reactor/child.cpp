#include "reactor/child.h"

#include "base/log.h"
#include "reactor/await.h"

#include "config.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

extern char** environ;

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace vmr::reactor {

namespace {

constexpr size_t kMaxCapture = 16 << 20;  // per stream, for run()

// What a child reports through the exec-error pipe before exiting 127.
enum class Stage : int { Signals = 1, Session, DeathSignal, Cwd, Fds, Identity, Exec };

struct ChildReport {
    Stage stage;
    int err;
};

const char* stageText(Stage s)
{
    switch (s) {
        case Stage::Signals: return "resetting signals";
        case Stage::Session: return "creating a session";
        case Stage::DeathSignal: return "setting the parent-death signal";
        case Stage::Cwd: return "changing to the working directory";
        case Stage::Fds: return "setting up file descriptors";
        case Stage::Identity: return "switching to its user";
        case Stage::Exec: return "executing";
    }
    return "starting";
}

// Everything the child needs, prepared by the parent: the child only makes async-signal-safe calls.
struct Plan {
    const char* path = nullptr;
    std::vector<char*> argv;
    char** envp = nullptr;
    const char* cwd = nullptr;
    bool newSession = false;
    int deathSignal = 0;
    pid_t parent = 0;
    int errPipe = -1;
    int base = 3;  // staging area for fds: above every fd involved
    std::vector<std::pair<int, int>> maps;
    int maxTarget = 2;
    std::vector<char> isTarget;  // [0, maxTarget]
    std::vector<int> staged;
    bool switchUser = false;
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;
};

[[noreturn]] void fail(const Plan& p, int errFd, Stage stage, int err)
{
    ChildReport rep{stage, err};
    if (errFd >= 0) {
        ssize_t n = ::write(errFd, &rep, sizeof(rep));
        (void)n;
    }
    ::_exit(127);
    (void)p;
}

[[noreturn]] void childMain(Plan& p)
{
    int errFd = p.errPipe;
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; ++s) ::sigaction(s, &dfl, nullptr);  // fails harmlessly for KILL/STOP
    sigset_t none;
    sigemptyset(&none);
    if (::sigprocmask(SIG_SETMASK, &none, nullptr) < 0) fail(p, errFd, Stage::Signals, errno);
    if (p.newSession && ::setsid() < 0) fail(p, errFd, Stage::Session, errno);
    if (p.deathSignal != 0) {
        if (::prctl(PR_SET_PDEATHSIG, p.deathSignal) < 0) fail(p, errFd, Stage::DeathSignal, errno);
        if (::getppid() != p.parent) ::kill(::getpid(), p.deathSignal);  // the parent is already gone
    }
    if (p.cwd != nullptr && ::chdir(p.cwd) < 0) fail(p, errFd, Stage::Cwd, errno);
    // Move the error pipe and every source above all targets, then put each in place: a source
    // may be another mapping's target.
    errFd = ::fcntl(p.errPipe, F_DUPFD_CLOEXEC, p.base);
    if (errFd < 0) fail(p, p.errPipe, Stage::Fds, errno);
    for (size_t i = 0; i < p.maps.size(); ++i) {
        p.staged[i] = ::fcntl(p.maps[i].first, F_DUPFD_CLOEXEC, p.base);
        if (p.staged[i] < 0) fail(p, errFd, Stage::Fds, errno);
    }
    for (size_t i = 0; i < p.maps.size(); ++i)
        if (::dup2(p.staged[i], p.maps[i].second) < 0) fail(p, errFd, Stage::Fds, errno);
    for (int fd = 0; fd <= p.maxTarget; ++fd)
        if (!p.isTarget[static_cast<size_t>(fd)]) ::close(fd);
    // Everything else goes, except the error pipe (close-on-exec).
    if (errFd - 1 >= p.maxTarget + 1)
        ::syscall(SYS_close_range, static_cast<unsigned>(p.maxTarget + 1), static_cast<unsigned>(errFd - 1),
                  0u);
    ::syscall(SYS_close_range, static_cast<unsigned>(errFd + 1), ~0u, 0u);
    if (p.switchUser) {
        // Raw syscalls: the child of a fork may only make async-signal-safe calls.
        if (::syscall(SYS_setgroups, p.groups.size(), p.groups.data()) != 0 ||
            ::syscall(SYS_setresgid, p.gid, p.gid, p.gid) != 0 ||
            ::syscall(SYS_setresuid, p.uid, p.uid, p.uid) != 0 ||
            ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
            fail(p, errFd, Stage::Identity, errno);
    }
    ::execve(p.path, p.argv.data(), p.envp);
    fail(p, errFd, Stage::Exec, errno);
}

bool isExecutable(const std::string& path)
{
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

}  // namespace

Result<std::string> findProgram(const std::string& name, const std::vector<std::string>* env)
{
    if (name.find('/') != std::string::npos) {
        if (isExecutable(name)) return name;
        return Error(ErrorKind::NotFound, name + " does not exist or is not an executable file",
                     "Install it, or give the path of the program");
    }
    std::string pathVar;
    bool found = false;
    if (env != nullptr) {
        for (const auto& e : *env) {
            if (e.rfind("PATH=", 0) == 0) {
                pathVar = e.substr(5);
                found = true;
            }
        }
    }
    if (!found) {
        const char* p = std::getenv("PATH");
        pathVar = p != nullptr ? p : "/usr/local/bin:/usr/bin:/bin";
    }
    std::string_view rest = pathVar;
    for (;;) {
        size_t colon = rest.find(':');
        std::string_view dir = rest.substr(0, colon);
        if (dir.empty()) dir = ".";
        // Appended piece by piece: `dir + "/" + name` trips GCC 12's -Wrestrict false positive
        // at -O3 (GCC bug 105329), and this is what a release build compiles.
        std::string candidate;
        candidate.reserve(dir.size() + 1 + name.size());
        candidate.append(dir).append(1, '/').append(name);
        if (isExecutable(candidate)) return candidate;
        if (colon == std::string_view::npos) break;
        rest.remove_prefix(colon + 1);
    }
    return Error(ErrorKind::NotFound, name + " not found in PATH",
                 "Install " + name + ", or add the folder that holds it to PATH");
}

namespace {

Result<std::string> resolve(const SpawnOptions& opts)
{
    const std::string& name = opts.argv[0];
    // A path is tried as given: exec() reports what is wrong with it.
    if (name.find('/') != std::string::npos) return name;
    return findProgram(name, opts.env ? &*opts.env : nullptr);
}

// The layout of the kernel's struct clone_args (CLONE_ARGS_SIZE_VER0).
struct CloneArgs {
    uint64_t flags;
    uint64_t pidfd;
    uint64_t childTid;
    uint64_t parentTid;
    uint64_t exitSignal;
    uint64_t stack;
    uint64_t stackSize;
    uint64_t tls;
};

// Returns the pid (0 in the child) and sets *pidfd; -1 with errno on failure.
pid_t forkWithPidfd(int* pidfd)
{
#if VMR_HAVE_CLONE3
    CloneArgs args{};
    args.flags = CLONE_PIDFD;
    args.pidfd = reinterpret_cast<uint64_t>(pidfd);
    args.exitSignal = SIGCHLD;  // so waitid() sees an ordinary child (no __WCLONE)
    long pid = ::syscall(SYS_clone3, &args, sizeof(args));
    if (pid >= 0) return static_cast<pid_t>(pid);
    if (errno != ENOSYS && errno != EPERM) return -1;
#endif
    pid_t p = ::fork();
    if (p != 0) {
        if (p > 0) *pidfd = static_cast<int>(::syscall(SYS_pidfd_open, p, 0));
        return p;
    }
    return 0;
}

ExitStatus fromSiginfo(const siginfo_t& info)
{
    ExitStatus s;
    if (info.si_code == CLD_EXITED)
        s.code = info.si_status;
    else if (info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED)
        s.signal = info.si_status;
    return s;
}

// Reaps a child nobody waits for any more: frees itself (and reaps) at its completion, or
// when the reactor goes away.
struct ReapOp final : detail::Op {
    explicit ReapOp(UniqueFd fd) : Op(detail::OpKind::Poll), pidfd(std::move(fd))
    {
        this->fd = pidfd.get();
        pollMask = POLLIN;
    }
    ~ReapOp() override
    {
        siginfo_t info{};
        ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd.get()), &info, WEXITED | WNOHANG);
    }
    UniqueFd pidfd;
};

}  // namespace

std::string ExitStatus::describe() const
{
    if (signal != 0) {
        const char* abbrev = ::sigabbrev_np(signal);
        return abbrev != nullptr ? std::string("killed by SIG") + abbrev
                                 : "killed by signal " + std::to_string(signal);
    }
    if (code >= 0) return "exited with code " + std::to_string(code);
    return "exited (status unknown)";
}

Result<std::unique_ptr<Child>> Child::spawn(Reactor& r, SpawnOptions opts)
{
    if (opts.argv.empty()) return Error(ErrorKind::InvalidArgument, "Cannot run an empty command");
    auto path = resolve(opts);
    if (!path) return std::move(path).error();
    log::command("reactor", opts.argv);

    Plan p;
    p.path = path->c_str();
    for (auto& a : opts.argv) p.argv.push_back(a.data());
    p.argv.push_back(nullptr);
    std::vector<char*> envp;
    if (opts.env) {
        for (auto& e : *opts.env) envp.push_back(e.data());
        envp.push_back(nullptr);
        p.envp = envp.data();
    } else {
        p.envp = environ;
    }
    p.cwd = opts.cwd.empty() ? nullptr : opts.cwd.c_str();
    p.newSession = opts.newSession;
    p.deathSignal = opts.deathSignal.value_or(0);
    p.parent = ::getpid();
    if (opts.runAs) {
        p.switchUser = true;
        p.uid = opts.runAs->uid;
        p.gid = opts.runAs->gid;
        p.groups = opts.runAs->groups;
    }

    UniqueFd devNull(::open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!devNull) return Error::fromErrno(errno, "Cannot open /dev/null");
    p.maps = opts.fds;
    for (int std = 0; std <= 2; ++std) {
        bool mapped = std::any_of(p.maps.begin(), p.maps.end(), [&](auto& m) { return m.second == std; });
        if (!mapped) p.maps.emplace_back(devNull.get(), std);
    }
    int errPipe[2];
    if (::pipe2(errPipe, O_CLOEXEC) < 0) return Error::fromErrno(errno, "Cannot create a pipe");
    UniqueFd errRead(errPipe[0]), errWrite(errPipe[1]);
    p.errPipe = errWrite.get();
    int highest = std::max({errWrite.get(), devNull.get(), errRead.get()});
    for (auto& [src, dst] : p.maps) {
        if (src < 0 || dst < 0) return Error(ErrorKind::InvalidArgument, "Invalid fd mapping for the child");
        highest = std::max({highest, src, dst});
        p.maxTarget = std::max(p.maxTarget, dst);
    }
    p.base = highest + 1;
    p.isTarget.assign(static_cast<size_t>(p.maxTarget) + 1, 0);
    for (auto& m : p.maps) p.isTarget[static_cast<size_t>(m.second)] = 1;
    p.staged.assign(p.maps.size(), -1);

    int pidfd = -1;
    pid_t pid = forkWithPidfd(&pidfd);
    if (pid < 0) return Error::fromErrno(errno, "Cannot start " + opts.argv[0]);
    if (pid == 0) childMain(p);
    UniqueFd pidfdOwned(pidfd);
    errWrite.reset();
    if (!pidfdOwned) return Error::fromErrno(errno, "Cannot open a pidfd for " + opts.argv[0]);

    // The pipe closes at exec (close-on-exec), or carries the reason the child gave up.
    ChildReport rep{};
    ssize_t n;
    do n = ::read(errRead.get(), &rep, sizeof(rep));
    while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(sizeof(rep))) {
        siginfo_t info{};
        ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfdOwned.get()), &info, WEXITED);
        std::string what = "Cannot start " + opts.argv[0] + " (" + stageText(rep.stage) + ")";
        if (rep.stage == Stage::Exec && rep.err == ENOENT)
            return Error(ErrorKind::NotFound, what, "Check that " + *path + " and its interpreter exist")
                .causedBy(Error::fromErrno(rep.err, "execve"));
        if (rep.stage == Stage::Cwd) return Error::fromErrno(rep.err, what + " in " + opts.cwd);
        return Error::fromErrno(rep.err, what);
    }
    std::unique_ptr<Child> c(new Child(r, pid, std::move(pidfdOwned), true));
    return c;
}

Result<std::unique_ptr<Child>> Child::adopt(Reactor& r, pid_t pid)
{
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (fd < 0) {
        if (errno == ESRCH)
            return Error(ErrorKind::NotFound, "No process " + std::to_string(pid))
                .causedBy(Error::fromErrno(errno, "pidfd_open"));
        return Error::fromErrno(errno, "Cannot open a pidfd for process " + std::to_string(pid));
    }
    std::unique_ptr<Child> c(new Child(r, pid, UniqueFd(fd), false));
    return c;
}

Child::Child(Reactor& r, pid_t pid, UniqueFd pidfd, bool ours)
    : reactor_(r), pid_(pid), pidfd_(std::move(pidfd)), ours_(ours)
{
    arm();
}

Child::~Child()
{
    poll_.reset();
    if (!status_ && ours_ && pidfd_) reactor_.submitOp(new ReapOp(std::move(pidfd_)));
    if (destroyed_ != nullptr) *destroyed_ = true;
}

void Child::arm()
{
    poll_.submitPoll(reactor_, this, pidfd_.get(), POLLIN);
}

void Child::onOpComplete(detail::Op& op) noexcept
{
    if (op.res < 0 || !(op.res & (POLLIN | POLLHUP | POLLERR))) {
        arm();
        return;
    }
    ExitStatus s;
    siginfo_t info{};
    int ret;
    do
        ret = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_.get()), &info,
                       WEXITED | WNOHANG);
    while (ret < 0 && errno == EINTR);
    if (ret == 0 && info.si_pid != 0) s = fromSiginfo(info);  // ours (or adopted but ours): reaped
    status_ = s;
    poll_.reset();
    // A dead process's pidfd is of no more use: hundreds of stopped VMs hold no fds.
    pidfd_.reset();
    auto waiters = std::move(waiters_);
    waiters_.clear();
    for (auto& [id, w] : waiters) w(s);
    if (onExit_) {
        auto cb = std::move(onExit_);
        cb(s);  // may destroy this Child
    }
}

void Child::onExit(std::function<void(ExitStatus)> cb)
{
    if (!status_) {
        onExit_ = std::move(cb);
        return;
    }
    reactor_.post([cb = std::move(cb), s = *status_] { cb(s); });
}

Result<void> Child::signal(int signo)
{
    if (status_) return Error(ErrorKind::NotFound, "Process " + std::to_string(pid_) + " has exited");
    if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), signo, nullptr, 0) < 0)
        return Error::fromErrno(errno, "Cannot signal process " + std::to_string(pid_));
    return success();
}

Task<Result<ExitStatus>> Child::wait(Duration timeout)
{
    if (status_) co_return *status_;
    Completion<ExitStatus> done;
    uint64_t id = nextWaiter_++;
    waiters_.emplace(id, [&done](const ExitStatus& s) { done.fulfil(s); });
    struct Unregister {
        std::map<uint64_t, std::function<void(const ExitStatus&)>>& waiters;
        uint64_t id;
        ~Unregister() { waiters.erase(id); }  // also when the waiting task is destroyed
    } unregister{waiters_, id};
    auto res = co_await awaitWithTimeout(reactor_, done, timeout);
    if (!res)
        co_return Error(ErrorKind::Timeout, "Process " + std::to_string(pid_) + " did not exit within " +
                                                std::to_string(timeout.count()) + " ms");
    co_return *res;
}

// ---- run() --------------------------------------------------------------------------------

namespace {

// Read what is available; true at EOF or on an error.
bool drainPipe(int fd, std::string& into)
{
    char buf[16384];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof(buf));
        if (n > 0) {
            size_t keep = std::min(static_cast<size_t>(n), kMaxCapture - std::min(kMaxCapture, into.size()));
            into.append(buf, keep);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    }
}

}  // namespace

Task<Result<RunResult>> run(Reactor& r, SpawnOptions opts, Duration timeout)
{
    int outp[2], errp[2];
    if (::pipe2(outp, O_CLOEXEC) < 0) co_return Error::fromErrno(errno, "Cannot create a pipe");
    UniqueFd outRead(outp[0]), outWrite(outp[1]);
    if (::pipe2(errp, O_CLOEXEC) < 0) co_return Error::fromErrno(errno, "Cannot create a pipe");
    UniqueFd errRead(errp[0]), errWrite(errp[1]);
    ::fcntl(outRead.get(), F_SETFL, O_NONBLOCK);
    ::fcntl(errRead.get(), F_SETFL, O_NONBLOCK);
    std::erase_if(opts.fds, [](auto& m) { return m.second == 1 || m.second == 2; });
    opts.fds.emplace_back(outWrite.get(), 1);
    opts.fds.emplace_back(errWrite.get(), 2);
    std::string name = opts.argv.empty() ? std::string() : opts.argv[0];
    auto child = Child::spawn(r, std::move(opts));
    if (!child) co_return std::move(child).error();
    outWrite.reset();
    errWrite.reset();

    RunResult result;
    std::optional<FdWatch> outWatch, errWatch;
    outWatch.emplace(r, outRead.get(), Readable, [&](uint32_t) {
        if (drainPipe(outRead.get(), result.out)) outWatch->stop();
    });
    errWatch.emplace(r, errRead.get(), Readable, [&](uint32_t) {
        if (drainPipe(errRead.get(), result.err)) errWatch->stop();
    });
    auto status = co_await (*child)->wait(timeout);
    if (!status) {
        (void)(*child)->signal(SIGKILL);
        (void)co_await (*child)->wait(std::chrono::seconds(5));
        co_return Error(ErrorKind::Timeout, name + " did not finish within " +
                                                std::to_string(timeout.count()) + " ms and was killed");
    }
    // What the child wrote before exiting is in the pipes now; don't wait for EOF (a grandchild
    // may hold them open).
    drainPipe(outRead.get(), result.out);
    drainPipe(errRead.get(), result.err);
    result.status = *status;
    co_return result;
}

}  // namespace vmr::reactor
