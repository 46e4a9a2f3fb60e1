#pragma once

// The one VM specification (docs/architecture.md): what a VM is, as a user asked for it.
// VMFiles, vm.create params, templates and the record's "spec" object all decode into VmSpec;
// the QEMU command line and cloud-hypervisor's VmConfig are built from it. Every field has one
// entry in the field table (wire name, VMFile name, type, limits), and every value passes the
// same check whichever way it came in.

#include "base/result.h"
#include "model/vocab.h"

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vmr::json {
class Writer;
}

namespace vmr::model {

// The limits, once.
inline constexpr uint32_t kMinVcpus = 1;
inline constexpr uint32_t kMaxVcpus = 256;     // QEMU's q35 without an IOMMU
inline constexpr uint32_t kMaxChvVcpus = 254;  // cloud-hypervisor on x86_64
inline constexpr uint64_t kMinMemoryMib = 16;
inline constexpr uint64_t kMaxMemoryMib = uint64_t(1) << 22;  // 4 TiB
inline constexpr uint64_t kMinDiskGib = 1;
inline constexpr uint64_t kMaxDiskGib = uint64_t(1) << 16;  // 64 TiB
inline constexpr size_t kMaxUserDataBytes = 1 << 20;
inline constexpr size_t kMaxAuthorizedKeys = 64;
inline constexpr size_t kMaxProvisionSteps = 256;
inline constexpr size_t kMaxTextBytes = 4096;  // a path, a command line, a key line
inline constexpr std::string_view kDefaultSshUser = "vm";
inline constexpr std::string_view kDefaultBridge = "br0";

struct Firmware {
    FirmwareKind kind = FirmwareKind::Bios;
    std::string file;  // FirmwareKind::File: an absolute path
    bool operator==(const Firmware&) const = default;
};

struct Network {
    NetMode mode = NetMode::User;
    std::string bridge;  // tap: the host bridge (default "br0"); empty otherwise
    bool operator==(const Network&) const = default;
};

struct CloudInit {
    std::string user;                         // the login user; empty: kDefaultSshUser
    std::vector<std::string> authorizedKeys;  // OpenSSH public key lines
    std::optional<std::string> userData;      // raw user-data instead of the generated one
    std::string hostname;                     // empty: made from the VM's name
    bool operator==(const CloudInit&) const = default;
};

struct ProvisionStep {
    enum class Kind { Shell, File };
    Kind kind = Kind::Shell;
    std::string inlineCommand;  // shell: the command, or empty
    std::string script;         // shell: absolute path of a local script, or empty
    std::string source;         // file: absolute local path
    std::string destination;    // file: absolute path in the guest
    bool operator==(const ProvisionStep&) const = default;
    std::string describe() const;  // "shell: apt-get update", "file: a -> /b"
};

struct VmSpec {
    std::string name;
    Backend backend = Backend::Qemu;
    std::string image;        // an absolute path, or the name of an image in the cache
    std::string imageUrl;     // where the image is (or was) downloaded from
    std::string imageSha256;  // the download's expected SHA-256, lowercase
    uint32_t vcpus = 1;
    uint64_t memoryMib = 1024;
    std::optional<uint64_t> diskGib;  // empty: the image's own size
    Network network;
    std::string kernel;  // direct kernel boot: absolute paths, or empty
    std::string initrd;
    std::string cmdline;
    std::optional<AccelChoice> accel;  // empty: vmrd.toml's qemu.accel
    Firmware firmware;
    bool vnc = false;  // a VNC server on 127.0.0.1
    CloudInit cloudInit;
    std::vector<ProvisionStep> provision;
    std::string vmfile;  // the VMFile the VM came from, and that file's SHA-256
    std::string vmfileSha256;

    bool operator==(const VmSpec&) const = default;
};

// ---- The field table ----

enum class Field {
    Name,
    Backend,
    Image,
    ImageUrl,
    ImageSha256,
    Vcpus,
    MemoryMib,
    DiskGib,
    Network,
    Bridge,
    Kernel,
    Initrd,
    Cmdline,
    Accel,
    Firmware,
    Vnc,
    SshUser,
    AuthorizedKeys,
    UserData,
    Hostname,
    Provision,
    Vmfile,
    VmfileSha256,
};

enum class FieldType { Text, Integer, Boolean, Word, Path, List };

struct FieldInfo {
    Field id;
    std::string_view wire;  // the JSON name: RPC params, the record, vm.status
    std::string_view kdl;   // the VMFile node, dotted inside blocks ("ssh.user"); "" when none
    FieldType type;
    uint64_t min = 0;  // Integer: the range
    uint64_t max = 0;
    std::string_view unit;     // "MiB", "GiB"
    std::string_view summary;  // one line, for docs and schemas
};

std::span<const FieldInfo> fields() noexcept;
const FieldInfo& fieldInfo(Field f) noexcept;

// One value of one field, checked the same way whichever way it came in. The error's message
// is the problem without the field's name ("must be a whole number from 1 to 256, not 300"):
// callers say which field, in their own words (a VMFile line, a parameter name).
Result<uint64_t> checkInteger(Field f, int64_t value);
// Text, Word and Path fields: words must be known, paths absolute (or a cache name for Image),
// names and hashes well-formed. Returns the value as stored (a SHA-256 lowercased).
Result<std::string> checkText(Field f, std::string_view value);

// What is wrong with a spec as a whole, field by field (all problems, in field order):
// initrd/cmdline without kernel, user-data together with keys or a user, what a backend cannot
// do (cloud-hypervisor: no user network, a firmware file or a kernel, at most 254 vCPUs), a
// bridge on a mode other than tap. A request also needs exactly one image source
// (`request`), which a stored spec does not (it keeps the URL its image came from).
struct Problem {
    Field field;
    std::string message;  // a whole sentence
    std::string hint;
    ErrorKind kind = ErrorKind::InvalidParams;  // Unsupported: what a backend cannot do
};
std::vector<Problem> validate(const VmSpec& spec, bool request);
// The first problem as an error of its kind, or success.
Result<void> checkSpec(const VmSpec& spec, bool request);

// ---- JSON ----

struct WriteOptions {
    bool includeUserData = true;  // false in replies: user-data may hold secrets
};
// The spec's members (without the braces' owner: call inside beginObject/endObject).
void writeSpecFields(json::Writer& w, const VmSpec& spec, const WriteOptions& opts = {});
std::string specToJson(const VmSpec& spec);

struct ReadOptions {
    ErrorKind kind = ErrorKind::InvalidParams;  // StoreCorrupt when reading a record
    // Members that belong to the caller (vm.create's "start", "template"...): skipped.
    std::span<const std::string_view> alsoAllowed;
    // Unknown members: refused with a did-you-mean (requests), or kept in `unknown` (records,
    // which a newer vmrd may have written).
    std::map<std::string, std::string>* unknown = nullptr;
    bool requireName = true;
};
// A JSON object of spec members. Absent members keep their defaults; null counts as absent.
Result<VmSpec> specFromJson(std::string_view json, const ReadOptions& opts = {});

std::string_view firmwareWord(const Firmware& f);  // "bios", "uefi" or the file
Result<Firmware> parseFirmware(std::string_view text);

}  // namespace vmr::model
