#pragma once

// VM names become folder names under <state>/vms, so they are checked before any use:
// [A-Za-z0-9][A-Za-z0-9._-]{0,62}. No valid name is "." or "..", contains '/', or is empty.

#include "base/result.h"

#include <string_view>

namespace vmr::store {

constexpr size_t kMaxVmNameLength = 63;

// ErrorKind::InvalidName naming the rule and showing the name as a JSON string (so control
// characters, NUL and invalid UTF-8 are visible and harmless in logs and replies).
Result<void> validateVmName(std::string_view name);

}  // namespace vmr::store
