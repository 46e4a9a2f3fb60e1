#include "client.h"

#include "base/files.h"
#include "config/settings.h"
#include "rpc/errors.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace vmr::ctl {

namespace {

constexpr size_t kMaxLine = 64 << 20;  // responses (a list of hundreds of VMs) can be large

// The group owning the file at `path` when it is not root's and has a name, else "".
std::string groupOf(const std::string& path)
{
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || st.st_gid == 0) return "";
    long size = ::sysconf(_SC_GETGR_R_SIZE_MAX);
    std::vector<char> buf(size > 0 ? static_cast<size_t>(size) : 16384);
    group gr{};
    group* found = nullptr;
    if (::getgrgid_r(st.st_gid, &gr, buf.data(), buf.size(), &found) != 0 || found == nullptr ||
        found->gr_name == nullptr)
        return "";
    return found->gr_name;
}

std::string joinHint(const std::string& group)
{
    return "sudo usermod -aG " + group + " $USER, then log in again";
}

Error notAllowed(const std::string& path)
{
    std::string group = groupOf(path);
    return Error(ErrorKind::PermissionDenied, "Not allowed to connect to vmrd at " + path,
                 group.empty() ? "Ask vmrd's administrator to let you use " + path
                               : "Join its group " + group + ": " + joinHint(group));
}

}  // namespace

Result<Client> Client::connect(const std::string& path, std::chrono::milliseconds timeout)
{
    sockaddr_un addr{};
    if (path.size() >= sizeof(addr.sun_path)) {
        return Error(ErrorKind::InvalidArgument, "Socket path is too long: " + path,
                     "A unix socket path has at most 107 bytes; choose a shorter --socket");
    }
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return Error::fromErrno(errno, "Cannot create a socket");
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        if (errno == EACCES || errno == EPERM) return notAllowed(path);
        if (errno != EINPROGRESS && errno != EAGAIN) {
            int err = errno;
            Error e(ErrorKind::Unavailable, "Cannot reach vmrd at " + path,
                    "Start it with `vmrd`, or point vmrctl at its socket with --socket or VMR_SOCKET");
            return std::move(e).causedBy(Error::fromErrno(err, "connect"));
        }
        pollfd p{fd.get(), POLLOUT, 0};
        int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
        int soerr = 0;
        socklen_t len = sizeof soerr;
        ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &soerr, &len);
        if (n <= 0 || soerr != 0) {
            return Error(ErrorKind::Unavailable, "Cannot reach vmrd at " + path,
                         "The daemon did not accept the connection in time");
        }
    }
    return Client(std::move(fd), path);
}

Result<void> Client::sendAll(std::string_view data)
{
    while (!data.empty()) {
        ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
        if (n > 0) {
            data.remove_prefix(static_cast<size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            pollfd p{fd_.get(), POLLOUT, 0};
            ::poll(&p, 1, 1000);
            continue;
        }
        return Error(ErrorKind::Unavailable, "Lost the connection to vmrd")
            .causedBy(Error::fromErrno(errno, "send"));
    }
    return success();
}

Result<std::optional<std::string>> Client::readLine(std::optional<std::chrono::milliseconds> timeout)
{
    auto deadline = std::chrono::steady_clock::now() + timeout.value_or(std::chrono::milliseconds(0));
    for (;;) {
        auto nl = buf_.find('\n');
        if (nl != std::string::npos) {
            std::string line = buf_.substr(0, nl);
            buf_.erase(0, nl + 1);
            return std::optional<std::string>(std::move(line));
        }
        if (buf_.size() > kMaxLine) return Error(ErrorKind::TooLarge, "vmrd sent a line longer than 64 MiB");
        int wait = -1;
        if (timeout) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return Error(ErrorKind::Timeout, "vmrd did not answer in time");
            wait = static_cast<int>(left.count());
        }
        pollfd p{fd_.get(), POLLIN, 0};
        int n = ::poll(&p, 1, wait);
        if (n < 0 && errno == EINTR) continue;
        if (n == 0) return Error(ErrorKind::Timeout, "vmrd did not answer in time");
        char chunk[65536];
        ssize_t r = ::recv(fd_.get(), chunk, sizeof chunk, 0);
        if (r == 0) return std::optional<std::string>();
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            return Error(ErrorKind::Unavailable, "Lost the connection to vmrd")
                .causedBy(Error::fromErrno(errno, "recv"));
        }
        buf_.append(chunk, static_cast<size_t>(r));
    }
}

Result<std::string> Client::call(std::string_view method, std::string_view paramsJson,
                                 std::chrono::milliseconds timeout, const NotificationFn& onNotification)
{
    rpc::Id id{std::to_string(nextId_++)};
    if (auto sent = sendAll(rpc::encodeRequest(id, method, paramsJson) + "\n"); !sent) {
        if (auto why = refusal()) return *why;
        return std::move(sent).error();
    }
    for (;;) {
        auto line = readLine(timeout);
        if (!line) return std::move(line).error();
        if (!*line) return Error(ErrorKind::Unavailable, "vmrd closed the connection before answering");
        auto in = rpc::parseIncoming(**line);
        if (!in)
            return Error(ErrorKind::ParseError, "vmrd sent a reply vmrctl cannot read").causedBy(in.error());
        if (!in->response) {
            if (in->notification && onNotification) onNotification(*in->notification);
            continue;
        }
        if (in->response->id.json != id.json && in->response->id.json != "null") continue;
        if (in->response->error) return *in->response->error;
        if (!in->response->result)
            return Error(ErrorKind::ParseError, "vmrd sent a response without a result");
        return *in->response->result;
    }
}

Result<std::optional<rpc::Notification>> Client::nextNotification(
    std::optional<std::chrono::milliseconds> timeout)
{
    for (;;) {
        auto line = readLine(timeout);
        if (!line) return std::move(line).error();
        if (!*line) return std::optional<rpc::Notification>();
        auto in = rpc::parseIncoming(**line);
        if (!in)
            return Error(ErrorKind::ParseError, "vmrd sent a line vmrctl cannot read").causedBy(in.error());
        if (in->notification) return std::optional<rpc::Notification>(std::move(*in->notification));
        if (in->response && in->response->error) return *in->response->error;
    }
}

std::optional<Error> Client::refusal()
{
    // The line, when vmrd sent one, is already here: the wait is for nothing else.
    auto line = readLine(std::chrono::milliseconds(500));
    if (!line || !*line) return std::nullopt;
    auto in = rpc::parseIncoming(**line);
    if (!in || !in->response || !in->response->error) return std::nullopt;
    return *in->response->error;
}

Client::Stream Client::release() &&
{
    int flags = ::fcntl(fd_.get(), F_GETFL);
    if (flags >= 0) ::fcntl(fd_.get(), F_SETFL, flags & ~O_NONBLOCK);
    Stream s{std::move(fd_), std::move(buf_)};
    buf_.clear();
    return s;
}

Result<Client> connectShared(const std::string& socket, std::chrono::milliseconds timeout)
{
    auto admin = Client::connect(socket, timeout);
    if (admin || admin.error().kind() != ErrorKind::PermissionDenied) return admin;
    // Not an admin: perhaps a watcher.
    std::string ro = config::readOnlySocketPath(socket);
    auto watch = Client::connect(ro, timeout);
    if (watch) return watch;
    std::string admins = groupOf(socket);
    std::string watchers = groupOf(ro);
    if (admins.empty()) admins = "vmr";
    if (watchers.empty()) watchers = "vmr-ro";
    std::string message = "Not allowed to connect to vmrd at " + socket;
    if (watch.error().kind() == ErrorKind::PermissionDenied) message += ", nor at its read-only socket " + ro;
    return Error(ErrorKind::PermissionDenied, message,
                 "Join group " + admins + " to manage VMs, or " + watchers + " to watch them (e.g. " +
                     joinHint(admins) + ")");
}

std::string runtimeDir()
{
    return config::defaultSettings(config::Mode::User, config::Env::fromProcess()).runtimeDir;
}

Result<void> checkRuntimeDir(const std::string& dir, bool create)
{
    // An existing folder goes through ensurePrivateDir either way: one of ours that others may
    // only read is narrowed to 0700 rather than refused.
    auto r = create ? ensurePrivateDir(dir) : checkOwnDir(dir, 0700);
    if (!create && !r && r.error().kind() == ErrorKind::PermissionDenied) r = ensurePrivateDir(dir);
    if (r || r.error().kind() != ErrorKind::PermissionDenied) return r;
    Error e = std::move(r).error();
    std::string elsewhere = "XDG_RUNTIME_DIR to a folder of your own, or give vmrd's socket with --socket";
    e.withHint(e.hint().empty() ? "Set " + elsewhere : e.hint() + "; or set " + elsewhere);
    return e;
}

}  // namespace vmr::ctl
