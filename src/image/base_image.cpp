#include "image/base_image.h"

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>

namespace vmr::image {

namespace {

constexpr size_t kHeadBytes = 512;

// qcow2 header (docs/interop/qcow2.txt in QEMU): big-endian fields at fixed offsets.
constexpr size_t kQcowBackingOffset = 8;    // u64: 0 when there is no backing file
constexpr size_t kQcowClusterBits = 20;     // u32: 9 to 21
constexpr size_t kQcowSize = 24;            // u64: virtual size in bytes
constexpr size_t kQcowCrypt = 32;           // u32: 0 unencrypted, 1 AES, 2 LUKS
constexpr size_t kQcowL1Offset = 40;        // u64: cluster-aligned
constexpr size_t kQcowRefcountOffset = 48;  // u64: cluster-aligned, never 0
constexpr size_t kQcowIncompatible = 72;    // u64, version 3 only
constexpr size_t kQcowHeaderLength = 100;   // u32, version 3 only: 104 or more
constexpr size_t kQcowV3HeaderEnd = 104;    // the smallest version 3 header
constexpr size_t kQcowV2HeaderEnd = 72;
constexpr uint64_t kQcowExternalData = 1u << 2;

uint64_t be(std::string_view s, size_t at, size_t bytes)
{
    uint64_t v = 0;
    for (size_t i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
    return v;
}

struct Magic {
    std::string_view bytes;
    size_t offset;
    std::string_view name;
};

// Formats that are not raw; their names are the ones `qemu-img info` prints.
constexpr std::array<Magic, 9> kOtherFormats{{
    {"KDMV", 0, "vmdk"},
    {"# Disk DescriptorFile", 0, "vmdk"},
    {"COWD", 0, "vmdk"},
    {"vhdxfile", 0, "vhdx"},
    {"conectix", 0, "vpc"},
    {std::string_view("QED\0", 4), 0, "qed"},
    {std::string_view("LUKS\xba\xbe", 6), 0, "luks"},
    {"WithoutFreeSpace", 0, "parallels"},
    {std::string_view("\x7f\x10\xda\xbe", 4), 64, "vdi"},
}};

Error refuse(std::string_view label, const std::string& why, std::string hint)
{
    return Error(ErrorKind::InvalidArgument, "Image " + std::string(label) + " " + why, std::move(hint));
}

std::string convertHint(std::string_view label)
{
    return "Convert it to a standalone qcow2 first: qemu-img convert -O qcow2 " + std::string(label) +
           " standalone.qcow2";
}

}  // namespace

Result<BaseImage> probeBaseHeader(std::string_view head, uint64_t fileSize, std::string_view label)
{
    if (head.size() >= 4 && head.substr(0, 4) == std::string_view("QFI\xfb", 4)) {
        if (head.size() < kQcowV2HeaderEnd)
            return refuse(label, "has a truncated qcow2 header", "Check that the file is complete");
        uint64_t version = be(head, 4, 4);
        if (version != 2 && version != 3)
            return refuse(label, "is qcow2 version " + std::to_string(version) + ", which vmr does not know",
                          convertHint(label));
        if (be(head, kQcowBackingOffset, 8) != 0)
            return refuse(label, "refers to a backing file",
                          "A base image must stand alone: flatten it with qemu-img convert -O qcow2 " +
                              std::string(label) + " standalone.qcow2");
        if (be(head, kQcowCrypt, 4) != 0)
            return refuse(label, "is encrypted; vmr cannot give QEMU its key", convertHint(label));
        // What QEMU itself checks first: a header that fails these is no image QEMU can open.
        auto corrupt = [&](const std::string& what) {
            return refuse(label, "is not a valid qcow2 image: " + what,
                          "Check that the file is complete (qemu-img check " + std::string(label) + ")");
        };
        uint64_t clusterBits = be(head, kQcowClusterBits, 4);
        if (clusterBits < 9 || clusterBits > 21)
            return corrupt("cluster_bits is " + std::to_string(clusterBits) + ", not 9 to 21");
        uint64_t cluster = uint64_t{1} << clusterBits;
        uint64_t refcounts = be(head, kQcowRefcountOffset, 8);
        if (refcounts == 0 || refcounts % cluster != 0 || be(head, kQcowL1Offset, 8) % cluster != 0)
            return corrupt("its tables are not where a qcow2 header puts them");
        if (version == 3) {
            if (head.size() < kQcowV3HeaderEnd)
                return refuse(label, "has a truncated qcow2 header", "Check that the file is complete");
            uint64_t length = be(head, kQcowHeaderLength, 4);
            if (length < kQcowV3HeaderEnd || length > cluster)
                return corrupt("its header length is " + std::to_string(length));
            if ((be(head, kQcowIncompatible, 8) & kQcowExternalData) != 0)
                return refuse(label, "keeps its data in an external file", convertHint(label));
        }
        return BaseImage{"qcow2", be(head, kQcowSize, 8)};
    }
    for (const Magic& m : kOtherFormats) {
        if (head.size() >= m.offset + m.bytes.size() && head.substr(m.offset, m.bytes.size()) == m.bytes)
            return refuse(label,
                          "is a " + std::string(m.name) + " image; vmr boots qcow2 and raw images only",
                          convertHint(label));
    }
    return BaseImage{"raw", fileSize};
}

Result<BaseImage> probeBaseImage(int fd, std::string_view label)
{
    struct stat st {};
    if (::fstat(fd, &st) != 0) return Error::fromErrno(errno, "Cannot stat image " + std::string(label));
    std::string head(kHeadBytes, '\0');
    size_t got = 0;
    while (got < head.size()) {
        ssize_t n = ::pread(fd, head.data() + got, head.size() - got, static_cast<off_t>(got));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Error::fromErrno(errno, "Cannot read image " + std::string(label));
        if (n == 0) break;
        got += static_cast<size_t>(n);
    }
    head.resize(got);
    return probeBaseHeader(head, static_cast<uint64_t>(st.st_size), label);
}

}  // namespace vmr::image
