// Reading a VMFile from disk, and its renderings: diagnostics with a caret, the resolved
// definitions as KDL, and JSON (`vmrctl check`).

#include "base/fd.h"
#include "base/json.h"
#include "config/kdl_chars.h"
#include "config/vmfile.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace vmr::config {

namespace {

// A VMFile is a few dozen lines; anything this big is not one.
constexpr size_t kMaxVmFileBytes = 1 << 20;

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
    const model::VmSpec& s = vm.spec;
    kdl::Node n = field("vm", str(s.name));
    addString(n, "image", s.image);
    addString(n, "image-url", s.imageUrl);
    addString(n, "image-sha256", s.imageSha256);
    n.children.push_back(field("vcpus", num(s.vcpus)));
    n.children.push_back(field("memory", num(s.memoryMib)));
    if (s.diskGib) n.children.push_back(field("disk", num(*s.diskGib)));
    kdl::Node net = field("network", str(std::string(model::wordOf(s.network.mode))));
    addString(net, "bridge", s.network.bridge);
    n.children.push_back(std::move(net));
    n.children.push_back(field("backend", str(std::string(model::wordOf(s.backend)))));
    if (s.accel) addString(n, "accel", std::string(model::wordOf(*s.accel)));
    addString(n, "kernel", s.kernel);
    addString(n, "initrd", s.initrd);
    addString(n, "cmdline", s.cmdline);
    if (s.firmware.kind != model::FirmwareKind::Bios)
        addString(n, "firmware", std::string(model::firmwareWord(s.firmware)));
    if (s.vnc) {
        kdl::Value t;
        t.kind = kdl::ValueKind::Boolean;
        t.boolean = true;
        n.children.push_back(field("vnc", t));
    }
    if (vm.hasCloudInit) {
        kdl::Node ci;
        ci.name = "cloud-init";
        addString(ci, "hostname", s.cloudInit.hostname);
        addString(ci, "ssh-key", vm.sshKeyFile);
        addString(ci, "user-data", vm.userDataFile);
        ci.hasChildrenBlock = true;
        n.children.push_back(std::move(ci));
    }
    if (vm.hasSsh) {
        kdl::Node ssh;
        ssh.name = "ssh";
        addString(ssh, "user", s.cloudInit.user);
        addString(ssh, "private-key", vm.privateKey);
        ssh.hasChildrenBlock = true;
        n.children.push_back(std::move(ssh));
    }
    for (const auto& p : s.provision) {
        bool shell = p.kind == model::ProvisionStep::Kind::Shell;
        kdl::Node pn = field("provision", str(shell ? "shell" : "file"));
        addString(pn, "inline", p.inlineCommand);
        addString(pn, "script", p.script);
        addString(pn, "source", p.source);
        addString(pn, "destination", p.destination);
        n.children.push_back(std::move(pn));
    }
    return n;
}

// The spec as vm.create takes it, and the files vmrctl reads as the caller.
void writeVm(json::Writer& w, const VmDefinition& vm)
{
    w.beginObject();
    model::writeSpecFields(w, vm.spec);
    w.nullableField("ssh_key_file", vm.sshKeyFile)
        .nullableField("user_data_file", vm.userDataFile)
        .nullableField("private_key", vm.privateKey);
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
