#include "vm/manager.h"

#include "base/log.h"
#include "image/qemu_img.h"
#include "net/mac.h"
#include "net/mode.h"
#include "store/atomic_file.h"
#include "store/names.h"
#include "vm/firmware.h"
#include "vm/process.h"
#include "vm/provisioning.h"

#include "config.h"
#if VMR_HAVE_SSH
#include "provision/ssh/provisioner.h"
#include "provision/ssh/session.h"
#endif

#include <simdjson.h>

#include <malloc.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <fstream>
#include <iterator>

namespace vmr::vm {

using reactor::Task;

namespace {

spdlog::logger& lg()
{
    return log::get("vm");
}

Error notFound(std::string_view name)
{
    return Error(ErrorKind::VmNotFound, "No VM named \"" + std::string(name) + "\"", Manager::kNotFoundHint);
}

// A private copy (0600) of a template file, written atomically.
Result<void> copyFile(const std::string& from, const std::string& to)
{
    std::ifstream in(from, std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) return Error::fromErrno(errno, "Cannot read " + from);
    return store::writeFileAtomic(to, data, 0600);
}

}  // namespace

Manager::Manager(reactor::Reactor& r, const config::Settings& settings, store::Store& store,
                 EventCallback onEvent)
    : reactor_(r),
      settings_(settings),
      store_(store),
      onEvent_(std::move(onEvent)),
      accel_(probeHost()),
      ports_(settings.network.sshPortRange)
{
}

Manager::~Manager() = default;

Result<std::shared_ptr<Manager::Entry>> Manager::lookup(std::string_view name) const
{
    auto it = vms_.find(name);
    if (it == vms_.end()) return notFound(name);
    return it->second;
}

const store::VmRecord* Manager::find(std::string_view name) const
{
    auto it = vms_.find(name);
    return it == vms_.end() ? nullptr : &it->second->record;
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
    p.workDir = layout.vmDir(rec.name);
    p.overlay = p.workDir + "/" + kOverlayName;
    p.seed = rec.seed;
    if (rec.firmware == "uefi") p.uefiVars = p.workDir + "/" + kUefiVarsName;
    p.runtime = rec.backend == "chv" ? chvRuntimePaths(layout, rec.name, rec.id)
                                     : runtimePaths(layout, rec.name, rec.id);
    return p;
}

VmSpec Manager::specOf(const store::VmRecord& rec) const
{
    VmSpec spec;
    spec.name = rec.name;
    spec.id = rec.id;
    spec.vcpus = rec.vcpus;
    spec.memoryMib = rec.memoryMib;
    spec.overlay = store_.layout().vmDir(rec.name) + "/" + kOverlayName;
    spec.kernel = rec.kernel;
    spec.initrd = rec.initrd;
    spec.cmdline = rec.cmdline;
    spec.seedIso = rec.seed;
    spec.vnc = rec.vnc;
    // The record was validated when it was written or read: its network is a known mode.
    spec.network = net::parseNetMode(rec.network).valueOr(net::NetMode::None);
    spec.mac = rec.mac;
    if (spec.network == net::NetMode::User) spec.sshPort = rec.sshPort;
    return spec;
}

Result<QemuDriverConfig> Manager::driverConfig(const store::VmRecord& rec, Accel accel) const
{
    const store::Layout& layout = store_.layout();
    QemuDriverConfig cfg;
    cfg.binary = settings_.qemu.binary;
    cfg.spec = specOf(rec);
    auto fw = resolveFirmware(rec.firmware);
    if (!fw) return Unexpected(std::move(fw).error());
    cfg.spec.firmware = fw->bios;
    if (!fw->uefiCode.empty()) {
        cfg.spec.uefiCode = fw->uefiCode;
        cfg.spec.uefiVars = layout.vmDir(rec.name) + "/" + kUefiVarsName;
    }
    cfg.spec.accel = accel;
    cfg.spec.machineNone = settings_.qemu.machine == "none";
    cfg.paths = runtimePaths(layout, rec.name, rec.id);
    return cfg;
}

ChvDriverConfig Manager::chvConfig(const store::VmRecord& rec) const
{
    ChvDriverConfig cfg;
    cfg.binary = settings_.chv.binary;
    cfg.requireKvm = settings_.chv.requireKvm;
    cfg.spec = specOf(rec);
    cfg.spec.firmware = rec.firmware;  // cloud-hypervisor takes a firmware file (checked at create)
    cfg.spec.accel = Accel::Kvm;
    cfg.paths = chvRuntimePaths(store_.layout(), rec.name, rec.id);
    cfg.apiSocket = store_.layout().runtimeSocket(rec.id, "api");
    return cfg;
}

Result<void> Manager::attachDriver(const std::shared_ptr<Entry>& e, std::optional<Accel> accel)
{
    VmState initial = parseState(e->record.state).valueOr(VmState::Stopped);
    Entry* raw = e.get();
    auto report = [this, raw](VmState from, VmState to, const std::string& reason) {
        onDriverState(*raw, from, to, reason);
    };
    if (e->record.backend == "chv") {
        e->driver = std::make_unique<ChvDriver>(reactor_, chvConfig(e->record), initial);
        e->accel = accel ? std::optional<Accel>(Accel::Kvm) : std::nullopt;
        e->driver->onStateChange(report);
        return success();
    }
    auto cfg = driverConfig(e->record, accel.value_or(Accel::Tcg));
    if (!cfg) {
        if (accel) return Unexpected(std::move(cfg).error());
        // A watching driver never starts QEMU: the firmware only matters at the next start.
        QemuDriverConfig watchOnly;
        watchOnly.spec.name = e->record.name;
        watchOnly.spec.id = e->record.id;
        watchOnly.paths = runtimePaths(store_.layout(), e->record.name, e->record.id);
        cfg = std::move(watchOnly);
    }
    e->driver = std::make_unique<QemuDriver>(reactor_, std::move(*cfg), initial);
    e->accel = accel;
    // The driver belongs to the entry: the entry outlives every call of this callback.
    e->driver->onStateChange(report);
    return success();
}

void Manager::syncRuntime(Entry& e)
{
    const Driver& d = *e.driver;
    e.record.state = std::string(stateName(d.state()));
    e.record.stateReason = d.stateReason();
    if (d.pid()) {
        e.record.pid = static_cast<int32_t>(*d.pid());
        // An adopted process keeps the accelerator its record names.
        if (e.accel) e.record.accelInUse = std::string(accelName(*e.accel));
        e.record.vncPort = d.vncPort();
    } else {
        e.record.pid.reset();
        e.record.accelInUse.clear();
        e.record.vncPort.reset();
    }
    e.record.pidStartTime = d.pidStartTime();
}

void Manager::save(Entry& e, store::Durability durability)
{
    auto saved = store_.save(e.record, durability);
    if (!saved) lg().error("VM {}: cannot save its record: {}", e.record.name, saved.error().what());
}

void Manager::onDriverState(Entry& e, VmState from, VmState to, const std::string& reason)
{
    if (e.removed) return;
    syncRuntime(e);
    // The reason reported is the one of this change (a later one may already be in the driver).
    e.record.state = std::string(stateName(to));
    e.record.stateReason = reason;
    // The run state and pid are facts about a process that dies with the host: no fsync on
    // the path of every start, suspend and stop (store/atomic_file.h, Durability).
    save(e, store::Durability::Host);
    lg().debug("VM {}: {} -> {} ({})", e.record.name, stateName(from), stateName(to), reason);
    if (onEvent_)
        onEvent_(StateEvent{e.record.name, std::string(stateName(from)), std::string(stateName(to)), reason});
}

Result<Accel> Manager::chooseAccel(const std::string& recordAccel)
{
    const std::string& text = recordAccel.empty() ? settings_.qemu.accel : recordAccel;
    auto choice = parseAccelChoice(text);
    if (!choice) return Unexpected(std::move(choice).error());
    auto decision = accel_.choose(*choice);
    if (!decision) return Unexpected(std::move(decision).error());
    return decision->accel;
}

Result<std::string> Manager::resolveImage(const std::string& image) const
{
    if (image.empty())
        return Error(ErrorKind::InvalidArgument, "No image given", "Name an image file to base the VM on");
    std::string path =
        image.find('/') != std::string::npos ? image : store_.layout().imagesDir() + "/" + image;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || S_ISDIR(st.st_mode))
        return Error(
            ErrorKind::ImageNotFound, "Image \"" + image + "\" not found",
            "Give the path of an image file, or the name of an image in " + store_.layout().imagesDir());
    return path;
}

Task<Result<void>> Manager::adoptAll(std::vector<store::VmRecord> records)
{
    auto t0 = reactor_.now();
    std::optional<Error> firstError;
    std::vector<std::shared_ptr<Entry>> live;
    for (auto& rec : records) {
        if (vms_.count(rec.name) != 0) {
            Error err(ErrorKind::VmExists, "VM \"" + rec.name + "\" is loaded twice");
            lg().error("{}", err.what());
            if (!firstError) firstError = std::move(err);
            continue;
        }
        if (rec.sshPort) {
            auto reserved = ports_.reserve(rec.name, *rec.sshPort);
            if (!reserved)
                lg().warn("VM {}: {}; it gets another port at its next start", rec.name,
                          reserved.error().what());
        }
        auto e = std::make_shared<Entry>();
        e->record = rec;
        vms_.emplace(rec.name, e);
        // The accelerator is decided again at each start; this driver only watches and stops.
        (void)attachDriver(e, std::nullopt);
        VmState recorded = parseState(rec.state).valueOr(VmState::Stopped);
        if (rec.pid || expectsProcess(recorded)) live.push_back(std::move(e));
    }

    // Every VM at once: each adoption is a few QMP round trips, and hundreds of them in a row
    // would add up. The last one to finish fulfils `done`.
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
    auto adopted = co_await e->driver->adopt(before);
    if (!adopted) lg().warn("VM {}: cannot re-adopt: {}", before.name, adopted.error().what());
    if (!e->removed) {
        syncRuntime(*e);
        if (e->record != before) save(*e, store::Durability::Host);
    }
    if (--progress->left == 0) progress->done.fulfil(true);
}

Task<Result<store::VmRecord>> Manager::create(CreateSpec spec)
{
    VMR_CO_TRY(store::validateVmName(spec.name));
    const std::string name = spec.name;
    if (vms_.count(name) != 0 || creating_.count(name) != 0 || store_.exists(name))
        co_return Error(ErrorKind::VmExists, "VM \"" + name + "\" already exists",
                        "Choose another name, or run `vmrctl destroy " + name + "` first");
    auto image = resolveImage(spec.image);
    if (!image) co_return Unexpected(std::move(image).error());
    auto mode = net::parseNetMode(spec.network);
    if (!mode) co_return Unexpected(std::move(mode).error());
    VMR_CO_TRY(net::checkSupported(*mode));
    if (!spec.accel.empty()) VMR_CO_TRY(parseAccelChoice(spec.accel));
    if (spec.kernel.empty() && (!spec.initrd.empty() || !spec.cmdline.empty()))
        co_return Error(ErrorKind::InvalidArgument, "An initrd or a kernel command line needs a kernel",
                        "Give a kernel too, or leave them out");
    for (const std::string* file : {&spec.kernel, &spec.initrd}) {
        if (file->empty()) continue;
        struct stat st {};
        if (::stat(file->c_str(), &st) != 0 || !S_ISREG(st.st_mode))
            co_return Error(ErrorKind::NotFound, "Boot file " + *file + " does not exist",
                            "Give the path of an existing kernel and initrd");
    }
    if (spec.backend != "qemu" && spec.backend != "chv")
        co_return Error(ErrorKind::InvalidArgument, "Unknown backend \"" + spec.backend + "\"",
                        "Use \"qemu\" or \"chv\" (cloud-hypervisor)");
    Firmware noFirmware;
    auto firmware = spec.backend == "chv" ? Result<Firmware>(noFirmware) : resolveFirmware(spec.firmware);
    if (!firmware) co_return Unexpected(std::move(firmware).error());
    if (spec.backend == "chv") {
        if (*mode == net::NetMode::User)
            co_return Error(
                ErrorKind::Unsupported, "cloud-hypervisor has no user-mode networking",
                "Use --network none (or tap, once supported), or --backend qemu for user networking");
        if (spec.firmware == "uefi" || spec.firmware == "bios")
            co_return Error(ErrorKind::InvalidArgument,
                            "cloud-hypervisor takes a firmware file, not \"" + spec.firmware + "\"",
                            "Give the path of rust-hypervisor-firmware or a CLOUDHV OVMF build, or a kernel");
        // Binary, KVM, firmware and boot files: all checked before anything is made.
        store::VmRecord probe;
        probe.name = name;
        probe.id = "00000000";
        probe.backend = "chv";
        probe.kernel = spec.kernel;
        probe.initrd = spec.initrd;
        probe.cmdline = spec.cmdline;
        probe.firmware = spec.firmware;
        probe.network = std::string(net::netModeName(*mode));
        ChvDriver check(reactor_, chvConfig(probe), VmState::Preparing);
        VMR_CO_TRY(check.preflight());
    } else if (auto qemu = reactor::findProgram(settings_.qemu.binary); !qemu) {
        // The hypervisor must be there before anything is made for it.
        co_return Error(ErrorKind::ToolMissing, "QEMU is not installed: " + qemu.error().message(),
                        QemuDriver::kQemuMissingHint);
    }

    store::VmRecord rec;
    rec.name = name;
    for (int tries = 0;; ++tries) {
        auto id = store::newVmId();
        if (!id) co_return Unexpected(std::move(id).error());
        bool taken = std::any_of(vms_.begin(), vms_.end(),
                                 [&](const auto& kv) { return kv.second->record.id == *id; });
        if (!taken || tries == 8) {
            rec.id = *id;
            break;
        }
    }
    rec.created = static_cast<int64_t>(std::time(nullptr));
    rec.image = *image;
    rec.vcpus = spec.vcpus;
    rec.memoryMib = spec.memoryMib;
    rec.diskGib = spec.diskGib;
    rec.network = std::string(net::netModeName(*mode));
    rec.kernel = spec.kernel;
    rec.initrd = spec.initrd;
    rec.cmdline = spec.cmdline;
    rec.accel = spec.accel;
    rec.backend = spec.backend;
    rec.firmware = spec.firmware == "bios" ? "" : spec.firmware;
    rec.vnc = spec.vnc;
    rec.imageUrl = spec.imageUrl;
    rec.vmfile = spec.vmfile;
    rec.vmfileSha256 = spec.vmfileSha256;
    if (!spec.provision.empty()) {
        auto steps = normalizeSteps(spec.provision);
        if (!steps) co_return Unexpected(std::move(steps).error());
        rec.provision = *steps;
    }
    if (spec.userData && (!spec.authorizedKeys.empty() || !spec.sshUser.empty()))
        co_return Error(ErrorKind::InvalidArgument,
                        "Raw user-data cannot be combined with SSH keys or a user",
                        "Put the user and keys in your user-data, or leave --cloud-init out");
    rec.mac = net::macFor(rec.id);
    rec.state = std::string(stateName(VmState::Prepared));
    rec.stateReason = "created";
    // The store refuses what it could not read back: check now, before anything is made.
    if (auto valid = store::recordFromJson(store::toJson(rec)); !valid)
        co_return Error(ErrorKind::InvalidArgument, valid.error().message(), "Fix the VM's settings");

    // From here every failure undoes what was done: folder removed, port released.
    creating_.insert(name);
    struct Undo {
        Manager& m;
        std::string name;
        bool armed = true;
        ~Undo()
        {
            m.creating_.erase(name);
            if (!armed) return;
            m.ports_.release(name);
            if (m.store_.exists(name)) {
                auto removed = m.store_.remove(name);
                if (!removed) lg().error("VM {}: cannot remove its folder: {}", name, removed.error().what());
            }
        }
    } undo{*this, name};

    if (*mode == net::NetMode::User) {
        auto port = ports_.allocate(name, std::nullopt);
        if (!port) co_return Unexpected(std::move(port).error());
        rec.sshPort = *port;
    }
    VMR_CO_TRY(store_.layout().ensureVmDir(name));
    std::optional<uint64_t> sizeBytes;
    if (spec.diskGib) sizeBytes = *spec.diskGib << 30;
    std::string overlay = store_.layout().vmDir(name) + "/" + kOverlayName;
    auto made = co_await image::createOverlay(reactor_, rec.image, overlay, sizeBytes);
    if (!made) co_return Unexpected(std::move(made).error());
    if (!firmware->uefiVarsTemplate.empty())
        VMR_CO_TRY(copyFile(firmware->uefiVarsTemplate, store_.layout().vmDir(name) + "/" + kUefiVarsName));
    if (seedSupported()) {
        SeedRequest seed;
        seed.vmDir = store_.layout().vmDir(name);
        seed.name = name;
        seed.id = rec.id;
        seed.user = spec.sshUser;
        seed.authorizedKeys = spec.authorizedKeys;
        seed.userData = spec.userData;
        seed.hostname = spec.hostname;
        auto written = writeSeed(seed);
        if (!written) co_return Unexpected(std::move(written).error());
        rec.seed = written->seedPath;
        rec.hostKey = written->hostKey;
        rec.sshUser = written->user;
    } else if (spec.userData || !spec.authorizedKeys.empty()) {
        co_return Error(ErrorKind::Unsupported,
                        "This vmrd cannot make cloud-init seeds (built without libisofs)",
                        "Rebuild vmrd with libisofs, or create the VM without SSH keys or user-data");
    }
    VMR_CO_TRY(store_.save(rec));

    undo.armed = false;
    auto e = std::make_shared<Entry>();
    e->record = rec;
    vms_.emplace(name, e);
    (void)attachDriver(e, std::nullopt);  // the accelerator is decided at start
    lg().info("VM {}: created (id {}, image {})", name, rec.id, rec.image);
    // Making the seed ISO and keys allocates a few hundred KiB for a moment; many creates at
    // once leave that much free heap behind. Give it back (vmrd is meant to stay small).
    ::malloc_trim(0);
    co_return rec;
}

Task<Result<store::VmRecord>> Manager::start(std::string name)
{
    auto found = lookup(name);
    if (!found) co_return Unexpected(std::move(found).error());
    std::shared_ptr<Entry> e = *found;
    VMR_CO_TRY(checkOperation(name, e->driver->state(), Operation::Start));
    if (!e->driver->pid()) {
        // No process: a fresh driver with today's accelerator and port.
        auto accel = chooseAccel(e->record.accel);
        if (!accel) co_return Unexpected(std::move(accel).error());
        if (e->record.network == "user") {
            auto port = ports_.allocate(name, e->record.sshPort);
            if (!port) co_return Unexpected(std::move(port).error());
            if (e->record.sshPort != *port) {
                e->record.sshPort = *port;
                save(*e);
            }
        }
        VMR_CO_TRY(attachDriver(e, *accel));
    }
    auto started = co_await e->driver->start();
    if (!started) co_return Unexpected(std::move(started).error());
    if (e->removed) co_return notFound(name);
    syncRuntime(*e);
    lg().info("VM {}: started (pid {})", name, e->record.pid.value_or(0));
    co_return e->record;
}

Task<Result<store::VmRecord>> Manager::stop(std::string name, bool force, reactor::Duration timeout)
{
    auto found = lookup(name);
    if (!found) co_return Unexpected(std::move(found).error());
    std::shared_ptr<Entry> e = *found;
    StopOptions opts;
    opts.force = force;
    opts.timeout = timeout;
    auto stopped = co_await e->driver->stop(opts);
    if (!stopped) co_return Unexpected(std::move(stopped).error());
    if (e->removed) co_return notFound(name);
    syncRuntime(*e);
    lg().info("VM {}: stopped ({})", name, e->record.stateReason);
    co_return e->record;
}

Task<Result<store::VmRecord>> Manager::suspend(std::string name)
{
    auto found = lookup(name);
    if (!found) co_return Unexpected(std::move(found).error());
    std::shared_ptr<Entry> e = *found;
    auto done = co_await e->driver->suspend();
    if (!done) co_return Unexpected(std::move(done).error());
    if (e->removed) co_return notFound(name);
    co_return e->record;
}

Task<Result<store::VmRecord>> Manager::resume(std::string name)
{
    auto found = lookup(name);
    if (!found) co_return Unexpected(std::move(found).error());
    std::shared_ptr<Entry> e = *found;
    auto done = co_await e->driver->resume();
    if (!done) co_return Unexpected(std::move(done).error());
    if (e->removed) co_return notFound(name);
    co_return e->record;
}

Task<Result<void>> Manager::destroy(std::string name)
{
    auto found = lookup(name);
    if (!found) co_return Unexpected(std::move(found).error());
    std::shared_ptr<Entry> e = *found;
    auto done = co_await e->driver->destroy();
    if (!done) co_return Unexpected(std::move(done).error());
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

#if VMR_HAVE_SSH
namespace {

Result<std::vector<provision::ProvisionStep>> parseSteps(const std::string& normalized)
{
    simdjson::dom::parser parser;
    simdjson::padded_string padded(normalized);
    simdjson::dom::array arr;
    if (parser.parse(padded).get_array().get(arr) != simdjson::SUCCESS)
        return Error(ErrorKind::Internal, "Recorded provisioning steps are not a JSON array");
    std::vector<provision::ProvisionStep> steps;
    for (simdjson::dom::element e : arr) {
        auto get = [&](const char* key) {
            std::string_view v;
            return e[key].get_string().get(v) == simdjson::SUCCESS ? std::string(v) : std::string();
        };
        if (get("type") == "file") {
            steps.push_back(provision::FileUpload{get("source"), get("destination")});
        } else if (!get("inline").empty()) {
            steps.push_back(provision::ShellInline{get("inline")});
        } else {
            steps.push_back(provision::ShellScript{get("script")});
        }
    }
    return steps;
}

}  // namespace
#endif

Task<Result<size_t>> Manager::provision(std::string name, std::string stepsJson, ProvisionCallbacks cb)
{
    auto found = lookup(name);
    if (!found) co_return Unexpected(std::move(found).error());
    std::shared_ptr<Entry> e = *found;
#if VMR_HAVE_SSH
    if (e->driver->state() != VmState::Running)
        co_return Error(ErrorKind::VmBadState, "VM \"" + name + "\" is " + e->record.state + ", not running",
                        "Start it first: vmrctl start " + name);
    if (e->record.network != "user" || !e->record.sshPort)
        co_return Error(
            ErrorKind::Unsupported,
            "VM \"" + name + "\" has no SSH port on 127.0.0.1 (network " + e->record.network + ")",
            "Provisioning reaches the guest through the user network's SSH forward; create the "
            "VM with --network user");
    std::string normalized;
    if (!stepsJson.empty()) {
        auto steps = normalizeSteps(stepsJson);
        if (!steps) co_return Unexpected(std::move(steps).error());
        normalized = *steps;
    } else {
        normalized = e->record.provision.empty() ? "[]" : e->record.provision;
    }
    auto steps = parseSteps(normalized);
    if (!steps) co_return Unexpected(std::move(steps).error());
    if (steps->empty()) co_return size_t{0};

    const std::string dir = store_.layout().vmDir(name);
    provision::ConnectOptions opts;
    opts.host = "127.0.0.1";
    opts.port = *e->record.sshPort;
    opts.user = e->record.sshUser.empty() ? std::string(kDefaultSshUser) : e->record.sshUser;
    opts.hostKey = e->record.hostKey.empty() ? provision::HostKeyPolicy::firstUse()
                                             : provision::HostKeyPolicy::pin(e->record.hostKey);
    opts.keyFiles = {dir + "/" + kClientKeyName};
    opts.timeout = provision::kProvisionConnectTimeout;
    auto session = co_await provision::Session::connect(reactor_, opts);
    if (!session) co_return Unexpected(std::move(session).error());
    if (e->removed) co_return notFound(name);
    if (e->record.hostKey.empty()) {
        // Raw user-data: the first key seen is the one pinned from now on.
        e->record.hostKey = (*session)->hostKey().line();
        save(*e);
        lg().info("VM {}: pinned the guest's host key {}", name, (*session)->hostKeyFingerprint());
    }
    provision::ProvisionOptions popts;
    popts.logPath = dir + "/" + kProvisionLog;
    popts.onStep = cb.onStep;
    if (cb.onOutput) {
        auto out = cb.onOutput;
        popts.onOutput = [out](size_t step, provision::OutputStream stream, std::string_view data) {
            out(step, stream == provision::OutputStream::Stderr, data);
        };
    }
    size_t total = steps->size();
    auto ran = co_await provision::runProvisioners(**session, std::move(*steps), std::move(popts));
    (void)co_await (*session)->disconnect();
    if (!ran) co_return Unexpected(std::move(ran).error());
    lg().info("VM {}: provisioned ({} steps)", name, total);
    co_return total;
#else
    (void)stepsJson;
    (void)cb;
    co_return Error(ErrorKind::Unsupported, "This vmrd was built without SSH support (libssh2)",
                    "Rebuild vmrd with libssh2 (Debian: apt-get install libssh2-1-dev)");
#endif
}

}  // namespace vmr::vm
