#pragma once

// The one object vmrd calls for VM operations (DESIGN.md, src/vm/): it owns the in-memory VM
// records, one driver per VM, the SSH port allocator and the accelerator selector. Every state
// change a driver reports (QMP events, the pidfd exit) updates the record, is saved atomically
// and is reported through the event callback. Single-threaded: call it on the reactor's thread.

#include "base/result.h"
#include "config/settings.h"
#include "net/port_allocator.h"
#include "reactor/await.h"
#include "reactor/reactor.h"
#include "store/record.h"
#include "store/store.h"
#include "vm/accel.h"
#include "vm/chv_driver.h"
#include "vm/qemu_driver.h"

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

// A VM's state changed: the names are VmRecord::state strings.
struct StateEvent {
    std::string vm;
    std::string from;
    std::string to;
    std::string reason;
    bool operator==(const StateEvent&) const = default;
};

class Manager {
public:
    using EventCallback = std::function<void(const StateEvent&)>;

    // The reactor, settings and store are borrowed and must outlive the manager.
    Manager(reactor::Reactor& r, const config::Settings& settings, store::Store& store,
            EventCallback onEvent);
    Manager(const Manager&) = delete;
    Manager& operator=(const Manager&) = delete;
    // Leaves every QEMU running (VMs outlive vmrd).
    ~Manager();

    // At daemon start, with the records of a store scan: reserve their ports and re-adopt every
    // VM whose state says a QEMU should be running. A port conflict is logged and the later VM
    // loses its port (it gets a new one at its next start); only a duplicate name is an error.
    reactor::Task<Result<void>> adoptAll(std::vector<store::VmRecord> records);

    struct CreateSpec {
        std::string name;
        std::string image;  // a path, or the name of a file in <state>/images
        uint32_t vcpus = 1;
        uint64_t memoryMib = 1024;
        std::optional<uint64_t> diskGib;  // empty: the image's size
        std::string network = "user";
        std::string kernel;
        std::string initrd;
        std::string cmdline;
        std::string accel;     // empty: qemu.accel of the settings
        std::string firmware;  // "", "bios", "uefi" or a firmware file (vm/firmware.h)
        bool vnc = false;
        std::string imageUrl;  // recorded: where `image` was downloaded from
        // cloud-init (vm/provisioning.h): the login user, the caller's public keys, or raw
        // user-data instead of the generated one; the guest's hostname.
        std::string sshUser;
        std::vector<std::string> authorizedKeys;
        std::optional<std::string> userData;
        std::string hostname;
        std::string provision;  // steps, a JSON array (normalizeSteps); empty: none
        std::string vmfile;     // the VMFile it came from, and that file's SHA-256
        std::string vmfileSha256;
        std::string backend = "qemu";  // "qemu" | "chv"
    };
    // A new VM in state "prepared": folder, qcow2 overlay on the image, record. On any failure
    // nothing is left on disk and no port is held.
    reactor::Task<Result<store::VmRecord>> create(CreateSpec spec);
    reactor::Task<Result<store::VmRecord>> start(std::string name);
    reactor::Task<Result<store::VmRecord>> stop(std::string name, bool force, reactor::Duration timeout);
    reactor::Task<Result<store::VmRecord>> suspend(std::string name);
    reactor::Task<Result<store::VmRecord>> resume(std::string name);
    // Force-stop if running, remove the VM's folder, release its port.
    reactor::Task<Result<void>> destroy(std::string name);

    // Run provisioning steps over SSH on a running VM: `stepsJson` (normalizeSteps), or the
    // steps recorded at create when empty. Output goes to the callbacks and to provision.log.
    // Returns the number of steps run.
    struct ProvisionCallbacks {
        std::function<void(size_t step, size_t total, std::string_view description)> onStep;
        std::function<void(size_t step, bool stderrStream, std::string_view data)> onOutput;
    };
    reactor::Task<Result<size_t>> provision(std::string name, std::string stepsJson, ProvisionCallbacks cb);

    // Valid until the next call that can change the set of VMs (create, destroy, adoptAll).
    const store::VmRecord* find(std::string_view name) const;
    std::vector<const store::VmRecord*> list() const;  // sorted by name

    // Where a VM's files are (for `vmrctl status`).
    struct Paths {
        std::string workDir;
        std::string overlay;
        std::string seed;      // empty: none
        std::string uefiVars;  // empty: no UEFI
        RuntimePaths runtime;
    };
    Paths pathsOf(const store::VmRecord& rec) const;

    const AccelSelector& accelSelector() const noexcept { return accel_; }

    static constexpr const char* kNotFoundHint = "Run `vmrctl list` to see VMs";
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
    VmSpec specOf(const store::VmRecord& rec) const;  // what both drivers share
    Result<QemuDriverConfig> driverConfig(const store::VmRecord& rec, Accel accel) const;
    ChvDriverConfig chvConfig(const store::VmRecord& rec) const;
    // `accel`: empty for a driver that only watches (adoption, a VM that is not running).
    Result<void> attachDriver(const std::shared_ptr<Entry>& e, std::optional<Accel> accel);
    void onDriverState(Entry& e, VmState from, VmState to, const std::string& reason);
    void syncRuntime(Entry& e);
    void save(Entry& e, store::Durability durability = store::Durability::Disk);
    Result<std::string> resolveImage(const std::string& image) const;
    Result<Accel> chooseAccel(const std::string& recordAccel);

    // Borrowed.
    reactor::Reactor& reactor_;
    const config::Settings& settings_;
    store::Store& store_;
    EventCallback onEvent_;
    // Owned.
    AccelSelector accel_;
    net::PortAllocator ports_;
    std::map<std::string, std::shared_ptr<Entry>, std::less<>> vms_;
    std::set<std::string, std::less<>> creating_;  // names whose create() is in flight
};

}  // namespace vmr::vm
