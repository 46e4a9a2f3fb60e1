#pragma once

// Who a request comes from, and opening files with that caller's rights (docs/security.md).
// A root vmrd must never read a file for a client that the client could not read itself: every
// path a client names is opened here, as the client (filesystem uid and gid, supplementary
// groups), and then used by descriptor. vmrd's thread is single: switching the filesystem
// identity for the length of one open() affects nothing else.

#include "base/fd.h"
#include "base/result.h"

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmr {

struct Credentials {
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;  // supplementary groups

    bool inGroup(gid_t g) const noexcept;
    bool operator==(const Credentials&) const = default;
    // The process's own credentials (effective uid and gid, supplementary groups).
    static Credentials self();
    // A user's credentials as the account database has them now (primary and supplementary
    // groups); nullopt when the uid has no account (then only its uid and `gid` are known).
    static std::optional<Credentials> ofUser(uid_t uid);
};

// The gid of a group name; nullopt when there is no such group.
std::optional<gid_t> groupId(const std::string& name);
// The uid and primary gid of a user name; nullopt when there is no such user.
std::optional<Credentials> userByName(const std::string& name);

// Open `path` (open(2) flags; O_CLOEXEC is added) with the filesystem rights of `who`. When
// `who` is vmrd itself this is a plain open; otherwise vmrd must be root. EACCES/EPERM is
// PermissionDenied naming the path, the uid and `what` ("image", "kernel"...), with a hint
// that the file is opened with the caller's rights; ENOENT is NotFound.
Result<UniqueFd> openAs(const Credentials& who, const std::string& path, int flags, std::string_view what);

// The same, for a regular file only (a FIFO or a device would block or mislead a reader).
Result<UniqueFd> openFileAs(const Credentials& who, const std::string& path, int flags,
                            std::string_view what);

}  // namespace vmr
