#include "config/vmfile.h"

#include "base/fd.h"
#include "base/json.h"
#include "base/suggest.h"
#include "config/kdl_chars.h"
#include "model/names.h"

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
#include <set>
#include <span>

namespace vmr::config {

namespace {

constexpr std::array<std::string_view, 17> kVmFields = {
    "image",     "image-url", "image-sha256", "vcpus",  "memory",  "disk",  "network",  "cloud-init", "ssh",
    "provision", "backend",   "kernel",       "initrd", "cmdline", "accel", "firmware", "vnc"};
constexpr std::array<std::string_view, 1> kNetworkFields = {"bridge"};
constexpr std::array<std::string_view, 2> kProvisionTypes = {"shell", "file"};
constexpr std::array<std::string_view, 2> kShellFields = {"inline", "script"};
constexpr std::array<std::string_view, 2> kFileFields = {"source", "destination"};
constexpr std::array<std::string_view, 1> kTopLevel = {"vm"};

bool contains(std::span<const std::string_view> list, std::string_view word)
{
    return std::find(list.begin(), list.end(), word) != list.end();
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
            if (vm.spec.name.empty()) continue;
            if (auto it = seen.find(vm.spec.name); it != seen.end()) {
                error(node.args[0].pos,
                      "VM name " + quote(vm.spec.name) + " is used twice (first on line " +
                          std::to_string(it->second.line) + ")",
                      "Give each vm a unique name");
                continue;
            }
            seen.emplace(vm.spec.name, node.pos);
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
            hint = "Known here: " + model::joinWords(known);
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
        std::string msg =
            "Unknown " + node.name + " " + quote(*s) + "; expected " + model::joinWords(choices);
        std::string hint = "Write it as: " + std::string(example);
        if (auto m = closestMatch(*s, choices)) hint = "Did you mean " + quote(*m) + "?";
        if (node.name == "network" && *s == "vnic")
            hint = "vnic is vmctl's illumos-only mode; on Linux use \"tap\" with a bridge";
        if (node.name == "backend" && (*s == "kvm" || *s == "tcg"))
            hint = "The backend is the hypervisor program; KVM or TCG is chosen with accel " + quote(*s);
        error(v.pos, std::move(msg), std::move(hint));
        return std::nullopt;
    }

    // A value of a spec field, checked as vm.create checks it: "\"vcpus\" must be ...".
    std::optional<std::string> specText(const kdl::Node& node, const kdl::Value& at, model::Field f,
                                        const std::string& value)
    {
        auto checked = model::checkText(f, value);
        if (checked) return std::move(*checked);
        std::string hint = checked.error().hint();
        if (node.name == "network" && value == "vnic")
            hint = "vnic is vmctl's illumos-only mode; on Linux use \"tap\" with a bridge";
        if (node.name == "backend" && (value == "kvm" || value == "tcg"))
            hint = "The backend is the hypervisor program; KVM or TCG is chosen with accel " + quote(value);
        error(at.pos, quote(node.name) + " " + checked.error().message(), std::move(hint));
        return std::nullopt;
    }

    std::optional<std::string> textField(const kdl::Node& node, model::Field f, std::string_view example,
                                         bool blockAllowed = false)
    {
        auto s = stringField(node, example, blockAllowed);
        if (!s) return std::nullopt;
        return specText(node, node.args[0], f, *s);
    }

    std::optional<uint64_t> integerField(const kdl::Node& node, model::Field f)
    {
        const model::FieldInfo& info = model::fieldInfo(f);
        std::string example = node.name + " 2";
        if (node.name == "memory") example = "memory 2048";
        const kdl::Value* v = single(node, example);
        if (!v) return std::nullopt;
        std::string want = "a whole number";
        if (!info.unit.empty()) want += " of " + std::string(info.unit);
        want += " from " + std::to_string(info.min) + " to " + std::to_string(info.max);
        auto bad = [&](std::string hint) {
            error(v->pos, quote(node.name) + " must be " + want + ", not " + describe(*v), std::move(hint));
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
        auto checked = model::checkInteger(f, n ? *n : -1);
        if (!n || !checked) return bad("Write it as: " + example);
        return *checked;
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
        model::VmSpec& spec = vm.spec;
        std::string label = "vm";
        if (node.args.empty()) {
            error(node.pos, "A vm block needs a name", "Write it as: vm \"web\" { ... }");
        } else if (!node.args[0].isString()) {
            error(node.args[0].pos, "A vm name must be a string, not " + describe(node.args[0]),
                  "Quote it: vm \"" + kdl::formatValue(node.args[0]) + "\"");
        } else if (auto named = model::validateVmName(node.args[0].text); !named) {
            error(node.args[0].pos, "Invalid vm name " + quote(node.args[0].text),
                  "A name is 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit");
        } else {
            spec.name = node.args[0].text;
            label = "vm " + quote(spec.name);
        }
        for (size_t i = 1; i < node.args.size(); ++i)
            error(node.args[i].pos, "A vm block takes one name, not " + std::to_string(node.args.size()),
                  "Write it as: vm \"web\" { ... }");
        if (!blockOnly(node, "vm \"web\" { image \"disk.qcow2\" }", true)) return;

        std::map<std::string, kdl::Position> seen;
        fieldPos_.clear();
        failed_.clear();
        std::string in = "in " + label;
        for (const auto& f : node.children) {
            if (!contains(kVmFields, f.name)) {
                unknown(f, kVmFields, in, "See docs/vmfile.md for every field");
                continue;
            }
            if (f.name != "provision" && !once(seen, f, in)) continue;
            size_t before = out_.diagnostics.size();
            std::vector<model::Field> fields = checkVmField(f, vm);
            if (out_.diagnostics.size() != before) failed_.insert(fields.begin(), fields.end());
        }
        if (vm.hasCloudInit && spec.cloudInit.hostname.empty() && model::isValidHostname(spec.name))
            spec.cloudInit.hostname = spec.name;
        // What vm.create would refuse of the whole spec, at the line of the field concerned;
        // a field whose own value was wrong already has its error. The files vmrctl reads for
        // cloud-init count as given.
        model::VmSpec probe = spec;
        if (!vm.userDataFile.empty()) probe.cloudInit.userData = std::string();
        if (!vm.sshKeyFile.empty())
            probe.cloudInit.authorizedKeys.emplace_back("ssh-ed25519 (" + vm.sshKeyFile + ")");
        for (const auto& p : model::validate(probe, true)) {
            if (failed_.count(p.field) != 0) continue;
            auto at = fieldPos_.find(p.field);
            std::string hint = p.hint;
            if (p.field == model::Field::Image && spec.image.empty() && spec.imageUrl.empty())
                hint = "Add image \"disk.qcow2\" (a local file) or image-url \"https://...\" (downloaded)";
            error(at != fieldPos_.end() ? at->second : node.pos, label + ": " + p.message, hint);
        }
    }

    // Checks one field node; returns the spec fields it gives (their position is the node's).
    std::vector<model::Field> checkVmField(const kdl::Node& f, VmDefinition& vm)
    {
        model::VmSpec& spec = vm.spec;
        using model::Field;
        std::vector<Field> given;
        auto at = [&](Field field) {
            fieldPos_.emplace(field, f.pos);
            given.push_back(field);
        };
        if (f.name == "image") {
            at(Field::Image);
            if (auto p = pathField(f, "image \"images/debian.qcow2\"", "image")) spec.image = *p;
        } else if (f.name == "image-url") {
            at(Field::ImageUrl);
            given.push_back(Field::Image);  // a bad URL is the image source's problem already
            if (auto u = textField(f, Field::ImageUrl, "image-url \"https://example.org/debian.qcow2\""))
                spec.imageUrl = *u;
        } else if (f.name == "image-sha256") {
            at(Field::ImageSha256);
            if (auto h = textField(f, Field::ImageSha256, "image-sha256 \"<64 hex digits>\""))
                spec.imageSha256 = *h;
        } else if (f.name == "vcpus") {
            at(Field::Vcpus);
            if (auto n = integerField(f, Field::Vcpus)) spec.vcpus = static_cast<uint32_t>(*n);
        } else if (f.name == "memory") {
            at(Field::MemoryMib);
            if (auto n = integerField(f, Field::MemoryMib)) spec.memoryMib = *n;
        } else if (f.name == "disk") {
            at(Field::DiskGib);
            if (auto n = integerField(f, Field::DiskGib)) spec.diskGib = *n;
        } else if (f.name == "network") {
            at(Field::Network);
            at(Field::Bridge);
            checkNetwork(f, spec.network);
        } else if (f.name == "cloud-init") {
            at(Field::UserData);
            at(Field::AuthorizedKeys);
            checkCloudInit(f, vm);
        } else if (f.name == "ssh") {
            at(Field::SshUser);
            checkSsh(f, vm);
        } else if (f.name == "provision") {
            at(Field::Provision);
            checkProvision(f, vm);
        } else if (f.name == "backend") {
            at(Field::Backend);
            if (auto b = textField(f, Field::Backend, "backend \"qemu\""))
                spec.backend = *model::parseWord<model::Backend>(*b);
        } else if (f.name == "kernel") {
            at(Field::Kernel);
            if (auto p = pathField(f, "kernel \"vmlinuz\"", "kernel")) spec.kernel = *p;
        } else if (f.name == "initrd") {
            at(Field::Initrd);
            if (auto p = pathField(f, "initrd \"initrd.img\"", "initrd")) spec.initrd = *p;
        } else if (f.name == "cmdline") {
            at(Field::Cmdline);
            if (auto c = textField(f, Field::Cmdline, "cmdline \"console=ttyS0\"")) spec.cmdline = *c;
        } else if (f.name == "accel") {
            at(Field::Accel);
            if (auto a = textField(f, Field::Accel, "accel \"kvm\""))
                spec.accel = *model::parseWord<model::AccelChoice>(*a);
        } else if (f.name == "firmware") {
            at(Field::Firmware);
            checkFirmware(f, spec.firmware);
        } else if (f.name == "vnc") {
            at(Field::Vnc);
            if (const kdl::Value* v = single(f, "vnc #true")) {
                if (v->kind == kdl::ValueKind::Boolean)
                    spec.vnc = v->boolean;
                else
                    error(v->pos, "\"vnc\" must be #true or #false, not " + describe(*v),
                          "Write it as: vnc #true");
            }
        }
        return given;
    }

    void checkFirmware(const kdl::Node& f, model::Firmware& fw)
    {
        auto s = stringField(f, "firmware \"uefi\"");
        if (!s) return;
        if (*s == "bios" || *s == "uefi") {
            fw = *model::parseFirmware(*s);
            return;
        }
        if (s->find('/') == std::string::npos && s->find('.') == std::string::npos) {
            // A word, not a file name: most likely a misspelt "uefi" or "bios".
            std::array<std::string_view, 2> words = {"bios", "uefi"};
            std::string hint = "Or give the path of a firmware file";
            if (auto m = closestMatch(*s, words)) hint = "Did you mean " + quote(*m) + "?";
            error(f.args[0].pos,
                  "\"firmware\" must be \"bios\", \"uefi\" or a firmware file, not " + quote(*s), hint);
            return;
        }
        if (auto p = pathField(f, "firmware \"OVMF.fd\"", "firmware file"))
            fw = model::Firmware{model::FirmwareKind::File, *p};
    }

    void checkNetwork(const kdl::Node& f, model::Network& net)
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
        auto mode = textField(shape, model::Field::Network, "network \"user\"");
        if (!mode) return;
        net.mode = *model::parseWord<model::NetMode>(*mode);
        if (bridges.size() > 1) error(bridges[1].first, "The bridge is given twice", "Keep one of them");
        if (net.mode != model::NetMode::Tap) {
            if (!bridges.empty())
                error(bridges[0].first, "A bridge applies to network \"tap\" only, not " + quote(*mode),
                      "Remove the bridge, or write network \"tap\"");
            return;
        }
        net.bridge = std::string(model::kDefaultBridge);
        if (bridges.empty()) return;
        const kdl::Value& b = *bridges[0].second;
        if (!b.isString()) {
            error(b.pos, "The bridge must be a string, not " + describe(b), "Write it as: bridge \"br0\"");
            return;
        }
        kdl::Node bridgeNode;
        bridgeNode.name = "bridge";
        if (auto name = specText(bridgeNode, b, model::Field::Bridge, b.text)) net.bridge = *name;
    }

    // One field of a block (cloud-init, ssh): a spec field (text) or a local file vmrctl reads.
    struct BlockField {
        std::string_view name;
        std::string_view example;
        std::optional<model::Field> spec;  // empty: a file
        std::string* target;
        std::string_view what;  // a file's kind, for messages
    };

    // A block of such fields; false when it is not a { } block.
    bool checkBlock(const kdl::Node& f, std::string_view example, const std::vector<BlockField>& fields)
    {
        if (!blockOnly(f, example)) return false;
        std::vector<std::string_view> known;
        for (const auto& b : fields) known.push_back(b.name);
        for (const auto* c : knownFields(f, known, "in " + f.name, example)) {
            for (const auto& b : fields) {
                if (c->name != b.name) continue;
                std::optional<std::string> v;
                if (b.spec) {
                    fieldPos_.emplace(*b.spec, c->pos);
                    v = textField(*c, *b.spec, b.example);
                } else {
                    v = pathField(*c, b.example, b.what);
                }
                if (v) *b.target = *v;
            }
        }
        return true;
    }

    void checkCloudInit(const kdl::Node& f, VmDefinition& vm)
    {
        vm.hasCloudInit = checkBlock(
            f, "cloud-init { hostname \"web\" }",
            {{"hostname", "hostname \"web\"", model::Field::Hostname, &vm.spec.cloudInit.hostname, ""},
             {"ssh-key", "ssh-key \"~/.ssh/id_ed25519.pub\"", std::nullopt, &vm.sshKeyFile, "public key"},
             {"user-data", "user-data \"user-data.yaml\"", std::nullopt, &vm.userDataFile,
              "user-data file"}});
    }

    void checkSsh(const kdl::Node& f, VmDefinition& vm)
    {
        vm.hasSsh =
            checkBlock(f, "ssh { user \"ubuntu\" }",
                       {{"user", "user \"ubuntu\"", model::Field::SshUser, &vm.spec.cloudInit.user, ""},
                        {"private-key", "private-key \"~/.ssh/id_ed25519\"", std::nullopt, &vm.privateKey,
                         "private key"}});
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
        model::ProvisionStep p;
        p.kind = shell ? model::ProvisionStep::Kind::Shell : model::ProvisionStep::Kind::File;
        std::map<std::string, kdl::Position> seen;
        bool failed = false;
        for (const auto& c : f.children) {
            if (!contains(own, c.name)) {
                if (contains(other, c.name)) {
                    error(c.pos,
                          quote(c.name) + " belongs to provision " + quote(shell ? "file" : "shell") +
                              ", not " + quote(*type),
                          "Fields of provision " + quote(*type) + ": " + model::joinWords(own));
                } else {
                    unknown(c, own, in, "Fields of provision " + quote(*type) + ": " + model::joinWords(own));
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
        vm.spec.provision.push_back(std::move(p));
    }

    std::string_view text_;
    VmFile& out_;
    const VmFileOptions& opts_;
    // The current vm's fields: where each is, for cross-field problems, and which were wrong.
    std::map<model::Field, kdl::Position> fieldPos_;
    std::set<model::Field> failed_;
};

}  // namespace

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

}  // namespace vmr::config
