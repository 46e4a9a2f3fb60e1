#include "vmfile_commands.h"

#include "base/files.h"
#include "base/json.h"
#include "config/settings.h"
#include "image_commands.h"

#include <simdjson.h>

#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

namespace vmr::ctl {

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUnreachable = 3;

Error usage(std::string message)
{
    return Error(ErrorKind::InvalidArgument, std::move(message));
}

// The first line of an OpenSSH public key file.
Result<std::string> publicKeyLine(const std::string& path, const std::string& vm)
{
    auto text = readFile(path);
    if (!text)
        return Error(ErrorKind::InvalidArgument, "VM \"" + vm + "\": cannot read its ssh-key")
            .causedBy(text.error())
            .withHint("Give the path of a public key (.pub) readable by you");
    std::istringstream lines(*text);
    std::string line;
    while (std::getline(lines, line)) {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
            line.pop_back();
        size_t start = line.find_first_not_of(" \t");
        if (start == std::string::npos || line[start] == '#') continue;
        line.erase(0, start);
        if (line.rfind("-----BEGIN", 0) == 0)
            return Error(ErrorKind::InvalidArgument,
                         "VM \"" + vm + "\": ssh-key " + path + " is a private key, not a public one",
                         "Give the .pub file beside it: ssh-key \"" + path + ".pub\"");
        if (line.rfind("ssh-", 0) != 0 && line.rfind("ecdsa-", 0) != 0 && line.rfind("sk-", 0) != 0)
            return Error(
                ErrorKind::InvalidArgument,
                "VM \"" + vm + "\": ssh-key " + path + " is not an OpenSSH public key",
                "A public key is one line like \"ssh-ed25519 AAAA... comment\" (ssh-keygen makes one)");
        return line;
    }
    return Error(ErrorKind::InvalidArgument, "VM \"" + vm + "\": ssh-key " + path + " is empty",
                 "Give the path of a public key (.pub), one line like \"ssh-ed25519 AAAA...\"");
}

std::string field(simdjson::dom::object obj, const char* key)
{
    std::string_view v;
    if (obj[key].get_string().get(v) == simdjson::SUCCESS) return std::string(v);
    uint64_t n = 0;
    if (obj[key].get_uint64().get(n) == simdjson::SUCCESS) return std::to_string(n);
    return "";
}

void printError(const Error& e, bool json)
{
    if (json) {
        json::Writer w;
        w.beginObject().key("error").beginObject().field("kind", e.kindName()).field("message", e.what());
        if (!e.hint().empty()) w.field("hint", e.hint());
        w.endObject().endObject();
        std::fprintf(stderr, "%s\n", w.str().c_str());
        return;
    }
    std::fprintf(stderr, "vmrctl: %s\n", e.what().c_str());
    if (!e.hint().empty()) std::fprintf(stderr, "hint: %s\n", e.hint().c_str());
}

int exitCodeOf(const Error& e)
{
    return e.kind() == ErrorKind::Unavailable ? kExitUnreachable : kExitFailed;
}

// "web created, db skipped" from a vmfile.* result.
std::string summary(const std::string& resultJson)
{
    simdjson::dom::parser p;
    simdjson::dom::array vms;
    if (p.parse(resultJson)["vms"].get_array().get(vms) != simdjson::SUCCESS) return "";
    std::string out;
    for (simdjson::dom::element el : vms) {
        simdjson::dom::object o;
        if (el.get_object().get(o) != simdjson::SUCCESS) continue;
        if (!out.empty()) out += ", ";
        out += field(o, "name") + " " + field(o, "action");
    }
    return out;
}

}  // namespace

bool isVmfileCommand(const std::string& command)
{
    return command == "up" || command == "down" || command == "reload";
}

Result<std::optional<VmfileInvocation>> parseVmfileCommand(const std::vector<std::string>& args)
{
    if (args.empty()) return usage("missing command");
    VmfileInvocation inv;
    inv.command = args[0];
    if (inv.command == "provision") {
        // With a VM name or steps of its own, it is the per-VM `vmrctl provision NAME`.
        for (size_t i = 1; i < args.size(); ++i) {
            const std::string& a = args[i];
            if (a == "--shell" || a == "--script") return std::optional<VmfileInvocation>();
            if ((a == "--file" || a == "--name") && i + 1 < args.size()) {
                if (a == "--file" && args[i + 1].find(':') != std::string::npos)
                    return std::optional<VmfileInvocation>();  // --file SRC:DST, a step
                ++i;
                continue;
            }
            if (a.empty() || a[0] != '-') return std::optional<VmfileInvocation>();
        }
    } else if (!isVmfileCommand(inv.command)) {
        return usage("`" + inv.command + "` is not a VMFile command");
    }
    const std::string& cmd = inv.command;
    std::string synopsis = cmd == "up"       ? "vmrctl up [--file F] [--name N]... [--no-provision]"
                           : cmd == "down"   ? "vmrctl down [--file F] [--name N]... [--destroy] [--force]"
                           : cmd == "reload" ? "vmrctl reload [--file F] [--name N]... [--no-provision]"
                                             : "vmrctl provision [--file F] [--name N]...";
    bool fileSeen = false;
    for (size_t i = 1; i < args.size(); ++i) {
        std::string a = args[i];
        std::optional<std::string> value;
        if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
            value = a.substr(eq + 1);
            a = a.substr(0, eq);
        }
        if (a == "--file" || a == "--name") {
            if (!value) {
                if (i + 1 >= args.size()) return usage(cmd + ": " + a + " needs a value; usage: " + synopsis);
                value = args[++i];
            }
            if (value->empty()) return usage(cmd + ": " + a + " needs a non-empty value");
            if (a == "--file") {
                if (fileSeen) return usage(cmd + ": --file given twice; one VMFile at a time");
                fileSeen = true;
                inv.file = *value;
                inv.fileGiven = true;
            } else if (std::find(inv.names.begin(), inv.names.end(), *value) == inv.names.end()) {
                inv.names.push_back(*value);
            }
            continue;
        }
        if (value) return usage(cmd + ": " + a + " takes no value; usage: " + synopsis);
        if (a == "--no-provision" && (cmd == "up" || cmd == "reload")) {
            inv.provision = false;
        } else if (a == "--destroy" && cmd == "down") {
            inv.destroy = true;
        } else if (a == "--force" && cmd == "down") {
            inv.force = true;
        } else if (!a.empty() && a[0] == '-') {
            return usage(cmd + ": unknown option `" + a + "`; usage: " + synopsis);
        } else {
            return usage(cmd + ": unexpected argument `" + a +
                         "` (VMs are chosen with --name); usage: " + synopsis);
        }
    }
    if (!fileSeen) inv.file = std::string(config::kVmFileName);
    return std::optional<VmfileInvocation>(std::move(inv));
}

std::string sha256Hex(std::string_view data)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    // SHA-256 of a buffer cannot fail short of a broken libcrypto.
    if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr) != 1) return "";
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
        out += kHex[digest[i] >> 4];
        out += kHex[digest[i] & 0xf];
    }
    return out;
}

Result<void> checkFoundVmfile(const std::string& file)
{
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) return success();  // reading it says what is wrong
    uid_t self = ::geteuid();
    std::string problem;
    if (st.st_uid != self && st.st_uid != 0)
        problem = "it belongs to uid " + std::to_string(st.st_uid) + ", not to you (uid " +
                  std::to_string(self) + ")";
    else if ((st.st_mode & S_IWOTH) != 0)
        problem = "every user can write it";
    if (problem.empty()) return success();
    return Error(ErrorKind::PermissionDenied, "Not using " + file + ", found in this folder: " + problem,
                 "A VMFile makes vmrctl read files as you and hand them to VMs: read it, and if you trust "
                 "it, name it with --file " +
                     file);
}

Result<LoadedVmfile> loadVmfile(const std::string& file, const std::string& home, bool checkFiles,
                                const std::vector<std::string>& names)
{
    std::error_code ec;
    std::filesystem::path abs = std::filesystem::absolute(file, ec).lexically_normal();
    if (ec)
        return Error(ErrorKind::InvalidArgument,
                     "Cannot make the path " + file + " absolute: " + ec.message());
    auto text = readFile(abs.string());
    if (!text) {
        std::string hint = file == config::kVmFileName
                               ? "Run vmrctl in the folder holding VMFile.kdl, or give --file PATH"
                               : "Check the path given to --file";
        return Error(ErrorKind::InvalidArgument, "Cannot read the VMFile " + file)
            .causedBy(text.error())
            .withHint(hint);
    }
    config::VmFileOptions opts;
    opts.baseDir = abs.parent_path().string();
    opts.home = home;
    opts.checkFiles = checkFiles;
    config::VmFile parsed = config::parseVmFile(*text, file, opts);
    if (!parsed.ok()) {
        std::string rendered = config::renderDiagnostics(parsed);
        while (!rendered.empty() && rendered.back() == '\n') rendered.pop_back();
        return Error(ErrorKind::InvalidArgument, rendered, "Fix the VMFile; `vmrctl check` shows the same");
    }
    LoadedVmfile out;
    out.path = abs.string();
    out.sha256 = sha256Hex(*text);
    for (const auto& n : names) {
        bool known = std::any_of(parsed.vms.begin(), parsed.vms.end(),
                                 [&](const config::VmDefinition& d) { return d.spec.name == n; });
        if (!known) {
            std::string all;
            for (const auto& d : parsed.vms) all += (all.empty() ? "" : ", ") + d.spec.name;
            return Error(ErrorKind::InvalidArgument, file + " defines no VM named \"" + n + "\"",
                         "Its VMs: " + all);
        }
    }
    for (auto& d : parsed.vms)
        if (names.empty() || std::find(names.begin(), names.end(), d.spec.name) != names.end())
            out.vms.push_back(std::move(d));
    return out;
}

Result<std::string> createParamsJson(const config::VmDefinition& vm, const std::string& vmfile,
                                     const std::string& sha256)
{
    model::VmSpec spec = vm.spec;
    // The files the VMFile names for cloud-init, read here as the caller.
    if (!vm.sshKeyFile.empty()) {
        auto line = publicKeyLine(vm.sshKeyFile, spec.name);
        if (!line) return std::move(line).error();
        spec.cloudInit.authorizedKeys.push_back(*line);
    }
    if (!vm.userDataFile.empty()) {
        auto text = readFile(vm.userDataFile);
        if (!text)
            return Error(ErrorKind::InvalidArgument, "VM \"" + spec.name + "\": cannot read its user-data")
                .causedBy(text.error())
                .withHint("Give the path of a cloud-init user-data file readable by you");
        spec.cloudInit.userData = *text;
    }
    spec.vmfile = vmfile;
    spec.vmfileSha256 = sha256;
    if (auto ok = model::checkSpec(spec, true); !ok)
        return Error(ok.error().kind(), "VM \"" + spec.name + "\": " + ok.error().message(),
                     ok.error().hint());
    return model::specToJson(spec);
}

Result<std::string> upParams(const LoadedVmfile& f, bool provision)
{
    json::Writer w;
    w.beginObject().field("file", f.path).field("sha256", f.sha256).key("vms").beginArray();
    for (const auto& vm : f.vms) {
        auto p = createParamsJson(vm, f.path, f.sha256);
        if (!p) return std::move(p).error();
        w.raw(*p);
    }
    w.endArray().field("provision", provision).endObject();
    return w.take();
}

std::string downParams(const LoadedVmfile& f, bool destroy, bool force)
{
    json::Writer w;
    w.beginObject().field("file", f.path).key("names").beginArray();
    for (const auto& vm : f.vms) w.value(vm.spec.name);
    w.endArray().field("destroy", destroy).field("force", force).endObject();
    return w.take();
}

Result<std::string> vmfileProvisionParams(const LoadedVmfile& f)
{
    json::Writer w;
    w.beginObject().field("file", f.path).field("sha256", f.sha256).key("vms").beginArray();
    for (const auto& vm : f.vms) {
        auto p = createParamsJson(vm, f.path, f.sha256);
        if (!p) return std::move(p).error();
        w.raw(*p);
    }
    w.endArray().endObject();
    return w.take();
}

Result<std::string> soleVmName(const std::string& file, const std::string& home)
{
    if (auto trusted = checkFoundVmfile(file); !trusted) return std::move(trusted).error();
    auto f = loadVmfile(file, home, false, {});
    if (!f)
        return Error(f.error().kind(), "No VM name given, and the VMFile cannot be used to choose one")
            .causedBy(f.error())
            .withHint("Name the VM, or run vmrctl in the folder holding a valid VMFile.kdl");
    if (f->vms.size() == 1) return f->vms.front().spec.name;
    std::string all;
    for (const auto& d : f->vms) all += (all.empty() ? "" : ", ") + d.spec.name;
    return Error(
        ErrorKind::InvalidArgument,
        "No VM name given, and " + file + " defines " + std::to_string(f->vms.size()) + " VMs (" + all + ")",
        "Name one of them: vmrctl ssh " + f->vms.front().spec.name);
}

PrefixedOutput::PrefixedOutput(const std::vector<std::string>& names)
{
    for (const auto& n : names) width_ = std::max(width_, n.size());
}

std::string PrefixedOutput::prefix(std::string_view vm) const
{
    std::string p(vm);
    if (p.size() < width_) p.append(width_ - p.size(), ' ');
    return p + " | ";
}

std::string PrefixedOutput::feed(std::string_view vm, bool stderrStream, std::string_view data)
{
    std::string& buf = partial_[{std::string(vm), stderrStream}];
    buf.append(data);
    std::string out;
    size_t start = 0;
    for (size_t nl = buf.find('\n'); nl != std::string::npos; nl = buf.find('\n', start)) {
        std::string_view line(buf.data() + start, nl - start);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        out += prefix(vm);
        out += line;
        out += '\n';
        start = nl + 1;
    }
    buf.erase(0, start);
    return out;
}

std::string PrefixedOutput::flush(std::string_view vm, bool stderrStream)
{
    auto it = partial_.find({std::string(vm), stderrStream});
    if (it == partial_.end() || it->second.empty()) return "";
    std::string out = prefix(vm) + it->second + "\n";
    partial_.erase(it);
    return out;
}

std::vector<std::pair<std::string, bool>> PrefixedOutput::pending() const
{
    std::vector<std::pair<std::string, bool>> out;
    for (const auto& [key, text] : partial_)
        if (!text.empty()) out.push_back(key);
    return out;
}

VmfileDisplay::VmfileDisplay(const std::vector<std::string>& names,
                             std::map<std::string, std::vector<std::string>> urls)
    : out_(names), urls_(std::move(urls))
{
}

std::pair<std::string, std::string> VmfileDisplay::render(const rpc::Notification& n)
{
    simdjson::dom::parser p;
    simdjson::dom::object obj;
    if (p.parse(n.params).get(obj) != simdjson::SUCCESS) return {};
    std::string vm = field(obj, "vm");
    if (n.method == "vmfile.progress" || n.method == "provision.step") {
        // What the VM printed so far comes before the news about it.
        std::pair<std::string, std::string> r{out_.flush(vm, false), out_.flush(vm, true)};
        if (n.method == "vmfile.progress")
            r.first += out_.prefix(vm) + field(obj, "message") + "\n";
        else
            r.first += out_.prefix(vm) + "step " + field(obj, "step") + "/" + field(obj, "total") + ": " +
                       field(obj, "description") + "\n";
        return r;
    }
    if (n.method == "provision.output") {
        bool err = field(obj, "stream") == "stderr";
        std::string text = out_.feed(vm, err, field(obj, "data"));
        return err ? std::pair<std::string, std::string>{"", text}
                   : std::pair<std::string, std::string>{text, ""};
    }
    if (n.method == "image.progress") {
        std::string url = field(obj, "url");
        uint64_t received = 0;
        uint64_t total = 0;
        if (obj["received"].get_uint64().get(received) != simdjson::SUCCESS) return {};
        bool sized = obj["total"].get_uint64().get(total) == simdjson::SUCCESS && total > 0;
        uint64_t step = sized ? received * 10 / total : received / (uint64_t{100} << 20);
        auto last = lastStep_.find(url);
        if (last != lastStep_.end() && step <= last->second) return {};
        lastStep_[url] = step;
        std::string what = "image " +
                           (sized ? std::to_string(received * 100 / total) + "%  " : std::string()) +
                           formatBytes(received) + (sized ? " / " + formatBytes(total) : std::string());
        std::string text;
        auto vms = urls_.find(url);
        if (vms == urls_.end()) return {"image " + url + ": " + what.substr(6) + "\n", ""};
        for (const auto& v : vms->second) text += out_.prefix(v) + what + "\n";
        return {text, ""};
    }
    return {};
}

std::pair<std::string, std::string> VmfileDisplay::finish()
{
    std::pair<std::string, std::string> r;
    for (const auto& [vm, err] : out_.pending()) (err ? r.second : r.first) += out_.flush(vm, err);
    return r;
}

std::string withVmfileChanged(const std::string& statusJson)
{
    simdjson::dom::parser p;
    simdjson::dom::object obj;
    if (p.parse(statusJson).get(obj) != simdjson::SUCCESS) return statusJson;
    std::string_view file;
    if (obj["vmfile"].get_string().get(file) != simdjson::SUCCESS || file.empty()) return statusJson;
    std::string_view recorded;
    if (obj["vmfile_sha256"].get_string().get(recorded) != simdjson::SUCCESS) recorded = "";
    std::string value = "null";
    if (auto text = readFile(std::string(file)); text)
        value = sha256Hex(*text) == recorded ? "false" : "true";
    std::string out = statusJson;
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    if (out.empty() || out.back() != '}') return statusJson;
    out.pop_back();
    return out + ",\"vmfile_changed\":" + value + "}";
}

int runVmfileCommand(Client& client, const VmfileInvocation& inv, bool json)
{
    bool up = inv.command == "up" || inv.command == "reload";
    if (!inv.fileGiven) {
        if (auto trusted = checkFoundVmfile(inv.file); !trusted) {
            printError(trusted.error(), json);
            return kExitFailed;
        }
    }
    auto f = loadVmfile(inv.file, config::Env::fromProcess().home, inv.command != "down", inv.names);
    if (!f) {
        printError(f.error(), json);
        return kExitFailed;
    }
    std::vector<std::string> names;
    std::map<std::string, std::vector<std::string>> urls;
    for (const auto& vm : f->vms) {
        names.push_back(vm.spec.name);
        if (!vm.spec.imageUrl.empty()) urls[vm.spec.imageUrl].push_back(vm.spec.name);
    }
    // Build every call's params before the first call, so that a bad key file stops nothing
    // halfway.
    std::string upCall;
    std::string provisionCall;
    if (up) {
        auto p = upParams(*f, inv.provision);
        if (!p) {
            printError(p.error(), json);
            return kExitFailed;
        }
        upCall = std::move(*p);
    } else if (inv.command == "provision") {
        auto p = vmfileProvisionParams(*f);
        if (!p) {
            printError(p.error(), json);
            return kExitFailed;
        }
        provisionCall = std::move(*p);
    }

    auto call = [&](const char* method, const std::string& params, std::chrono::milliseconds timeout) -> int {
        VmfileDisplay display(names, urls);
        auto show = [&](const rpc::Notification& n) {
            if (json) {
                std::printf("{\"method\":%s,\"params\":%s}\n", json::quote(n.method).c_str(),
                            n.params.c_str());
                std::fflush(stdout);
                return;
            }
            auto [out, err] = display.render(n);
            std::fputs(out.c_str(), stdout);
            std::fflush(stdout);
            std::fputs(err.c_str(), stderr);
        };
        auto r = client.call(method, params, timeout, show);
        auto [out, err] = display.finish();
        std::fputs(out.c_str(), stdout);
        std::fputs(err.c_str(), stderr);
        if (!r) {
            printError(r.error(), json);
            return exitCodeOf(r.error());
        }
        if (json)
            std::printf("%s\n", r->c_str());
        else
            std::printf("%s: %s\n",
                        inv.command == "reload" && std::strcmp(method, "vmfile.down") == 0
                            ? "down"
                            : inv.command.c_str(),
                        summary(*r).c_str());
        std::fflush(stdout);
        return kExitOk;
    };

    if (inv.command == "down" || inv.command == "reload") {
        int code = call("vmfile.down", downParams(*f, inv.command == "reload" || inv.destroy, inv.force),
                        std::chrono::minutes(10));
        if (code != kExitOk || inv.command == "down") return code;
    }
    if (up) return call("vmfile.up", upCall, std::chrono::hours(24));
    return call("vmfile.provision", provisionCall, std::chrono::hours(2));
}

}  // namespace vmr::ctl
