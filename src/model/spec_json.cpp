// The JSON form of a VmSpec: vm.create params, the record's "spec", vm.status.

#include "base/json.h"
#include "base/suggest.h"
#include "model/json_read.h"
#include "model/spec.h"

#include <algorithm>
#include <vector>

namespace vmr::model {

namespace {

using simdjson::dom::element;
namespace jr = jsonread;

void writeSteps(json::Writer& w, const std::vector<ProvisionStep>& steps)
{
    w.beginArray();
    for (const auto& p : steps) {
        w.beginObject();
        if (p.kind == ProvisionStep::Kind::Shell) {
            w.field("type", "shell");
            if (p.script.empty())
                w.field("inline", p.inlineCommand);
            else
                w.field("script", p.script);
        } else {
            w.field("type", "file").field("source", p.source).field("destination", p.destination);
        }
        w.endObject();
    }
    w.endArray();
}

// Decoding one object, member by member.
class Reader {
public:
    explicit Reader(const ReadOptions& opts) : opts_(opts) {}

    Result<void> member(std::string_view key, const element& e, VmSpec& s)
    {
        if (e.is_null()) return success();
        if (key == "network") return network(e, s.network);
        if (key == "ssh_authorized_keys") return keys(e, s.cloudInit.authorizedKeys);
        if (key == "provision") return steps(e, s.provision);
        if (key == "user_data") {
            VMR_TRY_ASSIGN(std::string v, text(Field::UserData, key, e));
            s.cloudInit.userData = std::move(v);
            return success();
        }
        if (key == "vcpus") {
            VMR_TRY_ASSIGN(uint64_t n, integer(Field::Vcpus, key, e));
            s.vcpus = static_cast<uint32_t>(n);
            return success();
        }
        if (key == "memory_mib") {
            VMR_TRY_ASSIGN(s.memoryMib, integer(Field::MemoryMib, key, e));
            return success();
        }
        if (key == "disk_gib") {
            VMR_TRY_ASSIGN(s.diskGib, integer(Field::DiskGib, key, e));
            return success();
        }
        if (key == "vnc") {
            VMR_TRY_ASSIGN(s.vnc, jr::boolean(opts_.kind, key, e));
            return success();
        }
        for (auto [name, field, target] : textFields(s)) {
            if (key != name) continue;
            VMR_TRY_ASSIGN(*target, text(field, key, e));
            return success();
        }
        if (key == "backend") {
            VMR_TRY_ASSIGN(std::string v, text(Field::Backend, key, e));
            s.backend = *parseWord<Backend>(v);
        } else if (key == "accel") {
            VMR_TRY_ASSIGN(std::string v, text(Field::Accel, key, e));
            s.accel = *parseWord<AccelChoice>(v);
        } else if (key == "firmware") {
            VMR_TRY_ASSIGN(std::string v, text(Field::Firmware, key, e));
            s.firmware = *parseFirmware(v);
        }
        return success();
    }

    Result<std::string> text(Field f, std::string_view key, const element& e)
    {
        VMR_TRY_ASSIGN(std::string v, jr::string(opts_.kind, key, e));
        auto checked = checkText(f, v);
        if (!checked) return wrap(key, checked.error());
        return checked;
    }

private:
    struct TextField {
        std::string_view name;
        Field field;
        std::string* target;
    };
    static std::array<TextField, 11> textFields(VmSpec& s)
    {
        return {{{"name", Field::Name, &s.name},
                 {"image", Field::Image, &s.image},
                 {"image_url", Field::ImageUrl, &s.imageUrl},
                 {"image_sha256", Field::ImageSha256, &s.imageSha256},
                 {"kernel", Field::Kernel, &s.kernel},
                 {"initrd", Field::Initrd, &s.initrd},
                 {"cmdline", Field::Cmdline, &s.cmdline},
                 {"ssh_user", Field::SshUser, &s.cloudInit.user},
                 {"hostname", Field::Hostname, &s.cloudInit.hostname},
                 {"vmfile", Field::Vmfile, &s.vmfile},
                 {"vmfile_sha256", Field::VmfileSha256, &s.vmfileSha256}}};
    }

    Error wrap(std::string_view key, const Error& e) const
    {
        if (e.kind() == ErrorKind::InvalidName) {
            if (opts_.kind != ErrorKind::StoreCorrupt) return e;
            return jr::memberError(opts_.kind, key, "is not a valid VM name").causedBy(e);
        }
        return jr::memberError(opts_.kind, key, e.message(), e.hint());
    }

    Result<uint64_t> integer(Field f, std::string_view key, const element& e)
    {
        VMR_TRY_ASSIGN(int64_t n, jr::integer(opts_.kind, key, e));
        auto checked = checkInteger(f, n);
        if (!checked) return wrap(key, checked.error());
        return checked;
    }

    // A tap NIC joins br0 unless told otherwise (vmctl's default, as in a VMFile).
    Result<void> network(const element& e, Network& net)
    {
        VMR_TRY(networkMembers(e, net));
        if (net.mode == NetMode::Tap && net.bridge.empty()) net.bridge = std::string(kDefaultBridge);
        return success();
    }

    Result<void> networkMembers(const element& e, Network& net)
    {
        if (e.is_string()) {
            VMR_TRY_ASSIGN(std::string mode, text(Field::Network, "network", e));
            net.mode = *parseWord<NetMode>(mode);
            return success();
        }
        simdjson::dom::object o;
        if (e.get_object().get(o) != simdjson::SUCCESS)
            return jr::memberError(
                opts_.kind, "network",
                "must be a mode (\"user\") or an object ({\"mode\":\"tap\",\"bridge\":\"br0\"}), "
                "not " +
                    jr::describe(e));
        for (auto [k, v] : o) {
            if (k == "mode") {
                VMR_TRY_ASSIGN(std::string mode, text(Field::Network, "network.mode", v));
                net.mode = *parseWord<NetMode>(mode);
            } else if (k == "bridge") {
                if (!v.is_null()) {
                    VMR_TRY_ASSIGN(net.bridge, text(Field::Bridge, "network.bridge", v));
                }
            } else {
                return jr::memberError(
                    opts_.kind, "network." + std::string(k), "is not a network setting",
                    "A network is {\"mode\": \"user\"|\"tap\"|\"none\", \"bridge\": NAME}");
            }
        }
        return success();
    }

    Result<void> keys(const element& e, std::vector<std::string>& out)
    {
        simdjson::dom::array arr;
        if (e.get_array().get(arr) != simdjson::SUCCESS)
            return jr::memberError(opts_.kind, "ssh_authorized_keys",
                                   "must be an array of public key lines, not " + jr::describe(e));
        if (arr.size() > kMaxAuthorizedKeys)
            return jr::memberError(opts_.kind, "ssh_authorized_keys",
                                   "holds more than " + std::to_string(kMaxAuthorizedKeys) + " keys");
        for (element k : arr) {
            VMR_TRY_ASSIGN(std::string line, text(Field::AuthorizedKeys, "ssh_authorized_keys", k));
            out.push_back(std::move(line));
        }
        return success();
    }

    Result<void> steps(const element& e, std::vector<ProvisionStep>& out)
    {
        simdjson::dom::array arr;
        if (e.get_array().get(arr) != simdjson::SUCCESS)
            return jr::memberError(opts_.kind, "provision",
                                   "must be an array of steps, not " + jr::describe(e), kStepHint);
        if (arr.size() > kMaxProvisionSteps)
            return jr::memberError(opts_.kind, "provision",
                                   "holds more than " + std::to_string(kMaxProvisionSteps) + " steps");
        size_t i = 0;
        for (element el : arr) {
            std::string where = "provision[" + std::to_string(i++) + "]";
            VMR_TRY_ASSIGN(ProvisionStep step, oneStep(where, el));
            out.push_back(std::move(step));
        }
        return success();
    }

    Result<ProvisionStep> oneStep(const std::string& where, const element& el)
    {
        simdjson::dom::object o;
        if (el.get_object().get(o) != simdjson::SUCCESS)
            return jr::memberError(opts_.kind, where, "must be an object, not " + jr::describe(el),
                                   kStepHint);
        ProvisionStep step;
        std::string type;
        for (auto [k, v] : o) {
            std::string key = where + "." + std::string(k);
            if (k == "type") {
                VMR_TRY_ASSIGN(type, jr::string(opts_.kind, key, v));
            } else if (k == "inline") {
                VMR_TRY_ASSIGN(step.inlineCommand, text(Field::Cmdline, key, v));
            } else if (k == "script") {
                VMR_TRY_ASSIGN(step.script, text(Field::Kernel, key, v));
            } else if (k == "source") {
                VMR_TRY_ASSIGN(step.source, text(Field::Kernel, key, v));
            } else if (k == "destination") {
                VMR_TRY_ASSIGN(step.destination, text(Field::Kernel, key, v));
            } else {
                return jr::memberError(opts_.kind, key, "is not a step setting", kStepHint);
            }
        }
        if (type == "file") {
            step.kind = ProvisionStep::Kind::File;
            if (step.source.empty() || step.destination.empty() || !step.inlineCommand.empty() ||
                !step.script.empty())
                return jr::memberError(opts_.kind, where,
                                       "is a file step: it takes a source and a destination", kStepHint);
        } else if (type == "shell") {
            if (step.inlineCommand.empty() == step.script.empty() || !step.source.empty() ||
                !step.destination.empty())
                return jr::memberError(opts_.kind, where, "is a shell step: it takes inline or script",
                                       kStepHint);
        } else {
            return jr::memberError(opts_.kind, where + ".type", "must be \"shell\" or \"file\"", kStepHint);
        }
        return step;
    }

    static constexpr const char* kStepHint =
        "A step is {\"type\":\"shell\",\"inline\":CMD}, {\"type\":\"shell\",\"script\":PATH} or "
        "{\"type\":\"file\",\"source\":PATH,\"destination\":PATH}";

    const ReadOptions& opts_;
};

std::vector<std::string_view> knownKeys(const ReadOptions& opts)
{
    std::vector<std::string_view> keys;
    for (const auto& f : fields())
        if (f.wire.find('.') == std::string_view::npos) keys.push_back(f.wire);
    keys.insert(keys.end(), opts.alsoAllowed.begin(), opts.alsoAllowed.end());
    return keys;
}

}  // namespace

void writeSpecFields(json::Writer& w, const VmSpec& s, const WriteOptions& opts)
{
    w.field("name", s.name)
        .field("backend", wordOf(s.backend))
        .nullableField("image", s.image)
        .nullableField("image_url", s.imageUrl)
        .nullableField("image_sha256", s.imageSha256)
        .field("vcpus", s.vcpus)
        .field("memory_mib", static_cast<unsigned long long>(s.memoryMib))
        .optionalField("disk_gib", s.diskGib)
        .key("network");
    if (s.network.bridge.empty()) {
        w.value(wordOf(s.network.mode));
    } else {
        w.beginObject().field("mode", wordOf(s.network.mode)).field("bridge", s.network.bridge).endObject();
    }
    w.nullableField("kernel", s.kernel)
        .nullableField("initrd", s.initrd)
        .nullableField("cmdline", s.cmdline)
        .nullableField("accel", s.accel ? wordOf(*s.accel) : std::string_view())
        .field("firmware", firmwareWord(s.firmware))
        .field("vnc", s.vnc)
        .nullableField("ssh_user", s.cloudInit.user);
    w.key("ssh_authorized_keys").beginArray();
    for (const auto& k : s.cloudInit.authorizedKeys) w.value(k);
    w.endArray().key("user_data");
    if (!s.cloudInit.userData)
        w.null();
    else if (opts.includeUserData)
        w.value(*s.cloudInit.userData);
    else
        w.value(std::to_string(s.cloudInit.userData->size()) + " bytes, not shown");
    w.nullableField("hostname", s.cloudInit.hostname).key("provision");
    writeSteps(w, s.provision);
    w.nullableField("vmfile", s.vmfile).nullableField("vmfile_sha256", s.vmfileSha256);
}

std::string specToJson(const VmSpec& spec)
{
    json::Writer w;
    w.beginObject();
    writeSpecFields(w, spec);
    w.endObject();
    return w.take();
}

Result<VmSpec> specFromJson(std::string_view text, const ReadOptions& opts)
{
    // One parser per thread and function: its buffers are reused from call to call (a record is
    // parsed at every save), and the functions that call each other keep their own.
    thread_local simdjson::dom::parser parser;
    simdjson::padded_string padded(text);
    VMR_TRY_ASSIGN(auto obj, jr::object(parser, padded, opts.kind,
                                        opts.kind == ErrorKind::StoreCorrupt ? "The spec" : "The params"));
    auto known = knownKeys(opts);
    VmSpec spec;
    Reader reader(opts);
    bool named = false;
    std::vector<std::string_view> seen;
    for (auto [key, value] : obj) {
        if (std::find(seen.begin(), seen.end(), key) != seen.end() && opts.kind == ErrorKind::StoreCorrupt)
            return jr::memberError(opts.kind, key, "appears twice");
        seen.push_back(key);
        if (std::find(opts.alsoAllowed.begin(), opts.alsoAllowed.end(), key) != opts.alsoAllowed.end())
            continue;
        if (std::find(known.begin(), known.end(), key) == known.end()) {
            if (opts.unknown != nullptr) {
                opts.unknown->insert_or_assign(std::string(key), simdjson::to_string(value));
                continue;
            }
            std::string hint =
                "The parameters are " + std::to_string(known.size()) + " names; see docs/protocol.md";
            if (auto m = closestMatch(key, known)) hint = "Did you mean `" + *m + "`?";
            return Error(opts.kind, "Unknown parameter `" + std::string(key) + "`", hint);
        }
        if (key == "name") named = !value.is_null();
        VMR_TRY(reader.member(key, value, spec));
    }
    if (opts.requireName && !named)
        return jr::memberError(opts.kind, "name", "is missing", "Give the VM a name");
    return spec;
}

}  // namespace vmr::model
