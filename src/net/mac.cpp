#include "net/mac.h"

#include <cstdint>
#include <cstdio>
#include <unordered_map>

namespace vmr::net {

namespace {

int hexValue(char c) noexcept
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string lower(std::string_view s)
{
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

}  // namespace

std::string macFor(std::string_view vmId)
{
    uint32_t tail = 0;
    bool hexId = vmId.size() == 8;
    for (char c : vmId) hexId = hexId && hexValue(c) >= 0;
    if (hexId) {
        for (size_t i = 0; i < 6; ++i) tail = (tail << 4) | static_cast<uint32_t>(hexValue(vmId[i]));
    } else {
        uint32_t h = 2166136261u;
        for (char c : vmId) {
            h ^= static_cast<unsigned char>(c);
            h *= 16777619u;
        }
        tail = (h ^ (h >> 24)) & 0xffffffu;
    }
    char buf[18];
    std::snprintf(buf, sizeof(buf), "52:54:00:%02x:%02x:%02x", (tail >> 16) & 0xff, (tail >> 8) & 0xff,
                  tail & 0xff);
    return buf;
}

Result<void> validateMac(std::string_view mac)
{
    auto bad = [&](std::string_view why) {
        return Error(ErrorKind::InvalidArgument,
                     "Invalid MAC address \"" + std::string(mac) + "\": " + std::string(why),
                     "Write it as six pairs of hex digits separated by colons, like 52:54:00:12:34:56");
    };
    if (mac.size() != 17) return bad("expected 17 characters");
    int octets[6];
    for (size_t i = 0; i < 6; ++i) {
        int hi = hexValue(mac[i * 3]);
        int lo = hexValue(mac[i * 3 + 1]);
        if (hi < 0 || lo < 0) return bad("expected hex digits");
        if (i < 5 && mac[i * 3 + 2] != ':') return bad("expected ':' between octets");
        octets[i] = hi * 16 + lo;
    }
    if (octets[0] & 1) return bad("a multicast address cannot name one guest");
    bool zero = true;
    for (int o : octets) zero = zero && o == 0;
    if (zero) return bad("the all-zero address is not valid");
    return success();
}

std::vector<MacConflict> findDuplicateMacs(std::span<const store::VmRecord> records)
{
    std::vector<MacConflict> groups;
    std::unordered_map<std::string, size_t> index;  // lowercase MAC → groups[i]
    for (const auto& r : records) {
        if (r.runtime.mac.empty()) continue;
        auto [it, fresh] = index.try_emplace(lower(r.runtime.mac), groups.size());
        if (fresh) groups.push_back({it->first, {}});
        groups[it->second].names.push_back(r.name());
    }
    std::erase_if(groups, [](const MacConflict& g) { return g.names.size() < 2; });
    return groups;
}

}  // namespace vmr::net
