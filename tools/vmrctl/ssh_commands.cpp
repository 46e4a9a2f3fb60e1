#include "ssh_commands.h"

#include "base/json.h"

#include <simdjson.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
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
    std::string user = !t.user.empty() ? t.user : field(obj, "ssh_user");
    if (user.empty()) user = "vm";
    std::string key = !t.key.empty() ? t.key : field(obj, "work_dir") + "/id_ed25519_generated";
    std::vector<std::string> argv = {"ssh", "-p", port, "-o", "UserKnownHostsFile=" + knownHostsFile};
    // A pinned key is checked strictly; with none known yet, the first key seen is kept.
    argv.insert(argv.end(), {"-o", field(obj, "host_key").empty() ? "StrictHostKeyChecking=accept-new"
                                                                  : "StrictHostKeyChecking=yes"});
    argv.insert(argv.end(), {"-o", "HostKeyAlias=vmr-" + field(obj, "id")});
    if (::access(key.c_str(), R_OK) == 0) argv.insert(argv.end(), {"-i", key, "-o", "IdentitiesOnly=no"});
    argv.push_back(user + "@127.0.0.1");
    if (!t.command.empty()) {
        argv.push_back("--");
        argv.insert(argv.end(), t.command.begin(), t.command.end());
    }
    return argv;
}

int runSsh(Client& client, const std::vector<std::string>& args, const ReportFn& fail)
{
    auto t = parseSsh(args);
    if (!t) return fail(t.error());
    json::Writer w;
    w.beginObject().field("name", t->name).endObject();
    auto status = client.call("vm.status", w.str());
    if (!status) return fail(status.error());
    // The pinned host key goes into a known_hosts file of this user's, under the VM's alias.
    const char* runtime = std::getenv("XDG_RUNTIME_DIR");
    std::string dir = (runtime != nullptr && *runtime != '\0') ? std::string(runtime) + "/vmr"
                                                               : "/tmp/vmr-" + std::to_string(::getuid());
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    simdjson::dom::parser p;
    simdjson::dom::object obj;
    if (p.parse(*status).get(obj) != simdjson::SUCCESS)
        return fail(Error(ErrorKind::ParseError, "vmrd sent a status vmrctl cannot read"));
    // One file per VM id (random, unique per VM): two vmrds with a VM of the same name never
    // share one.
    std::string id = field(obj, "id");
    std::string known = dir + "/known_hosts-" + id;
    std::string hostKey = field(obj, "host_key");
    if (!hostKey.empty()) {
        std::ofstream out(known, std::ios::trunc);
        out << "vmr-" << id << " " << hostKey << "\n";
    }
    auto argv = sshArgv(*t, *status, known);
    if (!argv) return fail(argv.error());
    uint16_t port = static_cast<uint16_t>(std::stoi(field(obj, "ssh_port")));
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
