#pragma once

// vmrctl up | down | reload | provision-from-the-VMFile: vmrctl reads and checks the VMFile as
// the caller (docs/vmfile.md), reads the files it names (public key, user-data), and sends the
// resolved definitions to vmrd (vmfile.up, vmfile.down, vmfile.provision), which does the work
// and streams its progress; the output is prefixed by VM name ("web | started").

#include "base/result.h"
#include "client.h"
#include "config/vmfile.h"

#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmr::ctl {

struct VmfileInvocation {
    std::string command;             // up, down, reload, provision
    std::string file;                // --file, else ./VMFile.kdl
    bool fileGiven = false;          // --file: used as given (checkFoundVmfile otherwise)
    std::vector<std::string> names;  // --name (repeatable); empty: every VM of the file
    bool provision = true;           // up, reload: --no-provision clears it
    bool destroy = false;            // down --destroy
    bool force = false;              // down --force
};

// True for up, down, reload.
bool isVmfileCommand(const std::string& command);

// args[0] is the command. `provision` is a VMFile command only without a VM name (it takes
// --file and --name); with a name it is vmrctl's per-VM provision (ssh_commands.h), and this
// returns nullopt. A usage problem is InvalidArgument with the message to print; exit 2.
Result<std::optional<VmfileInvocation>> parseVmfileCommand(const std::vector<std::string>& args);

// A VMFile read and checked as the caller.
struct LoadedVmfile {
    std::string path;                       // absolute
    std::string sha256;                     // of its content, lowercase hex
    std::vector<config::VmDefinition> vms;  // in file order, filtered by `names`
};

// A VMFile vmrctl found by itself (./VMFile.kdl, no --file) is used only when it is the
// caller's or root's and not writable by every user: a VMFile makes vmrctl read files as the
// caller and hand them to VMs, so one planted in a shared folder must not be picked up.
// PermissionDenied saying why, with a hint to name it with --file; a missing file passes (reading
// it reports that).
Result<void> checkFoundVmfile(const std::string& file);

// Read `file` and check it (with checkFiles, also the files it names, with the caller's
// permissions); keep the VMs named in `names` (all when empty; an unknown name is an error
// listing the file's VMs). An invalid file is InvalidArgument whose message is every
// diagnostic rendered.
Result<LoadedVmfile> loadVmfile(const std::string& file, const std::string& home, bool checkFiles,
                                const std::vector<std::string>& names);

// The SHA-256 of `data`, lowercase hex.
std::string sha256Hex(std::string_view data);

// vm.create's params for one definition: the public key file read into one line, user-data
// read into text, the provisioners as steps, the VMFile's path and hash.
Result<std::string> createParamsJson(const config::VmDefinition& vm, const std::string& vmfile,
                                     const std::string& sha256);

// The params of the call an invocation makes: vmfile.up {file, sha256, vms, provision},
// vmfile.down {file, names, destroy, force}, vmfile.provision {file, sha256, vms}.
Result<std::string> upParams(const LoadedVmfile& f, bool provision);
std::string downParams(const LoadedVmfile& f, bool destroy, bool force);
Result<std::string> vmfileProvisionParams(const LoadedVmfile& f);

// The one VM a VMFile defines, for `vmrctl ssh` / `vmrctl provision` without a name; an error
// naming them when there are several (or when the file cannot be read, or checkFoundVmfile
// refuses it).
Result<std::string> soleVmName(const std::string& file, const std::string& home);

// Output lines prefixed by VM name, padded to the longest name ("web | ...", "db  | ...").
// Streams are cut into lines per VM and stream, so that concurrent output stays readable.
class PrefixedOutput {
public:
    explicit PrefixedOutput(const std::vector<std::string>& names);
    std::string prefix(std::string_view vm) const;
    // Complete lines of `data` (for vm and stream), each prefixed; the rest is kept for later.
    std::string feed(std::string_view vm, bool stderrStream, std::string_view data);
    // Whatever is left without its newline, prefixed and ended with one (at the end of a call).
    std::string flush(std::string_view vm, bool stderrStream);
    std::vector<std::pair<std::string, bool>> pending() const;  // (vm, stderr) with kept text

private:
    size_t width_ = 0;
    std::map<std::pair<std::string, bool>, std::string> partial_;
};

// One notification of a vmfile.* call as text to print: to stdout (first) or stderr (second).
// image.progress is reported per URL on every 10% (or 100 MiB without a known size).
class VmfileDisplay {
public:
    // urls: image URL → the VMs pulling it.
    VmfileDisplay(const std::vector<std::string>& names,
                  std::map<std::string, std::vector<std::string>> urls);
    std::pair<std::string, std::string> render(const rpc::Notification& n);
    std::pair<std::string, std::string> finish();  // partial lines left

private:
    PrefixedOutput out_;
    std::map<std::string, std::vector<std::string>> urls_;
    std::map<std::string, uint64_t> lastStep_;  // url → last reported tenth (or 100 MiB step)
};

// Whether a VM's VMFile changed since it was created, from vm.status's JSON: the status with
// "vmfile_changed" added (true, false, or null when the file cannot be read now); unchanged
// when the VM did not come from a VMFile.
std::string withVmfileChanged(const std::string& statusJson);

// Run the invocation against vmrd; `json` prints notifications and the result as JSON lines.
// Returns vmrctl's exit code (0 ok, 1 vmrd's error or a bad VMFile, 3 vmrd unreachable).
int runVmfileCommand(Client& client, const VmfileInvocation& inv, bool json);

}  // namespace vmr::ctl
