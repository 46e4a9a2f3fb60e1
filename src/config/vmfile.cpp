#include "config/vmfile.h"

#include "base/fd.h"
#include "base/json.h"
#include "base/suggest.h"
#include "config/kdl_chars.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <span>

namespace vmr::config {

namespace {

// A VMFile is a few dozen lines; anything this big is not one.
constexpr size_t kMaxVmFileBytes = 1 << 20;
constexpr size_t kMaxVmNameLength = 63;
constexpr size_t kMaxBridgeNameLength = 15;  // IFNAMSIZ - 1
constexpr uint64_t kMaxVcpus = 1024;
constexpr uint64_t kMaxMemoryMib = uint64_t(1) << 32;
constexpr uint64_t kMaxDiskGib = uint64_t(1) << 20;

constexpr std::array<std::string_view, 15> kVmFields = {
    "image", "image-url", "image-sha256", "vcpus",  "memory", "disk",    "network", "cloud-init",
    "ssh",   "provision", "backend",      "kernel", "initrd", "cmdline", "accel"};
constexpr std::array<std::string_view, 3> kNetworkModes = {"user", "tap", "none"};
constexpr std::array<std::string_view, 1> kNetworkFields = {"bridge"};
constexpr std::array<std::string_view, 3> kCloudInitFields = {"hostname", "ssh-key", "user-data"};
constexpr std::array<std::string_view, 2> kSshFields = {"user", "private-key"};
constexpr std::array<std::string_view, 2> kProvisionTypes = {"shell", "file"};
constexpr std::array<std::string_view, 2> kShellFields = {"inline", "script"};
constexpr std::array<std::string_view, 2> kFileFields = {"source", "destination"};
constexpr std::array<std::string_view, 2> kBackends = {"qemu", "chv"};
constexpr std::array<std::string_view, 3> kAccels = {"auto", "kvm", "tcg"};
constexpr std::array<std::string_view, 1> kTopLevel = {"vm"};

bool contains(std::span<const std::string_view> list, std::string_view word)
{
    return std::find(list.begin(), list.end(), word) != list.end();
}

// "\"a\", \"b\" or \"c\""
std::string listChoices(std::span<const std::string_view> choices)
{
    std::string out;
    for (size_t i = 0; i < choices.size(); ++i) {
        if (i > 0) out += i + 1 == choices.size() ? " or " : ", ";
        out += json::quote(choices[i]);
    }
    return out;
}

std::string quote(std::string_view s)
{
    return json::quote(s);
}

// How a value reads in a message: `the string "2"`, `2.5`, `#true`.
std::string describe(const kdl::Value& v)
{
    if (v.isString()) return "the string " + quote(v.text);
    kdl::Value bare = v;
    bare.type.reset();
    return kdl::formatValue(bare);
}

bool isValidVmName(std::string_view name)
{
    if (name.empty() || name.size() > kMaxVmNameLength) return false;
    auto alnum = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    };
    if (!alnum(name[0])) return false;
    return std::all_of(name.begin(), name.end(),
                       [&](char c) { return alnum(c) || c == '.' || c == '_' || c == '-'; });
}

// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
bool isValidHostname(std::string_view h)
{
    if (h.empty() || h.size() > 253) return false;
    size_t start = 0;
    while (start <= h.size()) {
        size_t dot = h.find('.', start);
        std::string_view label = h.substr(start, dot == std::string_view::npos ? h.npos : dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
        for (char c : label) {
            bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
            if (!ok) return false;
        }
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    return true;
}

bool isSha256Hex(std::string_view s)
{
    return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
           });
}

// "2G" -> 2048 (MiB), for the hint when memory is written with a unit.
std::optional<uint64_t> mibFromSize(std::string_view s)
{
    size_t digits = 0;
    while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
    if (digits == 0 || digits > 9) return std::nullopt;
    uint64_t n = std::stoull(std::string(s.substr(0, digits)));
    std::string unit(s.substr(digits));
    for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (unit == "M" || unit == "MB" || unit == "MIB") return n;
    if (unit == "G" || unit == "GB" || unit == "GIB") return n * 1024;
    if (unit == "T" || unit == "TB" || unit == "TIB") return n * 1024 * 1024;
    return std::nullopt;
}

class Checker {
public:
    Checker(std::string_view text, VmFile& out, const VmFileOptions& options)
        : text_(text), out_(out), opts_(options)
    {
    }

    void run()
    {
        kdl::ParseOptions po;
        po.dialect = kdl::Dialect::V2ThenV1;
        po.maxDepth = 32;
        auto parsed = kdl::parseDocument(text_, po);
        if (!parsed.ok()) {
            error(parsed.error.pos, parsed.error.message, parsed.error.hint);
            return;
        }
        std::map<std::string, kdl::Position> seen;
        bool anyVm = false;
        for (const auto& node : parsed.document->nodes) {
            if (node.name != "vm") {
                unknown(node, kTopLevel, "at the top level of a VMFile",
                        "A VMFile holds vm \"NAME\" { ... } blocks; see docs/vmfile.md");
                continue;
            }
            anyVm = true;
            VmDefinition vm;
            checkVm(node, vm);
            if (vm.name.empty()) continue;
            if (auto it = seen.find(vm.name); it != seen.end()) {
                error(node.args[0].pos,
                      "VM name " + quote(vm.name) + " is used twice (first on line " +
                          std::to_string(it->second.line) + ")",
                      "Give each vm a unique name");
                continue;
            }
            seen.emplace(vm.name, node.pos);
            out_.vms.push_back(std::move(vm));
        }
        if (!anyVm && out_.diagnostics.empty())
            error(kdl::Position{1, 1}, "No vm blocks in this file",
                  "Define at least one: vm \"NAME\" { image \"disk.qcow2\" }");
    }

private:
    // ---- Reporting ----
    void error(kdl::Position pos, std::string message, std::string hint)
    {
        Diagnostic d;
        d.file = out_.file;
        d.line = pos.line;
        d.column = pos.column;
        d.message = std::move(message);
        d.hint = std::move(hint);
        d.sourceLine = std::string(kdl::lineText(text_, pos.line));
        out_.diagnostics.push_back(std::move(d));
    }

    // An unknown node: "Unknown field "vcpu" in vm "web"", with a did-you-mean.
    void unknown(const kdl::Node& node, std::span<const std::string_view> known, const std::string& where,
                 std::string hint)
    {
        std::string what = where.starts_with("at the top") ? "node" : "field";
        std::string msg = "Unknown " + what + " " + quote(node.name) + " " + where;
        if (auto m = closestMatch(node.name, known)) {
            msg += "; did you mean " + quote(*m) + "?";
        } else {
            hint = "Known here: " + listChoices(known);
        }
        error(node.pos, std::move(msg), std::move(hint));
    }

    // ---- Shapes ----
    // A field with exactly one argument, no properties, and (unless allowed) no block.
    const kdl::Value* single(const kdl::Node& node, std::string_view example, bool blockAllowed = false)
    {
        bool ok = true;
        for (const auto& p : node.props) {
            error(p.pos, quote(node.name) + " takes no properties", "Write it as: " + std::string(example));
            ok = false;
        }
        if (node.hasChildrenBlock && !blockAllowed) {
            error(node.pos, quote(node.name) + " takes no { } block", "Write it as: " + std::string(example));
            ok = false;
        }
        if (node.args.empty()) {
            error(node.pos, quote(node.name) + " needs a value", "Write it as: " + std::string(example));
            return nullptr;
        }
        if (node.args.size() > 1) {
            error(node.args[1].pos,
                  quote(node.name) + " takes one value, not " + std::to_string(node.args.size()),
                  "Write it as: " + std::string(example));
            ok = false;
        }
        return ok ? &node.args[0] : nullptr;
    }

    std::optional<std::string> stringValue(const kdl::Node& node, const kdl::Value& v,
                                           std::string_view example)
    {
        if (!v.isString()) {
            error(v.pos, quote(node.name) + " expects a string, not " + describe(v),
                  "Quote it: " + node.name + " \"" + kdl::formatValue(v) + "\"");
            return std::nullopt;
        }
        if (v.text.empty()) {
            error(v.pos, quote(node.name) + " must not be empty", "Write it as: " + std::string(example));
            return std::nullopt;
        }
        if (v.text.find('\0') != std::string::npos) {
            error(v.pos, quote(node.name) + " must not contain a NUL character", "Remove the \\u{0}");
            return std::nullopt;
        }
        return v.text;
    }

    std::optional<std::string> stringField(const kdl::Node& node, std::string_view example,
                                           bool blockAllowed = false)
    {
        const kdl::Value* v = single(node, example, blockAllowed);
        if (!v) return std::nullopt;
        return stringValue(node, *v, example);
    }

    std::optional<std::string> choiceField(const kdl::Node& node, std::span<const std::string_view> choices,
                                           std::string_view example, bool blockAllowed = false)
    {
        auto s = stringField(node, example, blockAllowed);
        if (!s) return std::nullopt;
        if (contains(choices, *s)) return s;
        const kdl::Value& v = node.args[0];
        std::string msg = "Unknown " + node.name + " " + quote(*s) + "; expected " + listChoices(choices);
        std::string hint = "Write it as: " + std::string(example);
        if (auto m = closestMatch(*s, choices)) hint = "Did you mean " + quote(*m) + "?";
        if (node.name == "network" && *s == "vnic")
            hint = "vnic is vmctl's illumos-only mode; on Linux use \"tap\" with a bridge";
        if (node.name == "backend" && (*s == "kvm" || *s == "tcg"))
            hint = "The backend is the hypervisor program; KVM or TCG is chosen with accel " + quote(*s);
        error(v.pos, std::move(msg), std::move(hint));
        return std::nullopt;
    }

    std::optional<uint64_t> integerField(const kdl::Node& node, uint64_t max, std::string_view unit)
    {
        std::string example = node.name + " 2";
        if (node.name == "memory") example = "memory 2048";
        const kdl::Value* v = single(node, example);
        if (!v) return std::nullopt;
        std::string want = "a whole number";
        if (!unit.empty()) want += " of " + std::string(unit);
        want += " from 1 to " + std::to_string(max);
        auto bad = [&](std::string hint) {
            error(v->pos, quote(node.name) + " expects " + want + ", not " + describe(*v), std::move(hint));
            return std::nullopt;
        };
        if (v->isString()) {
            if (node.name == "memory") {
                if (auto mib = mibFromSize(v->text))
                    return bad("Memory is a number of MiB, as in vmctl: write memory " +
                               std::to_string(*mib));
            }
            if (node.name == "disk" && !v->text.empty() && (v->text.back() == 'G' || v->text.back() == 'g'))
                return bad("Disk size is a number of GiB, as in vmctl: write disk " +
                           v->text.substr(0, v->text.size() - 1));
            bool numeric = !v->text.empty() && std::all_of(v->text.begin(), v->text.end(),
                                                           [](char c) { return c >= '0' && c <= '9'; });
            if (numeric) return bad("Write the number without quotes: " + node.name + " " + v->text);
            return bad("Write a whole number: " + example);
        }
        if (v->kind != kdl::ValueKind::Integer) return bad("Write a whole number: " + example);
        auto n = v->toInt64();
        if (!n || *n < 1 || static_cast<uint64_t>(*n) > max) return bad("Write it as: " + example);
        return static_cast<uint64_t>(*n);
    }

    // A local path: `~` expanded, made absolute against the VMFile's folder.
    std::optional<std::string> pathField(const kdl::Node& node, std::string_view example,
                                         std::string_view what)
    {
        auto s = stringField(node, example);
        if (!s) return std::nullopt;
        std::string p = *s;
        if (p == "~" || p.starts_with("~/")) {
            if (opts_.home.empty()) {
                error(node.args[0].pos, "Cannot expand ~ in " + quote(p) + ": the home folder is not known",
                      "Set HOME, or write an absolute path");
                return std::nullopt;
            }
            p = opts_.home + p.substr(1);
        } else if (p.front() != '/') {
            p = opts_.baseDir + "/" + p;
        }
        p = std::filesystem::path(p).lexically_normal().string();
        if (p.size() > 1 && p.back() == '/') p.pop_back();
        if (opts_.checkFiles) checkReadable(node.args[0].pos, p, what);
        return p;
    }

    void checkReadable(kdl::Position pos, const std::string& path, std::string_view what)
    {
        struct stat st {};
        std::string hint = "Relative paths start from the VMFile's folder, " + opts_.baseDir;
        if (::stat(path.c_str(), &st) != 0) {
            int err = errno;
            error(pos, "Cannot find the " + std::string(what) + " " + path + ": " + std::strerror(err), hint);
            return;
        }
        if (!S_ISREG(st.st_mode)) {
            error(pos, "The " + std::string(what) + " " + path + " is not a regular file", hint);
            return;
        }
        if (::access(path.c_str(), R_OK) != 0)
            error(pos, "Cannot read the " + std::string(what) + " " + path + ": " + std::strerror(errno),
                  "Check the file's permissions: it is read as you, not as vmrd");
    }

    // A node that must carry a { } block and nothing else; returns whether it has one.
    bool blockOnly(const kdl::Node& node, std::string_view example, bool argsChecked = false)
    {
        if (!argsChecked)
            for (const auto& a : node.args)
                error(a.pos, quote(node.name) + " takes no value before its { } block",
                      "Write it as: " + std::string(example));
        for (const auto& p : node.props)
            error(p.pos, quote(node.name) + " takes no properties", "Write it as: " + std::string(example));
        if (!node.hasChildrenBlock) {
            error(node.pos, quote(node.name) + " needs a { } block", "Write it as: " + std::string(example));
            return false;
        }
        return true;
    }

    // Reports a second occurrence of a field that may appear once; true if first.
    bool once(std::map<std::string, kdl::Position>& seen, const kdl::Node& node, const std::string& where)
    {
        auto [it, inserted] = seen.emplace(node.name, node.pos);
        if (inserted) return true;
        error(node.pos,
              quote(node.name) + " is given twice " + where + " (first on line " +
                  std::to_string(it->second.line) + ")",
              "Keep one of them");
        return false;
    }

    // The children of a block that are known and not repeated; the others are reported.
    std::vector<const kdl::Node*> knownFields(const kdl::Node& block, std::span<const std::string_view> known,
                                              const std::string& where, std::string_view example)
    {
        std::vector<const kdl::Node*> out;
        std::map<std::string, kdl::Position> seen;
        for (const auto& c : block.children) {
            if (!contains(known, c.name))
                unknown(c, known, where, "Write it as: " + std::string(example));
            else if (once(seen, c, where))
                out.push_back(&c);
        }
        return out;
    }

    // ---- vm ----
    // Fills `vm`; its name stays empty when the name is missing or invalid.
    void checkVm(const kdl::Node& node, VmDefinition& vm)
    {
        vm.pos = node.pos;
        std::string label = "vm";
        if (node.args.empty()) {
            error(node.pos, "A vm block needs a name", "Write it as: vm \"web\" { ... }");
        } else if (!node.args[0].isString()) {
            error(node.args[0].pos, "A vm name must be a string, not " + describe(node.args[0]),
                  "Quote it: vm \"" + kdl::formatValue(node.args[0]) + "\"");
        } else if (!isValidVmName(node.args[0].text)) {
            error(node.args[0].pos, "Invalid vm name " + quote(node.args[0].text),
                  "A name is 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit");
        } else {
            vm.name = node.args[0].text;
            label = "vm " + quote(vm.name);
        }
        for (size_t i = 1; i < node.args.size(); ++i)
            error(node.args[i].pos, "A vm block takes one name, not " + std::to_string(node.args.size()),
                  "Write it as: vm \"web\" { ... }");
        if (!blockOnly(node, "vm \"web\" { image \"disk.qcow2\" }", true)) return;

        std::map<std::string, kdl::Position> seen;
        const kdl::Node* imageNode = nullptr;
        const kdl::Node* urlNode = nullptr;
        const kdl::Node* shaNode = nullptr;
        const kdl::Node* kernelNode = nullptr;
        std::vector<const kdl::Node*> needKernel;
        std::string in = "in " + label;
        for (const auto& f : node.children) {
            if (!contains(kVmFields, f.name)) {
                unknown(f, kVmFields, in, "See docs/vmfile.md for every field");
                continue;
            }
            if (f.name != "provision" && !once(seen, f, in)) continue;
            if (f.name == "image") {
                imageNode = &f;
                if (auto p = pathField(f, "image \"images/debian.qcow2\"", "image")) vm.image = *p;
            } else if (f.name == "image-url") {
                urlNode = &f;
                if (auto u = stringField(f, "image-url \"https://example.org/debian.qcow2\"")) {
                    if (u->starts_with("https://") || u->starts_with("http://") || u->starts_with("oci://"))
                        vm.imageUrl = *u;
                    else
                        error(f.args[0].pos,
                              "\"image-url\" must start with https://, http:// or oci://, not " + quote(*u),
                              "Use an https:// URL, or image \"PATH\" for a local file");
                }
            } else if (f.name == "image-sha256") {
                shaNode = &f;
                if (auto h = stringField(f, "image-sha256 \"<64 hex digits>\"")) {
                    if (isSha256Hex(*h)) {
                        vm.imageSha256 = *h;
                        for (auto& c : vm.imageSha256)
                            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                    } else {
                        error(f.args[0].pos,
                              "\"image-sha256\" must be 64 hexadecimal digits, not " + quote(*h),
                              "Write the output of sha256sum for the image");
                    }
                }
            } else if (f.name == "vcpus") {
                if (auto n = integerField(f, kMaxVcpus, "")) vm.vcpus = static_cast<uint32_t>(*n);
            } else if (f.name == "memory") {
                if (auto n = integerField(f, kMaxMemoryMib, "MiB")) vm.memoryMib = *n;
            } else if (f.name == "disk") {
                if (auto n = integerField(f, kMaxDiskGib, "GiB")) vm.diskGib = *n;
            } else if (f.name == "network") {
                checkNetwork(f, vm);
            } else if (f.name == "cloud-init") {
                checkCloudInit(f, vm);
            } else if (f.name == "ssh") {
                checkSsh(f, vm);
            } else if (f.name == "provision") {
                checkProvision(f, vm);
            } else if (f.name == "backend") {
                if (auto b = choiceField(f, kBackends, "backend \"qemu\"")) vm.backend = *b;
            } else if (f.name == "kernel") {
                kernelNode = &f;
                if (auto p = pathField(f, "kernel \"vmlinuz\"", "kernel")) vm.kernel = *p;
            } else if (f.name == "initrd") {
                needKernel.push_back(&f);
                if (auto p = pathField(f, "initrd \"initrd.img\"", "initrd")) vm.initrd = *p;
            } else if (f.name == "cmdline") {
                needKernel.push_back(&f);
                if (auto s = stringField(f, "cmdline \"console=ttyS0\"")) vm.cmdline = *s;
            } else if (f.name == "accel") {
                if (auto a = choiceField(f, kAccels, "accel \"kvm\"")) vm.accel = *a;
            }
        }
        if (imageNode && urlNode) {
            const kdl::Node* later = imageNode->pos.line > urlNode->pos.line ? imageNode : urlNode;
            error(later->pos, label + " has both image and image-url", "Keep one image source");
        } else if (!imageNode && !urlNode) {
            error(node.pos, label + " has no image",
                  "Add image \"disk.qcow2\" (a local file) or image-url \"https://...\" (downloaded)");
        }
        if (shaNode && !urlNode)
            error(shaNode->pos, "\"image-sha256\" checks a download and needs image-url",
                  "Remove it, or use image-url instead of image");
        if (!kernelNode)
            for (const auto* n : needKernel)
                error(n->pos, quote(n->name) + " needs a kernel",
                      "Add kernel \"vmlinuz\", or remove " + n->name);
        if (vm.cloudInit && vm.cloudInit->hostname.empty() && isValidHostname(vm.name))
            vm.cloudInit->hostname = vm.name;
    }

    void checkNetwork(const kdl::Node& f, VmDefinition& vm)
    {
        constexpr std::string_view kExample = "network \"tap\" { bridge \"br0\" }";
        // vmctl's code reads the bridge as a property and its docs as a child node: take both.
        std::vector<std::pair<kdl::Position, const kdl::Value*>> bridges;
        kdl::Node shape = f;
        shape.props.clear();
        shape.hasChildrenBlock = false;
        for (const auto& p : f.props) {
            if (p.name == "bridge") {
                bridges.emplace_back(p.pos, &p.value);
            } else {
                std::string msg = "Unknown property " + quote(p.name) + " on network";
                if (p.name == "name") msg += " (vmctl's vnic name is illumos-only)";
                error(p.pos, msg, "The only property is bridge: " + std::string(kExample));
            }
        }
        for (const auto* c : knownFields(f, kNetworkFields, "in network", kExample))
            if (const kdl::Value* v = single(*c, "bridge \"br0\"")) bridges.emplace_back(c->pos, v);
        auto mode = choiceField(shape, kNetworkModes, "network \"user\"");
        if (!mode) return;
        vm.network = *mode;
        if (bridges.size() > 1) error(bridges[1].first, "The bridge is given twice", "Keep one of them");
        if (*mode != "tap") {
            if (!bridges.empty())
                error(bridges[0].first, "A bridge applies to network \"tap\" only, not " + quote(*mode),
                      "Remove the bridge, or write network \"tap\"");
            return;
        }
        vm.bridge = "br0";
        if (bridges.empty()) return;
        const kdl::Value& b = *bridges[0].second;
        if (!b.isString()) {
            error(b.pos, "The bridge must be a string, not " + describe(b), "Write it as: bridge \"br0\"");
            return;
        }
        bool ok = !b.text.empty() && b.text.size() <= kMaxBridgeNameLength && b.text != "." && b.text != "..";
        for (char c : b.text) ok = ok && c != '/' && c != ':' && static_cast<unsigned char>(c) > 0x20;
        if (!ok) {
            error(b.pos, "Invalid bridge name " + quote(b.text),
                  "A Linux interface name is 1 to 15 characters without '/', ':' or spaces");
            return;
        }
        vm.bridge = b.text;
    }

    void checkCloudInit(const kdl::Node& f, VmDefinition& vm)
    {
        VmDefinition::CloudInit ci;
        constexpr std::string_view kExample = "cloud-init { hostname \"web\" }";
        if (!blockOnly(f, kExample)) return;
        for (const auto* c : knownFields(f, kCloudInitFields, "in cloud-init", kExample)) {
            if (c->name == "hostname") {
                if (auto h = stringField(*c, "hostname \"web\"")) {
                    if (isValidHostname(*h))
                        ci.hostname = *h;
                    else
                        error(c->args[0].pos, "Invalid hostname " + quote(*h),
                              "A hostname is labels of letters, digits and inner '-', joined by '.'");
                }
            } else if (c->name == "ssh-key") {
                if (auto p = pathField(*c, "ssh-key \"~/.ssh/id_ed25519.pub\"", "public key")) ci.sshKey = *p;
            } else if (auto p = pathField(*c, "user-data \"user-data.yaml\"", "user-data file")) {
                ci.userData = *p;
            }
        }
        vm.cloudInit = std::move(ci);
    }

    void checkSsh(const kdl::Node& f, VmDefinition& vm)
    {
        VmDefinition::Ssh ssh;
        constexpr std::string_view kExample = "ssh { user \"ubuntu\" }";
        if (!blockOnly(f, kExample)) return;
        for (const auto* c : knownFields(f, kSshFields, "in ssh", kExample)) {
            if (c->name == "user") {
                if (auto u = stringField(*c, "user \"ubuntu\"")) ssh.user = *u;
            } else if (auto p = pathField(*c, "private-key \"~/.ssh/id_ed25519\"", "private key")) {
                ssh.privateKey = *p;
            }
        }
        vm.ssh = std::move(ssh);
    }

    void checkProvision(const kdl::Node& f, VmDefinition& vm)
    {
        constexpr std::string_view kExample = "provision \"shell\" { inline \"apt-get update\" }";
        kdl::Node shape = f;
        shape.hasChildrenBlock = false;
        auto type = choiceField(shape, kProvisionTypes, kExample, true);
        if (!f.hasChildrenBlock) {
            error(f.pos, "\"provision\" needs a { } block", "Write it as: " + std::string(kExample));
            return;
        }
        if (!type) return;
        bool shell = *type == "shell";
        auto own = shell ? std::span<const std::string_view>(kShellFields)
                         : std::span<const std::string_view>(kFileFields);
        auto other = shell ? std::span<const std::string_view>(kFileFields)
                           : std::span<const std::string_view>(kShellFields);
        std::string in = "in provision " + quote(*type);
        Provisioner p;
        p.kind = shell ? Provisioner::Kind::Shell : Provisioner::Kind::File;
        std::map<std::string, kdl::Position> seen;
        bool failed = false;
        for (const auto& c : f.children) {
            if (!contains(own, c.name)) {
                if (contains(other, c.name)) {
                    error(c.pos,
                          quote(c.name) + " belongs to provision " + quote(shell ? "file" : "shell") +
                              ", not " + quote(*type),
                          "Fields of provision " + quote(*type) + ": " + listChoices(own));
                } else {
                    unknown(c, own, in, "Fields of provision " + quote(*type) + ": " + listChoices(own));
                }
                failed = true;
                continue;
            }
            if (!once(seen, c, in)) {
                failed = true;
                continue;
            }
            if (c.name == "inline") {
                if (auto s = stringField(c, "inline \"apt-get update\"")) p.inlineCommand = *s;
            } else if (c.name == "script") {
                if (auto s = pathField(c, "script \"scripts/setup.sh\"", "script")) p.script = *s;
            } else if (c.name == "source") {
                if (auto s = pathField(c, "source \"files/app.conf\"", "source file")) p.source = *s;
            } else if (auto s = stringField(c, "destination \"/etc/app.conf\"")) {
                if (s->front() == '/')
                    p.destination = *s;
                else
                    error(c.args[0].pos,
                          "\"destination\" must be an absolute path in the guest, not " + quote(*s),
                          "Write it as: destination \"/" + *s + "\"");
            }
        }
        if (failed) return;
        if (shell) {
            if (seen.count("inline") && seen.count("script")) {
                error(seen["script"].line > seen["inline"].line ? seen["script"] : seen["inline"],
                      "A shell provisioner takes inline or script, not both",
                      "Split it into two provision blocks");
            } else if (!seen.count("inline") && !seen.count("script")) {
                error(f.pos, "A shell provisioner needs inline or script",
                      "Add inline \"command\" or script \"setup.sh\"");
            }
        } else {
            for (std::string_view need : kFileFields)
                if (!seen.count(std::string(need)))
                    error(f.pos, "A file provisioner needs " + std::string(need),
                          "Write it as: provision \"file\" { source \"app.conf\"; destination "
                          "\"/etc/app.conf\" }");
        }
        vm.provisioners.push_back(std::move(p));
    }

    std::string_view text_;
    VmFile& out_;
    const VmFileOptions& opts_;
};

// UTF-8 with invalid bytes replaced, so a rendered line is always printable text.
std::string printable(std::string_view s)
{
    std::string out;
    for (size_t i = 0; i < s.size();) {
        size_t at = i;
        auto c = kdl::chars::decodeUtf8(s, i);
        if (!c) {
            out += "\xEF\xBF\xBD";
            i = at + 1;
        } else if (*c < 0x20 && *c != '\t') {
            out += ' ';
        } else {
            out.append(s.substr(at, i - at));
        }
    }
    return out;
}

// ---- The resolved definition as KDL ----
kdl::Value str(std::string s)
{
    kdl::Value v;
    v.kind = kdl::ValueKind::String;
    v.text = std::move(s);
    return v;
}

kdl::Value num(uint64_t n)
{
    kdl::Value v;
    v.kind = kdl::ValueKind::Integer;
    v.text = std::to_string(n);
    return v;
}

kdl::Node field(std::string name, kdl::Value v)
{
    kdl::Node n;
    n.name = std::move(name);
    n.args.push_back(std::move(v));
    return n;
}

void addString(kdl::Node& parent, std::string name, const std::string& value)
{
    if (!value.empty()) parent.children.push_back(field(std::move(name), str(value)));
}

kdl::Node vmNode(const VmDefinition& vm)
{
    kdl::Node n = field("vm", str(vm.name));
    addString(n, "image", vm.image);
    addString(n, "image-url", vm.imageUrl);
    addString(n, "image-sha256", vm.imageSha256);
    n.children.push_back(field("vcpus", num(vm.vcpus)));
    n.children.push_back(field("memory", num(vm.memoryMib)));
    if (vm.diskGib) n.children.push_back(field("disk", num(*vm.diskGib)));
    kdl::Node net = field("network", str(vm.network));
    addString(net, "bridge", vm.bridge);
    n.children.push_back(std::move(net));
    n.children.push_back(field("backend", str(vm.backend)));
    addString(n, "accel", vm.accel);
    addString(n, "kernel", vm.kernel);
    addString(n, "initrd", vm.initrd);
    addString(n, "cmdline", vm.cmdline);
    if (vm.cloudInit) {
        kdl::Node ci;
        ci.name = "cloud-init";
        addString(ci, "hostname", vm.cloudInit->hostname);
        addString(ci, "ssh-key", vm.cloudInit->sshKey);
        addString(ci, "user-data", vm.cloudInit->userData);
        ci.hasChildrenBlock = true;
        n.children.push_back(std::move(ci));
    }
    if (vm.ssh) {
        kdl::Node ssh;
        ssh.name = "ssh";
        addString(ssh, "user", vm.ssh->user);
        addString(ssh, "private-key", vm.ssh->privateKey);
        ssh.hasChildrenBlock = true;
        n.children.push_back(std::move(ssh));
    }
    for (const auto& p : vm.provisioners) {
        bool shell = p.kind == Provisioner::Kind::Shell;
        kdl::Node pn = field("provision", str(shell ? "shell" : "file"));
        addString(pn, "inline", p.inlineCommand);
        addString(pn, "script", p.script);
        addString(pn, "source", p.source);
        addString(pn, "destination", p.destination);
        n.children.push_back(std::move(pn));
    }
    return n;
}

void writeOptional(json::Writer& w, std::string_view key, const std::string& value)
{
    w.key(key);
    if (value.empty())
        w.null();
    else
        w.value(value);
}

void writeVm(json::Writer& w, const VmDefinition& vm)
{
    w.beginObject();
    w.field("name", vm.name);
    writeOptional(w, "image", vm.image);
    writeOptional(w, "image_url", vm.imageUrl);
    writeOptional(w, "image_sha256", vm.imageSha256);
    w.field("vcpus", vm.vcpus);
    w.field("memory_mib", static_cast<unsigned long long>(vm.memoryMib));
    w.key("disk_gib");
    if (vm.diskGib)
        w.value(static_cast<unsigned long long>(*vm.diskGib));
    else
        w.null();
    w.field("network", vm.network);
    writeOptional(w, "bridge", vm.bridge);
    w.field("backend", vm.backend);
    writeOptional(w, "accel", vm.accel);
    writeOptional(w, "kernel", vm.kernel);
    writeOptional(w, "initrd", vm.initrd);
    writeOptional(w, "cmdline", vm.cmdline);
    w.key("cloud_init");
    if (vm.cloudInit) {
        w.beginObject();
        writeOptional(w, "hostname", vm.cloudInit->hostname);
        writeOptional(w, "ssh_key", vm.cloudInit->sshKey);
        writeOptional(w, "user_data", vm.cloudInit->userData);
        w.endObject();
    } else {
        w.null();
    }
    w.key("ssh");
    if (vm.ssh) {
        w.beginObject();
        w.field("user", vm.ssh->user);
        writeOptional(w, "private_key", vm.ssh->privateKey);
        w.endObject();
    } else {
        w.null();
    }
    w.key("provisioners").beginArray();
    for (const auto& p : vm.provisioners) {
        w.beginObject();
        if (p.kind == Provisioner::Kind::Shell) {
            w.field("type", "shell");
            writeOptional(w, "inline", p.inlineCommand);
            writeOptional(w, "script", p.script);
        } else {
            w.field("type", "file");
            w.field("source", p.source);
            w.field("destination", p.destination);
        }
        w.endObject();
    }
    w.endArray();
    w.endObject();
}

}  // namespace

std::string Diagnostic::render() const
{
    std::string out = file;
    if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
    out += ": error: " + message + "\n";
    if (line > 0) {
        std::string num = std::to_string(line);
        std::string shown = printable(sourceLine);
        out += " " + num + " | " + shown + "\n";
        out += " " + std::string(num.size(), ' ') + " | ";
        // Under the caret's column: keep tabs so the caret lines up, spaces for the rest.
        size_t col = 1;
        for (size_t i = 0; i < shown.size() && col < column;) {
            size_t at = i;
            (void)kdl::chars::decodeUtf8(shown, i);
            out += shown[at] == '\t' ? '\t' : ' ';
            ++col;
        }
        out += "^\n";
    }
    if (!hint.empty()) out += "  hint: " + hint + "\n";
    return out;
}

VmFile parseVmFile(std::string_view text, std::string_view fileName, const VmFileOptions& options)
{
    VmFile out;
    out.file = std::string(fileName);
    out.baseDir = options.baseDir;
    Checker(text, out, options).run();
    std::stable_sort(out.diagnostics.begin(), out.diagnostics.end(),
                     [](const Diagnostic& a, const Diagnostic& b) {
                         return a.line != b.line ? a.line < b.line : a.column < b.column;
                     });
    if (!out.ok()) out.vms.clear();
    return out;
}

VmFile loadVmFile(const std::string& path, const std::string& home, bool checkFiles)
{
    std::error_code ec;
    std::filesystem::path abs = std::filesystem::absolute(path, ec).lexically_normal();
    VmFileOptions opts;
    opts.baseDir = abs.parent_path().string();
    opts.home = home;
    opts.checkFiles = checkFiles;
    auto cannot = [&](std::string why) {
        VmFile f;
        f.file = path;
        f.baseDir = opts.baseDir;
        Diagnostic d;
        d.file = path;
        d.message = "Cannot read the VMFile: " + why;
        d.hint = "Pass the VMFile with --file PATH, or run the command in the folder that holds VMFile.kdl";
        f.diagnostics.push_back(std::move(d));
        return f;
    };
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd) return cannot(std::strerror(errno));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return cannot(std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return cannot("not a regular file");
    std::string text;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return cannot(std::strerror(errno));
        if (n == 0) break;
        text.append(buf, static_cast<size_t>(n));
        if (text.size() > kMaxVmFileBytes) return cannot("it is larger than 1 MiB");
    }
    return parseVmFile(text, path, opts);
}

std::string renderDiagnostics(const VmFile& vmfile)
{
    std::string out;
    for (const auto& d : vmfile.diagnostics) out += d.render();
    size_t n = vmfile.diagnostics.size();
    if (n > 0) out += std::to_string(n) + (n == 1 ? " error" : " errors") + " in " + vmfile.file + "\n";
    return out;
}

std::string renderDefinitions(const VmFile& vmfile)
{
    kdl::Document doc;
    for (const auto& vm : vmfile.vms) doc.nodes.push_back(vmNode(vm));
    return kdl::format(doc);
}

std::string renderJson(const VmFile& vmfile)
{
    json::Writer w;
    w.beginObject();
    w.field("file", vmfile.file);
    w.field("valid", vmfile.ok());
    if (vmfile.ok()) {
        w.key("vms").beginArray();
        for (const auto& vm : vmfile.vms) writeVm(w, vm);
        w.endArray();
    } else {
        w.key("errors").beginArray();
        for (const auto& d : vmfile.diagnostics) {
            w.beginObject();
            w.field("file", d.file);
            w.field("line", d.line);
            w.field("column", d.column);
            w.field("message", d.message);
            w.field("hint", d.hint);
            w.endObject();
        }
        w.endArray();
    }
    w.endObject();
    return w.take() + "\n";
}

CheckReport checkVmFile(const std::string& path, const std::string& home, bool json)
{
    VmFile f = loadVmFile(path, home, true);
    CheckReport r;
    r.exitCode = f.ok() ? 0 : 1;
    if (json)
        r.out = renderJson(f);
    else if (f.ok())
        r.out = renderDefinitions(f);
    else
        r.err = renderDiagnostics(f);
    return r;
}

}  // namespace vmr::config
