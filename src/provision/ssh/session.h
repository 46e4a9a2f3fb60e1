#pragma once

// An SSH client session on the reactor: libssh2 in non-blocking mode, every EAGAIN turned into
// a wait on the socket in the direction libssh2 asks for, so a session never blocks the loop and
// any number of them run side by side on one thread. connect() reaches the server (retrying
// with backoff until a deadline, as a booting guest refuses or drops connections for a while),
// checks its host key and logs in with the first key it accepts; exec() runs a command and
// streams its output; upload() copies a local file over SFTP. See docs/ssh.md.

#include "base/fd.h"
#include "base/result.h"
#include "provision/ssh/host_key.h"
#include "reactor/reactor.h"

#include <libssh2.h>
#include <libssh2_sftp.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmr::provision {

using reactor::Duration;

// How long connect() keeps trying: provisioning waits for a guest to boot; `vmrctl ssh` expects
// a running one.
inline constexpr Duration kProvisionConnectTimeout = std::chrono::seconds(120);
inline constexpr Duration kSshConnectTimeout = std::chrono::seconds(30);

// What the server's host key must be.
struct HostKeyPolicy {
    enum class Mode {
        Pinned,    // `pinned` must equal the server's key (vmrd generated and injected it)
        FirstUse,  // accept any key; the caller persists Session::hostKey() and pins it next time
    };
    Mode mode = Mode::Pinned;
    std::string pinned;  // OpenSSH public key line "ssh-ed25519 AAAA... [comment]"

    static HostKeyPolicy pin(std::string line) { return {Mode::Pinned, std::move(line)}; }
    static HostKeyPolicy firstUse() { return {Mode::FirstUse, {}}; }
};

struct ConnectOptions {
    std::string host;  // a numeric IPv4 or IPv6 address (names would need a blocking lookup)
    uint16_t port = 22;
    std::string user = "root";
    HostKeyPolicy hostKey;
    // Private key files, tried in order; missing ones are skipped (see defaultKeyFiles()).
    std::vector<std::string> keyFiles;
    // The whole of connect(): every attempt, the handshake and authentication.
    Duration timeout = kSshConnectTimeout;
    // One attempt (TCP connect and SSH handshake): a guest's port forward may accept and then
    // say nothing until its sshd is up.
    Duration attemptTimeout = std::chrono::seconds(10);
    // Backoff between attempts: doubles from the first delay up to the maximum.
    Duration firstRetryDelay = std::chrono::milliseconds(100);
    Duration maxRetryDelay = std::chrono::seconds(2);
};

// The keys to try, in the order vmr tries them: the key vmrd generated for the VM, the one
// given with --key, then ~/.ssh/id_ed25519, id_ecdsa and id_rsa. Empty arguments are left out.
std::vector<std::string> defaultKeyFiles(const std::string& generatedKey, const std::string& userKey,
                                         const std::string& home);

// Open a local file to upload: read-only, and it must be a regular file (NotFound,
// PermissionDenied or InvalidArgument naming the path otherwise).
Result<UniqueFd> openLocalFile(const std::string& path);

enum class OutputStream { Stdout, Stderr };
// Output of a command, chunk by chunk as it arrives.
using OutputFn = std::function<void(OutputStream stream, std::string_view data)>;

// How a remote command ended.
struct ExitInfo {
    int code = -1;       // the exit status; -1 when a signal ended it
    std::string signal;  // the signal's name without "SIG" ("KILL"), or empty
    bool ok() const noexcept { return signal.empty() && code == 0; }
    std::string describe() const;  // "exit code 3", "killed by signal KILL"
};

class Session {
public:
    // Connect, check the host key, authenticate. Retries while the server cannot be reached or
    // drops the connection before the handshake ends; a host key that does not match
    // (HostKeyMismatch), a refused login (AuthFailed) or a protocol failure end it at once.
    // `token` cancels it (Cancelled).
    static reactor::Task<Result<std::unique_ptr<Session>>> connect(reactor::Reactor& r, ConnectOptions opts,
                                                                   reactor::CancelToken* token = nullptr);

    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    // Drops the connection at once (no SSH disconnect message; use disconnect() for that).
    // No operation may be running.
    ~Session();

    // Run `command` through the user's shell on the server; stdout and stderr reach onOutput as
    // they arrive. Stdin is closed. The result is how the command ended; a Timeout error after
    // `timeout`. One operation runs at a time (Busy otherwise); a timeout or cancel leaves the
    // session unusable (Unavailable afterwards).
    reactor::Task<Result<ExitInfo>> exec(std::string command, OutputFn onOutput, Duration timeout,
                                         reactor::CancelToken* token = nullptr);

    // Copy the local file `localPath` to `remotePath` over SFTP in chunks, then give it `mode`
    // (the local file's permission bits when nullopt), whatever the server's umask.
    reactor::Task<Result<void>> upload(std::string localPath, std::string remotePath,
                                       std::optional<uint32_t> mode, Duration timeout,
                                       reactor::CancelToken* token = nullptr);
    // The same from a file the caller opened (vmrd opens a client's files with the client's
    // credentials); `name` is the file's name in messages.
    reactor::Task<Result<void>> upload(UniqueFd file, std::string name, std::string remotePath,
                                       std::optional<uint32_t> mode, Duration timeout,
                                       reactor::CancelToken* token = nullptr);

    // Say goodbye (SSH_MSG_DISCONNECT) and close the connection.
    reactor::Task<Result<void>> disconnect(Duration timeout = std::chrono::seconds(5));

    // The server's host key as an OpenSSH line ("ssh-ed25519 AAAA..."): with
    // HostKeyPolicy::FirstUse, what the caller pins from now on.
    const SshHostKey& hostKey() const noexcept { return hostKey_; }
    const std::string& hostKeyFingerprint() const noexcept { return fingerprint_; }
    // The key file the server accepted, and every key file considered, with what happened.
    const std::string& authenticatedWith() const noexcept { return keyUsed_; }
    const std::vector<std::string>& keysTried() const noexcept { return keysTried_; }
    // "root@127.0.0.1:2222", for messages.
    const std::string& target() const noexcept { return target_; }
    bool usable() const noexcept { return !broken_ && !closed_; }

private:
    struct Attempt;
    // The memory libssh2 allocates for one session (see session.cpp).
    struct Arena;
    // What a running operation is, for its waits and its errors.
    struct OpContext {
        std::string what;  // "Running `make`", "Uploading a.txt to /tmp/a.txt"
        reactor::Clock::time_point deadline;
        Duration timeout;
        reactor::CancelToken* token = nullptr;
    };

    static reactor::Task<Attempt> attempt(reactor::Reactor& r, const ConnectOptions& opts, std::string target,
                                          reactor::Clock::time_point deadline, reactor::CancelToken* token);

    Session(reactor::Reactor& r, UniqueFd fd, std::unique_ptr<Arena> arena, LIBSSH2_SESSION* s,
            std::string target);

    // Wait until the socket is ready in the direction libssh2 last blocked on; a Timeout or
    // Cancelled error (naming op.what) abandons the session.
    reactor::Task<Result<void>> waitSocket(const OpContext& op);
    Result<void> checkHostKey(const HostKeyPolicy& policy);
    reactor::Task<Result<void>> authenticate(const ConnectOptions& opts, const OpContext& op);
    reactor::Task<Result<void>> openSftp(const OpContext& op);
    reactor::Task<Result<void>> sendFile(int fd, std::string remotePath, uint32_t mode, const OpContext& op);
    // libssh2's last error on this session, as an Error saying what was being done.
    Error lastError(int rc, std::string what) const;
    Result<void> begin(std::string_view what);
    // After a timeout or cancel the libssh2 state is mid-operation: drop the connection.
    void abandon() noexcept;
    void freeHandles() noexcept;

    reactor::Reactor& reactor_;
    std::string target_;
    // Owned: the socket, libssh2's session and SFTP handle (on first upload), the watch on the
    // socket and the one operation waiting for it.
    UniqueFd fd_;
    std::unique_ptr<Arena> arena_;
    LIBSSH2_SESSION* session_ = nullptr;
    LIBSSH2_SFTP* sftp_ = nullptr;
    std::unique_ptr<reactor::FdWatch> watch_;
    reactor::Completion<uint32_t>* waiter_ = nullptr;

    SshHostKey hostKey_;
    std::string fingerprint_;
    std::string keyUsed_;
    std::vector<std::string> keysTried_;
    bool busy_ = false;
    bool broken_ = false;
    bool closed_ = false;
};

}  // namespace vmr::provision
