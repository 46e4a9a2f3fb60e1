// The operations on a connected session: running a command, uploading a file over SFTP and
// saying goodbye. One runs at a time (begin()), each with its own deadline.

#include "provision/ssh/session.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace vmr::provision {

using reactor::Task;

namespace {

std::string sftpStatusText(unsigned long status)
{
    switch (status) {
        case LIBSSH2_FX_NO_SUCH_FILE:
        case LIBSSH2_FX_NO_SUCH_PATH: return "no such file or directory";
        case LIBSSH2_FX_PERMISSION_DENIED: return "permission denied";
        case LIBSSH2_FX_FAILURE: return "failure";
        case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
        case LIBSSH2_FX_QUOTA_EXCEEDED: return "no space left";
        case LIBSSH2_FX_WRITE_PROTECT: return "read-only file system";
        case LIBSSH2_FX_FILE_ALREADY_EXISTS: return "file exists";
        case LIBSSH2_FX_NOT_A_DIRECTORY: return "not a directory";
        default: return "SFTP status " + std::to_string(status);
    }
}

// Clears a flag when the operation that set it ends, however it ends.
struct BusyGuard {
    bool& busy;
    ~BusyGuard() { busy = false; }
};

}  // namespace

std::string ExitInfo::describe() const
{
    if (!signal.empty()) return "killed by signal " + signal;
    return "exit code " + std::to_string(code);
}

Task<Result<ExitInfo>> Session::exec(std::string command, OutputFn onOutput, Duration timeout,
                                     reactor::CancelToken* token)
{
    std::string shown = command.size() > 60 ? command.substr(0, 57) + "..." : command;
    OpContext op{"Running `" + shown + "`", reactor_.now() + timeout, timeout, token};
    VMR_CO_TRY(begin(op.what));
    BusyGuard guard{busy_};

    LIBSSH2_CHANNEL* ch = nullptr;
    while ((ch = libssh2_channel_open_session(session_)) == nullptr) {
        int rc = libssh2_session_last_errno(session_);
        if (rc != LIBSSH2_ERROR_EAGAIN) {
            abandon();
            co_return lastError(rc, "Opening a channel");
        }
        VMR_CO_TRY(co_await waitSocket(op));
    }
    // From here on a failure abandons the session, and freeing it frees the channel.
    int rc = 0;
    while ((rc = libssh2_channel_process_startup(ch, "exec", 4, command.data(),
                                                 static_cast<unsigned int>(command.size()))) ==
           LIBSSH2_ERROR_EAGAIN) {
        VMR_CO_TRY(co_await waitSocket(op));
    }
    if (rc != 0) {
        abandon();
        co_return lastError(rc, op.what);
    }
    while ((rc = libssh2_channel_send_eof(ch)) == LIBSSH2_ERROR_EAGAIN) VMR_CO_TRY(co_await waitSocket(op));

    std::string buf(64 * 1024, '\0');
    for (;;) {
        bool progress = false;
        bool wouldBlock = false;
        for (auto stream : {OutputStream::Stdout, OutputStream::Stderr}) {
            int id = stream == OutputStream::Stdout ? 0 : SSH_EXTENDED_DATA_STDERR;
            ssize_t n = libssh2_channel_read_ex(ch, id, buf.data(), buf.size());
            if (n > 0) {
                progress = true;
                if (onOutput) onOutput(stream, std::string_view(buf.data(), static_cast<size_t>(n)));
            } else if (n == LIBSSH2_ERROR_EAGAIN) {
                wouldBlock = true;
            } else if (n < 0) {
                abandon();
                co_return lastError(static_cast<int>(n), "Reading the output of `" + shown + "`");
            }
        }
        if (progress) continue;
        if (libssh2_channel_eof(ch)) break;
        if (wouldBlock) VMR_CO_TRY(co_await waitSocket(op));
    }

    while ((rc = libssh2_channel_close(ch)) == LIBSSH2_ERROR_EAGAIN) VMR_CO_TRY(co_await waitSocket(op));
    if (rc == 0) {
        while ((rc = libssh2_channel_wait_closed(ch)) == LIBSSH2_ERROR_EAGAIN)
            VMR_CO_TRY(co_await waitSocket(op));
    }
    if (rc != 0) {
        abandon();
        co_return lastError(rc, "Closing the channel of `" + shown + "`");
    }
    ExitInfo exit;
    exit.code = libssh2_channel_get_exit_status(ch);
    char* sig = nullptr;
    size_t sigLen = 0;
    libssh2_channel_get_exit_signal(ch, &sig, &sigLen, nullptr, nullptr, nullptr, nullptr);
    if (sig != nullptr) {
        exit.signal.assign(sig, sigLen);
        exit.code = -1;
        libssh2_free(session_, sig);
    }
    while (libssh2_channel_free(ch) == LIBSSH2_ERROR_EAGAIN) VMR_CO_TRY(co_await waitSocket(op));
    co_return exit;
}

Task<Result<void>> Session::openSftp(const OpContext& op)
{
    while (sftp_ == nullptr) {
        sftp_ = libssh2_sftp_init(session_);
        if (sftp_ != nullptr) break;
        int rc = libssh2_session_last_errno(session_);
        if (rc != LIBSSH2_ERROR_EAGAIN) {
            abandon();
            co_return Error(ErrorKind::Unavailable, "The SSH server at " + target_ + " offers no SFTP",
                            "Enable the sftp subsystem in the guest's sshd_config "
                            "(Subsystem sftp internal-sftp)")
                .causedBy(lastError(rc, "Starting SFTP"));
        }
        VMR_CO_TRY(co_await waitSocket(op));
    }
    co_return success();
}

Result<UniqueFd> openLocalFile(const std::string& path)
{
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return Error::fromErrno(errno, "Cannot open " + path, "Check the path and its permissions");
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return Error::fromErrno(errno, "Cannot stat " + path);
    if (!S_ISREG(st.st_mode)) {
        return Error(
            ErrorKind::InvalidArgument, path + " is not a regular file",
            "Upload one file at a time; copy a folder as an archive and unpack it with a shell step");
    }
    return fd;
}

Task<Result<void>> Session::upload(std::string localPath, std::string remotePath,
                                   std::optional<uint32_t> mode, Duration timeout,
                                   reactor::CancelToken* token)
{
    auto fd = openLocalFile(localPath);
    if (!fd) co_return std::move(fd).error();
    co_return co_await upload(std::move(*fd), std::move(localPath), std::move(remotePath), mode, timeout,
                              token);
}

Task<Result<void>> Session::upload(UniqueFd file, std::string name, std::string remotePath,
                                   std::optional<uint32_t> mode, Duration timeout,
                                   reactor::CancelToken* token)
{
    OpContext op{"Uploading " + name + " to " + remotePath, reactor_.now() + timeout, timeout, token};
    struct stat st {};
    if (::fstat(file.get(), &st) != 0) co_return Error::fromErrno(errno, "Cannot stat " + name);
    if (remotePath.empty()) {
        co_return Error(ErrorKind::InvalidArgument, "No destination on the guest for " + name,
                        "Give the absolute path the file should have on the guest");
    }
    VMR_CO_TRY(begin(op.what));
    BusyGuard guard{busy_};
    VMR_CO_TRY(co_await openSftp(op));
    co_return co_await sendFile(file.get(), std::move(remotePath), mode.value_or(st.st_mode & 07777), op);
}

Task<Result<void>> Session::sendFile(int fd, std::string remotePath, uint32_t mode, const OpContext& op)
{
    LIBSSH2_SFTP_HANDLE* h = nullptr;
    auto pathLen = static_cast<unsigned int>(remotePath.size());
    const long flags = LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC;
    while ((h = libssh2_sftp_open_ex(sftp_, remotePath.c_str(), pathLen, flags, static_cast<long>(mode),
                                     LIBSSH2_SFTP_OPENFILE)) == nullptr) {
        int rc = libssh2_session_last_errno(session_);
        if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL) {
            co_return Error(ErrorKind::InvalidArgument,
                            "Cannot create " + remotePath + " on " + target_ + ": " +
                                sftpStatusText(libssh2_sftp_last_error(sftp_)),
                            "Check the destination: its folder must exist (make it in an earlier shell step) "
                            "and be writable by the SSH user");
        }
        if (rc != LIBSSH2_ERROR_EAGAIN) {
            abandon();
            co_return lastError(rc, "Opening " + remotePath + " over SFTP");
        }
        VMR_CO_TRY(co_await waitSocket(op));
    }

    // Read a chunk, send it (the loop runs while libssh2 waits for the socket), read the next:
    // the file is never in memory whole. libssh2 pipelines the writes and asks to be called
    // again with the same bytes until it reports them sent.
    std::string buf(256 * 1024, '\0');
    off_t offset = 0;
    for (;;) {
        ssize_t n = ::pread(fd, buf.data(), buf.size(), offset);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int err = errno;
            abandon();
            co_return Error::fromErrno(err, "Cannot read the file to upload to " + remotePath);
        }
        if (n == 0) break;
        offset += n;
        size_t sent = 0;
        while (sent < static_cast<size_t>(n)) {
            ssize_t w = libssh2_sftp_write(h, buf.data() + sent, static_cast<size_t>(n) - sent);
            if (w == LIBSSH2_ERROR_EAGAIN) {
                VMR_CO_TRY(co_await waitSocket(op));
                continue;
            }
            if (w < 0) {
                abandon();
                if (w == LIBSSH2_ERROR_SFTP_PROTOCOL) {
                    co_return Error(ErrorKind::Unavailable,
                                    "Writing " + remotePath + " on " + target_ +
                                        " failed: " + sftpStatusText(libssh2_sftp_last_error(sftp_)));
                }
                co_return lastError(static_cast<int>(w), "Writing " + remotePath + " over SFTP");
            }
            sent += static_cast<size_t>(w);
        }
    }

    // The mode given at creation passes through the server's umask and does not apply to a file
    // that already existed: set it explicitly.
    LIBSSH2_SFTP_ATTRIBUTES attrs{};
    attrs.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS;
    attrs.permissions = mode;
    int rc = 0;
    while ((rc = libssh2_sftp_fsetstat(h, &attrs)) == LIBSSH2_ERROR_EAGAIN)
        VMR_CO_TRY(co_await waitSocket(op));
    if (rc != 0) {
        abandon();
        co_return lastError(rc, "Setting the mode of " + remotePath);
    }
    while ((rc = libssh2_sftp_close_handle(h)) == LIBSSH2_ERROR_EAGAIN) VMR_CO_TRY(co_await waitSocket(op));
    if (rc != 0) {
        abandon();
        co_return lastError(rc, "Closing " + remotePath + " over SFTP");
    }
    co_return success();
}

Task<Result<void>> Session::disconnect(Duration timeout)
{
    OpContext op{"Disconnecting", reactor_.now() + timeout, timeout, nullptr};
    VMR_CO_TRY(begin(op.what));
    BusyGuard guard{busy_};
    int rc = 0;
    while ((rc = libssh2_session_disconnect_ex(session_, SSH_DISCONNECT_BY_APPLICATION, "done", "")) ==
           LIBSSH2_ERROR_EAGAIN) {
        VMR_CO_TRY(co_await waitSocket(op));
    }
    closed_ = true;
    freeHandles();
    if (rc != 0) co_return Error(ErrorKind::Unavailable, "Disconnecting from " + target_ + " failed");
    co_return success();
}

}  // namespace vmr::provision
