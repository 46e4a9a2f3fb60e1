#pragma once

// The vm layer's logger (STYLE.md, practice 10: one logger per module).

#include "base/log.h"

namespace vmr::vm {

inline spdlog::logger& lg()
{
    return log::get("vm");
}

}  // namespace vmr::vm
