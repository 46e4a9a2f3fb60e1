#pragma once

// Who may talk to vmrd, and through which socket (docs/security.md). In system mode the
// control socket is 0660, group socket_group (admins: everything), and a second one,
// <socket's folder>/vmrd-ro.sock, is 0660, group readonly_group (read-only: list, status,
// events, logs, console --ro). Every connection's SO_PEERCRED and SO_PEERGROUPS decide its role
// again, whatever socket it came through. A user daemon serves only its own uid.

#include "base/fd.h"
#include "base/result.h"
#include "config/settings.h"
#include "rpc/server.h"

#include <sys/types.h>

#include <optional>
#include <string>

namespace vmr::vmrd {

struct AccessGroups {
    std::optional<gid_t> admin;
    std::string adminName;
    std::optional<gid_t> readOnly;
    std::string readOnlyName;
};

// The groups of the settings. A group named in vmrd.toml that does not exist is a Config
// error; the defaults ("vmr", "vmr-ro") are used only when they exist.
Result<AccessGroups> accessGroups(const config::Settings& s);

// The role of a peer, or PermissionDenied naming the group to join.
rpc::Authorizer makeAuthorizer(config::Mode mode, AccessGroups groups);

// A listening unix socket at `path` with `mode` and, when given, group `gid`. A dead vmrd's
// socket (it accepts but nobody answers) is replaced: the caller holds the state lock.
Result<UniqueFd> listenAt(const std::string& path, mode_t mode, std::optional<gid_t> gid);

}  // namespace vmr::vmrd
