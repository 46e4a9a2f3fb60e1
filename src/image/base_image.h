#pragma once

// What a VM's base image is, read from its first bytes through an open descriptor (never a
// path: the file was opened with the rights of whoever named it, docs/security.md). Only two
// formats are accepted, and each must stand alone, so that the hypervisor is told the format and
// never probes it, and no file but this one is ever read for the disk:
//   qcow2 — without a backing file and without an external data file;
//   raw   — anything that is not one of the image formats below.
// Other image formats (vmdk, vdi, vhdx, vpc, qed, LUKS...) may name further files, or would boot
// as garbage when read raw: they are refused with the command that converts them.

#include "base/result.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace vmr::image {

struct BaseImage {
    std::string format;  // "qcow2" | "raw"
    uint64_t virtualSize = 0;
};

// `fd` is open for reading; `label` names the file in errors (its path). InvalidArgument for a
// qcow2 with a backing or data file, an unsupported format, or a truncated qcow2 header.
Result<BaseImage> probeBaseImage(int fd, std::string_view label);

// The same checks on a header already read (at least its first 512 bytes, or the whole file
// when shorter) and the file's size.
Result<BaseImage> probeBaseHeader(std::string_view head, uint64_t fileSize, std::string_view label);

}  // namespace vmr::image
