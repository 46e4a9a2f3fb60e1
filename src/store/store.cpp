#include "store/store.h"

#include "base/crash_point.h"
#include "base/fd.h"
#include "base/files.h"
#include "model/names.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <memory>

namespace vmr::store {

namespace {

constexpr std::string_view kRecordFile = "vm.json";
constexpr size_t kMaxRecordBytes = 1 << 20;

struct DirCloser {
    void operator()(DIR* d) const { ::closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

// Takes ownership of `fd`.
Result<DirPtr> openDirFd(int fd, const std::string& path)
{
    DIR* d = ::fdopendir(fd);
    if (!d) {
        int err = errno;
        ::close(fd);
        return Error::fromErrno(err, "Cannot list " + path);
    }
    return DirPtr(d);
}

std::vector<std::string> listNames(DIR* d)
{
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
        std::string_view n = e->d_name;
        if (n == "." || n == "..") continue;
        names.emplace_back(n);
    }
    std::sort(names.begin(), names.end());
    return names;
}

// Remove `name` (in directory `parentFd`) and everything under it, never following symlinks.
Result<void> removeTree(int parentFd, const std::string& name, const std::string& path)
{
    int fd = ::openat(parentFd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return Error::fromErrno(errno, "Cannot open " + path);
    auto dir = openDirFd(fd, path);
    if (!dir) return std::move(dir).error();
    int dfd = ::dirfd(dir->get());
    for (const auto& entry : listNames(dir->get())) {
        struct stat st {};
        std::string entryPath = path + "/" + entry;
        if (::fstatat(dfd, entry.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT) continue;
            return Error::fromErrno(errno, "Cannot stat " + entryPath);
        }
        if (S_ISDIR(st.st_mode)) {
            VMR_TRY(removeTree(dfd, entry, entryPath));
        } else if (::unlinkat(dfd, entry.c_str(), 0) != 0 && errno != ENOENT) {
            return Error::fromErrno(errno, "Cannot delete " + entryPath);
        }
    }
    dir->reset();
    if (::unlinkat(parentFd, name.c_str(), AT_REMOVEDIR) != 0)
        return Error::fromErrno(errno, "Cannot delete " + path);
    return success();
}

void syncDir(int dirFd)
{
    // Best effort: the scan's repairs are reported either way.
    (void)::fsync(dirFd);
}

// Move a bad record aside as vm.json.corrupt-<time>[-N]; returns the new path.
Result<std::string> keepAside(int vmDirFd, const std::string& vmDir)
{
    const std::string base = corruptName(kRecordFile, static_cast<int64_t>(::time(nullptr)));
    for (int n = 0; n < 1000; ++n) {
        std::string name = n == 0 ? base : base + "-" + std::to_string(n);
        if (::renameat2(vmDirFd, std::string(kRecordFile).c_str(), vmDirFd, name.c_str(), RENAME_NOREPLACE) ==
            0) {
            syncDir(vmDirFd);
            return vmDir + "/" + name;
        }
        if (errno != EEXIST) return Error::fromErrno(errno, "Cannot move " + vmDir + "/vm.json aside");
    }
    return Error(ErrorKind::System, "Cannot move " + vmDir + "/vm.json aside: too many corrupt copies");
}

}  // namespace

std::string corruptName(std::string_view file, int64_t unixSeconds)
{
    time_t t = static_cast<time_t>(unixSeconds);
    struct tm tm {};
    ::gmtime_r(&t, &tm);
    char buf[32];
    size_t n = ::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
    std::string out(file);
    out += ".corrupt-";
    out.append(buf, n);
    return out;
}

Result<Store> Store::open(const Layout& layout)
{
    VMR_TRY(layout.ensureDirs());
    return Store(layout);
}

Result<Store::ScanReport> Store::scan() const
{
    ScanReport report;
    const std::string vmsDir = layout_.vmsDir();
    int fd = ::open(vmsDir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Error::fromErrno(errno, "Cannot open " + vmsDir);
    auto dir = openDirFd(fd, vmsDir);
    if (!dir) return std::move(dir).error();
    const int vmsFd = ::dirfd(dir->get());

    for (const auto& name : listNames(dir->get())) {
        const std::string vmDir = vmsDir + "/" + name;
        auto problem = [&](std::string path, std::string message, std::string keptAs = {}) {
            report.problems.push_back(Problem{std::move(path), std::move(message), std::move(keptAs)});
        };
        struct stat st {};
        if (::fstatat(vmsFd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
            problem(vmDir, Error::fromErrno(errno, "Cannot stat the entry").what());
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            problem(vmDir, "Not a VM folder; left as it is");
            continue;
        }
        // Half-done work of a vmrd that stopped: a create that never committed is rolled back,
        // a destroy that had begun deleting is finished.
        bool staging = name.rfind(Layout::kStagingPrefix, 0) == 0;
        if (staging || name.rfind(Layout::kGonePrefix, 0) == 0) {
            auto removed = removeTree(vmsFd, name, vmDir);
            syncDir(vmsFd);
            std::string what =
                staging ? "the folder of a create that did not finish" : "the rest of a destroyed VM";
            problem(vmDir,
                    removed ? "Removed " + what : "Cannot remove " + what + ": " + removed.error().what());
            continue;
        }
        if (auto ok = model::validateVmName(name); !ok) {
            problem(vmDir, "The folder name is not a valid VM name; left as it is");
            continue;
        }
        int vfd = ::openat(vmsFd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (vfd < 0) {
            problem(vmDir, Error::fromErrno(errno, "Cannot open the VM folder").what());
            continue;
        }
        auto vmDirStream = openDirFd(vfd, vmDir);
        if (!vmDirStream) {
            problem(vmDir, vmDirStream.error().what());
            continue;
        }
        const int vmFd = ::dirfd(vmDirStream->get());

        bool hasRecord = false;
        for (const auto& entry : listNames(vmDirStream->get())) {
            if (entry == kRecordFile) {
                hasRecord = true;
            } else if (isAtomicTempName(entry, kRecordFile)) {
                if (::unlinkat(vmFd, entry.c_str(), 0) == 0) {
                    syncDir(vmFd);
                    problem(vmDir + "/" + entry, "Removed the temp file of an interrupted write");
                } else {
                    problem(vmDir + "/" + entry,
                            Error::fromErrno(errno, "Cannot remove the temp file of an interrupted write")
                                .what());
                }
            }
        }
        const std::string recordPath = vmDir + "/" + std::string(kRecordFile);
        if (!hasRecord) {
            problem(recordPath, "The VM folder has no vm.json; the VM is not loaded");
            report.broken.push_back({name, "its folder has no vm.json"});
            continue;
        }

        Result<VmRecord> record = [&]() -> Result<VmRecord> {
            auto text = readFile(recordPath, kMaxRecordBytes);
            if (!text) return std::move(text).error();
            auto r = recordFromJson(*text);
            if (!r) return r;
            if (r->name() != name)
                return Error(ErrorKind::StoreCorrupt,
                             "The record names VM \"" + r->name() + "\" but is in folder \"" + name + "\"");
            return r;
        }();
        if (record) {
            report.records.push_back(std::move(record).value());
            continue;
        }
        std::string why = record.error().what();
        auto kept = keepAside(vmFd, vmDir);
        if (kept) {
            problem(recordPath, "Bad record, moved aside: " + why, *kept);
            report.broken.push_back({name, "its record could not be read (" + why + "), kept as " + *kept});
        } else {
            problem(recordPath, "Bad record: " + why + "; and: " + kept.error().what());
            report.broken.push_back({name, "its record could not be read (" + why + ")"});
        }
    }
    return report;
}

Result<void> Store::save(const VmRecord& record, Durability durability) const
{
    VMR_TRY(model::validateVmName(record.name()));
    std::string text = toJson(record);
    if (auto check = recordFromJson(text); !check)
        return Error(ErrorKind::InvalidArgument, "Cannot save VM " + record.name() + ": invalid record")
            .causedBy(std::move(check).error());
    VMR_TRY(layout_.ensureVmDir(record.name()));
    return writeFileAtomic(layout_.recordPath(record.name()), text, Layout::kRecordMode, durability);
}

Result<std::string> Store::stage(const VmRecord& record) const
{
    VMR_TRY(model::validateVmName(record.name()));
    std::string dir = layout_.stagingDir(record.name(), record.runtime.id);
    discard(record);  // a leftover of the same name and id: nothing of it is wanted
    if (::mkdir(dir.c_str(), Layout::kVmDirMode) != 0) return Error::fromErrno(errno, "Cannot create " + dir);
    if (::chmod(dir.c_str(), Layout::kVmDirMode) != 0)
        return Error::fromErrno(errno, "Cannot set the mode of " + dir);
    return dir;
}

Result<void> Store::commit(const VmRecord& record) const
{
    const std::string& name = record.name();
    std::string text = toJson(record);
    if (auto check = recordFromJson(text); !check)
        return Error(ErrorKind::InvalidArgument, "Cannot save VM " + name + ": invalid record")
            .causedBy(std::move(check).error());
    std::string staging = layout_.stagingDir(name, record.runtime.id);
    VMR_TRY(writeFileAtomic(staging + "/" + std::string(kRecordFile), text, Layout::kRecordMode,
                            Durability::Disk));
    UniqueFd vmsFd(::open(layout_.vmsDir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!vmsFd) return Error::fromErrno(errno, "Cannot open " + layout_.vmsDir());
    std::string from = staging.substr(layout_.vmsDir().size() + 1);
    if (::renameat2(vmsFd.get(), from.c_str(), vmsFd.get(), name.c_str(), RENAME_NOREPLACE) != 0) {
        if (errno == EEXIST)
            return Error(ErrorKind::VmExists, "VM \"" + name + "\" already exists",
                         "Choose another name, or run `vmrctl destroy " + name + "` first");
        return Error::fromErrno(errno, "Cannot move " + staging + " to " + layout_.vmDir(name));
    }
    if (::fsync(vmsFd.get()) != 0) return Error::fromErrno(errno, "Cannot sync " + layout_.vmsDir());
    return success();
}

void Store::discard(const VmRecord& record) const
{
    UniqueFd vmsFd(::open(layout_.vmsDir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    std::string dir = layout_.stagingDir(record.name(), record.runtime.id);
    std::string entry = dir.substr(layout_.vmsDir().size() + 1);
    struct stat st {};
    if (!vmsFd || ::fstatat(vmsFd.get(), entry.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISDIR(st.st_mode))
        return;
    (void)removeTree(vmsFd.get(), entry, dir);
}

Result<VmRecord> Store::load(std::string_view name) const
{
    VMR_TRY(model::validateVmName(name));
    const std::string path = layout_.recordPath(name);
    auto text = readFile(path, kMaxRecordBytes);
    if (!text) {
        if (text.error().sysErrno() == ENOENT)
            return Error(ErrorKind::VmNotFound, "No VM named " + std::string(name),
                         "Run `vmrctl list` to see VMs");
        return std::move(text).error();
    }
    auto r = recordFromJson(*text);
    if (!r) return Error(ErrorKind::StoreCorrupt, "Bad record " + path).causedBy(std::move(r).error());
    if (r->name() != name)
        return Error(ErrorKind::StoreCorrupt, "Bad record " + path + ": it names VM \"" + r->name() + "\"");
    return r;
}

Result<void> Store::remove(std::string_view name) const
{
    VMR_TRY(model::validateVmName(name));
    const std::string vmsDir = layout_.vmsDir();
    UniqueFd vmsFd(::open(vmsDir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!vmsFd) return Error::fromErrno(errno, "Cannot open " + vmsDir);
    const std::string n(name);
    struct stat st {};
    if (::fstatat(vmsFd.get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT)
            return Error(ErrorKind::VmNotFound, "No VM named " + n, "Run `vmrctl list` to see VMs");
        return Error::fromErrno(errno, "Cannot stat " + layout_.vmDir(n));
    }
    if (!S_ISDIR(st.st_mode))
        return Error(ErrorKind::PermissionDenied, "Refusing to delete " + layout_.vmDir(n) +
                                                      ": it is not a folder (a symlink could lead "
                                                      "outside the state directory)");
    // Renamed first: from here the name is free, and what a crash leaves is a .gone- folder
    // that the next scan deletes.
    std::string gone;
    for (int i = 0;; ++i) {
        gone = std::string(Layout::kGonePrefix) + n + "-" + std::to_string(i);
        if (::renameat2(vmsFd.get(), n.c_str(), vmsFd.get(), gone.c_str(), RENAME_NOREPLACE) == 0) break;
        if (errno != EEXIST || i == 1000)
            return Error::fromErrno(errno, "Cannot move " + layout_.vmDir(n) + " aside");
    }
    syncDir(vmsFd.get());
    VMR_CRASH_POINT("destroy.after_rename");
    VMR_TRY(removeTree(vmsFd.get(), gone, layout_.vmsDir() + "/" + gone));
    syncDir(vmsFd.get());
    return success();
}

bool Store::exists(std::string_view name) const
{
    if (!model::validateVmName(name)) return false;
    struct stat st {};
    return ::lstat(layout_.vmDir(name).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace vmr::store
