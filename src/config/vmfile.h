#pragma once

// VMFile.kdl: vmctl's declarative list of VMs, plus vmr's own fields (docs/vmfile.md).
// Parsing checks everything that can be checked without touching a VM and reports every
// problem at once, each with file:line:column, the offending line with a caret, and a hint.

#include "config/kdl.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmr::config {

constexpr std::string_view kVmFileName = "VMFile.kdl";

// One problem in a VMFile.
struct Diagnostic {
    std::string file;
    uint32_t line = 0;  // 0: about the file as a whole (it cannot be read)
    uint32_t column = 0;
    std::string message;
    std::string hint;
    std::string sourceLine;  // the text of `line`, shown with a caret under `column`

    // "file:line:column: message", the source line with a caret, and "hint: ...".
    std::string render() const;
};

struct Provisioner {
    enum class Kind { Shell, File };
    Kind kind = Kind::Shell;
    std::string inlineCommand;  // shell: the command, or empty
    std::string script;         // shell: absolute path of a local script, or empty
    std::string source;         // file: absolute local path
    std::string destination;    // file: absolute path in the guest
    bool operator==(const Provisioner&) const = default;
};

// One `vm` block, resolved: defaults filled in, local paths absolute. Field names follow the
// VM record (src/store/record.h).
struct VmDefinition {
    std::string name;
    std::string image;        // absolute local path; empty when imageUrl is set
    std::string imageUrl;     // http(s):// or oci:// URL; empty when image is set
    std::string imageSha256;  // 64 lowercase hex digits, or empty
    uint32_t vcpus = 1;
    uint64_t memoryMib = 1024;
    std::optional<uint64_t> diskGib;  // empty: the image's own size
    std::string network = "user";     // "user" | "tap" | "none"
    std::string bridge;               // tap only (default "br0"); empty otherwise
    struct CloudInit {
        std::string hostname;  // default: the VM's name
        std::string sshKey;    // absolute path of a public key, or empty (one is generated)
        std::string userData;  // absolute path, or empty
        bool operator==(const CloudInit&) const = default;
    };
    std::optional<CloudInit> cloudInit;
    struct Ssh {
        std::string user = "vm";
        std::string privateKey;  // absolute path, or empty (the generated key)
        bool operator==(const Ssh&) const = default;
    };
    std::optional<Ssh> ssh;
    std::vector<Provisioner> provisioners;  // in file order
    std::string backend = "qemu";           // "qemu" | "chv"
    std::string kernel;                     // absolute paths, or empty
    std::string initrd;
    std::string cmdline;
    std::string accel;  // empty (the daemon's default), "auto", "kvm" or "tcg"
    kdl::Position pos;  // of the `vm` node

    bool operator==(const VmDefinition&) const = default;
};

struct VmFile {
    std::string file;     // as given for messages
    std::string baseDir;  // relative paths are resolved against it
    std::vector<VmDefinition> vms;
    std::vector<Diagnostic> diagnostics;  // sorted by position; empty: the file is valid
    bool ok() const noexcept { return diagnostics.empty(); }
};

struct VmFileOptions {
    std::string baseDir;  // absolute: the VMFile's folder
    std::string home;     // what `~` expands to; empty: `~` is an error
    // Also check that every local file named (image, kernel, keys, scripts...) exists and
    // is readable by this process. Off for pure parsing.
    bool checkFiles = false;
};

// Parse and validate VMFile text. `fileName` is used in messages only.
VmFile parseVmFile(std::string_view text, std::string_view fileName, const VmFileOptions& options);

// Read `path` (with this process's permissions) and parse it, resolving paths against its
// folder. A file that cannot be read is one diagnostic with line 0.
VmFile loadVmFile(const std::string& path, const std::string& home, bool checkFiles);

// Every diagnostic rendered, one after the other, and a last line counting them.
std::string renderDiagnostics(const VmFile& vmfile);
// The resolved definitions as a normalised VMFile (KDL 2): defaults written out, paths
// absolute. Parsing it again gives the same definitions.
std::string renderDefinitions(const VmFile& vmfile);
// {"file", "valid", "vms": [...]} or {"file", "valid": false, "errors": [...]}.
std::string renderJson(const VmFile& vmfile);

// The pure part of `vmrctl check [--file F] [--json]`: exit code 0 when valid, 1 when not;
// `out` goes to stdout, `err` to stderr.
struct CheckReport {
    int exitCode = 0;
    std::string out;
    std::string err;
};
CheckReport checkVmFile(const std::string& path, const std::string& home, bool json);

}  // namespace vmr::config
