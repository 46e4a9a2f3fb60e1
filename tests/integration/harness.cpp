#include "harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

extern char** environ;

namespace vmr::test {

namespace {

int pidfdOpen(pid_t pid)
{
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

std::vector<std::string> mergedEnv(const std::map<std::string, std::string>& extra)
{
    std::map<std::string, std::string> all;
    for (char** e = environ; *e != nullptr; ++e) {
        std::string kv = *e;
        auto eq = kv.find('=');
        if (eq != std::string::npos) all[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (const auto& [k, v] : extra) {
        if (v.empty())
            all.erase(k);  // an empty value unsets
        else
            all[k] = v;
    }
    std::vector<std::string> out;
    for (const auto& [k, v] : all) out.push_back(k + "=" + v);
    return out;
}

std::vector<char*> cstrings(std::vector<std::string>& v)
{
    std::vector<char*> out;
    for (auto& s : v) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

// Wait for a pidfd to become readable; then reap. nullopt on timeout.
std::optional<int> waitPidfd(pid_t pid, int pidfd, std::chrono::milliseconds timeout)
{
    pollfd p{pidfd, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (n <= 0) return std::nullopt;
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

}  // namespace

std::string binary(const char* envName)
{
    const char* v = std::getenv(envName);
    if (v == nullptr) throw std::runtime_error(std::string(envName) + " is not set (run through meson test)");
    return v;
}

ProcResult run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
               std::chrono::milliseconds timeout, const std::string& input)
{
    int out[2], err[2], in[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0 || ::pipe2(in, O_CLOEXEC) != 0) {
        throw std::runtime_error("pipe2 failed");
    }
    auto envs = mergedEnv(env);
    auto args = argv;
    auto cargs = cstrings(args);
    auto cenv = cstrings(envs);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(in[0], 0);
        ::dup2(out[1], 1);
        ::dup2(err[1], 2);
        ::execve(cargs[0], cargs.data(), cenv.data());
        ::_exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    ::close(in[0]);
    if (!input.empty()) (void)!::write(in[1], input.data(), input.size());
    ::close(in[1]);
    int pidfd = pidfdOpen(pid);
    ProcResult r;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    bool outOpen = true, errOpen = true;
    while (outOpen || errOpen) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                          std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            ::kill(pid, SIGKILL);
            break;
        }
        pollfd p[2] = {{outOpen ? out[0] : -1, POLLIN, 0}, {errOpen ? err[0] : -1, POLLIN, 0}};
        if (::poll(p, 2, static_cast<int>(left.count())) <= 0) continue;
        char buf[65536];
        for (int i = 0; i < 2; ++i) {
            if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
            ssize_t n = ::read(p[i].fd, buf, sizeof buf);
            if (n <= 0) {
                (i == 0 ? outOpen : errOpen) = false;
                continue;
            }
            (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
        }
    }
    ::close(out[0]);
    ::close(err[0]);
    auto code = waitPidfd(pid, pidfd, 10s);
    ::close(pidfd);
    r.code = code.value_or(-1);
    return r;
}

Daemon::Daemon(const TempDir& dir, Config config)
{
    stateDir_ = dir / "state";
    std::string runtime = dir / "run";
    socket_ = runtime + "/vmrd.sock";
    logPath_ = dir / "vmrd.log";
    std::vector<std::string> argv = {binary("VMR_VMRD"),
                                     config.system ? "--system" : "--user",
                                     "--state-dir",
                                     stateDir_,
                                     "--runtime-dir",
                                     runtime,
                                     "--socket",
                                     socket_,
                                     "-v"};
    if (!config.configToml.empty()) {
        writeFile(dir / "vmrd.toml", config.configToml);
        argv.push_back("--config");
        argv.push_back(dir / "vmrd.toml");
    }
    for (auto& a : config.extraArgs) argv.push_back(a);
    std::map<std::string, std::string> env = {{"HOME", dir.path()},
                                              {"XDG_CONFIG_HOME", dir / "config"},
                                              {"XDG_DATA_HOME", dir / "data"},
                                              {"XDG_RUNTIME_DIR", dir / "xdgrun"}};
    for (auto& [k, v] : config.env) env[k] = v;
    auto envs = mergedEnv(env);
    auto cargs = cstrings(argv);
    int logfd = ::open(logPath_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int listenFd = config.listenFd;
    pid_ = ::fork();
    if (pid_ == 0) {
        int devnull = ::open("/dev/null", O_RDWR);
        ::dup2(devnull, 0);
        ::dup2(logfd, 1);
        ::dup2(logfd, 2);
        if (listenFd >= 0) {
            ::dup2(listenFd, 3);
            envs.push_back("LISTEN_FDS=1");
            envs.push_back("LISTEN_PID=" + std::to_string(::getpid()));
        }
        auto cenv = cstrings(envs);
        ::execve(cargs[0], cargs.data(), cenv.data());
        ::_exit(127);
    }
    ::close(logfd);
    pidfd_ = pidfdOpen(pid_);
}

Daemon::~Daemon()
{
    if (running()) terminate(5s);
    if (running()) {
        ::kill(pid_, SIGKILL);
        waitExit(5s);
    }
    if (pidfd_ >= 0) ::close(pidfd_);
}

bool Daemon::running()
{
    if (exitCode_) return false;
    auto code = waitPidfd(pid_, pidfd_, 0ms);
    if (code) exitCode_ = code;
    return !exitCode_;
}

std::optional<int> Daemon::waitExit(std::chrono::milliseconds timeout)
{
    if (exitCode_) return exitCode_;
    auto code = waitPidfd(pid_, pidfd_, timeout);
    if (code) exitCode_ = code;
    return exitCode_;
}

void Daemon::signal(int signo)
{
    if (running()) ::kill(pid_, signo);
}

int Daemon::terminate(std::chrono::milliseconds timeout)
{
    signal(SIGTERM);
    auto code = waitExit(timeout);
    return code.value_or(-1);
}

bool Daemon::waitReady(std::chrono::milliseconds timeout)
{
    return eventually(
               [&] {
                   if (!running()) return true;
                   // An answer, not just a connection: a killed vmrd's listener can accept for a
                   // moment after its death (the kernel tears io_uring down asynchronously).
                   RawClient c(socket_);
                   if (!c.connected() || !c.send("{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"vmr.ping\"}\n"))
                       return false;
                   auto reply = c.readLine(200ms);
                   return reply && reply->find("\"pong\"") != std::string::npos;
               },
               timeout) &&
           running();
}

std::string Daemon::log() const
{
    return readFile(logPath_);
}

ProcResult Daemon::ctl(std::vector<std::string> args, std::chrono::milliseconds timeout) const
{
    std::vector<std::string> argv = {binary("VMR_VMRCTL"), "--socket", socket_};
    for (auto& a : args) argv.push_back(a);
    return run(argv, {{"VMR_NO_AUTOSTART", "1"}}, timeout);
}

RawClient::RawClient(const std::string& socketPath)
{
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socketPath.c_str(), sizeof addr.sun_path - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return;
    }
    fd_ = fd;
}

RawClient::~RawClient()
{
    if (fd_ >= 0) ::close(fd_);
}

RawClient::RawClient(RawClient&& o) noexcept : fd_(std::exchange(o.fd_, -1)), buf_(std::move(o.buf_)) {}

bool RawClient::send(const std::string& data)
{
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) continue;
            return false;
        }
        off += static_cast<size_t>(n);
    }
    return true;
}

std::optional<std::string> RawClient::readLine(std::chrono::milliseconds timeout)
{
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto nl = buf_.find('\n');
        if (nl != std::string::npos) {
            std::string line = buf_.substr(0, nl);
            buf_.erase(0, nl + 1);
            return line;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                          std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::nullopt;
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
        char buf[65536];
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) return std::nullopt;
        buf_.append(buf, static_cast<size_t>(n));
    }
}

bool RawClient::waitClosed(std::chrono::milliseconds timeout)
{
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                          std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
        char buf[65536];
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return true;
    }
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout)
{
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(10ms);
    }
    return pred();
}

std::string field(const std::string& output, const std::string& key)
{
    auto p = output.find(key + ":");
    if (p == std::string::npos) return "";
    p = output.find_first_not_of(' ', p + key.size() + 1);
    return output.substr(p, output.find('\n', p) - p);
}

std::string sshPortsToml(int first, int size)
{
    int base = first + static_cast<int>(::getpid() % 100) * size;
    return "[network]\nssh_port_range = \"" + std::to_string(base) + "-" + std::to_string(base + size - 1) +
           "\"\n";
}

}  // namespace vmr::test
