#include "base/files.h"

#include "base/fd.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <vector>

namespace vmr {

namespace {

Result<std::string> randomHex(size_t bytes)
{
    unsigned char buf[32];
    if (bytes > sizeof buf) bytes = sizeof buf;
    size_t got = 0;
    while (got < bytes) {
        ssize_t n = ::getrandom(buf + got, bytes - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Error::fromErrno(errno, "Cannot read random bytes");
        got += static_cast<size_t>(n);
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (size_t i = 0; i < bytes; ++i) {
        out += kHex[buf[i] >> 4];
        out += kHex[buf[i] & 0xF];
    }
    return out;
}

Result<void> writeAll(int fd, std::string_view data, const std::string& what)
{
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Error::fromErrno(errno, "Cannot write " + what);
        data.remove_prefix(static_cast<size_t>(n));
    }
    return success();
}

// Removes the temp file unless the write went through.
class TempGuard {
public:
    explicit TempGuard(std::string path) : path_(std::move(path)) {}
    TempGuard(const TempGuard&) = delete;
    TempGuard& operator=(const TempGuard&) = delete;
    ~TempGuard()
    {
        if (!path_.empty()) ::unlink(path_.c_str());
    }
    void release() { path_.clear(); }

private:
    std::string path_;
};

// Create one directory at exactly `mode`; true if it was created, false if it existed.
Result<bool> makeDir(const std::string& path, mode_t mode)
{
    if (::mkdir(path.c_str(), mode) == 0) {
        if (::chmod(path.c_str(), mode) != 0)
            return Error::fromErrno(errno, "Cannot set the mode of " + path);
        return true;
    }
    int err = errno;
    if (err != EEXIST) return Error::fromErrno(err, "Cannot create directory " + path);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return Error::fromErrno(errno, "Cannot stat " + path);
    if (!S_ISDIR(st.st_mode))
        return Error(ErrorKind::System, "Cannot use " + path + ": it exists and is not a directory",
                     "Move the file out of the way");
    return false;
}

// "uid 1000 (ada)", or "uid 1000" when it has no account.
std::string describeUid(uid_t uid)
{
    std::string out = "uid " + std::to_string(uid);
    long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
    std::vector<char> buf(size > 0 ? static_cast<size_t>(size) : 16384);
    passwd pw{};
    passwd* found = nullptr;
    if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr &&
        found->pw_name != nullptr)
        out += std::string(" (") + found->pw_name + ")";
    return out;
}

std::string octal(mode_t mode)
{
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
    return buf;
}

std::string parentOf(const std::string& path)
{
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

bool isAtomicTempName(std::string_view fileName, std::string_view target)
{
    // "." + target + ".tmp-" + suffix
    if (fileName.size() <= 1 + target.size() + kTempMarker.size() || fileName.front() != '.') return false;
    fileName.remove_prefix(1);
    if (fileName.substr(0, target.size()) != target) return false;
    fileName.remove_prefix(target.size());
    return fileName.substr(0, kTempMarker.size()) == kTempMarker;
}

Result<void> writeFileAtomic(const std::string& path, std::string_view data, mode_t mode,
                             Durability durability)
{
    auto slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
    if (base.empty()) return Error(ErrorKind::InvalidArgument, "Cannot write " + path + ": not a file name");

    std::string tmp;
    UniqueFd fd;
    for (int attempt = 0; attempt < 8 && !fd; ++attempt) {
        auto suffix = randomHex(8);
        if (!suffix) return std::move(suffix).error();
        tmp = dir + "/." + base + std::string(kTempMarker) + *suffix;
        fd.reset(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
        if (!fd && errno != EEXIST) return Error::fromErrno(errno, "Cannot create " + tmp);
    }
    if (!fd) return Error::fromErrno(EEXIST, "Cannot create a temp file next to " + path);
    TempGuard guard(tmp);

    // The umask may have narrowed the mode; the caller asked for this one.
    if (::fchmod(fd.get(), mode) != 0) return Error::fromErrno(errno, "Cannot set the mode of " + tmp);
    VMR_TRY(writeAll(fd.get(), data, tmp));
    if (durability == Durability::Disk && ::fsync(fd.get()) != 0)
        return Error::fromErrno(errno, "Cannot flush " + tmp);
    if (::close(fd.release()) != 0) return Error::fromErrno(errno, "Cannot close " + tmp);
    if (::rename(tmp.c_str(), path.c_str()) != 0) return Error::fromErrno(errno, "Cannot replace " + path);
    guard.release();
    if (durability == Durability::Host) return success();

    UniqueFd dirFd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dirFd) return Error::fromErrno(errno, "Cannot open " + dir + " to flush it");
    if (::fsync(dirFd.get()) != 0) return Error::fromErrno(errno, "Cannot flush " + dir);
    return success();
}

Result<std::string> readFile(const std::string& path, size_t maxBytes)
{
    // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below).
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd) return Error::fromErrno(errno, "Cannot open " + path);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return Error::fromErrno(errno, "Cannot stat " + path);
    if (!S_ISREG(st.st_mode))
        return Error(ErrorKind::InvalidArgument, "Cannot read " + path + ": not a regular file");
    std::string out;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Error::fromErrno(errno, "Cannot read " + path);
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
        if (out.size() > maxBytes)
            return Error(ErrorKind::TooLarge,
                         "Cannot read " + path + ": larger than " + std::to_string(maxBytes) + " bytes");
    }
    return out;
}

Result<void> makeDirs(const std::string& path, mode_t mode)
{
    if (path.empty())
        return Error(ErrorKind::InvalidArgument, "Cannot create a directory with an empty path");
    for (size_t pos = path.find('/', 1); pos != std::string::npos; pos = path.find('/', pos + 1)) {
        if (path[pos - 1] == '/') continue;
        auto r = makeDir(path.substr(0, pos), mode);
        if (!r) return std::move(r).error();
    }
    auto r = makeDir(path, mode);
    if (!r) return std::move(r).error();
    return success();
}

Result<void> checkOwnDir(const std::string& dirPath, mode_t mode)
{
    // Without trailing slashes: lstat("link/") would follow the link.
    std::string path = dirPath;
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return Error::fromErrno(errno, "Cannot use " + path);
    uid_t self = ::geteuid();
    std::string owner = "a directory owned by " + describeUid(self);
    if (S_ISLNK(st.st_mode)) {
        char target[4096];
        ssize_t n = ::readlink(path.c_str(), target, sizeof target - 1);
        std::string to = n > 0 ? " to " + std::string(target, static_cast<size_t>(n)) : "";
        return Error(ErrorKind::PermissionDenied,
                     "Cannot use " + path + ": it is a symbolic link" + to + ", not " + owner,
                     "Remove the link (rm " + path + ")");
    }
    if (!S_ISDIR(st.st_mode))
        return Error(ErrorKind::PermissionDenied, "Cannot use " + path + ": it is not " + owner,
                     "Move it out of the way");
    if (st.st_uid != self)
        return Error(ErrorKind::PermissionDenied,
                     "Cannot use " + path + ": it is not " + owner + ": " + describeUid(st.st_uid) +
                         " made it, and can put files in it",
                     "Ask root to remove it (sudo rm -r " + path + ")");
    mode_t extra = st.st_mode & 07777 & ~mode;
    if ((extra & 0022) != 0)
        return Error(
            ErrorKind::PermissionDenied,
            "Cannot use " + path + ": its mode " + octal(st.st_mode) + " lets other users put files in it",
            "Files in it may not be yours: remove it (rm -r " + path + ")");
    if (extra != 0)
        return Error(
            ErrorKind::PermissionDenied,
            "Cannot use " + path + ": its mode is " + octal(st.st_mode) + ", wider than " + octal(mode),
            "Narrow it: chmod " + octal(mode) + " " + path);
    return success();
}

Result<void> ensureOwnDir(const std::string& path, mode_t mode)
{
    if (path.empty())
        return Error(ErrorKind::InvalidArgument, "Cannot create a directory with an empty path");
    std::string dir = path;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    int rc = ::mkdir(dir.c_str(), mode);
    if (rc != 0 && errno == ENOENT) {
        VMR_TRY(makeDirs(parentOf(dir), mode));
        rc = ::mkdir(dir.c_str(), mode);
    }
    if (rc == 0) {
        // Exactly `mode`, whatever the umask; through a descriptor of the folder just made.
        UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!fd || ::fchmod(fd.get(), mode) != 0)
            return Error::fromErrno(errno, "Cannot set the mode of " + dir);
    } else if (errno != EEXIST) {
        return Error::fromErrno(errno, "Cannot create directory " + dir);
    } else {
        // A folder of ours that others may read or enter but not write in (an older vmrctl made
        // /tmp/vmr-<uid> 0755): nobody can have planted anything, so it is narrowed, not refused.
        struct stat st {};
        UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (fd && ::fstat(fd.get(), &st) == 0 && st.st_uid == ::geteuid() &&
            (st.st_mode & 07777 & ~mode & 0022) == 0 && (st.st_mode & 07777 & ~mode) != 0 &&
            ::fchmod(fd.get(), st.st_mode & mode & 07777) != 0)
            return Error::fromErrno(errno, "Cannot narrow the mode of " + dir);
    }
    return checkOwnDir(dir, mode);
}

Result<void> ensurePrivateDir(const std::string& path)
{
    return ensureOwnDir(path, 0700);
}

}  // namespace vmr
