#pragma once

// The grammars of the names a VM spec holds. VM names become folder names under <state>/vms,
// so they are checked before any use: [A-Za-z0-9][A-Za-z0-9._-]{0,62}. No valid name is "."
// or "..", contains '/', or is empty.

#include "base/result.h"

#include <string_view>

namespace vmr::model {

constexpr size_t kMaxVmNameLength = 63;
constexpr size_t kMaxInterfaceNameLength = 15;  // IFNAMSIZ - 1

// ErrorKind::InvalidName naming the rule and showing the name as a JSON string (so control
// characters, NUL and invalid UTF-8 are visible and harmless in logs and replies).
Result<void> validateVmName(std::string_view name);

// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
bool isValidHostname(std::string_view h);
// A Linux network interface name: 1 to 15 characters, no '/', ':' or white space.
bool isValidInterfaceName(std::string_view name);
// 64 hexadecimal digits (either case).
bool isSha256Hex(std::string_view s);
// A POSIX login name as cloud-init creates it: [a-z_][a-z0-9_-]{0,31}.
bool isValidUserName(std::string_view name);

}  // namespace vmr::model
