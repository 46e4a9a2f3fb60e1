#pragma once

// The VM records on disk: scan at start-up (with recovery), save, load, remove.
// Pure file I/O on small files; the daemon calls it on its thread.

#include "base/files.h"
#include "base/result.h"
#include "store/layout.h"
#include "store/record.h"

#include <string>
#include <string_view>
#include <vector>

namespace vmr::store {

class Store {
public:
    // Something the scan found wrong; nothing is dropped silently.
    struct Problem {
        std::string path;     // the file or folder concerned
        std::string message;  // what was wrong and what the scan did about it
        std::string keptAs;   // where a bad record was moved aside ("" when nothing was moved)
    };
    // A VM folder without a record vmrd can load: its name stays taken until it is removed
    // (vmrctl list shows it as "broken", vmrctl destroy removes it).
    struct Broken {
        std::string name;
        std::string reason;
    };
    struct ScanReport {
        std::vector<VmRecord> records;  // sorted by name
        std::vector<Broken> broken;     // sorted by name
        std::vector<Problem> problems;
    };

    // Creates the directories of the layout (Layout::ensureDirs) and returns a store on them.
    static Result<Store> open(const Layout& layout);

    const Layout& layout() const noexcept { return layout_; }

    // Read every <state>/vms/*/vm.json. A record that cannot be read, is not valid, or does
    // not match its folder's name is renamed to vm.json.corrupt-<UTC time>, and its folder is
    // reported broken, as is a VM folder without vm.json; temp files of interrupted writes are
    // removed. What a crash left half done is finished: a staging folder (a create that never
    // committed) is removed, as is a .gone- folder (a destroy that did not finish deleting).
    // Everything done is reported. Only failing to list <state>/vms at all is an error.
    Result<ScanReport> scan() const;

    // A new VM, crash-consistently (docs/state.md): its files are made in stage()'s folder,
    // then commit() writes the record there, durably, and renames the folder to its name in one
    // step. Until that rename the VM does not exist; after it, it is complete. discard() removes
    // the staging folder of a create that failed.
    Result<std::string> stage(const VmRecord& record) const;
    Result<void> commit(const VmRecord& record) const;
    void discard(const VmRecord& record) const;

    // Write the record atomically into <state>/vms/<name>/vm.json, creating the folder.
    // The record is validated first: the store never writes what it could not read back.
    // Durability::Host for runtime changes only (state, pid): see base/files.h.
    Result<void> save(const VmRecord& record, Durability durability = Durability::Disk) const;
    // ErrorKind::VmNotFound when there is no record.
    Result<VmRecord> load(std::string_view name) const;
    // Delete <state>/vms/<name> and everything in it, never following a symlink: the folder is
    // first renamed to .gone-<name>-<n> (the name is free from then on, and a crash midway
    // leaves a folder the next scan finishes deleting), then deleted.
    Result<void> remove(std::string_view name) const;
    // True when <state>/vms/<name> is a folder (a valid name is then taken).
    bool exists(std::string_view name) const;

private:
    explicit Store(Layout layout) : layout_(std::move(layout)) {}

    Layout layout_;
};

// "vm.json.corrupt-20240131T235959Z": the name a bad record is kept under.
std::string corruptName(std::string_view file, int64_t unixSeconds);

}  // namespace vmr::store
