#pragma once

// Guest MAC addresses: derived from the VM id, so a VM keeps its MAC (and the DHCP lease or
// udev name the guest ties to it) for its whole life. docs/networking.md describes the scheme.

#include "base/result.h"
#include "store/record.h"

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vmr::net {

// "52:54:00:" followed by the first six hex digits of the 8-hex-digit id, lowercase
// (id "1a2b3c4d" → "52:54:00:1a:2b:3c"): locally administered, unicast, QEMU's usual prefix.
// An id of any other shape is hashed (FNV-1a) into the last three octets instead.
std::string macFor(std::string_view vmId);

// Six colon-separated pairs of hex digits (either case), unicast (bit 0 of the first octet
// clear) and not all zeros. InvalidArgument otherwise.
Result<void> validateMac(std::string_view mac);

struct MacConflict {
    std::string mac;                 // lowercase
    std::vector<std::string> names;  // the VMs sharing it, in record order (two or more)
};

// MACs held by more than one record (compared case-insensitively; records without a MAC are
// skipped), in order of first appearance.
std::vector<MacConflict> findDuplicateMacs(std::span<const store::VmRecord> records);

}  // namespace vmr::net
