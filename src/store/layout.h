#pragma once

// Every path vmrd uses on disk, computed from the settings (DESIGN.md, "State on disk"):
//   <state>/vms/<name>/vm.json   <state>/images/   <runtime>/vms/<id>.<kind>

#include "base/files.h"
#include "base/result.h"
#include "config/settings.h"

#include <sys/types.h>

#include <string>
#include <string_view>

namespace vmr::store {

class Layout {
public:
    explicit Layout(const config::Settings& settings);

    config::Mode mode() const noexcept { return mode_; }
    const std::string& stateDir() const noexcept { return stateDir_; }
    const std::string& runtimeDir() const noexcept { return runtimeDir_; }

    std::string vmsDir() const { return stateDir_ + "/vms"; }
    std::string imagesDir() const { return stateDir_ + "/images"; }
    std::string runtimeVmsDir() const { return runtimeDir_ + "/vms"; }

    // The name must have passed validateVmName.
    std::string vmDir(std::string_view name) const;
    std::string recordPath(std::string_view name) const { return vmDir(name) + "/vm.json"; }
    // Where a new VM's folder is built before it appears under its name (Store::commit):
    // <state>/vms/.new-<name>-<id>. No VM name starts with '.', so it is never taken for a VM.
    std::string stagingDir(std::string_view name, std::string_view id) const;
    static constexpr std::string_view kStagingPrefix = ".new-";
    // What a destroyed VM's folder is renamed to before it is deleted: .gone-<name>-<n>.
    static constexpr std::string_view kGonePrefix = ".gone-";
    // <runtime>/vms/<id>.<kind>, kind being "qmp", "api" or "serial".
    std::string runtimeSocket(std::string_view id, std::string_view kind) const;

    // Modes: the state dir (and vms/, images/) 0700;
    // each VM's folder 0700; the runtime dir 0755 / 0700; <runtime>/vms 0700.
    mode_t stateDirMode() const noexcept;
    mode_t runtimeDirMode() const noexcept;
    static constexpr mode_t kVmDirMode = 0700;
    static constexpr mode_t kRecordMode = 0600;

    // Create the state and runtime directories (with missing parents) at their modes.
    // Directories that exist keep their mode, but the runtime dir must be a real directory
    // owned by this user (it may live in /tmp, where anyone could have made it first).
    Result<void> ensureDirs() const;
    // Create <state>/vms/<name> (0700) if it does not exist.
    Result<void> ensureVmDir(std::string_view name) const;

private:
    config::Mode mode_;
    std::string stateDir_;
    std::string runtimeDir_;
};

}  // namespace vmr::store
