#include "vm/manager.h"

#include "base/crash_point.h"
#include "base/files.h"
#include "base/proc.h"
#include "image/base_image.h"
#include "image/qemu_img.h"
#include "model/names.h"
#include "net/mac.h"
#include "net/mode.h"
#include "vm/firmware.h"
#include "vm/launch_files.h"
#include "vm/logger.h"
#include "vm/process.h"
#include "vm/provisioning.h"

#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <filesystem>
#include <set>

namespace vmr::vm {

using model::VmState;
using reactor::Task;

namespace {

Error notFound(std::string_view name)
{
    return Error(ErrorKind::VmNotFound, "No VM named \"" + std::string(name) + "\"",
                 std::string(kindHint(ErrorKind::VmNotFound)));
}

// A private copy (0600) of a template file, written atomically.
Result<void> copyFile(const std::string& from, const std::string& to)
{
    VMR_TRY_ASSIGN(std::string data, readFile(from, 64 << 20));
    return writeFileAtomic(to, data, 0600);
}

}  // namespace

Manager::Manager(reactor::Reactor& r, const config::Settings& settings, store::Store& store,
                 image::Cache& cache, EventCallback onEvent)
    : reactor_(r),
      settings_(settings),
      store_(store),
      cache_(cache),
      onEvent_(std::move(onEvent)),
      accel_(probeHost()),
      ports_(settings.network.sshPortRange)
{
}

Manager::~Manager() = default;

Result<std::shared_ptr<Manager::Entry>> Manager::lookup(std::string_view name) const
{
    auto it = vms_.find(name);
    if (it == vms_.end()) return missing(name);
    return it->second;
}

Error Manager::missing(std::string_view name) const
{
    auto b = broken_.find(name);
    if (b == broken_.end()) return notFound(name);
    return Error(ErrorKind::StoreCorrupt, "VM \"" + std::string(name) + "\" is broken: " + b->second,
                 "Remove what is left of it with `vmrctl destroy " + std::string(name) + "`");
}

void Manager::setBroken(const std::vector<store::Store::Broken>& broken)
{
    for (const auto& b : broken) broken_[b.name] = b.reason;
}

const store::VmRecord* Manager::find(std::string_view name) const
{
    auto it = vms_.find(name);
    return it == vms_.end() ? nullptr : &it->second->record;
}

Result<const store::VmRecord*> Manager::get(std::string_view name) const
{
    VMR_TRY(model::validateVmName(name));
    const store::VmRecord* r = find(name);
    if (r == nullptr) return missing(name);
    return r;
}

std::vector<const store::VmRecord*> Manager::list() const
{
    std::vector<const store::VmRecord*> out;
    out.reserve(vms_.size());
    for (const auto& [name, e] : vms_) out.push_back(&e->record);  // the map is sorted by name
    return out;
}

Manager::Paths Manager::pathsOf(const store::VmRecord& rec) const
{
    const store::Layout& layout = store_.layout();
    Paths p;
    p.workDir = layout.vmDir(rec.name());
    p.overlay = p.workDir + "/" + kOverlayName;
    if (rec.spec.firmware.kind == model::FirmwareKind::Uefi) p.uefiVars = p.workDir + "/" + kUefiVarsName;
    p.runtime = runtimePaths(layout, rec.spec.backend, rec.name(), rec.runtime.id);
    return p;
}

Result<std::optional<Credentials>> Manager::hypervisorUser() const
{
    const std::string& name = settings_.hypervisorUser;
    using Hypervisor = std::optional<Credentials>;
    if (settings_.mode != config::Mode::System || name == "root" || ::geteuid() != 0) return Hypervisor();
    auto user = userByName(name);
    if (!user)
        return Error(ErrorKind::Config,
                     "hypervisor_user \"" + name + "\" does not exist: QEMU never runs as root",
                     "Create it (useradd --system --no-create-home --shell /usr/sbin/nologin " + name +
                         "), or name another user in vmrd.toml's hypervisor_user");
    if (user->uid == 0) return Hypervisor();
    // KVM through /dev/kvm's group, whatever the account database says.
    struct stat kvm {};
    if (::stat("/dev/kvm", &kvm) == 0 && !user->inGroup(kvm.st_gid)) user->groups.push_back(kvm.st_gid);
    return std::optional<Credentials>(std::move(*user));
}

Result<DriverConfig> Manager::driverConfig(const store::VmRecord& rec, std::optional<Accel> accel) const
{
    DriverConfig cfg;
    bool qemu = rec.spec.backend == model::Backend::Qemu;
    cfg.binary = qemu ? settings_.qemu.binary : settings_.chv.binary;
    cfg.requireKvm = settings_.chv.requireKvm;
    cfg.id = rec.runtime.id;
    cfg.spec = rec.spec;
    Paths p = pathsOf(rec);
    cfg.paths = p.runtime;
    Launch& l = cfg.launch;
    l.accel = qemu ? accel.value_or(Accel::Tcg) : Accel::Kvm;
    l.base = LaunchFile(rec.spec.image);
    l.overlay = LaunchFile(p.overlay);
    l.seedIso = LaunchFile(rec.runtime.seed);
    l.kernel = LaunchFile(rec.spec.kernel);
    l.initrd = LaunchFile(rec.spec.initrd);
    bool firmwareFile = rec.spec.firmware.kind == model::FirmwareKind::File;
    if (firmwareFile) l.bios = LaunchFile(rec.spec.firmware.file);
    l.mac = rec.runtime.mac;
    if (rec.spec.network.mode == model::NetMode::User) l.sshPort = rec.runtime.sshPort;
    l.machineNone = qemu && settings_.qemu.machine == "none";
    if (!accel) return cfg;  // a driver that only watches opens nothing

    // A start: the system's firmware checked, every file opened, whom the hypervisor runs as.
    if (qemu && !firmwareFile) {
        VMR_TRY_ASSIGN(Firmware fw, resolveFirmware(std::string(model::firmwareWord(rec.spec.firmware))));
        l.bios = LaunchFile(fw.bios);
        if (!fw.uefiCode.empty()) {
            l.uefiCode = LaunchFile(fw.uefiCode);
            l.uefiVars = LaunchFile(p.uefiVars);
        }
    }
    if (qemu) {
        l.sandbox = settings_.qemu.sandbox;
        VMR_TRY_ASSIGN(l.runAs, hypervisorUser());
    }
    if (!l.machineNone) {
        FileRights rights{ownerOf(rec.runtime), store_.layout().imagesDir(), p.workDir, l.runAs};
        VMR_TRY(openLaunchFiles(l, rights, firmwareFile));
    }
    return cfg;
}

Result<void> Manager::attachDriver(const std::shared_ptr<Entry>& e, std::optional<Accel> accel)
{
    VMR_TRY_ASSIGN(DriverConfig cfg, driverConfig(e->record, accel));
    VMR_TRY_ASSIGN(e->driver, makeDriver(reactor_, std::move(cfg), e->record.runtime.state));
    e->accel = accel ? std::optional<Accel>(e->driver->config().launch.accel) : std::nullopt;
    // The driver belongs to the entry: the entry outlives every call of this callback.
    Entry* raw = e.get();
    e->driver->onStateChange([this, raw](VmState from, VmState to, const std::string& reason) {
        onDriverState(*raw, from, to, reason);
    });
    return success();
}

void Manager::syncRuntime(Entry& e)
{
    const Driver& d = *e.driver;
    model::VmRuntime& rt = e.record.runtime;
    rt.state = d.state();
    rt.stateReason = d.stateReason();
    if (d.pid()) {
        rt.pid = static_cast<int32_t>(*d.pid());
        // An adopted process keeps the accelerator its record names.
        if (e.accel) rt.accelInUse = *e.accel;
        rt.vncPort = d.vncPort();
    } else {
        rt.pid.reset();
        rt.accelInUse.reset();
        rt.vncPort.reset();
    }
    rt.pidStartTime = d.pidStartTime();
}

void Manager::save(Entry& e, Durability durability)
{
    auto saved = store_.save(e.record, durability);
    if (!saved) lg().error("VM {}: cannot save its record: {}", e.record.name(), saved.error().what());
}

void Manager::onDriverState(Entry& e, VmState from, VmState to, const std::string& reason)
{
    if (e.removed) return;
    syncRuntime(e);
    // The reason reported is the one of this change (a later one may already be in the driver).
    e.record.runtime.state = to;
    e.record.runtime.stateReason = reason;
    // The run state and pid are facts about a process that dies with the host: no fsync on
    // the path of every start, suspend and stop (base/files.h, Durability).
    save(e, Durability::Host);
    lg().debug("VM {}: {} -> {} ({})", e.record.name(), stateName(from), stateName(to), reason);
    if (onEvent_) onEvent_(StateEvent{e.record.name(), from, to, reason});
}

Result<Accel> Manager::chooseAccel(const std::optional<model::AccelChoice>& asked)
{
    VMR_TRY_ASSIGN(model::AccelChoice choice,
                   asked ? Result<model::AccelChoice>(*asked) : parseAccelChoice(settings_.qemu.accel));
    VMR_TRY_ASSIGN(AccelDecision decision, accel_.choose(choice));
    return decision.accel;
}

std::string Manager::resolveImage(const std::string& image) const
{
    return image.find('/') != std::string::npos ? image : store_.layout().imagesDir() + "/" + image;
}

size_t Manager::killOrphans()
{
    const std::string marker = std::string(kVmEnvMarker) + store_.layout().runtimeVmsDir() + "/";
    std::set<pid_t> owned;
    for (const auto& [name, e] : vms_)
        if (auto pid = e->driver->pid()) owned.insert(*pid);
    // The id in "VMR_VM=<runtime>/vms/<id>.qmp", when pid's environment has it.
    // (A process may exit while it is read: that is no error, only no answer.)
    auto markedId = [&](pid_t pid) -> std::optional<std::string> {
        auto environ = readFile("/proc/" + std::to_string(pid) + "/environ", 1 << 20);
        if (!environ) return std::nullopt;
        std::string_view vars = *environ;
        while (!vars.empty()) {
            std::string_view var = vars.substr(0, vars.find('\0'));
            vars.remove_prefix(std::min(vars.size(), var.size() + 1));
            if (var.substr(0, marker.size()) != marker) continue;
            std::string_view file = var.substr(marker.size());
            return std::string(file.substr(0, file.find('.')));
        }
        return std::nullopt;
    };
    size_t killed = 0;
    std::error_code ec;
    std::filesystem::directory_iterator it("/proc", ec), end;
    for (; !ec && it != end; it.increment(ec)) {
        std::string n = it->path().filename();
        if (n.empty() || n.find_first_not_of("0123456789") != std::string::npos) continue;
        pid_t pid = static_cast<pid_t>(std::stol(n));
        if (owned.count(pid) != 0 || pid == ::getpid() || !markedId(pid)) continue;
        auto child = reactor::Child::adopt(reactor_, pid);
        // Asked again through the pidfd's process: the pid may have been reused meanwhile.
        auto id = markedId(pid);
        if (!child || !id || isZombie(pid)) continue;
        (void)(*child)->signal(SIGKILL);
        ++killed;
        lg().warn(
            "Killed pid {}: a hypervisor of VM id {} that no VM record owns (vmrd stopped while "
            "starting it)",
            pid, *id);
    }
    return killed;
}

Task<Result<void>> Manager::adoptAll(std::vector<store::VmRecord> records)
{
    auto t0 = reactor_.now();
    std::optional<Error> firstError;
    std::vector<std::shared_ptr<Entry>> live;
    for (auto& rec : records) {
        const std::string name = rec.name();
        if (rec.runtime.state == VmState::Destroyed) {
            // Its destroy had stopped it and marked the record when vmrd stopped: finish it.
            auto removed = store_.remove(name);
            if (removed)
                lg().warn("VM {}: finished destroying it (vmrd stopped midway)", name);
            else
                lg().error("VM {}: cannot finish destroying it: {}", name, removed.error().what());
            continue;
        }
        if (vms_.count(name) != 0) {
            Error err(ErrorKind::VmExists, "VM \"" + name + "\" is loaded twice");
            lg().error("{}", err.what());
            if (!firstError) firstError = std::move(err);
            continue;
        }
        if (rec.runtime.sshPort) {
            auto reserved = ports_.reserve(name, *rec.runtime.sshPort);
            if (!reserved)
                lg().warn("VM {}: {}; it gets another port at its next start", name, reserved.error().what());
        }
        auto e = std::make_shared<Entry>();
        e->record = std::move(rec);
        // The accelerator is decided again at each start; this driver only watches and stops.
        if (auto attached = attachDriver(e, std::nullopt); !attached) {
            lg().error("VM {}: not loaded: {}", name, attached.error().what());
            continue;
        }
        vms_.emplace(name, e);
        if (e->record.runtime.pid || expectsProcess(e->record.runtime.state)) live.push_back(std::move(e));
    }

    // Every VM at once: each adoption is a few round trips, and hundreds of them in a row would
    // add up. The last one to finish fulfils `done`.
    auto progress = std::make_shared<AdoptProgress>();
    progress->left = live.size();
    for (auto& e : live) reactor::spawnDetached(adoptOne(e, progress));
    if (!live.empty()) {
        // Each adoption has its own deadlines (QMP connect 5 s, commands 10 s).
        auto all = co_await reactor::awaitWithTimeout(reactor_, progress->done, std::chrono::minutes(2));
        if (!all) lg().warn("Re-adoption: {} of {} VMs not done yet", progress->left, live.size());
    }
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(reactor_.now() - t0).count();
    lg().info("Re-adopted {} VMs ({} records) in {} ms", live.size(), records.size(), ms);
    if (firstError) co_return Unexpected(std::move(*firstError));
    co_return success();
}

Task<void> Manager::adoptOne(std::shared_ptr<Entry> e, std::shared_ptr<AdoptProgress> progress)
{
    store::VmRecord before = e->record;
    auto adopted = co_await e->driver->adopt(before.runtime);
    if (!adopted) lg().warn("VM {}: cannot re-adopt: {}", before.name(), adopted.error().what());
    if (!e->removed) {
        syncRuntime(*e);
        if (e->record != before) save(*e, Durability::Host);
    }
    if (--progress->left == 0) progress->done.fulfil(true);
}

Result<std::string> Manager::newId() const
{
    for (int tries = 0;; ++tries) {
        VMR_TRY_ASSIGN(std::string id, model::newVmId());
        bool taken = std::any_of(vms_.begin(), vms_.end(),
                                 [&](const auto& kv) { return kv.second->record.runtime.id == id; });
        if (!taken || tries == 8) return id;
    }
}

Result<void> Manager::checkCreate(const model::VmSpec& spec, const Credentials& caller) const
{
    VMR_TRY(model::validateVmName(spec.name));
    VMR_TRY(model::checkSpec(spec, true));
    if (broken_.count(spec.name) != 0)
        return Error(
            ErrorKind::VmExists,
            "VM \"" + spec.name + "\" exists, broken: " + broken_.find(spec.name)->second,
            "Remove what is left of it with `vmrctl destroy " + spec.name + "`, then create it again");
    if (vms_.count(spec.name) != 0 || creating_.count(spec.name) != 0 || store_.exists(spec.name))
        return Error(ErrorKind::VmExists, "VM \"" + spec.name + "\" already exists",
                     "Choose another name, or run `vmrctl destroy " + spec.name + "` first");
    VMR_TRY(net::checkSupported(spec.network.mode));
    // A firmware word this vmrd does not know is no file name either.
    if (spec.firmware.kind == model::FirmwareKind::File && spec.firmware.file.find('/') == std::string::npos)
        VMR_TRY(resolveFirmware(spec.firmware.file));
    // The files the spec names, opened as the caller: one they cannot read is refused now.
    for (auto [file, what] : {std::pair{&spec.kernel, "kernel"}, std::pair{&spec.initrd, "initrd"},
                              std::pair{&spec.firmware.file, "firmware"}}) {
        if (!file->empty()) VMR_TRY(openFileAs(caller, *file, O_RDONLY, what));
    }
    // So are the provisioning steps' scripts and sources (opened again when they run).
    for (const auto& step : spec.provision) {
        const std::string& local = step.kind == model::ProvisionStep::Kind::File ? step.source : step.script;
        if (!local.empty()) VMR_TRY(openFileAs(caller, local, O_RDONLY, "provisioning file"));
    }
    if (spec.backend == model::Backend::Qemu && spec.firmware.kind != model::FirmwareKind::File)
        VMR_TRY(resolveFirmware(std::string(model::firmwareWord(spec.firmware))));
    if (!seedSupported() && (spec.cloudInit.userData || !spec.cloudInit.authorizedKeys.empty()))
        return Error(ErrorKind::Unsupported,
                     "This vmrd cannot make cloud-init seeds (built without libisofs)",
                     "Rebuild vmrd with libisofs, or create the VM without SSH keys or user-data");
    // The hypervisor (and, for cloud-hypervisor, KVM and the boot files) must be there before
    // anything is made for it.
    store::VmRecord probe;
    probe.spec = spec;
    probe.runtime.id = "00000000";
    VMR_TRY_ASSIGN(DriverConfig cfg, driverConfig(probe, std::nullopt));
    VMR_TRY_ASSIGN(auto driver, makeDriver(reactor_, std::move(cfg), VmState::Prepared));
    return driver->preflight();
}

Task<Result<void>> Manager::makeVm(store::VmRecord& rec, const Credentials& caller)
{
    const std::string& name = rec.name();
    const model::VmSpec& spec = rec.spec;
    // The base, opened as whoever named it (vmrd for its own images) and probed by descriptor: a
    // standalone qcow2 or raw image, or nothing is made.
    const std::string imagesDir = store_.layout().imagesDir();
    bool ownImage = isOwnImage(spec.image, imagesDir);
    auto opened = openFileAs(ownImage ? Credentials::self() : caller, spec.image, O_RDONLY, "image");
    if (!opened && opened.error().kind() == ErrorKind::NotFound)
        co_return Error(ErrorKind::ImageNotFound, "Image \"" + spec.image + "\" not found",
                        "Give the path of an image file, or the name of an image in " + imagesDir);
    VMR_CO_TRY_ASSIGN(UniqueFd baseFd, std::move(opened));
    VMR_CO_TRY_ASSIGN(image::BaseImage base, image::probeBaseImage(baseFd.get(), spec.image));
    baseFd.reset();
    if (spec.backend == model::Backend::Chv && !ownImage && caller.uid != ::geteuid())
        co_return Error(ErrorKind::Unsupported,
                        "cloud-hypervisor opens a disk's backing image by its path, with vmrd's rights: it "
                        "cannot boot " +
                            spec.image + " for uid " + std::to_string(caller.uid),
                        "Put the image in " + imagesDir + " (vmrctl image pull), or use backend \"qemu\"");
    if (spec.network.mode == model::NetMode::User) {
        VMR_CO_TRY_ASSIGN(rec.runtime.sshPort, ports_.allocate(name, std::nullopt));
    }
    // Everything is made in a staging folder that becomes the VM's in one rename, once its
    // record is durable (Store::commit): a crash at any step leaves no half-made VM.
    std::string dir;
    VMR_CO_TRY_ASSIGN(dir, store_.stage(rec));
    const std::string finalDir = store_.layout().vmDir(name);
    std::optional<uint64_t> sizeBytes;
    if (spec.diskGib) sizeBytes = *spec.diskGib << 30;
    VMR_CO_TRY(
        co_await image::createOverlay(reactor_, base, spec.image, dir + "/" + kOverlayName, sizeBytes));
    VMR_CRASH_POINT("create.after_overlay");
    if (spec.backend == model::Backend::Qemu) {
        VMR_CO_TRY_ASSIGN(Firmware fw, resolveFirmware(std::string(model::firmwareWord(spec.firmware))));
        if (!fw.uefiVarsTemplate.empty())
            VMR_CO_TRY(copyFile(fw.uefiVarsTemplate, dir + "/" + kUefiVarsName));
    }
    if (seedSupported()) {
        SeedRequest seed;
        seed.vmDir = dir;
        seed.name = name;
        seed.id = rec.runtime.id;
        seed.user = spec.cloudInit.user;
        seed.authorizedKeys = spec.cloudInit.authorizedKeys;
        seed.userData = spec.cloudInit.userData;
        seed.hostname = spec.cloudInit.hostname;
        VMR_CO_TRY_ASSIGN(SeedResult written, writeSeed(seed));
        VMR_CRASH_POINT("create.after_seed");
        // Where it will be once the folder has its name.
        rec.runtime.seed = finalDir + "/" + std::filesystem::path(written.seedPath).filename().string();
        rec.runtime.hostKey = written.hostKey;
        if (!spec.cloudInit.userData) rec.spec.cloudInit.user = written.user;
    }
    VMR_CO_TRY(store_.commit(rec));
    VMR_CRASH_POINT("create.after_commit");
    co_return success();
}

Task<Result<store::VmRecord>> Manager::create(model::VmSpec spec, CreateOptions opts)
{
    VMR_CO_TRY(checkCreate(spec, opts.caller));
    const std::string name = spec.name;
    if (!spec.imageUrl.empty() && spec.image.empty()) {
        creating_.insert(name);
        auto path = co_await cache_.acquire(spec.imageUrl, spec.imageSha256, opts.onImageProgress, nullptr);
        creating_.erase(name);
        if (!path) co_return Unexpected(std::move(path).error());
        spec.image = *path;
        if (vms_.count(name) != 0 || creating_.count(name) != 0 || store_.exists(name))
            co_return Error(ErrorKind::VmExists, "VM \"" + name + "\" was created while its image downloaded",
                            "Choose another name");
    }
    spec.image = resolveImage(spec.image);

    store::VmRecord rec;
    rec.spec = std::move(spec);
    VMR_CO_TRY_ASSIGN(rec.runtime.id, newId());
    rec.runtime.created = static_cast<int64_t>(std::time(nullptr));
    rec.runtime.mac = net::macFor(rec.runtime.id);
    rec.runtime.state = VmState::Prepared;
    rec.runtime.stateReason = "created";
    rec.runtime.ownerUid = opts.caller.uid;
    rec.runtime.ownerGid = opts.caller.gid;

    // From here every failure undoes what was done: folder removed, port released.
    creating_.insert(name);
    // A copy of the record, not a reference: `co_return rec` moves it before this runs.
    struct Undo {
        Manager& m;
        store::VmRecord rec;
        bool armed = true;
        bool committed = false;  // the folder has its name: removed by name
        ~Undo()
        {
            const std::string& name = rec.name();
            m.creating_.erase(name);
            if (!armed) return;
            m.ports_.release(name);
            m.store_.discard(rec);
            if (committed) {
                auto removed = m.store_.remove(name);
                if (!removed) lg().error("VM {}: cannot remove its folder: {}", name, removed.error().what());
            }
        }
    } undo{*this, rec};
    VMR_CO_TRY(co_await makeVm(rec, opts.caller));
    undo.committed = true;

    auto e = std::make_shared<Entry>();
    e->record = rec;
    VMR_CO_TRY(attachDriver(e, std::nullopt));  // the accelerator is decided at start
    undo.armed = false;
    vms_.emplace(name, e);
    lg().info("VM {}: created (id {}, image {})", name, rec.runtime.id, rec.spec.image);
    if (onEvent_) onEvent_(StateEvent{name, VmState::Preparing, VmState::Prepared, "created"});
    // Making the seed ISO and keys allocates a few hundred KiB for a moment; many creates at
    // once leave that much free heap behind. Give it back (vmrd is meant to stay small).
    ::malloc_trim(0);
    co_return rec;
}

Task<Result<store::VmRecord>> Manager::create(model::VmSpec spec)
{
    return create(std::move(spec), CreateOptions{});
}

Task<Result<store::VmRecord>> Manager::start(std::string name)
{
    VMR_CO_TRY_ASSIGN(std::shared_ptr<Entry> e, lookup(name));
    VMR_CO_TRY(checkOperation(name, e->driver->state(), Operation::Start));
    if (!e->driver->pid()) {
        // No process: a fresh driver with today's accelerator and port.
        VMR_CO_TRY_ASSIGN(Accel accel, chooseAccel(e->record.spec.accel));
        if (e->record.spec.network.mode == model::NetMode::User) {
            VMR_CO_TRY_ASSIGN(uint16_t port, ports_.allocate(name, e->record.runtime.sshPort));
            if (e->record.runtime.sshPort != port) {
                e->record.runtime.sshPort = port;
                save(*e);
            }
        }
        VMR_CO_TRY(attachDriver(e, accel));
    }
    VMR_CO_TRY(co_await e->driver->start());
    if (e->removed) co_return notFound(name);
    syncRuntime(*e);
    lg().info("VM {}: started (pid {})", name, e->record.runtime.pid.value_or(0));
    co_return e->record;
}

Task<Result<store::VmRecord>> Manager::stop(std::string name, StopOptions opts)
{
    VMR_CO_TRY_ASSIGN(std::shared_ptr<Entry> e, lookup(name));
    VMR_CO_TRY(co_await e->driver->stop(opts));
    if (e->removed) co_return notFound(name);
    syncRuntime(*e);
    lg().info("VM {}: stopped ({})", name, e->record.runtime.stateReason);
    co_return e->record;
}

Task<Result<store::VmRecord>> Manager::suspend(std::string name)
{
    VMR_CO_TRY_ASSIGN(std::shared_ptr<Entry> e, lookup(name));
    VMR_CO_TRY(co_await e->driver->suspend());
    if (e->removed) co_return notFound(name);
    co_return e->record;
}

Task<Result<store::VmRecord>> Manager::resume(std::string name)
{
    VMR_CO_TRY_ASSIGN(std::shared_ptr<Entry> e, lookup(name));
    VMR_CO_TRY(co_await e->driver->resume());
    if (e->removed) co_return notFound(name);
    co_return e->record;
}

Task<Result<void>> Manager::destroy(std::string name)
{
    if (vms_.count(name) == 0 && broken_.count(name) != 0) {
        // What is left of a VM vmrd could not load: its folder.
        auto removed = store_.remove(name);
        if (!removed && removed.error().kind() != ErrorKind::VmNotFound)
            co_return Error(ErrorKind::System, "Cannot remove what is left of VM \"" + name + "\"",
                            "Remove " + store_.layout().vmDir(name) + " by hand")
                .causedBy(std::move(removed).error());
        broken_.erase(name);
        lg().info("VM {}: removed what was left of it (it was broken)", name);
        co_return success();
    }
    VMR_CO_TRY_ASSIGN(std::shared_ptr<Entry> e, lookup(name));
    VMR_CO_TRY(co_await e->driver->destroy());
    VMR_CRASH_POINT("destroy.after_stop");
    if (e->removed) co_return notFound(name);
    e->removed = true;
    vms_.erase(name);
    ports_.release(name);
    auto removed = store_.remove(name);
    if (!removed)
        co_return Error(ErrorKind::System, "VM \"" + name + "\" is destroyed but its folder is left",
                        "Remove " + store_.layout().vmDir(name) + " by hand")
            .causedBy(std::move(removed).error());
    lg().info("VM {}: destroyed", name);
    co_return success();
}

}  // namespace vmr::vm
