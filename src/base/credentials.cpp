#include "base/credentials.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace vmr {

namespace {

// setgroups(2) for this thread only: glibc's wrapper would apply it to every thread.
int setThreadGroups(const std::vector<gid_t>& groups)
{
    return static_cast<int>(::syscall(SYS_setgroups, groups.size(), groups.data()));
}

// Switches the filesystem identity for the life of the object, and back.
class FsIdentity {
public:
    explicit FsIdentity(const Credentials& who)
    {
        int n = ::getgroups(0, nullptr);
        saved_.resize(n > 0 ? static_cast<size_t>(n) : 0);
        if (n > 0 && ::getgroups(n, saved_.data()) < 0) saved_.clear();
        dumpable_ = ::prctl(PR_GET_DUMPABLE);
        savedUid_ = static_cast<uid_t>(::setfsuid(static_cast<uid_t>(-1)));
        savedGid_ = static_cast<gid_t>(::setfsgid(static_cast<gid_t>(-1)));
        ok_ = setThreadGroups(who.groups) == 0;
        ::setfsgid(who.gid);
        ::setfsuid(who.uid);
        // setfsuid() reports no error: ask again whether it took.
        ok_ = ok_ && static_cast<uid_t>(::setfsuid(static_cast<uid_t>(-1))) == who.uid &&
              static_cast<gid_t>(::setfsgid(static_cast<gid_t>(-1))) == who.gid;
    }
    FsIdentity(const FsIdentity&) = delete;
    FsIdentity& operator=(const FsIdentity&) = delete;
    ~FsIdentity()
    {
        ::setfsuid(savedUid_);
        ::setfsgid(savedGid_);
        (void)setThreadGroups(saved_);
        // A change of fsuid makes the process undumpable (no core, /proc/self owned by root);
        // vmrd is back to its own identity, so is its dumpable flag.
        if (dumpable_ > 0) (void)::prctl(PR_SET_DUMPABLE, dumpable_);
    }
    bool ok() const noexcept { return ok_; }

private:
    std::vector<gid_t> saved_;
    uid_t savedUid_ = 0;
    gid_t savedGid_ = 0;
    int dumpable_ = 0;
    bool ok_ = false;
};

}  // namespace

bool Credentials::inGroup(gid_t g) const noexcept
{
    return gid == g || std::find(groups.begin(), groups.end(), g) != groups.end();
}

Credentials Credentials::self()
{
    Credentials c{::geteuid(), ::getegid(), {}};
    int n = ::getgroups(0, nullptr);
    if (n > 0) {
        c.groups.resize(static_cast<size_t>(n));
        if (::getgroups(n, c.groups.data()) < 0) c.groups.clear();
    }
    return c;
}

std::optional<Credentials> Credentials::ofUser(uid_t uid)
{
    passwd pw{};
    passwd* found = nullptr;
    std::vector<char> buf(16384);
    if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) return std::nullopt;
    Credentials c{uid, pw.pw_gid, {}};
    int n = 64;
    c.groups.resize(static_cast<size_t>(n));
    if (::getgrouplist(pw.pw_name, pw.pw_gid, c.groups.data(), &n) < 0) {
        c.groups.resize(static_cast<size_t>(n));
        if (::getgrouplist(pw.pw_name, pw.pw_gid, c.groups.data(), &n) < 0) n = 0;
    }
    c.groups.resize(static_cast<size_t>(std::max(n, 0)));
    return c;
}

namespace {

// A getgrnam_r / getpwnam_r lookup: the entry, or nullopt when there is none. Its strings live
// in a buffer the next lookup reuses: callers keep numbers only.
template <typename Entry, typename Lookup>
std::optional<Entry> lookUp(const std::string& name, Lookup lookup)
{
    Entry entry{};
    Entry* found = nullptr;
    thread_local std::vector<char> buf(16384);
    if (name.empty() || lookup(name.c_str(), &entry, buf.data(), buf.size(), &found) != 0 || found == nullptr)
        return std::nullopt;
    return entry;
}

}  // namespace

std::optional<gid_t> groupId(const std::string& name)
{
    auto gr = lookUp<group>(name, ::getgrnam_r);
    if (!gr) return std::nullopt;
    return gr->gr_gid;
}

std::optional<Credentials> userByName(const std::string& name)
{
    auto pw = lookUp<passwd>(name, ::getpwnam_r);
    if (!pw) return std::nullopt;
    return Credentials::ofUser(pw->pw_uid).value_or(Credentials{pw->pw_uid, pw->pw_gid, {}});
}

Result<UniqueFd> openAs(const Credentials& who, const std::string& path, int flags, std::string_view what)
{
    auto failed = [&](int err) {
        std::string msg =
            "Cannot open the " + std::string(what) + " " + path + " as uid " + std::to_string(who.uid);
        if (err == EACCES || err == EPERM)
            return Error(ErrorKind::PermissionDenied, msg,
                         "vmrd opens the files a request names with the rights of whoever sent it: make it "
                         "readable by you (uid " +
                             std::to_string(who.uid) + ")")
                .causedBy(Error::fromErrno(err, ""));
        return Error::fromErrno(err, msg, err == ENOENT ? "Check the path" : "");
    };
    Credentials me = Credentials::self();
    // Itself, or its own user (a daemon that is not root cannot take another group anyway).
    if (who.uid == me.uid && (who.gid == me.gid || me.uid != 0)) {
        UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC | O_NOCTTY));
        if (!fd) return failed(errno);
        return fd;
    }
    if (me.uid != 0)
        return Error(ErrorKind::PermissionDenied,
                     "This vmrd (uid " + std::to_string(me.uid) + ") cannot open files as uid " +
                         std::to_string(who.uid),
                     "Talk to your own vmrd, or to the system vmrd");
    FsIdentity as(who);
    if (!as.ok())
        return Error(ErrorKind::System, "Cannot take the identity of uid " + std::to_string(who.uid));
    UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC | O_NOCTTY));
    if (!fd) return failed(errno);
    return fd;
}

Result<UniqueFd> openFileAs(const Credentials& who, const std::string& path, int flags, std::string_view what)
{
    // O_NONBLOCK: a FIFO named as an image must not block the daemon's thread in open().
    VMR_TRY_ASSIGN(UniqueFd fd, openAs(who, path, flags | O_NONBLOCK, what));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return Error::fromErrno(errno, "Cannot stat " + path);
    if (!S_ISREG(st.st_mode))
        return Error(ErrorKind::InvalidArgument,
                     "The " + std::string(what) + " " + path + " is not a regular file",
                     "Give the path of a file");
    // Back to blocking reads: it is a file.
    ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
    return fd;
}

}  // namespace vmr
