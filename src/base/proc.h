#pragma once

// Process identity for re-adopting hypervisors after a vmrd restart: a pid alone can be
// reused, a (pid, start time) pair cannot.

#include "base/result.h"

#include <sys/types.h>

#include <cstdint>
#include <string_view>

namespace vmr {

// Field 22 (starttime, clock ticks since boot) of /proc/<pid>/stat. ErrorKind::NotFound
// when the process does not exist.
Result<uint64_t> processStartTime(pid_t pid);

// The same, from the text of a stat file. The comm field (2) is in parentheses and may
// contain spaces and ')', so parsing starts after the last ')'.
Result<uint64_t> parseStatStartTime(std::string_view statText);

// Field 3 (state) of a stat file's text: 'R', 'S', 'Z' (zombie)...; '?' when unreadable.
char parseStatState(std::string_view statText);
// Whether the process has died and waits to be reaped (a zombie is dead: it runs nothing).
bool isZombie(pid_t pid);

}  // namespace vmr
