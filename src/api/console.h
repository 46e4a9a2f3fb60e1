#pragma once

// What the console actions share with their tests.

#include "base/result.h"

#include <cstdint>
#include <string>

namespace vmr::api {

// The last `lines` lines of at most the last `maxBytes` bytes of a file ("" when it does not
// exist; lines == 0: all of those bytes). Reads only the end of the file.
Result<std::string> tailFile(const std::string& path, uint64_t lines, uint64_t maxBytes);

}  // namespace vmr::api
