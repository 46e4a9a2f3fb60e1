#include "store/record.h"

#include "base/json.h"
#include "model/json_read.h"

#include <simdjson.h>

#include <array>

namespace vmr::store {

namespace {

namespace jr = model::jsonread;
constexpr ErrorKind kCorrupt = ErrorKind::StoreCorrupt;

// Version 1 was one flat object: these of its keys are the runtime's, the others the spec's.
constexpr std::array<std::string_view, 12> kV1Runtime = {
    "id",       "created", "seed",     "state",        "state_reason", "pid", "pid_start_time",
    "ssh_port", "mac",     "vnc_port", "accel_in_use", "host_key"};

bool isV1Runtime(std::string_view key)
{
    for (auto k : kV1Runtime)
        if (k == key) return true;
    return false;
}

Result<VmRecord> fromParts(const std::string& specJson, const std::string& runtimeJson, VmRecord r)
{
    model::ReadOptions opts;
    opts.kind = kCorrupt;
    opts.unknown = &r.specExtra;
    auto spec = model::specFromJson(specJson, opts);
    if (!spec) return std::move(spec).error();
    r.spec = std::move(*spec);
    auto runtime = model::runtimeFromJson(runtimeJson, &r.runtimeExtra);
    if (!runtime) return std::move(runtime).error();
    r.runtime = std::move(*runtime);
    return r;
}

// Version 1 split into the two objects of version 2.
Result<VmRecord> fromV1(simdjson::dom::object obj)
{
    json::Writer spec, runtime;
    spec.beginObject();
    runtime.beginObject();
    for (auto [key, value] : obj) {
        if (key == "version") continue;
        // Version 1 read "" as null for every optional string ("" firmware was QEMU's BIOS).
        if (value.is_string() && value.get_string().value_unsafe().empty()) continue;
        if (key == "firmware" && value.is_null()) continue;
        json::Writer& to = isV1Runtime(key) ? runtime : spec;
        to.key(key).raw(simdjson::to_string(value));
    }
    spec.endObject();
    runtime.endObject();
    return fromParts(spec.str(), runtime.str(), VmRecord{});
}

}  // namespace

std::string toJson(const VmRecord& r)
{
    json::Writer w;
    w.beginObject().field("version", kRecordVersion).key("spec").beginObject();
    model::writeSpecFields(w, r.spec);
    for (const auto& [k, raw] : r.specExtra) w.key(k).raw(raw);
    w.endObject().key("runtime").beginObject();
    model::writeRuntimeFields(w, r.runtime);
    for (const auto& [k, raw] : r.runtimeExtra) w.key(k).raw(raw);
    w.endObject();
    for (const auto& [k, raw] : r.extra)
        if (k != "version" && k != "spec" && k != "runtime") w.key(k).raw(raw);
    w.endObject();
    return w.take() + "\n";
}

Result<VmRecord> recordFromJson(std::string_view text)
{
    // One parser per thread and function: its buffers are reused from call to call (a record is
    // parsed at every save), and the functions that call each other keep their own.
    thread_local simdjson::dom::parser parser;
    simdjson::padded_string padded(text);
    VMR_TRY_ASSIGN(auto obj, jr::object(parser, padded, kCorrupt, "The record"));
    simdjson::dom::element versionEl;
    if (obj.at_key("version").get(versionEl) != simdjson::SUCCESS)
        return jr::memberError(kCorrupt, "version", "is missing");
    VMR_TRY_ASSIGN(uint64_t version, jr::unsignedInt(kCorrupt, "version", versionEl, 1, INT32_MAX));
    if (version == 1) return fromV1(obj);
    if (version != static_cast<uint64_t>(kRecordVersion))
        return Error(kCorrupt,
                     "Record version " + std::to_string(version) +
                         " is not supported (this vmrd reads versions 1 and " +
                         std::to_string(kRecordVersion) + ")",
                     "The record was written by a newer vmrd; upgrade vmrd");
    VmRecord r;
    std::string specJson, runtimeJson;
    bool versionSeen = false;
    for (auto [key, value] : obj) {
        if (key == "version") {
            if (versionSeen) return jr::memberError(kCorrupt, key, "appears twice");
            versionSeen = true;
            continue;
        }
        if (key == "spec" || key == "runtime") {
            if (!value.is_object())
                return jr::memberError(kCorrupt, key, "must be an object, not " + jr::describe(value));
            std::string& part = key == "spec" ? specJson : runtimeJson;
            if (!part.empty()) return jr::memberError(kCorrupt, key, "appears twice");
            part = simdjson::to_string(value);
        } else if (!r.extra.emplace(std::string(key), simdjson::to_string(value)).second) {
            return jr::memberError(kCorrupt, key, "appears twice");
        }
    }
    if (specJson.empty()) return jr::memberError(kCorrupt, "spec", "is missing");
    if (runtimeJson.empty()) return jr::memberError(kCorrupt, "runtime", "is missing");
    return fromParts(specJson, runtimeJson, std::move(r));
}

}  // namespace vmr::store
