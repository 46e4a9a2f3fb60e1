#pragma once

// qemu-img, run as a child process on the reactor (DESIGN.md: nothing that could block the loop
// runs on the daemon thread): inspect an image, create a copy-on-write overlay on a base.

#include "base/credentials.h"
#include "base/result.h"
#include "image/base_image.h"
#include "reactor/reactor.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vmr::image {

// How long one qemu-img command may take before it is killed.
constexpr reactor::Duration kQemuImgTimeout = std::chrono::seconds(60);

// What `qemu-img info --output=json` says about an image.
struct ImageInfo {
    std::string format;                  // "qcow2", "raw", ...
    uint64_t virtualSize = 0;            // bytes the guest sees
    std::optional<uint64_t> actualSize;  // bytes allocated on the host, when qemu-img knows
    std::string backingFilename;         // as recorded in the image; empty: none
    std::string backingFormat;           // empty: not recorded
    bool dirty = false;                  // dirty-flag (qcow2 lazy refcounts not flushed)
};

// Parse qemu-img's JSON (pure; ParseError names the missing or mistyped field).
Result<ImageInfo> parseImageInfo(std::string_view json);

// `qemu-img info -U --output=json <path>`. -U (force-share) so that the image of a running VM
// can be inspected. A file qemu-img cannot recognise is reported as format "raw" (qemu-img's
// own probing), so a text file is "a raw image" of its size rounded up to 512 bytes.
// Missing path: NotFound. qemu-img not in PATH: ToolMissing. With `as`, qemu-img runs with
// those credentials (a client's path is read with the client's rights, never vmrd's).
reactor::Task<Result<ImageInfo>> inspect(reactor::Reactor& r, std::string path,
                                         std::optional<Credentials> as = std::nullopt);

// probeBaseImage() of a file vmrd opens with its own rights (its cache, its images folder).
Result<BaseImage> probeBaseFile(const std::string& path);

// `qemu-img create -f qcow2 -F <format> -b <absolute base> -u <overlay> <size>`: a qcow2
// overlay on `base` (already probed: the base file is not opened again, and the hypervisor is
// handed it by descriptor). sizeBytes, when given, must be at least the base's virtual size
// (InvalidArgument, checked before anything is created); without it the overlay has the
// base's size. The overlay must not exist yet (InvalidArgument). On any failure nothing is left
// at the overlay path.
reactor::Task<Result<void>> createOverlay(reactor::Reactor& r, BaseImage base, std::string basePath,
                                          std::string overlay, std::optional<uint64_t> sizeBytes);

}  // namespace vmr::image
