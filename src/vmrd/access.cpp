#include "vmrd/access.h"

#include "base/credentials.h"
#include "reactor/reactor.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

namespace vmr::vmrd {

namespace {

// Does a live vmrd answer a ping on `path` within a second? Blocking: startup only.
bool socketAnswers(const std::string& path)
{
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (!fd || path.size() >= sizeof addr.sun_path) return false;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return false;
    static constexpr std::string_view kPing = "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"vmr.ping\"}\n";
    if (::send(fd.get(), kPing.data(), kPing.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(kPing.size()))
        return false;
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 1000) != 1) return false;
    char reply[64];
    return ::recv(fd.get(), reply, sizeof reply, MSG_DONTWAIT) > 0;  // an answer, not a hang-up
}

Result<std::optional<gid_t>> group(const std::string& configured, const char* fallback, const char* key,
                                   std::string& name)
{
    name = configured.empty() ? fallback : configured;
    auto gid = groupId(name);
    if (!gid && !configured.empty())
        return Error(ErrorKind::Config, std::string(key) + " \"" + configured + "\" does not exist",
                     "Create the group (groupadd " + configured + ") or remove " + key + " from vmrd.toml");
    if (!gid) name.clear();
    return gid;
}

}  // namespace

Result<AccessGroups> accessGroups(const config::Settings& s)
{
    AccessGroups g;
    bool system = s.mode == config::Mode::System;
    VMR_TRY_ASSIGN(g.admin, group(s.socketGroup, system ? "vmr" : "", "socket_group", g.adminName));
    VMR_TRY_ASSIGN(g.readOnly,
                   group(s.readonlyGroup, system ? "vmr-ro" : "", "readonly_group", g.readOnlyName));
    return g;
}

rpc::Authorizer makeAuthorizer(config::Mode mode, AccessGroups groups)
{
    uid_t self = ::geteuid();
    if (mode == config::Mode::User)
        return [self](const rpc::Peer& peer, rpc::Role ceiling) -> Result<rpc::Role> {
            if (peer.uid == self) return ceiling;
            return Error(ErrorKind::PermissionDenied,
                         "This vmrd is uid " + std::to_string(self) + "'s own, and serves nobody else",
                         "Use your own (vmrctl starts one), or the system vmrd");
        };
    return [self, groups](const rpc::Peer& peer, rpc::Role ceiling) -> Result<rpc::Role> {
        Credentials who = peer.credentials();
        if (peer.uid == 0 || peer.uid == self) return ceiling;
        if (groups.admin && who.inGroup(*groups.admin)) return ceiling;
        if (groups.readOnly && who.inGroup(*groups.readOnly)) return rpc::Role::ReadOnly;
        std::string join = groups.adminName.empty() ? std::string("ask root to set socket_group in vmrd.toml")
                                                    : "join group " + groups.adminName + " to manage VMs";
        if (!groups.readOnlyName.empty()) join += ", or " + groups.readOnlyName + " to watch them";
        return Error(ErrorKind::PermissionDenied,
                     "uid " + std::to_string(peer.uid) + " may not use this vmrd",
                     "To use it, " + join + " (sudo usermod -aG GROUP $USER, then log in again)");
    };
}

Result<UniqueFd> listenAt(const std::string& path, mode_t mode, std::optional<gid_t> gid)
{
    std::filesystem::path dir = std::filesystem::path(path).parent_path();
    std::error_code ec;
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    auto fd = reactor::listenUnix(path, mode);
    if (!fd && fd.error().kind() == ErrorKind::Busy && !socketAnswers(path)) {
        // We hold the state lock, so no vmrd serves this state; a listener that accepts but
        // never answers is a dead vmrd's socket that the kernel has not torn down yet
        // (io_uring releases a killed process's files asynchronously).
        ::unlink(path.c_str());
        fd = reactor::listenUnix(path, mode);
    }
    if (!fd) {
        return Error(fd.error().kind(), "Cannot listen on " + path,
                     fd.error().kind() == ErrorKind::Busy
                         ? "Another vmrd answers there; use vmrctl, or pick --socket"
                         : "Check that the folder exists and is writable")
            .causedBy(fd.error());
    }
    if (gid && ::chown(path.c_str(), static_cast<uid_t>(-1), *gid) != 0)
        return Error::fromErrno(errno, "Cannot give " + path + " to group " + std::to_string(*gid));
    return fd;
}

}  // namespace vmr::vmrd
