#pragma once

// Crash points (docs/development.md, "Crash-point tests"): in a build with -Dcrash_points=true,
// VMR_CRASH_POINT("create.after_overlay") kills the process with SIGKILL when the environment
// variable VMR_CRASH_AT names that step, so a test can stop vmrd between any two steps of an
// operation and check what the next vmrd makes of it. In other builds it is nothing at all.

#include "config.h"

#include <string_view>

namespace vmr {

#if VMR_CRASH_POINTS
void crashPoint(std::string_view step);
#define VMR_CRASH_POINT(step) ::vmr::crashPoint(step)
#else
#define VMR_CRASH_POINT(step) ((void)0)
#endif

}  // namespace vmr
