#pragma once

// Whole-file reads, crash-safe replacement of small files (VM records, cache metadata) and
// mkdir -p with exact modes.

#include "base/result.h"

#include <sys/types.h>

#include <string>
#include <string_view>

namespace vmr {

// Temp files of writeFileAtomic are "<dir>/.<name>.tmp-<16 hex>"; a scan that finds one
// knows an atomic write was interrupted.
constexpr std::string_view kTempMarker = ".tmp-";
bool isAtomicTempName(std::string_view fileName, std::string_view target);

// How far a write must survive. Disk: a power loss or kernel crash (fsync of the file and of
// the folder, ~10 ms here). Host: the writer's own crash, but not the host's (no fsync; the
// rename is still atomic). Host is for facts that die with the host anyway: the pid and run
// state of a hypervisor process.
enum class Durability { Disk, Host };

// Replace `path` with `data`: write a temp file in the same directory (O_EXCL, random
// name, `mode`), fsync it (Disk), rename it over `path`, fsync the directory (Disk). After a
// crash the file is either the old or the new content. On failure the temp file is removed
// and the old file is left as it was.
Result<void> writeFileAtomic(const std::string& path, std::string_view data, mode_t mode,
                             Durability durability = Durability::Disk);

// Read a regular file of at most `maxBytes` (ErrorKind::TooLarge past that).
Result<std::string> readFile(const std::string& path, size_t maxBytes = 16 << 20);

// mkdir -p: create `path` and missing parents. New directories get exactly `mode`
// (umask notwithstanding); existing ones are left alone. Fails if a component is not a directory.
Result<void> makeDirs(const std::string& path, mode_t mode);

}  // namespace vmr
