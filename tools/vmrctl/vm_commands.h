#pragma once

// The VM lifecycle commands of vmrctl, parsed into a JSON-RPC call. The only I/O: create reads
// the files --ssh-key and --cloud-init name, as the caller.

#include "base/result.h"

#include <string>
#include <vector>

namespace vmr::ctl {

struct Invocation {
    std::string method;
    std::string params;  // JSON object
};

// True for create, start, stop, suspend, resume, destroy.
bool isVmCommand(const std::string& command);

// args[0] is the command. A usage problem is ErrorKind::InvalidArgument with the
// message to print; the caller exits 2.
Result<Invocation> parseVmCommand(const std::vector<std::string>& args);

}  // namespace vmr::ctl
