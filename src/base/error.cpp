#include "base/error.h"

#include <array>
#include <cstring>

namespace vmr {

namespace {

constexpr std::array<std::string_view, static_cast<size_t>(ErrorKind::Count_)> kKindNames = {
    "internal",
    "system",
    "invalid_argument",
    "parse_error",
    "invalid_request",
    "method_not_found",
    "invalid_params",
    "config",
    "not_found",
    "vm.not_found",
    "vm.exists",
    "vm.bad_state",
    "vm.invalid_name",
    "store.corrupt",
    "timeout",
    "cancelled",
    "unsupported",
    "permission_denied",
    "busy",
    "too_large",
    "unavailable",
    "image.not_found",
    "tool.missing",
    "image.checksum_mismatch",
    "image.download_failed",
    "ssh.host_key_mismatch",
    "ssh.auth_failed",
    "provision.failed",
    "hypervisor.error",
};

}  // namespace

std::string_view kindName(ErrorKind k) noexcept
{
    auto i = static_cast<size_t>(k);
    return i < kKindNames.size() ? kKindNames[i] : std::string_view("internal");
}

Error Error::fromErrno(int err, std::string message, std::string hint)
{
    ErrorKind kind = ErrorKind::System;
    if (err == EACCES || err == EPERM)
        kind = ErrorKind::PermissionDenied;
    else if (err == ENOENT)
        kind = ErrorKind::NotFound;
    else if (err == ETIMEDOUT)
        kind = ErrorKind::Timeout;
    else if (err == ECANCELED)
        kind = ErrorKind::Cancelled;
    Error e(kind, std::move(message), std::move(hint));
    e.errno_ = err;
    return e;
}

Error& Error::withHint(std::string hint) &
{
    hint_ = std::move(hint);
    return *this;
}

Error&& Error::withHint(std::string hint) &&
{
    hint_ = std::move(hint);
    return std::move(*this);
}

Error& Error::causedBy(Error cause) &
{
    cause_ = std::make_shared<const Error>(std::move(cause));
    return *this;
}

Error&& Error::causedBy(Error cause) &&
{
    cause_ = std::make_shared<const Error>(std::move(cause));
    return std::move(*this);
}

std::string Error::what() const
{
    std::string out = message_;
    for (const Error* e = this; e != nullptr; e = e->cause_.get()) {
        if (e != this && !e->message_.empty()) {
            out += ": ";
            out += e->message_;
        }
        if (e->errno_ != 0) {
            out += ": ";
            out += std::strerror(e->errno_);
        }
    }
    return out;
}

}  // namespace vmr
