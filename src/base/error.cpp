#include "base/error.h"

#include <array>
#include <cstring>

namespace vmr {

namespace {

struct KindInfo {
    std::string_view name;
    int code;
    std::string_view message;
    std::string_view hint;
};

constexpr std::array<KindInfo, static_cast<size_t>(ErrorKind::Count_)> kKinds = {{
#define VMR_KIND_INFO(e, name, code, message, hint) {name, code, message, hint},
    VMR_ERROR_KINDS(VMR_KIND_INFO)
#undef VMR_KIND_INFO
}};

const KindInfo& info(ErrorKind k) noexcept
{
    auto i = static_cast<size_t>(k);
    return i < kKinds.size() ? kKinds[i] : kKinds[0];
}

}  // namespace

std::string_view kindName(ErrorKind k) noexcept
{
    return info(k).name;
}

int kindCode(ErrorKind k) noexcept
{
    return info(k).code;
}

std::string_view kindMessage(ErrorKind k) noexcept
{
    return info(k).message;
}

std::string_view kindHint(ErrorKind k) noexcept
{
    return info(k).hint;
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
    else if (err == ENOSPC || err == EDQUOT)
        kind = ErrorKind::NoSpace;
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
