#include "model/runtime.h"

#include "base/json.h"
#include "model/json_read.h"

#include <sys/random.h>

#include <cerrno>
#include <set>

namespace vmr::model {

namespace {

namespace jr = jsonread;
constexpr ErrorKind kCorrupt = ErrorKind::StoreCorrupt;

bool isLowerHex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

template <typename E>
Result<E> wordMember(std::string_view key, const simdjson::dom::element& e)
{
    VMR_TRY_ASSIGN(std::string s, jr::string(kCorrupt, key, e));
    auto w = parseWord<E>(s);
    if (!w) return jr::memberError(kCorrupt, key, "must be " + wordChoices<E>() + ", not " + json::quote(s));
    return w;
}

}  // namespace

Result<std::string> newVmId()
{
    unsigned char b[4];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t n = ::getrandom(b + got, sizeof b - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Error::fromErrno(errno, "Cannot read random bytes for a VM id");
        got += static_cast<size_t>(n);
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string id;
    for (unsigned char c : b) {
        id += kHex[c >> 4];
        id += kHex[c & 0xF];
    }
    return id;
}

bool isValidVmId(std::string_view id)
{
    if (id.size() != 8) return false;
    for (char c : id)
        if (!isLowerHex(c)) return false;
    return true;
}

bool isValidMac(std::string_view mac)
{
    if (mac.size() != 17) return false;
    for (size_t i = 0; i < mac.size(); ++i) {
        char c = mac[i];
        if (i % 3 == 2) {
            if (c != ':') return false;
        } else if (!isLowerHex(c) && !(c >= 'A' && c <= 'F')) {
            return false;
        }
    }
    return true;
}

void writeRuntimeFields(json::Writer& w, const VmRuntime& r)
{
    w.field("id", r.id)
        .field("created", static_cast<long long>(r.created))
        .nullableField("mac", r.mac)
        .nullableField("seed", r.seed)
        .nullableField("host_key", r.hostKey)
        .optionalField("owner_uid", r.ownerUid)
        .optionalField("owner_gid", r.ownerGid)
        .field("state", wordOf(r.state))
        .nullableField("state_reason", r.stateReason)
        .optionalField("pid", r.pid)
        .optionalField("pid_start_time", r.pidStartTime)
        .optionalField("ssh_port", r.sshPort)
        .optionalField("vnc_port", r.vncPort)
        .nullableField("accel_in_use", r.accelInUse ? wordOf(*r.accelInUse) : std::string_view());
}

Result<VmRuntime> runtimeFromJson(std::string_view text, std::map<std::string, std::string>* unknown)
{
    // One parser per thread and function: its buffers are reused from call to call (a record is
    // parsed at every save), and the functions that call each other keep their own.
    thread_local simdjson::dom::parser parser;
    simdjson::padded_string padded(text);
    VMR_TRY_ASSIGN(auto obj, jr::object(parser, padded, kCorrupt, "The runtime"));
    VmRuntime r;
    bool haveId = false, haveState = false;
    std::set<std::string_view> seen;
    for (auto [key, e] : obj) {
        if (!seen.insert(key).second) return jr::memberError(kCorrupt, key, "appears twice");
        if (key == "id") {
            VMR_TRY_ASSIGN(r.id, jr::string(kCorrupt, key, e));
            if (!isValidVmId(r.id))
                return jr::memberError(kCorrupt, key,
                                       "must be 8 lowercase hex digits, not " + json::quote(r.id));
            haveId = true;
        } else if (key == "created") {
            VMR_TRY_ASSIGN(uint64_t created, jr::unsignedInt(kCorrupt, key, e, 0, INT64_MAX));
            r.created = static_cast<int64_t>(created);
        } else if (key == "mac") {
            VMR_TRY_ASSIGN(r.mac, jr::nullableString(kCorrupt, key, e));
            if (!r.mac.empty() && !isValidMac(r.mac))
                return jr::memberError(
                    kCorrupt, key,
                    "must be a MAC address like \"52:54:00:12:34:56\", not " + json::quote(r.mac));
        } else if (key == "seed") {
            VMR_TRY_ASSIGN(r.seed, jr::nullableString(kCorrupt, key, e));
        } else if (key == "host_key") {
            VMR_TRY_ASSIGN(r.hostKey, jr::nullableString(kCorrupt, key, e));
        } else if (key == "state") {
            VMR_TRY_ASSIGN(r.state, wordMember<VmState>(key, e));
            haveState = true;
        } else if (key == "state_reason") {
            VMR_TRY_ASSIGN(r.stateReason, jr::nullableString(kCorrupt, key, e));
        } else if (e.is_null() &&
                   (key == "pid" || key == "pid_start_time" || key == "ssh_port" || key == "vnc_port" ||
                    key == "accel_in_use" || key == "owner_uid" || key == "owner_gid")) {
            continue;
        } else if (key == "owner_uid" || key == "owner_gid") {
            VMR_TRY_ASSIGN(uint64_t id, jr::unsignedInt(kCorrupt, key, e, 0, UINT32_MAX - 1));
            (key == "owner_uid" ? r.ownerUid : r.ownerGid) = static_cast<uint32_t>(id);
        } else if (key == "pid") {
            VMR_TRY_ASSIGN(uint64_t pid, jr::unsignedInt(kCorrupt, key, e, 1, INT32_MAX));
            r.pid = static_cast<int32_t>(pid);
        } else if (key == "pid_start_time") {
            VMR_TRY_ASSIGN(r.pidStartTime, jr::unsignedInt(kCorrupt, key, e, 0, UINT64_MAX));
        } else if (key == "ssh_port" || key == "vnc_port") {
            VMR_TRY_ASSIGN(uint64_t port, jr::unsignedInt(kCorrupt, key, e, 1, 65535));
            (key == "ssh_port" ? r.sshPort : r.vncPort) = static_cast<uint16_t>(port);
        } else if (key == "accel_in_use") {
            VMR_TRY_ASSIGN(r.accelInUse, wordMember<Accel>(key, e));
        } else if (unknown != nullptr) {
            unknown->insert_or_assign(std::string(key), simdjson::to_string(e));
        }
    }
    if (!haveId) return jr::memberError(kCorrupt, "id", "is missing");
    if (!haveState) return jr::memberError(kCorrupt, "state", "is missing");
    return r;
}

}  // namespace vmr::model
