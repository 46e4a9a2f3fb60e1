#pragma once

// VMFile.kdl: vmctl's declarative list of VMs, plus vmr's own fields (docs/vmfile.md).
// Parsing checks everything that can be checked without touching a VM and reports every
// problem at once, each with file:line:column, the offending line with a caret, and a hint.

#include "config/kdl.h"
#include "model/spec.h"

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

// One `vm` block, resolved: defaults filled in, local paths absolute, every value checked as
// vm.create checks it (model/spec.h). The files the VMFile names for the client's side (a public
// key and user-data to read, a private key to log in with) are kept as paths: vmrctl reads them
// as the caller.
struct VmDefinition {
    model::VmSpec spec;
    std::string sshKeyFile;     // cloud-init ssh-key: a public key file, or empty (one is generated)
    std::string userDataFile;   // cloud-init user-data: a file, or empty
    std::string privateKey;     // ssh private-key: for `vmrctl ssh`, or empty (the generated key)
    bool hasCloudInit = false;  // a cloud-init block was given
    bool hasSsh = false;        // an ssh block was given
    kdl::Position pos;          // of the `vm` node

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
