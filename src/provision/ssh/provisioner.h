#pragma once

// Provisioners: steps run in order over one SSH session, stopping at the first that fails.
// A shell step runs inline commands; a script step uploads a local script to
// /tmp/vmr-provision-<step>.sh (mode 0755) and runs it; a file step uploads a local file with
// its mode. Output reaches the caller as it arrives and is appended to provision.log under a
// header per step, with each step's exit code. See docs/ssh.md.

#include "base/fd.h"
#include "base/result.h"
#include "provision/ssh/session.h"
#include "reactor/reactor.h"

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace vmr::provision {

struct ShellInline {
    std::string command;  // run by the user's shell; may span lines
};
struct ShellScript {
    std::string path;  // a local script file
};
struct FileUpload {
    std::string source;       // a local file
    std::string destination;  // its path on the guest; a trailing '/' keeps the source's name
};
using ProvisionStep = std::variant<ShellInline, ShellScript, FileUpload>;

// "shell inline: apt-get update", "shell script setup.sh", "file app.conf -> /etc/app.conf".
std::string describeStep(const ProvisionStep& step);
// Where a script step's script goes on the guest (steps count from 1): <dir>/vmr-provision-<step>.sh.
std::string remoteScriptPath(size_t step, std::string_view dir = "/tmp");

struct ProvisionOptions {
    // provision.log, appended to (created 0600 if missing); empty: no log.
    std::string logPath;
    // A step starts (step counts from 1).
    std::function<void(size_t step, size_t total, std::string_view description)> onStep;
    // A step's output, as it arrives.
    std::function<void(size_t step, OutputStream stream, std::string_view data)> onOutput;
    // The guest folder script steps are uploaded to. Tests whose "guest" is this host use their
    // own, so runs side by side do not overwrite each other's scripts.
    std::string remoteScriptDir = "/tmp";
    // Opens a step's local file (script or source); default openLocalFile(). vmrd opens a
    // client's files with the client's credentials here. Every file is opened before the
    // first step runs.
    std::function<Result<UniqueFd>(const std::string& path)> openLocal;
    // How long one step may run.
    Duration stepTimeout = std::chrono::hours(1);
    reactor::CancelToken* token = nullptr;
};

// Run the steps in order on `session`. A step whose command exits non-zero (or whose upload
// fails) ends the run: ProvisionFailed naming the step and its exit code, with the cause.
// Local files are opened first: a missing script or source fails before anything runs.
reactor::Task<Result<void>> runProvisioners(Session& session, std::vector<ProvisionStep> steps,
                                            ProvisionOptions opts);

}  // namespace vmr::provision
