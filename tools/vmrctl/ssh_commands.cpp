#include "ssh_commands.h"

#include "base/files.h"
#include "base/json.h"

#include <simdjson.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

namespace vmr::ctl {

namespace {

Error usage(std::string message)
{
    return Error(ErrorKind::InvalidArgument, std::move(message));
}

std::string absolute(const std::string& path)
{
    std::error_code ec;
    return std::filesystem::absolute(path, ec).lexically_normal().string();
}

std::string field(simdjson::dom::object obj, const char* key)
{
    std::string_view v;
    if (obj[key].get_string().get(v) == simdjson::SUCCESS) return std::string(v);
    int64_t n = 0;
    if (obj[key].get_int64().get(n) == simdjson::SUCCESS) return std::to_string(n);
    return "";
}

// A VM id as vmrd makes them (random hex): safe in a file name and a host alias.
bool validId(const std::string& id)
{
    if (id.empty() || id.size() > 64) return false;
    return std::all_of(id.begin(), id.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
    });
}

// A login name ssh cannot take for an option or split elsewhere.
bool validUser(const std::string& user)
{
    if (user.empty() || user.size() > 64 || user[0] == '-') return false;
    return std::all_of(user.begin(), user.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '$';
    });
}

// 1..65535, or 0.
uint16_t portNumber(const std::string& text)
{
    if (text.empty() || text.size() > 5 || text.find_first_not_of("0123456789") != std::string::npos)
        return 0;
    unsigned long n = std::stoul(text);
    return n <= 65535 ? static_cast<uint16_t>(n) : 0;
}

// Does 127.0.0.1:port answer with an SSH banner within the deadline?
bool sshAnswers(uint16_t port, std::chrono::seconds within)
{
    auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return false;
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bool ok = false;
        if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
            pollfd p{fd, POLLIN, 0};
            char buf[4] = {};
            if (::poll(&p, 1, 3000) == 1 && ::recv(fd, buf, sizeof buf, MSG_WAITALL) == 4)
                ok = std::memcmp(buf, "SSH-", 4) == 0;
        }
        ::close(fd);
        if (ok) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    return false;
}

}  // namespace

Result<std::string> provisionParams(const std::vector<std::string>& args)
{
    std::string name;
    json::Writer steps;
    steps.beginArray();
    bool any = false;
    for (size_t i = 1; i < args.size(); ++i) {
        const std::string& a = args[i];
        if ((a == "--shell" || a == "--script" || a == "--file") && i + 1 >= args.size())
            return usage("provision: " + a + " needs a value");
        if (a == "--shell") {
            steps.beginObject().field("type", "shell").field("inline", args[++i]).endObject();
        } else if (a == "--script") {
            steps.beginObject().field("type", "shell").field("script", absolute(args[++i])).endObject();
        } else if (a == "--file") {
            const std::string& v = args[++i];
            auto colon = v.find(':');
            if (colon == std::string::npos || colon == 0 || colon + 1 == v.size())
                return usage("provision: --file takes SOURCE:DESTINATION, not `" + v + "`");
            steps.beginObject()
                .field("type", "file")
                .field("source", absolute(v.substr(0, colon)))
                .field("destination", v.substr(colon + 1))
                .endObject();
        } else if (!a.empty() && a[0] == '-') {
            return usage("provision: unknown option `" + a + "`");
        } else if (name.empty()) {
            name = a;
            continue;
        } else {
            return usage("provision: one VM name at a time");
        }
        any = true;
    }
    if (name.empty())
        return usage(
            "provision needs a VM name: vmrctl provision NAME [--shell CMD] [--script F] [--file S:D]");
    steps.endArray();
    json::Writer w;
    w.beginObject().field("name", name);
    if (any) w.key("steps").raw(steps.str());
    w.endObject();
    return w.take();
}

int runProvision(Client& client, const std::vector<std::string>& args, bool jsonOut, const ReportFn& report)
{
    auto params = provisionParams(args);
    if (!params) return report(params.error());
    auto show = [jsonOut](const rpc::Notification& n) {
        if (jsonOut) {
            std::printf("{\"method\":%s,\"params\":%s}\n", json::quote(n.method).c_str(), n.params.c_str());
            std::fflush(stdout);
            return;
        }
        simdjson::dom::parser p;
        simdjson::dom::object obj;
        if (p.parse(n.params).get(obj) != simdjson::SUCCESS) return;
        if (n.method == "provision.step") {
            std::fprintf(stderr, "==> %s: step %s/%s: %s\n", field(obj, "vm").c_str(),
                         field(obj, "step").c_str(), field(obj, "total").c_str(),
                         field(obj, "description").c_str());
        } else if (n.method == "provision.output") {
            std::string data = field(obj, "data");
            std::FILE* out = field(obj, "stream") == "stderr" ? stderr : stdout;
            std::fwrite(data.data(), 1, data.size(), out);
            std::fflush(out);
        }
    };
    auto r = client.call("vm.provision", *params, std::chrono::hours(2), show);
    if (!r) return report(r.error());
    if (jsonOut)
        std::printf("%s\n", r->c_str());
    else
        std::fprintf(stderr, "==> provisioned\n");
    return 0;
}

Result<SshTarget> parseSsh(const std::vector<std::string>& args)
{
    SshTarget t;
    for (size_t i = 1; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--") {
            t.command.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
            break;
        }
        if ((a == "--user" || a == "--key") && i + 1 >= args.size())
            return usage("ssh: " + a + " needs a value");
        if (a == "--user") {
            t.user = args[++i];
        } else if (a == "--key") {
            t.key = absolute(args[++i]);
        } else if (!a.empty() && a[0] == '-') {
            return usage("ssh: unknown option `" + a + "` (put the remote command after `--`)");
        } else if (t.name.empty()) {
            t.name = a;
        } else {
            return usage("ssh: one VM name; put the remote command after `--`");
        }
    }
    if (t.name.empty()) return usage("ssh needs a VM name: vmrctl ssh NAME [--user U] [--key K] [-- CMD...]");
    return t;
}

Result<std::vector<std::string>> sshArgv(const SshTarget& t, const std::string& statusJson,
                                         const std::string& knownHostsFile)
{
    simdjson::dom::parser p;
    simdjson::dom::object obj;
    if (p.parse(statusJson).get(obj) != simdjson::SUCCESS)
        return Error(ErrorKind::ParseError, "vmrd sent a status vmrctl cannot read");
    if (field(obj, "state") != "running")
        return Error(ErrorKind::VmBadState,
                     "VM \"" + t.name + "\" is " + field(obj, "state") + ", not running",
                     "Start it first: vmrctl start " + t.name);
    std::string port = field(obj, "ssh_port");
    if (port.empty())
        return Error(ErrorKind::Unsupported, "VM \"" + t.name + "\" has no SSH port on 127.0.0.1",
                     "Only VMs on the user network forward SSH; create it with --network user");
    if (portNumber(port) == 0)
        return Error(ErrorKind::ParseError, "vmrd sent an SSH port vmrctl cannot use: " + json::quote(port));
    std::string id = field(obj, "id");
    if (!validId(id))
        return Error(ErrorKind::ParseError, "vmrd sent a VM id vmrctl cannot use: " + json::quote(id));
    std::string user = !t.user.empty() ? t.user : field(obj, "ssh_user");
    if (user.empty()) user = "vm";
    if (!validUser(user))
        return Error(ErrorKind::InvalidArgument,
                     "Cannot log in as " + json::quote(user) + ": not a user name",
                     "A user name is letters, digits and . _ - $, not starting with -; pass one with --user");
    std::string key = !t.key.empty() ? t.key : field(obj, "work_dir") + "/id_ed25519_generated";
    std::vector<std::string> argv = {"ssh", "-p", port, "-o", "UserKnownHostsFile=" + knownHostsFile};
    // A pinned key is checked strictly; with none known yet, the first key seen is kept.
    argv.insert(argv.end(), {"-o", field(obj, "host_key").empty() ? "StrictHostKeyChecking=accept-new"
                                                                  : "StrictHostKeyChecking=yes"});
    argv.insert(argv.end(), {"-o", "HostKeyAlias=vmr-" + id});
    if (::access(key.c_str(), R_OK) == 0) argv.insert(argv.end(), {"-i", key, "-o", "IdentitiesOnly=no"});
    argv.push_back(user + "@127.0.0.1");
    if (!t.command.empty()) {
        argv.push_back("--");
        argv.insert(argv.end(), t.command.begin(), t.command.end());
    }
    return argv;
}

Result<std::string> pinHostKey(const std::string& dir, const std::string& id, const std::string& hostKey)
{
    // One file per VM id (random, unique per VM): two vmrds with a VM of the same name never
    // share one.
    if (!validId(id))
        return Error(ErrorKind::InvalidArgument,
                     "Not a VM id vmrctl can name a file after: " + json::quote(id));
    std::string known = dir + "/known_hosts-" + id;
    if (hostKey.empty()) return known;
    bool oneLine = hostKey.size() <= 16384 && std::none_of(hostKey.begin(), hostKey.end(), [](char c) {
                       return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
                   });
    if (!oneLine)
        return Error(ErrorKind::InvalidArgument,
                     "The host key of VM " + id + " is not one known_hosts entry");
    // A new file renamed over the old one: a link planted at that name is replaced, not followed.
    VMR_TRY(writeFileAtomic(known, "vmr-" + id + " " + hostKey + "\n", 0600, Durability::Host));
    return known;
}

int runSsh(Client& client, const std::vector<std::string>& args, const ReportFn& fail)
{
    auto t = parseSsh(args);
    if (!t) return fail(t.error());
    json::Writer w;
    w.beginObject().field("name", t->name).endObject();
    auto status = client.call("vm.status", w.str());
    if (!status) return fail(status.error());
    simdjson::dom::parser p;
    simdjson::dom::object obj;
    if (p.parse(*status).get(obj) != simdjson::SUCCESS)
        return fail(Error(ErrorKind::ParseError, "vmrd sent a status vmrctl cannot read"));
    // Checks the status before anything is written.
    auto argv = sshArgv(*t, *status, "");
    if (!argv) return fail(argv.error());
    // The pinned host key goes into a known_hosts file in this user's own folder, under the
    // VM's alias.
    std::string dir = runtimeDir();
    if (auto own = checkRuntimeDir(dir, true); !own) return fail(own.error());
    auto known = pinHostKey(dir, field(obj, "id"), field(obj, "host_key"));
    if (!known) return fail(known.error());
    argv = sshArgv(*t, *status, *known);
    if (!argv) return fail(argv.error());
    uint16_t port = portNumber(field(obj, "ssh_port"));
    if (!sshAnswers(port, std::chrono::seconds(30)))
        return fail(Error(
            ErrorKind::Timeout,
            "The guest's SSH server on 127.0.0.1:" + std::to_string(port) + " did not answer within 30 s",
            "See `vmrctl log " + t->name + " --console`: is the guest booted and its sshd up?"));
    std::vector<char*> cargv;
    for (auto& a : *argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    ::execvp("ssh", cargv.data());
    return fail(Error::fromErrno(errno, "Cannot run ssh",
                                 "Install the OpenSSH client (apt-get install openssh-client)"));
}

}  // namespace vmr::ctl
