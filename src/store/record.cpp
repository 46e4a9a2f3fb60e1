#include "store/record.h"

#include "base/json.h"
#include "store/names.h"

#include <simdjson.h>

#include <sys/random.h>

#include <array>
#include <cerrno>
#include <functional>

namespace vmr::store {

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

constexpr std::array<std::string_view, 9> kStates = {
    "preparing", "prepared", "starting", "running", "paused", "stopping", "stopped", "failed", "destroyed"};
constexpr std::array<std::string_view, 2> kBackends = {"qemu", "chv"};
constexpr std::array<std::string_view, 3> kNetworks = {"user", "tap", "none"};
constexpr std::array<std::string_view, 3> kAccels = {"auto", "kvm", "tcg"};

// Every key of version 1, in the order toJson writes them.
constexpr std::array<std::string_view, 31> kKnownKeys = {
    "version",    "name",     "id",           "backend",      "created",      "image",    "vcpus",
    "memory_mib", "disk_gib", "network",      "kernel",       "initrd",       "cmdline",  "accel",
    "firmware",   "vnc",      "seed",         "state",        "state_reason", "pid",      "pid_start_time",
    "ssh_port",   "mac",      "vnc_port",     "accel_in_use", "image_url",    "ssh_user", "host_key",
    "provision",  "vmfile",   "vmfile_sha256"};
// Keys added after version 1 was first written: a record without them takes the default.
constexpr std::array<std::string_view, 10> kLaterKeys = {
    "firmware", "vnc",      "seed",      "accel_in_use", "image_url",
    "ssh_user", "host_key", "provision", "vmfile",       "vmfile_sha256"};

bool isKnownKey(std::string_view k)
{
    for (auto known : kKnownKeys)
        if (known == k) return true;
    return false;
}

template <size_t N>
bool oneOf(std::string_view v, const std::array<std::string_view, N>& choices)
{
    for (auto c : choices)
        if (c == v) return true;
    return false;
}

template <size_t N>
std::string joinChoices(const std::array<std::string_view, N>& choices)
{
    std::string out;
    for (auto c : choices) {
        if (!out.empty()) out += ',';
        out += json::quote(c);
    }
    return out;
}

std::string describe(const element& e)
{
    switch (e.type()) {
        case element_type::ARRAY: return "an array";
        case element_type::OBJECT: return "an object";
        case element_type::INT64: return std::to_string(int64_t(e.get_int64().value_unsafe()));
        case element_type::UINT64: return std::to_string(uint64_t(e.get_uint64().value_unsafe()));
        case element_type::DOUBLE: return "a fractional number";
        case element_type::STRING: return json::quote(std::string_view(e.get_string().value_unsafe()));
        case element_type::BOOL: return "a boolean";
        case element_type::NULL_VALUE: return "null";
    }
    return "an unknown value";
}

Error fieldError(std::string_view field, std::string_view problem)
{
    return Error(ErrorKind::StoreCorrupt, "Field " + json::quote(field) + ": " + std::string(problem));
}

// The known fields of one record, looked up by name.
class Fields {
public:
    Result<void> add(std::string_view key, element value)
    {
        for (size_t i = 0; i < kKnownKeys.size(); ++i) {
            if (kKnownKeys[i] != key) continue;
            if (seen_[i]) return fieldError(key, "appears twice");
            seen_[i] = true;
            values_[i] = value;
        }
        return success();
    }

    Result<element> get(std::string_view key) const
    {
        for (size_t i = 0; i < kKnownKeys.size(); ++i)
            if (kKnownKeys[i] == key) {
                if (!seen_[i]) return fieldError(key, "is missing");
                return values_[i];
            }
        return Error(ErrorKind::Internal, "Unknown record field " + std::string(key));
    }

    bool has(std::string_view key) const
    {
        for (size_t i = 0; i < kKnownKeys.size(); ++i)
            if (kKnownKeys[i] == key) return seen_[i];
        return false;
    }

    Result<bool> boolean(std::string_view key) const
    {
        auto e = get(key);
        if (!e) return std::move(e).error();
        bool b = false;
        if (e->get_bool().get(b) != simdjson::SUCCESS)
            return fieldError(key, "expected true or false, got " + describe(*e));
        return b;
    }

    // Empty optional for null.
    Result<std::optional<std::string>> nullableString(std::string_view key) const
    {
        auto e = get(key);
        if (!e) return std::move(e).error();
        if (e->is_null()) return std::optional<std::string>();
        std::string_view s;
        if (e->get_string().get(s) != simdjson::SUCCESS)
            return fieldError(key, "expected a string or null, got " + describe(*e));
        if (s.find('\0') != std::string_view::npos)
            return fieldError(key, "must not contain a NUL character");
        return std::optional<std::string>(std::string(s));
    }

    Result<std::string> string(std::string_view key) const
    {
        auto e = get(key);
        if (!e) return std::move(e).error();
        std::string_view s;
        if (e->get_string().get(s) != simdjson::SUCCESS)
            return fieldError(key, "expected a string, got " + describe(*e));
        if (s.find('\0') != std::string_view::npos)
            return fieldError(key, "must not contain a NUL character");
        return std::string(s);
    }

    template <size_t N>
    Result<std::string> choice(std::string_view key, const std::array<std::string_view, N>& choices) const
    {
        auto s = string(key);
        if (!s) return s;
        if (!oneOf(*s, choices))
            return fieldError(key, "expected one of " + joinChoices(choices) + ", got " + json::quote(*s));
        return s;
    }

    Result<std::optional<uint64_t>> nullableUint(std::string_view key, uint64_t min, uint64_t max) const
    {
        auto e = get(key);
        if (!e) return std::move(e).error();
        if (e->is_null()) return std::optional<uint64_t>();
        return number(key, *e, min, max, true);
    }

    Result<uint64_t> uint(std::string_view key, uint64_t min, uint64_t max) const
    {
        auto e = get(key);
        if (!e) return std::move(e).error();
        auto n = number(key, *e, min, max, false);
        if (!n) return std::move(n).error();
        return **n;
    }

private:
    static Result<std::optional<uint64_t>> number(std::string_view key, const element& e, uint64_t min,
                                                  uint64_t max, bool nullable)
    {
        uint64_t v = 0;
        bool ok = false;
        if (e.type() == element_type::UINT64) {
            v = e.get_uint64().value_unsafe();
            ok = true;
        } else if (e.type() == element_type::INT64) {
            int64_t i = e.get_int64().value_unsafe();
            ok = i >= 0;
            v = static_cast<uint64_t>(i);
        }
        if (!ok || v < min || v > max)
            return fieldError(key, "expected an integer from " + std::to_string(min) + " to " +
                                       std::to_string(max) + (nullable ? " or null" : "") + ", got " +
                                       describe(e));
        return std::optional<uint64_t>(v);
    }

    std::array<element, kKnownKeys.size()> values_{};
    std::array<bool, kKnownKeys.size()> seen_{};
};

bool isLowerHex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool isValidId(std::string_view id)
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

void writeNullableString(json::Writer& w, std::string_view key, const std::string& v)
{
    w.key(key);
    if (v.empty())
        w.null();
    else
        w.value(v);
}

template <typename T>
void writeOptional(json::Writer& w, std::string_view key, const std::optional<T>& v)
{
    w.key(key);
    if (v)
        w.value(*v);
    else
        w.null();
}

}  // namespace

bool isValidVmState(std::string_view state)
{
    return oneOf(state, kStates);
}

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

std::string toJson(const VmRecord& r)
{
    json::Writer w;
    w.beginObject();
    w.field("version", kRecordVersion);
    w.field("name", r.name);
    w.field("id", r.id);
    w.field("backend", r.backend);
    w.field("created", static_cast<long long>(r.created));
    w.field("image", r.image);
    w.field("vcpus", r.vcpus);
    w.field("memory_mib", static_cast<unsigned long long>(r.memoryMib));
    writeOptional(w, "disk_gib", r.diskGib);
    w.field("network", r.network);
    writeNullableString(w, "kernel", r.kernel);
    writeNullableString(w, "initrd", r.initrd);
    writeNullableString(w, "cmdline", r.cmdline);
    writeNullableString(w, "accel", r.accel);
    writeNullableString(w, "firmware", r.firmware);
    w.field("vnc", r.vnc);
    writeNullableString(w, "seed", r.seed);
    w.field("state", r.state);
    writeNullableString(w, "state_reason", r.stateReason);
    writeOptional(w, "pid", r.pid);
    writeOptional(w, "pid_start_time", r.pidStartTime);
    writeOptional(w, "ssh_port", r.sshPort);
    writeNullableString(w, "mac", r.mac);
    writeOptional(w, "vnc_port", r.vncPort);
    writeNullableString(w, "accel_in_use", r.accelInUse);
    writeNullableString(w, "image_url", r.imageUrl);
    writeNullableString(w, "ssh_user", r.sshUser);
    writeNullableString(w, "host_key", r.hostKey);
    w.key("provision");
    if (r.provision.empty())
        w.null();
    else
        w.raw(r.provision);
    writeNullableString(w, "vmfile", r.vmfile);
    writeNullableString(w, "vmfile_sha256", r.vmfileSha256);
    for (const auto& [k, raw] : r.extra) {
        if (isKnownKey(k)) continue;  // a known key always comes from its field
        w.key(k).raw(raw);
    }
    w.endObject();
    std::string out = w.take();
    out += '\n';
    return out;
}

Result<VmRecord> recordFromJson(std::string_view text)
{
    simdjson::dom::parser parser;
    simdjson::padded_string padded(text);
    element root;
    if (auto err = parser.parse(padded).get(root); err != simdjson::SUCCESS)
        return Error(ErrorKind::StoreCorrupt, std::string("Not valid JSON: ") + simdjson::error_message(err));
    simdjson::dom::object obj;
    if (root.get_object().get(obj) != simdjson::SUCCESS)
        return Error(ErrorKind::StoreCorrupt, "Expected a JSON object, got " + describe(root));

    VmRecord r;
    Fields f;
    for (auto [key, value] : obj) {
        if (isKnownKey(key)) {
            VMR_TRY(f.add(key, value));
        } else {
            if (r.extra.count(std::string(key))) return fieldError(key, "appears twice");
            r.extra.emplace(std::string(key), simdjson::to_string(value));
        }
    }

    auto version = f.uint("version", 1, INT32_MAX);
    if (!version) return std::move(version).error();
    if (*version != kRecordVersion)
        return Error(ErrorKind::StoreCorrupt,
                     "Record version " + std::to_string(*version) +
                         " is not supported (this vmrd reads version " + std::to_string(kRecordVersion) + ")",
                     "The record was written by a newer vmrd; upgrade vmrd");

#define VMR_FIELD(target, expr)                        \
    do {                                               \
        auto vmr_f_ = (expr);                          \
        if (!vmr_f_) return std::move(vmr_f_).error(); \
        target = std::move(*vmr_f_);                   \
    } while (0)

    VMR_FIELD(r.name, f.string("name"));
    if (auto ok = validateVmName(r.name); !ok)
        return fieldError("name", "is not a valid VM name").causedBy(std::move(ok).error());
    VMR_FIELD(r.id, f.string("id"));
    if (!isValidId(r.id))
        return fieldError("id", "expected 8 lowercase hex digits, got " + json::quote(r.id));
    VMR_FIELD(r.backend, f.choice("backend", kBackends));
    uint64_t created = 0;
    VMR_FIELD(created, f.uint("created", 0, INT64_MAX));
    r.created = static_cast<int64_t>(created);
    VMR_FIELD(r.image, f.string("image"));
    uint64_t vcpus = 0;
    VMR_FIELD(vcpus, f.uint("vcpus", 1, 1024));
    r.vcpus = static_cast<uint32_t>(vcpus);
    VMR_FIELD(r.memoryMib, f.uint("memory_mib", 1, uint64_t(1) << 32));
    VMR_FIELD(r.diskGib, f.nullableUint("disk_gib", 1, uint64_t(1) << 20));
    VMR_FIELD(r.network, f.choice("network", kNetworks));

    std::optional<std::string> s;
    VMR_FIELD(s, f.nullableString("kernel"));
    r.kernel = s.value_or("");
    VMR_FIELD(s, f.nullableString("initrd"));
    r.initrd = s.value_or("");
    VMR_FIELD(s, f.nullableString("cmdline"));
    r.cmdline = s.value_or("");
    VMR_FIELD(s, f.nullableString("accel"));
    r.accel = s.value_or("");
    if (!r.accel.empty() && !oneOf(r.accel, kAccels))
        return fieldError(
            "accel", "expected one of " + joinChoices(kAccels) + " or null, got " + json::quote(r.accel));

    // Later keys: absent in records written before they existed.
    auto later = [&f](std::string_view key) {
        for (auto k : kLaterKeys)
            if (k == key) return !f.has(key);
        return false;
    };
    if (!later("firmware")) {
        VMR_FIELD(s, f.nullableString("firmware"));
        r.firmware = s.value_or("");
    }
    if (!later("vnc")) VMR_FIELD(r.vnc, f.boolean("vnc"));
    if (!later("seed")) {
        VMR_FIELD(s, f.nullableString("seed"));
        r.seed = s.value_or("");
    }

    VMR_FIELD(r.state, f.choice("state", kStates));
    VMR_FIELD(s, f.nullableString("state_reason"));
    r.stateReason = s.value_or("");

    std::optional<uint64_t> n;
    VMR_FIELD(n, f.nullableUint("pid", 1, INT32_MAX));
    if (n) r.pid = static_cast<int32_t>(*n);
    VMR_FIELD(r.pidStartTime, f.nullableUint("pid_start_time", 0, UINT64_MAX));
    VMR_FIELD(n, f.nullableUint("ssh_port", 1, 65535));
    if (n) r.sshPort = static_cast<uint16_t>(*n);
    VMR_FIELD(s, f.nullableString("mac"));
    r.mac = s.value_or("");
    if (!r.mac.empty() && !isValidMac(r.mac))
        return fieldError(
            "mac", "expected a MAC address like \"52:54:00:12:34:56\" or null, got " + json::quote(r.mac));
    VMR_FIELD(n, f.nullableUint("vnc_port", 1, 65535));
    if (n) r.vncPort = static_cast<uint16_t>(*n);
    if (!later("accel_in_use")) {
        VMR_FIELD(s, f.nullableString("accel_in_use"));
        r.accelInUse = s.value_or("");
        if (!r.accelInUse.empty() && r.accelInUse != "kvm" && r.accelInUse != "tcg")
            return fieldError("accel_in_use",
                              "expected \"kvm\", \"tcg\" or null, got " + json::quote(r.accelInUse));
    }
    for (auto [key, field] : {std::pair<const char*, std::string*>{"image_url", &r.imageUrl},
                              {"ssh_user", &r.sshUser},
                              {"host_key", &r.hostKey},
                              {"vmfile", &r.vmfile},
                              {"vmfile_sha256", &r.vmfileSha256}}) {
        if (later(key)) continue;
        VMR_FIELD(s, f.nullableString(key));
        *field = s.value_or("");
    }
    if (!later("provision")) {
        auto e = f.get("provision");
        if (!e) return std::move(e).error();
        if (!e->is_null()) {
            if (!e->is_array())
                return fieldError("provision", "expected an array of steps or null, got " + describe(*e));
            r.provision = simdjson::to_string(*e);
        }
    }
#undef VMR_FIELD
    return r;
}

}  // namespace vmr::store
