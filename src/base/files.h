#pragma once

// Whole-file reads, crash-safe replacement of small files (VM records, cache metadata),
// mkdir -p with exact modes, and folders that only their owner can change.

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

// Read a regular file of at most `maxBytes` (ErrorKind::TooLarge past that). Anything else
// (a FIFO, a device) is refused without blocking.
Result<std::string> readFile(const std::string& path, size_t maxBytes = 16 << 20);

// mkdir -p: create `path` and missing parents. New directories get exactly `mode`
// (umask notwithstanding); existing ones are left alone. Fails if a component is not a directory.
Result<void> makeDirs(const std::string& path, mode_t mode);

// A folder that only the effective uid can change, for sockets, logs and other files a program
// must not be fooled into using (a shared /tmp is where such folders get planted). A missing
// `path` is created at exactly `mode` (missing parents too, as by makeDirs). An existing one is
// checked: it must be a real directory (not a symlink), owned by the effective uid, that no one
// else can write in; read or search bits beyond `mode` are taken away. Otherwise
// PermissionDenied, saying who owns it or what its mode is and what to do; nothing is changed
// then.
Result<void> ensureOwnDir(const std::string& path, mode_t mode);

// ensureOwnDir at 0700: no group or other permission bits at all.
Result<void> ensurePrivateDir(const std::string& path);

// The checks of ensureOwnDir without changing anything (any bit beyond `mode` is refused):
// NotFound when `path` does not exist.
Result<void> checkOwnDir(const std::string& path, mode_t mode);

}  // namespace vmr
