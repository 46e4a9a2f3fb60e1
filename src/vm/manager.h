#pragma once

// The one object vmrd calls for VM operations (docs/architecture.md): it owns the in-memory VM
// records, one driver per VM, the SSH port allocator and the accelerator selector. Every state
// change a driver reports (QMP events, the pidfd exit) updates the record, is saved atomically
// and is reported through the event callback. Single-threaded: call it on the reactor's thread.

#include "base/credentials.h"
#include "base/result.h"
#include "config/settings.h"
#include "image/cache.h"
#include "model/spec.h"
#include "net/port_allocator.h"
#include "reactor/await.h"
#include "reactor/reactor.h"
#include "store/record.h"
#include "store/store.h"
#include "vm/accel.h"
#include "vm/driver.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace vmr::vm {

// A VM's state changed.
struct StateEvent {
    std::string vm;
    VmState from;
    VmState to;
    std::string reason;
    bool operator==(const StateEvent&) const = default;
};

class Manager {
public:
    using EventCallback = std::function<void(const StateEvent&)>;

    // The reactor, settings, store and image cache are borrowed and must outlive the manager.
    Manager(reactor::Reactor& r, const config::Settings& settings, store::Store& store, image::Cache& cache,
            EventCallback onEvent);
    Manager(const Manager&) = delete;
    Manager& operator=(const Manager&) = delete;
    // Leaves every hypervisor running (VMs outlive vmrd).
    ~Manager();

    // At daemon start, with the records of a store scan: reserve their ports and re-adopt every
    // VM whose state says a hypervisor should be running. A port conflict is logged and the later
    // VM loses its port (it gets a new one at its next start); only a duplicate name is an error.
    reactor::Task<Result<void>> adoptAll(std::vector<store::VmRecord> records);
    // After adoptAll: SIGKILL every hypervisor of this vmrd's (its environment names a socket in
    // this runtime folder, see kVmEnvMarker) that no VM owns: one spawned by a vmrd that died
    // before its pid was recorded. Returns how many.
    size_t killOrphans();

    struct CreateOptions {
        image::ProgressFn onImageProgress;  // while image_url downloads
        // Who asks: the paths the spec names are opened with these rights, now and at every
        // start (the record keeps the uid and gid as its owner).
        Credentials caller = Credentials::self();
    };
    // A new VM in state "prepared": the image (downloaded through the cache for image_url),
    // folder, qcow2 overlay, keys, seed, record. The spec is checked first (model::checkSpec),
    // and every file it names opened as the caller; on any failure nothing is left on disk and
    // no port is held.
    reactor::Task<Result<store::VmRecord>> create(model::VmSpec spec, CreateOptions opts);
    reactor::Task<Result<store::VmRecord>> create(model::VmSpec spec);  // as vmrd itself
    reactor::Task<Result<store::VmRecord>> start(std::string name);
    reactor::Task<Result<store::VmRecord>> stop(std::string name, StopOptions opts);
    reactor::Task<Result<store::VmRecord>> suspend(std::string name);
    reactor::Task<Result<store::VmRecord>> resume(std::string name);
    // Force-stop if running, remove the VM's folder, release its port.
    reactor::Task<Result<void>> destroy(std::string name);

    // Run provisioning steps over SSH on a running VM: `steps`, or the ones of its spec when
    // none are given. Output goes to the callbacks and to provision.log. Returns the number of
    // steps run.
    struct ProvisionCallbacks {
        std::function<void(size_t step, size_t total, std::string_view description)> onStep;
        std::function<void(size_t step, bool stderrStream, std::string_view data)> onOutput;
    };
    // The steps' local files (scripts, file sources) are opened with the caller's rights.
    reactor::Task<Result<size_t>> provision(std::string name,
                                            std::optional<std::vector<model::ProvisionStep>> steps,
                                            ProvisionCallbacks cb, Credentials caller = Credentials::self());

    // Valid until the next call that can change the set of VMs (create, destroy, adoptAll).
    const store::VmRecord* find(std::string_view name) const;
    std::vector<const store::VmRecord*> list() const;  // sorted by name
    // VmNotFound, with the hint to list VMs, when there is no such VM; StoreCorrupt when it is
    // broken.
    Result<const store::VmRecord*> get(std::string_view name) const;

    // VM folders the start-up scan found without a loadable record: listed as "broken" with the
    // reason, their names taken until `destroy` removes them.
    void setBroken(const std::vector<store::Store::Broken>& broken);
    const std::map<std::string, std::string, std::less<>>& broken() const noexcept { return broken_; }

    // Where a VM's files are (for `vmrctl status`).
    struct Paths {
        std::string workDir;
        std::string overlay;
        std::string uefiVars;  // empty: no UEFI
        RuntimePaths runtime;
    };
    Paths pathsOf(const store::VmRecord& rec) const;

    const AccelSelector& accelSelector() const noexcept { return accel_; }
    const config::Settings& settings() const noexcept { return settings_; }
    image::Cache& cache() const noexcept { return cache_; }
    reactor::Reactor& reactor() const noexcept { return reactor_; }

    static constexpr const char* kOverlayName = "overlay.qcow2";

private:
    // One VM. Shared with the operations in flight on it, so that destroy() cannot free a driver
    // a suspended task still uses.
    struct Entry {
        store::VmRecord record;
        std::unique_ptr<Driver> driver;
        bool removed = false;  // destroyed: nothing is saved or reported any more
        // The accelerator the driver was made with; none for a driver that adopted a process.
        std::optional<Accel> accel;
    };

    // Adoptions run side by side; the last to finish fulfils `done`.
    struct AdoptProgress {
        size_t left = 0;
        reactor::Completion<bool> done;
    };
    reactor::Task<void> adoptOne(std::shared_ptr<Entry> e, std::shared_ptr<AdoptProgress> progress);

    Result<std::shared_ptr<Entry>> lookup(std::string_view name) const;
    // What a start needs besides the spec; `accel` empty for a driver that only watches.
    // For a start (`accel` given) every launch file is opened (vm/launch_files.h).
    Result<DriverConfig> driverConfig(const store::VmRecord& rec, std::optional<Accel> accel) const;
    // The user QEMU runs as: hypervisor_user in system mode (with /dev/kvm's group), else none.
    Result<std::optional<Credentials>> hypervisorUser() const;
    Result<void> attachDriver(const std::shared_ptr<Entry>& e, std::optional<Accel> accel);
    void onDriverState(Entry& e, VmState from, VmState to, const std::string& reason);
    void syncRuntime(Entry& e);
    void save(Entry& e, Durability durability = Durability::Disk);
    // An image name is a file in the images folder; a path is itself.
    std::string resolveImage(const std::string& image) const;
    Result<Accel> chooseAccel(const std::optional<model::AccelChoice>& asked);
    // The checks a create makes before anything is made, and the steps that make the VM.
    Result<void> checkCreate(const model::VmSpec& spec, const Credentials& caller) const;
    reactor::Task<Result<void>> makeVm(store::VmRecord& rec, const Credentials& caller);
    Result<std::string> newId() const;

    // Borrowed.
    reactor::Reactor& reactor_;
    const config::Settings& settings_;
    store::Store& store_;
    image::Cache& cache_;
    EventCallback onEvent_;
    // Owned.
    AccelSelector accel_;
    net::PortAllocator ports_;
    std::map<std::string, std::shared_ptr<Entry>, std::less<>> vms_;
    std::set<std::string, std::less<>> creating_;             // names whose create() is in flight
    std::map<std::string, std::string, std::less<>> broken_;  // name -> why it is broken
    // No such VM: VmNotFound, or StoreCorrupt for a broken one.
    Error missing(std::string_view name) const;
};

}  // namespace vmr::vm
