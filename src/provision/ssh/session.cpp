// A session's life: reaching the server (retrying while a guest boots), the handshake, the
// host key check and the login, then the waits and errors every operation shares. The
// operations themselves (exec, upload, disconnect) are in session_ops.cpp.

#include "provision/ssh/session.h"

#include "base/log.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <unordered_set>
#include <utility>

namespace vmr::provision {

using reactor::Clock;
using reactor::Task;

namespace {

spdlog::logger& logger()
{
    return log::get("ssh");
}

// libssh2_init() is not thread-safe and must run once before any session exists.
Result<void> initLibssh2()
{
    static const int rc = libssh2_init(0);
    if (rc != 0) return Error(ErrorKind::Internal, "libssh2 could not initialise its crypto backend");
    return success();
}

Duration remaining(reactor::Reactor& r, Clock::time_point deadline)
{
    auto now = r.now();
    if (deadline <= now) return Duration::zero();
    return std::chrono::ceil<Duration>(deadline - now);
}

std::string millis(Duration d)
{
    return std::to_string(d.count()) + " ms";
}

// A socket address from a numeric host; names are refused, resolving them would block.
Result<std::pair<sockaddr_storage, socklen_t>> parseAddress(const std::string& host, uint16_t port)
{
    sockaddr_storage ss{};
    std::string h = host;
    if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
    auto* in4 = reinterpret_cast<sockaddr_in*>(&ss);
    if (::inet_pton(AF_INET, h.c_str(), &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        return std::make_pair(ss, static_cast<socklen_t>(sizeof(sockaddr_in)));
    }
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (::inet_pton(AF_INET6, h.c_str(), &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        return std::make_pair(ss, static_cast<socklen_t>(sizeof(sockaddr_in6)));
    }
    return Error(ErrorKind::InvalidArgument, "SSH host '" + host + "' is not an IP address",
                 "Give a numeric IPv4 or IPv6 address such as 127.0.0.1; vmr does not look up host names "
                 "(that would block its event loop)");
}

// Errors of one connection attempt after which trying again may work: nothing listens yet, or
// something accepted and then dropped or ignored us (a port forward whose guest is still booting).
bool retriableErrno(int err)
{
    switch (err) {
        case ECONNREFUSED:
        case ECONNRESET:
        case ECONNABORTED:
        case ENETUNREACH:
        case EHOSTUNREACH:
        case ETIMEDOUT:
        case EPIPE: return true;
        default: return false;
    }
}

bool retriableSshError(int rc)
{
    switch (rc) {
        case LIBSSH2_ERROR_BANNER_RECV:
        case LIBSSH2_ERROR_BANNER_SEND:
        case LIBSSH2_ERROR_SOCKET_DISCONNECT:
        case LIBSSH2_ERROR_SOCKET_RECV:
        case LIBSSH2_ERROR_SOCKET_SEND:
        case LIBSSH2_ERROR_SOCKET_NONE:
        case LIBSSH2_ERROR_TIMEOUT: return true;
        default: return false;
    }
}

std::vector<std::string> supportedHostKeyAlgorithms(LIBSSH2_SESSION* s)
{
    std::vector<std::string> out;
    const char** algs = nullptr;
    int n = libssh2_session_supported_algs(s, LIBSSH2_METHOD_HOSTKEY, &algs);
    if (n <= 0) return out;
    for (int i = 0; i < n; ++i) out.emplace_back(algs[i]);
    libssh2_free(s, static_cast<void*>(algs));
    return out;
}

}  // namespace

std::vector<std::string> defaultKeyFiles(const std::string& generatedKey, const std::string& userKey,
                                         const std::string& home)
{
    std::vector<std::string> keys;
    if (!generatedKey.empty()) keys.push_back(generatedKey);
    if (!userKey.empty()) keys.push_back(userKey);
    if (!home.empty()) {
        for (const char* name : {"id_ed25519", "id_ecdsa", "id_rsa"}) keys.push_back(home + "/.ssh/" + name);
    }
    return keys;
}

// libssh2 allocates a session's memory through these, so that what it still holds after
// libssh2_session_free() can be released: libssh2 1.10 leaks buffers of a key exchange that a
// freed session did not finish (an attempt that timed out mid-handshake, common while a guest
// boots), and a daemon must not grow with every such attempt.
struct Session::Arena {
    // Addresses as integers: the old address of a reallocated block is only a key here, never
    // used as a pointer (and GCC's -Wuse-after-free cannot tell that from a pointer).
    std::unordered_set<uintptr_t> live;

    static Arena& of(void** abstract) { return *static_cast<Arena*>(*abstract); }
    static uintptr_t key(void* p) { return reinterpret_cast<uintptr_t>(p); }

    static LIBSSH2_ALLOC_FUNC(alloc)
    {
        void* p = std::malloc(count);
        if (p != nullptr) of(abstract).live.insert(key(p));
        return p;
    }
    static LIBSSH2_REALLOC_FUNC(realloc)
    {
        uintptr_t old = key(ptr);
        void* q = std::realloc(ptr, count);
        if (q != nullptr) {
            of(abstract).live.erase(old);
            of(abstract).live.insert(key(q));
        }
        return q;
    }
    static LIBSSH2_FREE_FUNC(free)
    {
        if (ptr == nullptr) return;
        of(abstract).live.erase(key(ptr));
        std::free(ptr);
    }

    // After libssh2_session_free(): nothing of libssh2's refers to what is left.
    ~Arena()
    {
        if (!live.empty()) logger().debug("Releasing {} allocation(s) libssh2 left behind", live.size());
        for (uintptr_t p : live) std::free(reinterpret_cast<void*>(p));
    }
};

struct Session::Attempt {
    std::unique_ptr<Session> session;
    std::optional<Error> error;
    bool retry = false;  // the error is one a later attempt may not meet
};

Session::Session(reactor::Reactor& r, UniqueFd fd, std::unique_ptr<Arena> arena, LIBSSH2_SESSION* s,
                 std::string target)
    : reactor_(r), target_(std::move(target)), fd_(std::move(fd)), arena_(std::move(arena)), session_(s)
{
    libssh2_session_set_blocking(session_, 0);
    watch_ = std::make_unique<reactor::FdWatch>(r, fd_.get(), 0, [this](uint32_t revents) {
        watch_->update(0);
        if (auto* w = std::exchange(waiter_, nullptr)) w->fulfil(revents);
    });
}

Session::~Session()
{
    freeHandles();
}

void Session::freeHandles() noexcept
{
    watch_.reset();
    waiter_ = nullptr;
    if (session_ != nullptr) {
        // With the socket shut down every send and receive fails at once, so freeing (which may
        // want to close channels) cannot wait for the network, even in blocking mode.
        ::shutdown(fd_.get(), SHUT_RDWR);
        libssh2_session_set_blocking(session_, 1);
        if (sftp_ != nullptr) libssh2_sftp_shutdown(sftp_);
        libssh2_session_free(session_);
    }
    sftp_ = nullptr;
    session_ = nullptr;
    arena_.reset();
    fd_.reset();
}

void Session::abandon() noexcept
{
    broken_ = true;
    // The server sees the connection end and stops what it ran for us.
    if (fd_) ::shutdown(fd_.get(), SHUT_RDWR);
}

Error Session::lastError(int rc, std::string what) const
{
    char* msg = nullptr;
    int len = 0;
    libssh2_session_last_error(session_, &msg, &len, 0);
    std::string detail = (msg != nullptr && len > 0) ? std::string(msg, static_cast<size_t>(len)) : "";
    ErrorKind kind = ErrorKind::Unavailable;
    if (rc == LIBSSH2_ERROR_TIMEOUT || rc == LIBSSH2_ERROR_SOCKET_TIMEOUT) kind = ErrorKind::Timeout;
    Error e(kind, std::move(what) + " failed on " + target_);
    if (!detail.empty()) e.causedBy(Error(kind, detail + " (libssh2 error " + std::to_string(rc) + ")"));
    return e;
}

Result<void> Session::begin(std::string_view what)
{
    if (closed_) {
        return Error(ErrorKind::Unavailable,
                     std::string(what) + ": the SSH session to " + target_ + " is closed", "Connect again");
    }
    if (broken_) {
        return Error(ErrorKind::Unavailable,
                     std::string(what) + ": the SSH session to " + target_ +
                         " was dropped after an earlier timeout, cancel or connection failure",
                     "Connect again");
    }
    if (busy_) {
        return Error(ErrorKind::Busy,
                     std::string(what) + ": the SSH session to " + target_ + " is running another operation",
                     "Run operations on one session one after another, or open another session");
    }
    busy_ = true;
    return success();
}

Task<Result<void>> Session::waitSocket(const OpContext& op)
{
    int dirs = libssh2_session_block_directions(session_);
    uint32_t events = 0;
    if (dirs & LIBSSH2_SESSION_BLOCK_INBOUND) events |= reactor::Readable;
    if (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND) events |= reactor::Writable;
    // libssh2 said "again" without naming a direction: retry once anything happens.
    if (events == 0) events = reactor::Readable | reactor::Writable;

    reactor::Completion<uint32_t> ready;
    waiter_ = &ready;
    watch_->update(events);
    auto woken =
        co_await reactor::awaitWithTimeout(reactor_, ready, remaining(reactor_, op.deadline), op.token);
    waiter_ = nullptr;
    if (watch_) watch_->update(0);
    if (woken) co_return success();

    abandon();
    if (woken.error().kind() == ErrorKind::Cancelled)
        co_return Error(ErrorKind::Cancelled, op.what + " on " + target_ + " was cancelled");
    co_return Error(ErrorKind::Timeout, op.what + " on " + target_ + " timed out after " + millis(op.timeout),
                    "The connection was dropped; give the step a longer timeout if it needs one");
}

Task<Session::Attempt> Session::attempt(reactor::Reactor& r, const ConnectOptions& opts, std::string target,
                                        Clock::time_point deadline, reactor::CancelToken* token)
{
    Attempt out;
    auto addr = parseAddress(opts.host, opts.port);
    if (!addr) {
        out.error = std::move(addr).error();
        co_return out;
    }
    auto [ss, len] = *addr;

    UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
        out.error = Error::fromErrno(errno, "Cannot create a TCP socket");
        co_return out;
    }
    int err = 0;
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&ss), len) != 0) err = errno;
    if (err == EINPROGRESS) {
        reactor::Completion<uint32_t> ready;
        std::unique_ptr<reactor::FdWatch> watch;
        watch = std::make_unique<reactor::FdWatch>(r, fd.get(), reactor::Writable, [&](uint32_t revents) {
            watch->update(0);
            ready.fulfil(revents);
        });
        auto woken = co_await reactor::awaitWithTimeout(r, ready, remaining(r, deadline), token);
        watch.reset();
        if (!woken) {
            bool cancelled = woken.error().kind() == ErrorKind::Cancelled;
            out.error = cancelled ? Error(ErrorKind::Cancelled, "Connecting to " + target + " was cancelled")
                                  : Error(ErrorKind::Timeout, "TCP connect got no answer in time");
            out.retry = !cancelled;
            co_return out;
        }
        socklen_t sl = sizeof err;
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &sl) != 0) err = errno;
    }
    if (err != 0) {
        out.error = Error::fromErrno(err, "TCP connect");
        out.retry = retriableErrno(err);
        co_return out;
    }
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    auto arena = std::make_unique<Arena>();
    LIBSSH2_SESSION* raw = libssh2_session_init_ex(Arena::alloc, Arena::free, Arena::realloc, arena.get());
    if (raw == nullptr) {
        out.error = Error(ErrorKind::Internal, "libssh2 could not create a session");
        co_return out;
    }
    int sock = fd.get();
    auto s = std::unique_ptr<Session>(new Session(r, std::move(fd), std::move(arena), raw, target));

    bool pinned = opts.hostKey.mode == HostKeyPolicy::Mode::Pinned;
    std::string algorithms;
    if (pinned) {
        auto key = parseSshHostKey(opts.hostKey.pinned);
        if (key) algorithms = hostKeyAlgorithmsFor(key->type);
    }
    if (algorithms.empty()) algorithms = hostKeyAlgorithmsAny();
    // Offer only what this libssh2 supports (its own filtering of unknown names is unsafe in 1.10).
    algorithms = keepSupported(algorithms, supportedHostKeyAlgorithms(raw));
    if (algorithms.empty()) {
        out.error =
            Error(ErrorKind::Unsupported, "This host's libssh2 cannot verify host keys of the pinned type",
                  "Pin an ssh-ed25519 key (the type vmr generates)");
        co_return out;
    }
    if (libssh2_session_method_pref(raw, LIBSSH2_METHOD_HOSTKEY, algorithms.c_str()) != 0) {
        out.error = s->lastError(0, "Choosing host key algorithms " + algorithms);
        co_return out;
    }

    OpContext op{"The SSH handshake", deadline, remaining(r, deadline), token};
    int rc = 0;
    while ((rc = libssh2_session_handshake(raw, sock)) == LIBSSH2_ERROR_EAGAIN) {
        auto ready = co_await s->waitSocket(op);
        if (!ready) {
            out.retry = ready.error().kind() == ErrorKind::Timeout;
            out.error = std::move(ready).error();
            co_return out;
        }
    }
    if (rc != 0) {
        if (pinned && (rc == LIBSSH2_ERROR_KEX_FAILURE || rc == LIBSSH2_ERROR_METHOD_NONE)) {
            out.error = Error(ErrorKind::HostKeyMismatch,
                              target + " offers no host key of the pinned type (" + algorithms + ")",
                              "The guest's host keys are not the ones vmr pinned: the guest was reinstalled "
                              "or its keys regenerated, or something else answers on this address (a "
                              "man-in-the-middle). Check the guest's console before trusting it.")
                            .causedBy(s->lastError(rc, "Key exchange"));
            co_return out;
        }
        out.error = s->lastError(rc, "The SSH handshake");
        out.retry = retriableSshError(rc);
        co_return out;
    }
    out.session = std::move(s);
    co_return out;
}

Task<Result<std::unique_ptr<Session>>> Session::connect(reactor::Reactor& r, ConnectOptions opts,
                                                        reactor::CancelToken* token)
{
    VMR_CO_TRY(initLibssh2());
    VMR_CO_TRY(parseAddress(opts.host, opts.port));
    if (opts.port == 0) {
        co_return Error(ErrorKind::InvalidArgument, "SSH port 0 is not a port",
                        "Give the port sshd listens on");
    }
    if (opts.hostKey.mode == HostKeyPolicy::Mode::Pinned) VMR_CO_TRY(parseSshHostKey(opts.hostKey.pinned));
    if (opts.user.empty()) {
        co_return Error(ErrorKind::InvalidArgument, "The SSH user name is empty",
                        "Give the guest user to log in as");
    }

    std::string target = opts.user + "@" + opts.host + ":" + std::to_string(opts.port);
    auto start = r.now();
    auto deadline = start + opts.timeout;
    Duration delay = std::max(opts.firstRetryDelay, Duration(1));
    int attempts = 0;
    std::unique_ptr<Session> s;
    for (;;) {
        ++attempts;
        auto attemptDeadline = std::min(deadline, r.now() + opts.attemptTimeout);
        Attempt a = co_await attempt(r, opts, target, attemptDeadline, token);
        if (a.session) {
            s = std::move(a.session);
            break;
        }
        Error err = std::move(*a.error);
        if (!a.retry) co_return err;
        logger().debug("SSH to {}: attempt {} failed ({}), retrying", target, attempts, err.what());
        if (r.now() + delay >= deadline) {
            co_return Error(ErrorKind::Timeout,
                            "Cannot reach " + target + " over SSH within " + millis(opts.timeout) + " (" +
                                std::to_string(attempts) + " attempts)",
                            "Is the guest up and its sshd running? Look at its console log; a slow guest may "
                            "need a longer timeout")
                .causedBy(std::move(err));
        }
        auto slept = co_await reactor::sleep(r, delay, token);
        if (!slept) co_return Error(ErrorKind::Cancelled, "Connecting to " + target + " was cancelled");
        delay = std::min(delay * 2, std::max(opts.maxRetryDelay, Duration(1)));
    }

    VMR_CO_TRY(s->checkHostKey(opts.hostKey));
    OpContext op{"Logging in", deadline, remaining(r, deadline), token};
    auto authed = co_await s->authenticate(opts, op);
    if (!authed) co_return std::move(authed).error();
    logger().debug("SSH to {}: logged in with {} after {} attempt(s)", target, s->keyUsed_, attempts);
    co_return std::move(s);
}

Result<void> Session::checkHostKey(const HostKeyPolicy& policy)
{
    size_t len = 0;
    int type = 0;
    const char* blob = libssh2_session_hostkey(session_, &len, &type);
    if (blob == nullptr) return lastError(0, "Reading the server's host key");
    auto seen = sshHostKeyFromBlob(std::string_view(blob, len));
    if (!seen) return std::move(seen).error();
    hostKey_ = std::move(*seen);
    if (const char* hash = libssh2_hostkey_hash(session_, LIBSSH2_HOSTKEY_HASH_SHA256))
        fingerprint_ = sshFingerprint(std::string_view(hash, 32));

    if (policy.mode == HostKeyPolicy::Mode::FirstUse) return success();
    auto pinned = parseSshHostKey(policy.pinned);
    if (!pinned) return std::move(pinned).error();
    if (pinned->sameKey(hostKey_)) return success();
    return Error(
        ErrorKind::HostKeyMismatch,
        "The SSH host key of " + target_ + " is not the pinned one: it presented " + hostKey_.type + " " +
            fingerprint_,
        "Either the guest was reinstalled or its host keys were regenerated, or something else answers "
        "on this address (a man-in-the-middle). Check the guest's console; pin the new key only if you "
        "know why it changed.");
}

Task<Result<void>> Session::authenticate(const ConnectOptions& opts, const OpContext& op)
{
    const std::string& user = opts.user;
    auto userLen = static_cast<unsigned int>(user.size());
    char* methods = nullptr;
    while ((methods = libssh2_userauth_list(session_, user.c_str(), userLen)) == nullptr) {
        int rc = libssh2_session_last_errno(session_);
        if (rc == 0 && libssh2_userauth_authenticated(session_)) co_return success();  // "none" accepted
        if (rc != LIBSSH2_ERROR_EAGAIN) co_return lastError(rc, "Asking for the login methods");
        VMR_CO_TRY(co_await waitSocket(op));
    }
    if (std::string_view(methods).find("publickey") == std::string_view::npos) {
        co_return Error(ErrorKind::AuthFailed,
                        target_ + " does not accept SSH keys (it offers: " + std::string(methods) + ")",
                        "Enable PubkeyAuthentication in the guest's sshd_config");
    }

    std::string list;
    auto note = [&](const std::string& path, std::string_view what) {
        keysTried_.push_back(path + " (" + std::string(what) + ")");
        if (!list.empty()) list += ", ";
        list += keysTried_.back();
    };
    for (const auto& path : opts.keyFiles) {
        // Key files are small: one read, not a wait worth the loop.
        UniqueFd kf(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!kf) {
            note(path, errno == ENOENT ? "missing" : std::string("unreadable: ") + std::strerror(errno));
            continue;
        }
        std::string key;
        char buf[4096];
        ssize_t n = 0;
        while ((n = ::read(kf.get(), buf, sizeof buf)) > 0 && key.size() < 64 * 1024)
            key.append(buf, static_cast<size_t>(n));
        if (n < 0) {
            note(path, std::string("unreadable: ") + std::strerror(errno));
            continue;
        }
        int rc = 0;
        while ((rc = libssh2_userauth_publickey_frommemory(session_, user.c_str(), user.size(), nullptr, 0,
                                                           key.data(), key.size(), nullptr)) ==
               LIBSSH2_ERROR_EAGAIN) {
            VMR_CO_TRY(co_await waitSocket(op));
        }
        if (rc == 0) {
            note(path, "accepted");
            keyUsed_ = path;
            co_return success();
        }
        if (rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED || rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED) {
            note(path, "refused");
        } else if (retriableSshError(rc) || rc == LIBSSH2_ERROR_BAD_SOCKET || rc == LIBSSH2_ERROR_ALLOC) {
            co_return lastError(rc, "Logging in with " + path);
        } else {
            // Anything else is libssh2 failing to load the key (bad PEM, encrypted, unknown type).
            note(path, "not a usable private key: encrypted or of an unknown format");
        }
    }
    if (opts.keyFiles.empty()) {
        co_return Error(ErrorKind::AuthFailed, "No SSH key to log in to " + target_ + " with",
                        "Pass --key with a private key the guest accepts, or create ~/.ssh/id_ed25519");
    }
    co_return Error(ErrorKind::AuthFailed, target_ + " accepted none of the SSH keys tried: " + list,
                    "Put the public half (.pub) of one of these keys in ~" + user +
                        "/.ssh/authorized_keys on the guest, or pass --key with a key it accepts");
}

}  // namespace vmr::provision
