#include "rpc/errors.h"

namespace vmr::rpc {

int errorCode(ErrorKind kind)
{
    return kindCode(kind);
}

ErrorKind kindFromCode(int code, std::string_view name)
{
    constexpr auto kCount = static_cast<int>(ErrorKind::Count_);
    if (!name.empty()) {
        for (int i = 0; i < kCount; ++i) {
            auto k = static_cast<ErrorKind>(i);
            if (kindName(k) == name) return k;
        }
    }
    switch (code) {
        case kParseError: return ErrorKind::ParseError;
        case kInvalidRequest: return ErrorKind::InvalidRequest;
        case kMethodNotFound: return ErrorKind::MethodNotFound;
        case kInvalidParams: return ErrorKind::InvalidParams;
        case kInternalError: return ErrorKind::Internal;
        default: break;
    }
    // Each remaining kind owns its code: search the table rather than repeat it.
    for (int i = 0; i < kCount; ++i) {
        auto k = static_cast<ErrorKind>(i);
        if (errorCode(k) == code) return k;
    }
    return ErrorKind::Internal;
}

std::string defaultHint(ErrorKind kind)
{
    return std::string(kindHint(kind));
}

std::string_view defaultMessage(ErrorKind kind)
{
    return kindMessage(kind);
}

}  // namespace vmr::rpc
