#include "store/layout.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

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
    return mode_ == config::Mode::System ? 0755 : 0700;
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
    VMR_TRY(makeDirs(runtimeDir_, runtimeDirMode()));

    struct stat st {};
    if (::lstat(runtimeDir_.c_str(), &st) != 0) return Error::fromErrno(errno, "Cannot stat " + runtimeDir_);
    if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid())
        return Error(ErrorKind::PermissionDenied,
                     "Cannot use runtime directory " + runtimeDir_ + ": it is not a directory owned by uid " +
                         std::to_string(::geteuid()),
                     "Remove it, or set runtime_dir in vmrd.toml");
    VMR_TRY(makeDirs(runtimeVmsDir(), 0700));
    return success();
}

Result<void> Layout::ensureVmDir(std::string_view name) const
{
    // Missing folders get exactly kVmDirMode (the VMs folder itself exists: ensureDirs).
    return makeDirs(vmDir(name), kVmDirMode);
}

}  // namespace vmr::store
