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
    struct ScanReport {
        std::vector<VmRecord> records;  // sorted by name
        std::vector<Problem> problems;
    };

    // Creates the directories of the layout (Layout::ensureDirs) and returns a store on them.
    static Result<Store> open(const Layout& layout);

    const Layout& layout() const noexcept { return layout_; }

    // Read every <state>/vms/*/vm.json. A record that cannot be read, is not valid, or does
    // not match its folder's name is renamed to vm.json.corrupt-<UTC time> and reported; a
    // VM folder without vm.json is reported; temp files of interrupted writes are removed
    // and reported. Only failing to list <state>/vms at all is an error.
    Result<ScanReport> scan() const;

    // Write the record atomically into <state>/vms/<name>/vm.json, creating the folder.
    // The record is validated first: the store never writes what it could not read back.
    // Durability::Host for runtime changes only (state, pid): see base/files.h.
    Result<void> save(const VmRecord& record, Durability durability = Durability::Disk) const;
    // ErrorKind::VmNotFound when there is no record.
    Result<VmRecord> load(std::string_view name) const;
    // Delete <state>/vms/<name> and everything in it, never following a symlink.
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
