#pragma once

// The reactor layer's public API in one include. See docs/reactor.md.

#include "reactor/await.h"       // IWYU pragma: export
#include "reactor/child.h"       // IWYU pragma: export
#include "reactor/loop.h"        // IWYU pragma: export
#include "reactor/scope.h"       // IWYU pragma: export
#include "reactor/signal_set.h"  // IWYU pragma: export
#include "reactor/stream.h"      // IWYU pragma: export
#include "reactor/task.h"        // IWYU pragma: export
