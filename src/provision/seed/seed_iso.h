#pragma once

// The NoCloud seed ISO, made in-process with libisofs: an ISO 9660 image with volume id
// "cidata", Rock Ridge and Joliet (so the long lower-case names survive), holding
// user-data, meta-data and, when there is one, network-config in its root.

#include "base/result.h"
#include "provision/seed/cloud_config.h"

#include <string>

namespace vmr::provision {

inline constexpr std::string_view kSeedVolumeId = "cidata";
inline constexpr std::string_view kSeedIsoFile = "seed.iso";

// The image's bytes.
Result<std::string> buildSeedIso(const SeedFiles& files);

// Builds the image and writes it to `path` atomically (temp file, fsync, rename), mode
// 0600: the seed may hold the guest's private host key.
Result<void> writeSeedIso(const std::string& path, const SeedFiles& files);

}  // namespace vmr::provision
