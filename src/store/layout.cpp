#include "store/layout.h"

namespace vmr::store {

namespace {

std::string trimSlashes(std::string p)
{
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    return p;
}

}  // namespace

Layout::Layout(const config::Settings& settings)
    : mode_(settings.mode),
      stateDir_(trimSlashes(settings.stateDir)),
      runtimeDir_(trimSlashes(settings.runtimeDir))
{
}

std::string Layout::vmDir(std::string_view name) const
{
    std::string p = vmsDir();
    p += '/';
    p += name;
    return p;
}

std::string Layout::stagingDir(std::string_view name, std::string_view id) const
{
    return vmsDir() + "/" + std::string(kStagingPrefix) + std::string(name) + "-" + std::string(id);
}

std::string Layout::runtimeSocket(std::string_view id, std::string_view kind) const
{
    std::string p = runtimeVmsDir();
    p += '/';
    p += id;
    p += '.';
    p += kind;
    return p;
}

mode_t Layout::stateDirMode() const noexcept
{
    // vmrd's alone in both modes: clients reach VMs through the socket, and the hypervisor
    // user is handed its files as descriptors (docs/security.md).
    return 0700;
}

mode_t Layout::runtimeDirMode() const noexcept
{
    return mode_ == config::Mode::System ? 0755 : 0700;
}

Result<void> Layout::ensureDirs() const
{
    VMR_TRY(makeDirs(stateDir_, stateDirMode()));
    VMR_TRY(makeDirs(vmsDir(), stateDirMode()));
    VMR_TRY(makeDirs(imagesDir(), stateDirMode()));
    // Sockets live there: a folder someone else made, or can write in, is refused.
    if (auto own = ensureOwnDir(runtimeDir_, runtimeDirMode()); !own) {
        Error e = std::move(own).error();
        if (e.kind() == ErrorKind::PermissionDenied)
            e.withHint(e.hint().empty() ? "Set runtime_dir in vmrd.toml"
                                        : e.hint() + ", or set runtime_dir in vmrd.toml");
        return e;
    }
    VMR_TRY(makeDirs(runtimeVmsDir(), 0700));
    return success();
}

Result<void> Layout::ensureVmDir(std::string_view name) const
{
    // Missing folders get exactly kVmDirMode (the VMs folder itself exists: ensureDirs).
    return makeDirs(vmDir(name), kVmDirMode);
}

}  // namespace vmr::store
