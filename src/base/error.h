#pragma once

// Error: a kind (machine-readable, mapped to a JSON-RPC code in exactly one place),
// a sentence for people, a hint saying what to do, and an optional cause chain.

#include "base/error_kinds.def"

#include <memory>
#include <string>
#include <string_view>

namespace vmr {

// Every error kind vmr can report, generated from the table in error_kinds.h: the dotted
// name (kindName) is what clients see in `error.data.kind`, kindCode the JSON-RPC code.
enum class ErrorKind {
#define VMR_KIND_ENUM(e, name, code, message, hint) e,
    VMR_ERROR_KINDS(VMR_KIND_ENUM)
#undef VMR_KIND_ENUM
        Count_,
};

std::string_view kindName(ErrorKind k) noexcept;
// The JSON-RPC code, the default message and the default hint of a kind (error_kinds.h).
int kindCode(ErrorKind k) noexcept;
std::string_view kindMessage(ErrorKind k) noexcept;
std::string_view kindHint(ErrorKind k) noexcept;

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
