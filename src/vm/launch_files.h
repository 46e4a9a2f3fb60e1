#pragma once

// Opening the files a start hands the hypervisor (docs/security.md). A path a client named (an
// image outside vmrd's images folder, a kernel, an initrd, a firmware file) is opened with the
// rights of the VM's owner, who named it; vmrd's own files (overlay, seed, UEFI variables, its
// images, the system's firmware) with vmrd's. The base image is probed through its descriptor
// (image/base_image.h). A file QEMU must read by name (kernel, initrd, -bios), reached through
// /proc/self/fd/N, must be readable by the hypervisor's user: when it is not, the hypervisor gets
// a private unnamed copy (O_TMPFILE in the VM's folder, owned by that user, mode 0400) that
// disappears with the last descriptor.

#include "base/credentials.h"
#include "base/result.h"
#include "model/runtime.h"
#include "model/spec.h"
#include "vm/launch.h"

#include <optional>
#include <string>

namespace vmr::vm {

// Whose rights open what, for one VM.
struct FileRights {
    Credentials owner;                      // the VM's creator
    std::string imagesDir;                  // an image directly in it is vmrd's own
    std::string vmDir;                      // the VM's folder: where unnamed copies live
    std::optional<Credentials> hypervisor;  // the hypervisor's user when it is not vmrd's
};

// The owner of a record: its owner_uid with the account's groups today (only the recorded gid
// when the account is gone); vmrd itself for records older than ownership.
Credentials ownerOf(const model::VmRuntime& runtime);

// Whether `image` names a file directly in `imagesDir` (vmrd's, opened with vmrd's rights).
bool isOwnImage(const std::string& image, const std::string& imagesDir);

// Open what `l` names (its paths were filled in from the record): base (spec.image), overlay,
// seed, kernel, initrd, bios, UEFI code and variables. `biosIsOwners`: the -bios file is the
// spec's own firmware file (the owner's), not the system's. Fails with the first file that cannot
// be opened (PermissionDenied names the path and the uid), before anything is spawned.
Result<void> openLaunchFiles(Launch& l, const FileRights& rights, bool biosIsOwners);

// `fd`, or an unnamed copy of it that `reader` may open through /proc/self/fd: see above.
Result<UniqueFd> readableBy(UniqueFd fd, const std::optional<Credentials>& reader, const std::string& dir,
                            const std::string& label);

}  // namespace vmr::vm
