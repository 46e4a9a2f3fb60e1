#pragma once

// `vmrctl provision` (runs a VM's provisioning steps in vmrd, streaming their output) and
// `vmrctl ssh` (checks the guest answers, then execs the system ssh with the VM's port, key,
// user and pinned host key).

#include "base/result.h"
#include "client.h"

#include <functional>
#include <string>
#include <vector>

namespace vmr::ctl {

// args[0] is "provision": NAME [--shell CMD]... [--script FILE]... [--file SRC:DST]...
// (steps given here replace the VM's own). Returns the exit code.
using ReportFn = std::function<int(const Error&)>;  // prints an error, returns the exit code
int runProvision(Client& client, const std::vector<std::string>& args, bool json, const ReportFn& report);

// The vm.provision params for args[0] == "provision"; local paths made absolute.
Result<std::string> provisionParams(const std::vector<std::string>& args);

struct SshTarget {
    std::string name;
    std::string user;                  // --user, else the VM's
    std::string key;                   // --key, else the VM's generated key
    std::vector<std::string> command;  // after `--`
};
Result<SshTarget> parseSsh(const std::vector<std::string>& args);

// The argv of the system ssh for a VM's status (JSON of vm.status) and the known_hosts file
// that pins its host key (empty: none known yet, the first key seen is accepted and kept).
// What vmrd sent is checked before it goes on ssh's command line: a VM id of letters, digits,
// `-` and `_`, a port number, a user name that cannot pass for an option.
Result<std::vector<std::string>> sshArgv(const SshTarget& t, const std::string& statusJson,
                                         const std::string& knownHostsFile);

// The known_hosts file of VM `id` in `dir` (vmrctl's runtime folder, checked by the caller):
// "<dir>/known_hosts-<id>", holding the line "vmr-<id> <hostKey>" when vmrd pinned a key (it is
// replaced, never followed, and is 0600), left as it is when none is pinned yet. An id or a key
// that could break out of the file name or the line is InvalidArgument.
Result<std::string> pinHostKey(const std::string& dir, const std::string& id, const std::string& hostKey);

// Wait until 127.0.0.1:port greets with "SSH-" (the guest's sshd is up), then exec ssh.
// Returns only on failure (exit code).
int runSsh(Client& client, const std::vector<std::string>& args, const ReportFn& report);

}  // namespace vmr::ctl
