#include "vm/launch_files.h"

#include "image/base_image.h"

#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace vmr::vm {

namespace {

bool mayRead(const struct stat& st, const Credentials& who)
{
    if (who.uid == 0) return true;
    if (st.st_uid == who.uid) return (st.st_mode & S_IRUSR) != 0;
    if (who.inGroup(st.st_gid)) return (st.st_mode & S_IRGRP) != 0;
    return (st.st_mode & S_IROTH) != 0;
}

Result<LaunchFile> openOwn(const LaunchFile& f, int flags, std::string_view what)
{
    VMR_TRY_ASSIGN(UniqueFd fd, openFileAs(Credentials::self(), f.path, flags | O_NOFOLLOW, what));
    return LaunchFile(f.path, std::move(fd));
}

}  // namespace

Credentials ownerOf(const model::VmRuntime& runtime)
{
    if (!runtime.ownerUid) return Credentials::self();
    if (auto c = Credentials::ofUser(*runtime.ownerUid)) return *c;
    return Credentials{*runtime.ownerUid, runtime.ownerGid.value_or(*runtime.ownerUid), {}};
}

bool isOwnImage(const std::string& image, const std::string& imagesDir)
{
    if (imagesDir.empty() || image.size() <= imagesDir.size() + 1) return false;
    if (image.compare(0, imagesDir.size(), imagesDir) != 0 || image[imagesDir.size()] != '/') return false;
    std::string_view rest = std::string_view(image).substr(imagesDir.size() + 1);
    // Directly in it: no further folder, no "..".
    return rest.find('/') == std::string_view::npos && rest != "." && rest != "..";
}

Result<UniqueFd> readableBy(UniqueFd fd, const std::optional<Credentials>& reader, const std::string& dir,
                            const std::string& label)
{
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return Error::fromErrno(errno, "Cannot stat " + label);
    if (!reader || mayRead(st, *reader)) return fd;
    UniqueFd copy(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0400));
    if (!copy) return Error::fromErrno(errno, "Cannot make a copy of " + label + " in " + dir);
    off_t offset = 0;
    while (offset < st.st_size) {
        ssize_t n = ::sendfile(copy.get(), fd.get(), &offset, static_cast<size_t>(st.st_size - offset));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Error::fromErrno(errno, "Cannot copy " + label + " for the hypervisor");
        if (n == 0) break;
    }
    if (::fchown(copy.get(), reader->uid, reader->gid) != 0)
        return Error::fromErrno(
            errno, "Cannot give the copy of " + label + " to uid " + std::to_string(reader->uid));
    return copy;
}

Result<void> openLaunchFiles(Launch& l, const FileRights& rights, bool biosIsOwners)
{
    if (!l.base.empty()) {
        bool own = isOwnImage(l.base.path, rights.imagesDir);
        const Credentials& who = own ? Credentials::self() : rights.owner;
        VMR_TRY_ASSIGN(UniqueFd fd, openFileAs(who, l.base.path, O_RDONLY | (own ? O_NOFOLLOW : 0), "image"));
        VMR_TRY_ASSIGN(image::BaseImage probed, image::probeBaseImage(fd.get(), l.base.path));
        l.baseFormat = probed.format;
        l.base = LaunchFile(l.base.path, std::move(fd));
    }
    if (!l.overlay.empty()) {
        VMR_TRY_ASSIGN(l.overlay, openOwn(l.overlay, O_RDWR, "disk"));
    }
    if (!l.seedIso.empty()) {
        VMR_TRY_ASSIGN(l.seedIso, openOwn(l.seedIso, O_RDONLY, "seed"));
    }
    if (!l.uefiCode.empty()) {
        // The system's OVMF: a symlink into /usr/share is how Debian installs it.
        VMR_TRY_ASSIGN(UniqueFd code,
                       openFileAs(Credentials::self(), l.uefiCode.path, O_RDONLY, "UEFI firmware"));
        l.uefiCode = LaunchFile(l.uefiCode.path, std::move(code));
    }
    if (!l.uefiVars.empty()) {
        VMR_TRY_ASSIGN(l.uefiVars, openOwn(l.uefiVars, O_RDWR, "UEFI variable store"));
    }

    // Read by name through /proc/self/fd: readable by the hypervisor's user, or copied.
    struct Named {
        LaunchFile* file;
        bool owners;
        std::string_view what;
    };
    for (Named n : {Named{&l.kernel, true, "kernel"}, Named{&l.initrd, true, "initrd"},
                    Named{&l.bios, biosIsOwners, "firmware"}}) {
        if (n.file->empty()) continue;
        const Credentials& who = n.owners ? rights.owner : Credentials::self();
        VMR_TRY_ASSIGN(UniqueFd fd, openFileAs(who, n.file->path, O_RDONLY, n.what));
        VMR_TRY_ASSIGN(fd, readableBy(std::move(fd), rights.hypervisor, rights.vmDir, n.file->path));
        *n.file = LaunchFile(n.file->path, std::move(fd));
    }
    return success();
}

void Launch::releaseFiles()
{
    for (LaunchFile* f : {&base, &overlay, &seedIso, &kernel, &initrd, &bios, &uefiCode, &uefiVars})
        f->fd.reset();
}

}  // namespace vmr::vm
