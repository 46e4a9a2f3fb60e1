#pragma once

// The one mapping between vmr::ErrorKind and JSON-RPC 2.0 error codes (STYLE.md, practice 8).
// The standard kinds use the codes of the JSON-RPC 2.0 specification; every other kind has
// its own code in the implementation-defined server range -32000..-32099. The table is
// documented in docs/protocol.md; a test checks both stay in step.

#include "base/error.h"

#include <string>
#include <string_view>

namespace vmr::rpc {

// JSON-RPC 2.0 standard codes.
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;
// The implementation-defined server range.
inline constexpr int kServerErrorFirst = -32099;
inline constexpr int kServerErrorLast = -32000;

// The wire code of an error kind.
int errorCode(ErrorKind kind);

// Client side: the kind of an error received as (code, data.kind). A known kind name wins
// (it is more precise: several kinds share -32602 and -32603); otherwise the code decides;
// an unknown code maps to Internal.
ErrorKind kindFromCode(int code, std::string_view kindName);

// A hint for people when the error carries none; empty when there is nothing useful to say.
std::string defaultHint(ErrorKind kind);

// The `message` sent when an error has an empty one ("Internal error", "VM not found"...).
std::string_view defaultMessage(ErrorKind kind);

}  // namespace vmr::rpc
