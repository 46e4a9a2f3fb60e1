#pragma once

// Shared by the SSH tests and the benchmark: a real OpenSSH server started by the test as a
// child on 127.0.0.1 with a free port, its own host key and authorized_keys in a temp folder,
// and key pairs made with ssh-keygen at test time.

#include "catch.h"
#include "provision/ssh/session.h"
#include "reactor/reactor.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace vmr::provision::test {

using namespace std::chrono_literals;
using reactor::Reactor;
using reactor::Task;
using vmr::test::makeReactor;
using vmr::test::runTask;
using vmr::test::TempDir;

inline constexpr const char* kSshd = "/usr/sbin/sshd";

// Why the SSH tests cannot run here, or empty.
inline std::string missingTools()
{
    if (::access(kSshd, X_OK) != 0) return "sshd is not installed (Debian package openssh-server)";
    if (::access("/usr/bin/ssh-keygen", X_OK) != 0) return "ssh-keygen is not installed (openssh-client)";
    return {};
}

#define VMR_REQUIRE_SSHD()                                                     \
    do {                                                                       \
        if (auto why = ::vmr::provision::test::missingTools(); !why.empty()) { \
            WARN("Skipped: " << why);                                          \
            return;                                                            \
        }                                                                      \
    } while (0)

inline std::string readFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline void writeFile(const std::string& path, const std::string& data, mode_t mode = 0644)
{
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << data;
    }
    REQUIRE(::chmod(path.c_str(), mode) == 0);
}

inline std::string trimmed(std::string s)
{
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

// A port on 127.0.0.1 nothing listens on right now.
inline uint16_t freePort()
{
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) == 0);
    return ntohs(a.sin_port);
}

// Run a program to completion; its stdout.
inline std::string runProgram(Reactor& r, std::vector<std::string> argv)
{
    reactor::SpawnOptions opts;
    opts.argv = std::move(argv);
    auto res = runTask(r, reactor::run(r, opts, 30s), 40s);
    if (!res) FAIL(opts.argv[0] << ": " << res.error().what());
    if (!res->status.exited() || res->status.code != 0) FAIL(opts.argv[0] << " failed: " << res->err);
    return res->out;
}

// `ssh-keygen -t TYPE -N ''` into dir/name; returns the private key's path.
inline std::string keygen(Reactor& r, const TempDir& dir, const std::string& name,
                          const std::string& type = "ed25519")
{
    std::string path = dir / name;
    runProgram(r, {"ssh-keygen", "-q", "-t", type, "-N", "", "-C", name, "-f", path});
    return path;
}

inline std::string currentUser()
{
    const passwd* pw = ::getpwuid(::geteuid());
    REQUIRE(pw != nullptr);
    return pw->pw_name;
}

// One sshd on 127.0.0.1:port. Logs to dir/sshd.log.
class Sshd {
public:
    // Keys are generated now; start() runs the server.
    Sshd(Reactor& r, const TempDir& dir) : r_(r), dir_(dir), port_(freePort())
    {
        hostKey_ = keygen(r, dir, "host_ed25519");
        clientKey_ = keygen(r, dir, "client_ed25519");
        writeFile(dir / "authorized_keys", readFile(clientKey_ + ".pub"), 0600);
        // As root sshd insists on its privilege separation folder (made by the service normally).
        if (::geteuid() == 0) ::mkdir("/run/sshd", 0755);
        std::string cfg;
        cfg += "ListenAddress 127.0.0.1:" + std::to_string(port_) + "\n";
        cfg += "HostKey " + hostKey_ + "\n";
        cfg += "AuthorizedKeysFile " + (dir / "authorized_keys") + "\n";
        cfg += "PidFile none\nUsePAM no\nStrictModes no\nPasswordAuthentication no\n";
        cfg += "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n";
        cfg += "MaxStartups 200\nMaxSessions 50\nSubsystem sftp internal-sftp\nLogLevel VERBOSE\n";
        writeFile(dir / "sshd_config", cfg, 0600);
    }
    Sshd(const Sshd&) = delete;
    Sshd& operator=(const Sshd&) = delete;
    ~Sshd() { stop(); }

    void start()
    {
        UniqueFd log(::open((dir_ / "sshd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
        REQUIRE(log);
        reactor::SpawnOptions opts;
        opts.argv = {kSshd, "-D", "-e", "-f", dir_ / "sshd_config"};
        opts.fds = {{log.get(), 2}};
        opts.deathSignal = SIGTERM;
        auto c = reactor::Child::spawn(r_, opts);
        if (!c) FAIL("sshd: " << c.error().what());
        child_ = std::move(*c);
        // Listening once a plain TCP connect succeeds (loopback connects complete at once); the
        // timer wakes the loop so the check runs every 10 ms.
        reactor::Timer tick(r_, [] {});
        tick.start(10ms, 10ms);
        bool up = r_.runUntil([&] { return child_->exited() || accepts(); }, 10s);
        if (!up || child_->exited()) FAIL("sshd did not start: " << readFile(dir_ / "sshd.log"));
    }

    void stop()
    {
        if (!child_ || child_->exited()) return;
        (void)child_->signal(SIGTERM);
        r_.runUntil([&] { return child_->exited(); }, 10s);
    }

    uint16_t port() const { return port_; }
    const std::string& hostKey() const { return hostKey_; }
    std::string hostKeyLine() const { return trimmed(readFile(hostKey_ + ".pub")); }
    const std::string& clientKey() const { return clientKey_; }
    std::string log() const { return readFile(dir_ / "sshd.log"); }

    ConnectOptions options() const
    {
        ConnectOptions o;
        o.host = "127.0.0.1";
        o.port = port_;
        o.user = currentUser();
        o.hostKey = HostKeyPolicy::pin(hostKeyLine());
        o.keyFiles = {clientKey_};
        o.timeout = 15s;
        return o;
    }

private:
    bool accepts() const
    {
        UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(port_);
        return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    }

    Reactor& r_;
    const TempDir& dir_;
    uint16_t port_;
    std::string hostKey_;
    std::string clientKey_;
    std::unique_ptr<reactor::Child> child_;
};

// Connect with `opts` and return the session, failing the test on an error.
inline std::unique_ptr<Session> connectOrFail(Reactor& r, ConnectOptions opts, const Sshd& sshd)
{
    auto s = runTask(r, Session::connect(r, std::move(opts)), 30s);
    if (!s) FAIL("connect: " << s.error().what() << "\nsshd log:\n" << sshd.log());
    return std::move(*s);
}

// A loop and a running sshd in a temp folder: what most SSH tests start with.
// `auto& [r, dir, sshd] = server;` names the parts.
struct Server {
    std::unique_ptr<Reactor> r = makeReactor();
    TempDir dir;
    Sshd sshd{*r, dir};

    Server() { sshd.start(); }
    // A session with the server's own options (pinned host key, the authorized client key).
    std::unique_ptr<Session> connect() { return connectOrFail(*r, sshd.options(), sshd); }
};

// Start every task, run the loop until all have finished; false on timeout.
template <typename T>
bool runAll(Reactor& r, std::vector<Task<T>>& tasks, reactor::Duration timeout)
{
    for (auto& t : tasks) t.start();
    return r.runUntil(
        [&] {
            for (auto& t : tasks)
                if (!t.done()) return false;
            return true;
        },
        timeout);
}

}  // namespace vmr::provision::test
