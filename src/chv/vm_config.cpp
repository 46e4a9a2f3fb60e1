#include "chv/vm_config.h"

#include "base/json.h"
#include "model/names.h"
#include "model/runtime.h"

#include <simdjson.h>

#include <array>

namespace vmr::chv {

namespace {

Error invalid(std::string message, std::string hint = {})
{
    return Error(ErrorKind::InvalidArgument, std::move(message), std::move(hint));
}

Error responseError(std::string_view what, std::string message)
{
    return Error(ErrorKind::ParseError, "Malformed " + std::string(what) + " answer: " + std::move(message));
}

// The object an answer must be; `parser` holds what it refers to.
Result<simdjson::dom::object> parseObject(simdjson::dom::parser& parser, std::string_view json,
                                          std::string_view what)
{
    simdjson::dom::object obj;
    if (auto err = parser.parse(json.data(), json.size()).get(obj))
        return responseError(what, std::string("not a JSON object (") + simdjson::error_message(err) + ")");
    return obj;
}

constexpr std::array<std::string_view, 5> kRunStates = {"Created", "Running", "Shutdown", "Paused",
                                                        "BreakPoint"};

}  // namespace

Result<std::string> buildVmConfig(const model::VmSpec& spec, const Attachments& a)
{
    if (spec.vcpus < model::kMinVcpus || spec.vcpus > model::kMaxChvVcpus)
        return invalid("cloud-hypervisor takes 1 to " + std::to_string(model::kMaxChvVcpus) + " vCPUs, not " +
                       std::to_string(spec.vcpus));
    if (spec.memoryMib < model::kMinMemoryMib || spec.memoryMib > model::kMaxMemoryMib)
        return invalid("Memory of " + std::to_string(spec.memoryMib) + " MiB is out of range");
    if (spec.kernel.empty() && (!spec.initrd.empty() || !spec.cmdline.empty()))
        return invalid("An initramfs or a kernel command line needs a kernel", "Add --kernel, or drop them");
    if (a.firmware.empty() == spec.kernel.empty())
        return invalid(a.firmware.empty() ? "cloud-hypervisor needs a firmware or a kernel to boot"
                                          : "Give a firmware or a kernel, not both",
                       "Set a firmware file (e.g. hypervisor-fw) or a kernel with --kernel");
    if (a.serialSocket.empty()) return invalid("The serial socket path is empty");
    if (a.serialSocket.size() >= 108)
        return invalid("The serial socket path " + a.serialSocket + " is longer than a unix socket allows",
                       "Use a shorter runtime directory");
    if (a.tap.empty() != a.mac.empty()) return invalid("A tap NIC needs both a tap name and a MAC address");
    if (!a.tap.empty() && !model::isValidInterfaceName(a.tap))
        return invalid("\"" + a.tap + "\" is not a valid network interface name",
                       "Use 1 to 15 characters without '/', ':' or spaces");
    if (!a.mac.empty() && !model::isValidMac(a.mac))
        return invalid("\"" + a.mac + "\" is not a MAC address", "Write it as xx:xx:xx:xx:xx:xx");

    json::Writer w;
    w.beginObject();
    w.key("cpus").beginObject().field("boot_vcpus", spec.vcpus).field("max_vcpus", spec.vcpus).endObject();
    w.key("memory").beginObject().field("size", spec.memoryMib * 1024 * 1024).endObject();
    w.key("payload").beginObject();
    if (!a.firmware.empty()) w.field("firmware", a.firmware);
    if (!spec.kernel.empty()) w.field("kernel", a.kernel.empty() ? spec.kernel : a.kernel);
    if (!spec.initrd.empty()) w.field("initramfs", a.initrd.empty() ? spec.initrd : a.initrd);
    if (!spec.cmdline.empty()) w.field("cmdline", spec.cmdline);
    w.endObject();
    if (!a.overlay.empty() || !a.seedIso.empty()) {
        w.key("disks").beginArray();
        if (!a.overlay.empty()) {
            // The overlay's base image is a backing file: without backing_files it cannot open.
            w.beginObject()
                .field("path", a.overlay)
                .field("image_type", "Qcow2")
                .field("backing_files", true)
                .field("id", "disk0")
                .endObject();
        }
        if (!a.seedIso.empty()) {
            w.beginObject()
                .field("path", a.seedIso)
                .field("readonly", true)
                .field("image_type", "Raw")
                .field("id", "seed0")
                .endObject();
        }
        w.endArray();
    }
    if (!a.tap.empty()) {
        w.key("net").beginArray();
        w.beginObject().field("tap", a.tap).field("mac", a.mac).field("id", "net0").endObject();
        w.endArray();
    }
    if (!a.rngSource.empty()) w.key("rng").beginObject().field("src", a.rngSource).endObject();
    w.key("serial").beginObject().field("mode", "Socket").field("socket", a.serialSocket).endObject();
    w.key("console").beginObject().field("mode", "Off").endObject();
    w.endObject();
    return w.take();
}

std::string_view runStateName(VmRunState s) noexcept
{
    return kRunStates[static_cast<size_t>(s)];
}

Result<VmRunState> parseRunState(std::string_view name)
{
    for (size_t i = 0; i < kRunStates.size(); ++i)
        if (kRunStates[i] == name) return static_cast<VmRunState>(i);
    return Error(ErrorKind::ParseError, "Unknown cloud-hypervisor VM state \"" + std::string(name) + "\"",
                 "vmr knows Created, Running, Shutdown, Paused and BreakPoint (API v53)");
}

Result<VmInfo> parseVmInfo(std::string_view json)
{
    simdjson::dom::parser parser;
    VMR_TRY_ASSIGN(simdjson::dom::object obj, parseObject(parser, json, "vm.info"));
    std::string_view state;
    if (obj["state"].get_string().get(state)) return responseError("vm.info", "\"state\" is missing");
    auto s = parseRunState(state);
    if (!s) return std::move(s).error();
    simdjson::dom::object config;
    if (obj["config"].get_object().get(config)) return responseError("vm.info", "\"config\" is missing");
    VmInfo info;
    info.state = *s;
    info.configJson = simdjson::minify(config);
    int64_t size = 0;
    if (!obj["memory_actual_size"].get_int64().get(size)) info.memoryActualSize = size;
    return info;
}

Result<PingInfo> parsePing(std::string_view json)
{
    simdjson::dom::parser parser;
    VMR_TRY_ASSIGN(simdjson::dom::object obj, parseObject(parser, json, "vmm.ping"));
    PingInfo p;
    std::string_view s;
    if (obj["version"].get_string().get(s)) return responseError("vmm.ping", "\"version\" is missing");
    p.version = std::string(s);
    if (!obj["build_version"].get_string().get(s)) p.buildVersion = std::string(s);
    int64_t pid = 0;
    if (!obj["pid"].get_int64().get(pid)) p.pid = pid;
    return p;
}

}  // namespace vmr::chv
