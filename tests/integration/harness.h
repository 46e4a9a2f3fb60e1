#pragma once

// Integration-test helpers: temp dirs, running the real vmrctl, and a real vmrd in a temp
// dir. Blocking code is fine here: tests are processes, not the daemon.

#include "support.h"

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace vmr::test {

struct ProcResult {
    int code = -1;  // exit code, or 128+signal
    std::string out;
    std::string err;
};

// Path of a built binary, from the environment meson sets for the tests (VMR_VMRD, VMR_VMRCTL).
std::string binary(const char* envName);

// Run a program to completion (killed after `timeout`), capturing stdout and stderr.
ProcResult run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {},
               std::chrono::milliseconds timeout = 30s, const std::string& input = "");

// A vmrd of our own in a temp dir, stopped (SIGTERM, then SIGKILL) at the end.
class Daemon {
public:
    struct Config {
        std::vector<std::string> extraArgs;
        std::map<std::string, std::string> env;
        std::string configToml;  // written to <dir>/vmrd.toml and passed with --config when set
        int listenFd = -1;       // socket activation: passed as fd 3 with LISTEN_FDS=1
        bool system = false;     // --system (a shared vmrd: roles, hypervisor_user) instead of --user
    };
    explicit Daemon(const TempDir& dir) : Daemon(dir, Config{}) {}
    Daemon(const TempDir& dir, Config config);
    ~Daemon();

    // Wait until the socket answers; false if vmrd exited or 10 s passed.
    bool waitReady(std::chrono::milliseconds timeout = 10s);
    // SIGTERM and wait; returns the exit code (128+signal when killed).
    int terminate(std::chrono::milliseconds timeout = 10s);
    void signal(int signo);
    bool running();
    // Wait for exit without signalling; nullopt on timeout.
    std::optional<int> waitExit(std::chrono::milliseconds timeout);

    pid_t pid() const { return pid_; }
    const std::string& socket() const { return socket_; }
    const std::string& stateDir() const { return stateDir_; }
    std::string log() const;  // what vmrd wrote to stderr so far

    // vmrctl against this daemon.
    ProcResult ctl(std::vector<std::string> args, std::chrono::milliseconds timeout = 30s) const;

private:
    pid_t pid_ = -1;
    int pidfd_ = -1;
    std::optional<int> exitCode_;
    std::string socket_;
    std::string stateDir_;
    std::string logPath_;
};

// A raw client of the control socket, for protocol-level tests.
class RawClient {
public:
    explicit RawClient(const std::string& socketPath);
    ~RawClient();
    RawClient(RawClient&& o) noexcept;
    RawClient(const RawClient&) = delete;
    bool connected() const { return fd_ >= 0; }
    bool send(const std::string& data);
    // One line (without '\n'); nullopt on EOF or timeout.
    std::optional<std::string> readLine(std::chrono::milliseconds timeout = 5s);
    // True when the peer closed (EOF or reset) within `timeout`, discarding any data.
    bool waitClosed(std::chrono::milliseconds timeout);
    int fd() const { return fd_; }

private:
    int fd_ = -1;
    std::string buf_;
};

// Poll `pred` every 10 ms until true or timeout.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 5s);

// The value of a "key: value" line of vmrctl's human output ("" when there is none).
std::string field(const std::string& output, const std::string& key);

// vmrd.toml lines giving this test process `size` SSH ports of its own, from
// first + (pid % 100) * size: suites running side by side (one per reactor backend) never hand
// the same port to two QEMUs. Each test program picks a `first` no other one uses.
std::string sshPortsToml(int first, int size);

}  // namespace vmr::test
