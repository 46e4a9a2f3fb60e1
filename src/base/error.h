#pragma once

// Error: a kind (machine-readable, mapped to a JSON-RPC code in exactly one place),
// a sentence for people, a hint saying what to do, and an optional cause chain.

#include <memory>
#include <string>
#include <string_view>

namespace vmr {

// Every error kind vmr can report. The dotted name (kindName) is what clients see in
// `error.data.kind`; rpc::errorCode() maps each to a JSON-RPC code. Keep the list and
// the table in error.cpp in the same order.
enum class ErrorKind {
    Internal,         // a bug or an unexpected system failure
    System,           // a system call failed (errno set)
    InvalidArgument,  // a caller gave a bad value
    ParseError,       // malformed text (JSON, TOML, KDL...)
    InvalidRequest,   // well-formed JSON that is not a JSON-RPC request
    MethodNotFound,
    InvalidParams,
    Config,    // bad configuration file
    NotFound,  // generic "no such thing"
    VmNotFound,
    VmExists,
    VmBadState,
    InvalidName,
    StoreCorrupt,
    Timeout,
    Cancelled,
    Unsupported,
    PermissionDenied,
    Busy,
    TooLarge,
    Unavailable,       // a peer (daemon, hypervisor) is not reachable
    ImageNotFound,     // a VM's base image is missing
    ToolMissing,       // a program vmrd needs is not installed
    ChecksumMismatch,  // a checksum does not match
    DownloadFailed,    // a download failed
    HostKeyMismatch,   // a guest's SSH host key differs from the pinned one
    AuthFailed,        // SSH authentication failed
    ProvisionFailed,   // a provisioning step failed
    HypervisorError,   // the hypervisor refused a request
    Count_,
};

std::string_view kindName(ErrorKind k) noexcept;

class Error {
public:
    Error() = default;
    Error(ErrorKind kind, std::string message, std::string hint = {})
        : kind_(kind), message_(std::move(message)), hint_(std::move(hint))
    {
    }

    // An error from a failed system call: message says what was being done,
    // the errno text is appended by what().
    static Error fromErrno(int err, std::string message, std::string hint = {});

    ErrorKind kind() const noexcept { return kind_; }
    std::string_view kindName() const noexcept { return vmr::kindName(kind_); }
    const std::string& message() const noexcept { return message_; }
    const std::string& hint() const noexcept { return hint_; }
    int sysErrno() const noexcept { return errno_; }
    const Error* cause() const noexcept { return cause_.get(); }

    Error& withHint(std::string hint) &;
    Error&& withHint(std::string hint) &&;
    // Wrap: `Error(Config, "Cannot load vmrd.toml").causedBy(ioErr)`.
    Error&& causedBy(Error cause) &&;
    Error& causedBy(Error cause) &;

    // "message: cause message: errno text" — the whole chain on one line.
    std::string what() const;

private:
    ErrorKind kind_ = ErrorKind::Internal;
    std::string message_;
    std::string hint_;
    int errno_ = 0;
    std::shared_ptr<const Error> cause_;
};

}  // namespace vmr
