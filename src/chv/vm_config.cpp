#include "chv/vm_config.h"

#include "base/json.h"

#include <simdjson.h>

#include <array>
#include <cctype>

namespace vmr::chv {

namespace {

Error invalid(std::string message, std::string hint = {})
{
    return Error(ErrorKind::InvalidArgument, std::move(message), std::move(hint));
}

bool isMac(std::string_view mac)
{
    if (mac.size() != 17) return false;
    for (size_t i = 0; i < mac.size(); ++i) {
        if (i % 3 == 2) {
            if (mac[i] != ':') return false;
        } else if (!std::isxdigit(static_cast<unsigned char>(mac[i]))) {
            return false;
        }
    }
    return true;
}

// Linux interface names: 1-15 bytes, no '/', whitespace or ':'.
bool isIfName(std::string_view name)
{
    if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
    for (char c : name) {
        auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f || c == '/' || c == ':') return false;
    }
    return true;
}

Error responseError(std::string_view what, std::string message)
{
    return Error(ErrorKind::ParseError, "Malformed " + std::string(what) + " answer: " + std::move(message));
}

constexpr std::array<std::string_view, 5> kRunStates = {"Created", "Running", "Shutdown", "Paused",
                                                        "BreakPoint"};

}  // namespace

Result<std::string> buildVmConfig(const VmConfigSpec& spec)
{
    if (spec.vcpus < 1 || spec.vcpus > kMaxVcpus)
        return invalid("cloud-hypervisor takes 1 to " + std::to_string(kMaxVcpus) + " vCPUs, not " +
                       std::to_string(spec.vcpus));
    constexpr uint64_t kMaxMib = (uint64_t{1} << 43) / (1024 * 1024);  // far above any host
    if (spec.memoryMib < 1 || spec.memoryMib > kMaxMib)
        return invalid("Memory of " + std::to_string(spec.memoryMib) + " MiB is out of range");
    if (spec.kernel.empty() && (!spec.initramfs.empty() || !spec.cmdline.empty()))
        return invalid("An initramfs or a kernel command line needs a kernel", "Add --kernel, or drop them");
    if (spec.firmware.empty() == spec.kernel.empty())
        return invalid(spec.firmware.empty() ? "cloud-hypervisor needs a firmware or a kernel to boot"
                                             : "Give a firmware or a kernel, not both",
                       "Set a firmware file (e.g. hypervisor-fw) or a kernel with --kernel");
    if (spec.serialSocket.empty()) return invalid("The serial socket path is empty");
    if (spec.serialSocket.size() >= 108)
        return invalid("The serial socket path " + spec.serialSocket + " is longer than a unix socket allows",
                       "Use a shorter runtime directory");
    if (spec.tap.empty() != spec.mac.empty())
        return invalid("A tap NIC needs both a tap name and a MAC address");
    if (!spec.tap.empty() && !isIfName(spec.tap))
        return invalid("\"" + spec.tap + "\" is not a valid network interface name",
                       "Use 1 to 15 characters without '/', ':' or spaces");
    if (!spec.mac.empty() && !isMac(spec.mac))
        return invalid("\"" + spec.mac + "\" is not a MAC address", "Write it as xx:xx:xx:xx:xx:xx");

    json::Writer w;
    w.beginObject();
    w.key("cpus").beginObject().field("boot_vcpus", spec.vcpus).field("max_vcpus", spec.vcpus).endObject();
    w.key("memory").beginObject().field("size", spec.memoryMib * 1024 * 1024).endObject();
    w.key("payload").beginObject();
    if (!spec.firmware.empty()) w.field("firmware", spec.firmware);
    if (!spec.kernel.empty()) w.field("kernel", spec.kernel);
    if (!spec.initramfs.empty()) w.field("initramfs", spec.initramfs);
    if (!spec.cmdline.empty()) w.field("cmdline", spec.cmdline);
    w.endObject();
    if (!spec.overlay.empty() || !spec.seedIso.empty()) {
        w.key("disks").beginArray();
        if (!spec.overlay.empty()) {
            // The overlay's base image is a backing file: without backing_files it cannot open.
            w.beginObject()
                .field("path", spec.overlay)
                .field("image_type", "Qcow2")
                .field("backing_files", true)
                .field("id", "disk0")
                .endObject();
        }
        if (!spec.seedIso.empty()) {
            w.beginObject()
                .field("path", spec.seedIso)
                .field("readonly", true)
                .field("image_type", "Raw")
                .field("id", "seed0")
                .endObject();
        }
        w.endArray();
    }
    if (!spec.tap.empty()) {
        w.key("net").beginArray();
        w.beginObject().field("tap", spec.tap).field("mac", spec.mac).field("id", "net0").endObject();
        w.endArray();
    }
    if (!spec.rngSource.empty()) w.key("rng").beginObject().field("src", spec.rngSource).endObject();
    w.key("serial").beginObject().field("mode", "Socket").field("socket", spec.serialSocket).endObject();
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
    simdjson::dom::object obj;
    if (auto err = parser.parse(json.data(), json.size()).get(obj))
        return responseError("vm.info",
                             std::string("not a JSON object (") + simdjson::error_message(err) + ")");
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
    simdjson::dom::object obj;
    if (auto err = parser.parse(json.data(), json.size()).get(obj))
        return responseError("vmm.ping",
                             std::string("not a JSON object (") + simdjson::error_message(err) + ")");
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
