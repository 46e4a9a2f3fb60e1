#include "client.h"

#include "rpc/errors.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

namespace vmr::ctl {

namespace {

constexpr size_t kMaxLine = 64 << 20;  // responses (a list of hundreds of VMs) can be large

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
    VMR_TRY(sendAll(rpc::encodeRequest(id, method, paramsJson) + "\n"));
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

}  // namespace vmr::ctl
