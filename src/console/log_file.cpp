#include "console/log_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace vmr::console {

namespace {

Result<UniqueFd> openAppend(const std::string& path)
{
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
    if (!fd) return Error::fromErrno(errno, "Cannot open the console log " + path);
    return fd;
}

}  // namespace

Result<LogFile> LogFile::open(std::string path, uint64_t maxBytes)
{
    if (maxBytes == 0)
        return Error(ErrorKind::InvalidArgument, "The console log size limit must be above 0",
                     "Set console.log_max_bytes to a positive size");
    auto fd = openAppend(path);
    if (!fd) return std::move(fd).error();
    struct stat st {};
    if (::fstat(fd->get(), &st) < 0) return Error::fromErrno(errno, "Cannot read the size of " + path);
    return LogFile(std::move(path), maxBytes, std::move(*fd), static_cast<uint64_t>(st.st_size));
}

Result<void> LogFile::rotate()
{
    std::string old = path_ + ".1";
    if (::rename(path_.c_str(), old.c_str()) < 0)
        return Error::fromErrno(errno, "Cannot rotate the console log " + path_);
    auto fd = openAppend(path_);
    if (!fd) return std::move(fd).error();
    fd_ = std::move(*fd);
    size_ = 0;
    ++rotations_;
    return success();
}

Result<void> LogFile::append(std::string_view data)
{
    if (data.empty()) return success();
    if (size_ > 0 && size_ + data.size() > maxBytes_) VMR_TRY(rotate());
    while (!data.empty()) {
        ssize_t n = ::write(fd_.get(), data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return Error::fromErrno(errno, "Cannot write the console log " + path_);
        }
        data.remove_prefix(static_cast<size_t>(n));
        size_ += static_cast<uint64_t>(n);
    }
    return success();
}

}  // namespace vmr::console
