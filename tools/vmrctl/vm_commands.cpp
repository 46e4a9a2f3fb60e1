#include "vm_commands.h"

#include "base/json.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>

namespace vmr::ctl {

namespace {

Error usage(std::string message)
{
    return Error(ErrorKind::InvalidArgument, std::move(message));
}

struct Flag {
    const char* param;  // JSON name
    bool number;        // integer value
    bool takesValue;
};

// create's flags, vmctl's spelling; the JSON names are vm.create's params.
const std::map<std::string, Flag, std::less<>> kCreateFlags = {
    {"--name", {"name", false, true}},
    {"--image", {"image", false, true}},
    {"--vcpus", {"vcpus", true, true}},
    {"--memory", {"memory_mib", true, true}},
    {"--disk", {"disk_gib", true, true}},
    {"--network", {"network", false, true}},
    {"--kernel", {"kernel", false, true}},
    {"--initrd", {"initrd", false, true}},
    {"--cmdline", {"cmdline", false, true}},
    {"--accel", {"accel", false, true}},
    {"--firmware", {"firmware", false, true}},
    {"--vnc", {"vnc", false, false}},
    {"--image-url", {"image_url", false, true}},
    {"--sha256", {"image_sha256", false, true}},
    {"--ssh-key", {"ssh_authorized_keys", false, true}},
    {"--ssh-user", {"ssh_user", false, true}},
    {"--cloud-init", {"user_data", false, true}},
    {"--hostname", {"hostname", false, true}},
    {"--backend", {"backend", false, true}},
    {"--template", {"template", false, true}},
    {"--start", {"start", false, false}},
};

// Split "--flag=value" or take the next argument.
std::optional<std::string> valueOf(const std::vector<std::string>& args, size_t& i, const std::string& flag)
{
    const std::string& a = args[i];
    if (a.size() > flag.size() && a[flag.size()] == '=') return a.substr(flag.size() + 1);
    if (i + 1 >= args.size()) return std::nullopt;
    return args[++i];
}

// A file named on the command line (a public key, user-data): at most 1 MiB.
Result<std::string> readSmallFile(const std::string& path, const std::string& flag)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) return usage("create: " + flag + ": cannot read " + path + ": " + std::strerror(errno));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.size() > (1u << 20)) return usage("create: " + flag + ": " + path + " is larger than 1 MiB");
    return text;
}

Result<Invocation> parseCreate(const std::vector<std::string>& args)
{
    Invocation inv;
    inv.method = "vm.create";
    json::Writer w;
    w.beginObject();
    std::map<std::string, bool> seen;
    for (size_t i = 1; i < args.size(); ++i) {
        std::string flag = args[i].substr(0, args[i].find('='));
        auto it = kCreateFlags.find(flag);
        if (it == kCreateFlags.end()) return usage("create: unknown option `" + args[i] + "`");
        if (seen[flag]) return usage("create: " + flag + " is given twice");
        seen[flag] = true;
        if (!it->second.takesValue) {
            // --start: created and started in one call, by vmrd (it picks the name with --template).
            w.field(it->second.param, true);
            continue;
        }
        auto v = valueOf(args, i, flag);
        if (!v) return usage("create: " + flag + " needs a value");
        if (it->second.number) {
            long long n = 0;
            auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
            if (ec != std::errc() || p != v->data() + v->size() || n <= 0) {
                return usage("create: " + flag + " must be a positive whole number, not `" + *v + "`");
            }
            w.field(it->second.param, n);
        } else if (flag == "--ssh-key" || flag == "--cloud-init") {
            // Read here, with the caller's permissions, and sent as text (DESIGN.md, Security).
            auto text = readSmallFile(*v, flag);
            if (!text) return std::move(text).error();
            if (flag == "--cloud-init") {
                w.field(it->second.param, *text);
            } else {
                std::string line = *text;
                while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
                if (line.rfind("-----BEGIN", 0) == 0 || line.find('\n') != std::string::npos)
                    return usage(
                        "create: --ssh-key takes a public key file (like ~/.ssh/id_ed25519.pub), and " + *v +
                        " is not one");
                w.key(it->second.param).beginArray().value(line).endArray();
            }
        } else if (flag == "--firmware" && (*v == "uefi" || *v == "bios")) {
            w.field(it->second.param, *v);
        } else if (flag == "--image" || flag == "--kernel" || flag == "--initrd" || flag == "--firmware") {
            // vmrd resolves paths against its own folder, not the caller's: send absolute ones.
            // A bare image name that is no file here stays a name (an image in vmrd's cache).
            std::error_code ec;
            bool local = v->find('/') != std::string::npos || std::filesystem::exists(*v, ec);
            w.field(it->second.param,
                    local ? std::filesystem::absolute(*v, ec).lexically_normal().string() : *v);
        } else {
            w.field(it->second.param, *v);
        }
    }
    if (!seen["--name"] && !seen["--template"])
        return usage("create: --name is required (it may be left out with --template)");
    if (!seen["--template"] && seen["--image"] == seen["--image-url"])
        return usage(
            "create: give exactly one of --image (a local disk image) and --image-url (one to download)");
    w.endObject();
    inv.params = w.take();
    return inv;
}

Result<Invocation> parseStop(const std::vector<std::string>& args)
{
    Invocation inv;
    inv.method = "vm.stop";
    std::string name;
    std::optional<long long> timeout;
    bool force = false;
    for (size_t i = 1; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--force") {
            force = true;
        } else if (a == "--timeout" || a.rfind("--timeout=", 0) == 0) {
            auto v = valueOf(args, i, "--timeout");
            long long n = 0;
            if (!v) return usage("stop: --timeout needs a number of seconds");
            auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
            if (ec != std::errc() || p != v->data() + v->size() || n < 0) {
                return usage("stop: --timeout must be a whole number of seconds, not `" + *v + "`");
            }
            timeout = n;
        } else if (!a.empty() && a[0] == '-') {
            return usage("stop: unknown option `" + a + "`");
        } else if (name.empty()) {
            name = a;
        } else {
            return usage("stop: one VM name at a time");
        }
    }
    if (name.empty()) return usage("stop needs a VM name: vmrctl stop NAME [--timeout N] [--force]");
    json::Writer w;
    w.beginObject().field("name", name);
    if (timeout) w.field("timeout", *timeout);
    if (force) w.field("force", true);
    w.endObject();
    inv.params = w.take();
    return inv;
}

}  // namespace

bool isVmCommand(const std::string& c)
{
    return c == "create" || c == "start" || c == "stop" || c == "suspend" || c == "resume" || c == "destroy";
}

Result<Invocation> parseVmCommand(const std::vector<std::string>& args)
{
    const std::string& cmd = args.at(0);
    if (cmd == "create") return parseCreate(args);
    if (cmd == "stop") return parseStop(args);
    if (args.size() != 2 || args[1].empty() || args[1][0] == '-') {
        return usage(cmd + " needs exactly one VM name: vmrctl " + cmd + " NAME");
    }
    Invocation inv;
    inv.method = "vm." + cmd;
    json::Writer w;
    w.beginObject().field("name", args[1]).endObject();
    inv.params = w.take();
    return inv;
}

}  // namespace vmr::ctl
