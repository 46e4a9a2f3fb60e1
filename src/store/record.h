#pragma once

// The VM record, <state>/vms/<name>/vm.json: what the VM is (its spec) and what vmrd knows
// about it beyond that (its runtime). docs/state.md describes the format.

#include "base/result.h"
#include "model/runtime.h"
#include "model/spec.h"

#include <map>
#include <string>
#include <string_view>

namespace vmr::store {

// 2: {"version":2,"spec":{...},"runtime":{...}}. 1 (flat) is read and written back as 2.
constexpr int kRecordVersion = 2;

struct VmRecord {
    model::VmSpec spec;
    model::VmRuntime runtime;
    // Members this vmrd does not know (written by a newer one), as raw JSON text, written
    // back unchanged: at the top level, in "spec" and in "runtime".
    std::map<std::string, std::string> extra;
    std::map<std::string, std::string> specExtra;
    std::map<std::string, std::string> runtimeExtra;

    const std::string& name() const noexcept { return spec.name; }
    bool operator==(const VmRecord&) const = default;
};

// One JSON object ending with a newline.
std::string toJson(const VmRecord& record);

// Parse and validate a record. Errors are ErrorKind::StoreCorrupt and name the field:
// `Field "vcpus" must be a whole number from 1 to 256, not 0`.
Result<VmRecord> recordFromJson(std::string_view json);

}  // namespace vmr::store
