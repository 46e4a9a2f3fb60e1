// vmrctl: the command-line client of vmrd.
//
// Exit codes: 0 ok, 1 the daemon returned an error, 2 usage, 3 cannot reach the daemon.

#include "base/fd.h"
#include "base/json.h"
#include "client.h"
#include "config/settings.h"
#include "config/vmfile.h"
#include "console_commands.h"
#include "image_commands.h"
#include "output.h"
#include "ssh_commands.h"
#include "vm_commands.h"
#include "vmfile_commands.h"

#include "config.h"

#include <simdjson.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using vmr::Error;
using vmr::ErrorKind;
using vmr::Result;
using vmr::ctl::Client;

constexpr int kExitOk = 0;
constexpr int kExitDaemonError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;

constexpr const char* kUsage = R"(Usage: vmrctl [OPTIONS] COMMAND [ARGS]

Talks to vmrd, the vmr daemon, over its control socket.

Commands:
  version                  Show the versions of vmrctl and vmrd
  list                     List VMs (NAME BACKEND STATE VCPUS MEM NETWORK PID SSH)
  status NAME              Show everything about one VM
  events [--topic T]... [--vm NAME]
                           Stream daemon events until interrupted
  create --name N (--image PATH | --image-url URL [--sha256 HEX]) [--vcpus N] [--memory MiB]
         [--disk GiB] [--network user|none] [--kernel F --initrd F --cmdline S]
         [--accel auto|kvm|tcg] [--firmware bios|uefi|FILE] [--vnc]
         [--ssh-key PUBKEY-FILE] [--ssh-user U] [--cloud-init USER-DATA-FILE] [--hostname H]
         [--backend qemu|chv] [--start]
                           Create a VM on a qcow2 overlay of IMAGE (IMAGE is never written),
                           with a cloud-init seed (user, keys, pinned host key)
  start NAME               Boot a VM
  stop NAME [--timeout N] [--force]
                           ACPI power-off, then SIGTERM, then SIGKILL after N s (default 30)
  suspend NAME / resume NAME
                           Pause and continue a running VM
  destroy NAME             Stop a VM if it runs and delete it with everything in its folder
  provision NAME [--shell CMD] [--script FILE] [--file SRC:DST]...
                           Run the VM's provisioning steps (or these) over SSH, output live
  ssh NAME [--user U] [--key K] [-- CMD...]
                           SSH into a running VM, checking its pinned host key
  console NAME [--ro] [--scrollback BYTES]
                           Attach to the serial console (detach with Ctrl-])
  log NAME [--console] [--provision] [--tail N] [-f]
                           Show the console and provisioning logs; -f follows the console
  image pull URL [--name N] [--sha256 HEX] | image list | image inspect PATH | image rm NAME
                           The image cache
  check [--file F] [--json]
                           Validate a VMFile (default ./VMFile.kdl) without touching any VM
                           and print its resolved definition; exit 1 if it is invalid
  up [--file F] [--name N]... [--no-provision]
                           Bring up the VMFile's VMs: create, start and provision what is
                           missing; running VMs are left alone
  down [--file F] [--name N]... [--destroy] [--force]
                           Stop the VMFile's VMs (or destroy them)
  reload [--file F] [--name N]... [--no-provision]
                           Destroy the VMFile's VMs and bring them up again
  provision [--file F] [--name N]...
                           Re-run the VMFile's provisioners on its running VMs
  create --template T [--name N] [other create options]
                           Create a VM from templates/T.toml in vmrd's config folder (a name
                           T-1, T-2... when none is given); the options given win
  template list            The templates vmrd has
  rpc METHOD [PARAMS]      Call a JSON-RPC method; PARAMS is a JSON object or array

Options:
  --socket PATH            vmrd's socket (default: $VMR_SOCKET, the user socket, then
                           /run/vmr/vmrd.sock, or /run/vmr/vmrd-ro.sock to only watch VMs)
  --json                   Print results as JSON, exactly as vmrd sent them
  --no-autostart           Never start a vmrd (also: VMR_NO_AUTOSTART=1)
  -h, --help               Show this help
  --version                Show vmrctl's version

Exit status: 0 ok, 1 vmrd returned an error, 2 usage error, 3 vmrd cannot be reached.
)";

struct Options {
    std::optional<std::string> socket;
    bool json = false;
    bool autostart = true;
    std::vector<std::string> args;
};

int usageError(const std::string& message)
{
    std::fprintf(stderr, "vmrctl: %s\nRun `vmrctl --help` for usage.\n", message.c_str());
    return kExitUsage;
}

// With --json, errors are one JSON object on stderr too, for scripts: the kind is what to test.
bool gJsonErrors = false;

int reportError(const Error& e)
{
    if (gJsonErrors) {
        vmr::json::Writer w;
        w.beginObject().key("error").beginObject().field("kind", e.kindName()).field("message", e.what());
        if (!e.hint().empty()) w.field("hint", e.hint());
        w.endObject().endObject();
        std::fprintf(stderr, "%s\n", w.str().c_str());
    } else {
        std::fprintf(stderr, "vmrctl: %s\n", e.what().c_str());
        if (!e.hint().empty()) std::fprintf(stderr, "hint: %s\n", e.hint().c_str());
    }
    return e.kind() == ErrorKind::Unavailable ? kExitUnreachable : kExitDaemonError;
}

bool envTrue(const char* name)
{
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0 && std::strcmp(v, "false") != 0;
}

// Where vmrd is: $VMR_VMRD, next to vmrctl, then PATH.
std::string vmrdBinary()
{
    if (const char* v = std::getenv("VMR_VMRD"); v != nullptr && *v != '\0') return v;
    std::error_code ec;
    auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        auto beside = self.parent_path() / "vmrd";
        if (::access(beside.c_str(), X_OK) == 0) return beside.string();
    }
    return "vmrd";
}

// vmrd's log, opened for the vmrd vmrctl starts: appended to, never through a link, and only
// when it is a file of this user's own (the folder was checked: this is belt and braces).
Result<vmr::UniqueFd> openDaemonLog(const std::string& path)
{
    vmr::UniqueFd fd(
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600));
    if (!fd && errno == ELOOP)
        return Error(ErrorKind::PermissionDenied,
                     "Cannot use " + path + " as vmrd's log: it is a symbolic link",
                     "Remove the link (rm " + path + ")");
    if (!fd) return Error::fromErrno(errno, "Cannot open vmrd's log " + path);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return Error::fromErrno(errno, "Cannot stat " + path);
    if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid() || st.st_nlink != 1)
        return Error(ErrorKind::PermissionDenied,
                     "Cannot use " + path + " as vmrd's log: it is not a plain file of uid " +
                         std::to_string(::geteuid()) + "'s own",
                     "Remove it (rm " + path + ")");
    return fd;
}

// Start a user-mode vmrd in the background, detached from this terminal. Its log goes to
// <runtime>/vmrd.log. A second vmrd started at the same time exits at once (lock file).
Result<void> startDaemon(const vmr::config::Settings& user)
{
    std::string bin = vmrdBinary();
    VMR_TRY(vmr::ctl::checkRuntimeDir(user.runtimeDir, true));
    std::string logPath = user.runtimeDir + "/vmrd.log";
    auto log = openDaemonLog(logPath);
    if (!log) return std::move(log).error();
    vmr::UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!devnull) return Error::fromErrno(errno, "Cannot open /dev/null");
    std::string socketArg = "--socket=" + user.socket;
    pid_t pid = ::fork();
    if (pid < 0) return Error::fromErrno(errno, "Cannot start vmrd");
    if (pid == 0) {
        ::setsid();
        if (::fork() != 0) ::_exit(0);  // the grandchild is re-parented: never our zombie
        ::dup2(devnull.get(), 0);
        ::dup2(devnull.get(), 1);
        ::dup2(log->get(), 2);
        ::execlp(bin.c_str(), bin.c_str(), "--user", socketArg.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);  // the intermediate child exits at once
    return vmr::success();
}

Result<Client> connectDaemon(const Options& opt)
{
    using vmr::config::Mode;
    // A socket the user named is used as it is.
    if (opt.socket) return Client::connect(*opt.socket, 2s);
    if (const char* s = std::getenv("VMR_SOCKET"); s != nullptr && *s != '\0') return Client::connect(s, 2s);

    auto env = vmr::config::Env::fromProcess();
    auto user = vmr::config::defaultSettings(Mode::User, env);
    std::string systemSock = vmr::config::defaultSocketPath(Mode::System, env);
    // The user vmrd's folder is trusted only when it is this user's own: in a shared /tmp,
    // anyone can make /tmp/vmr-<uid> first, and listen there.
    auto own = vmr::ctl::checkRuntimeDir(user.runtimeDir, false);
    if (!own && own.error().kind() != ErrorKind::NotFound) return std::move(own).error();
    if (own) {
        auto c = Client::connect(user.socket, 2s);
        if (c || c.error().kind() == ErrorKind::PermissionDenied) return c;
    }
    if (systemSock != user.socket) {
        auto s = vmr::ctl::connectShared(systemSock, 2s);
        if (s || s.error().kind() == ErrorKind::PermissionDenied) return s;
    }
    if (!opt.autostart) {
        return Error(
            ErrorKind::Unavailable, "No vmrd answers at " + user.socket + " or " + systemSock,
            "Start one with `vmrd`, or drop --no-autostart / VMR_NO_AUTOSTART to let vmrctl start it");
    }
    VMR_TRY(startDaemon(user));
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
        auto t = Client::connect(user.socket, 1s);
        if (t) return t;
        std::this_thread::sleep_for(20ms);
    }
    return Error(ErrorKind::Unavailable,
                 "Started vmrd, but it did not answer at " + user.socket + " within 10 s",
                 "See its log: " + user.runtimeDir + "/vmrd.log");
}

int printResult(const Options& opt, const std::string& raw, int (*human)(const std::string&))
{
    if (opt.json || human == nullptr) {
        std::printf("%s\n", raw.c_str());
        return kExitOk;
    }
    return human(raw);
}

int cmdEvents(Client& client, const Options& opt, const std::vector<std::string>& args)
{
    std::vector<std::string> topics;
    std::string vm;
    for (size_t i = 1; i < args.size(); ++i) {
        if (args[i] == "--topic" && i + 1 < args.size()) {
            topics.push_back(args[++i]);
        } else if (args[i].rfind("--topic=", 0) == 0) {
            topics.push_back(args[i].substr(8));
        } else if (args[i] == "--vm" && i + 1 < args.size()) {
            vm = args[++i];
        } else if (args[i].rfind("--vm=", 0) == 0) {
            vm = args[i].substr(5);
        } else {
            return usageError("events: unexpected argument `" + args[i] + "`");
        }
    }
    vmr::json::Writer w;
    w.beginObject();
    if (!topics.empty()) {
        w.key("topics").beginArray();
        for (auto& t : topics) w.value(t);
        w.endArray();
    }
    if (!vm.empty()) w.field("vm", vm);
    w.endObject();
    auto r = client.call("events.subscribe", w.str());
    if (!r) return reportError(r.error());
    bool human = !opt.json && ::isatty(STDOUT_FILENO) != 0;
    if (human) std::fprintf(stderr, "Watching vmrd events (Ctrl-C to stop)\n");
    std::fflush(stderr);
    for (;;) {
        auto n = client.nextNotification(std::nullopt);
        if (!n) return reportError(n.error());
        if (!*n) {
            std::fprintf(stderr, "vmrctl: vmrd closed the event stream\n");
            return kExitUnreachable;
        }
        if ((*n)->method != "event") continue;
        if (human) {
            std::printf("%s\n", vmr::ctl::describeEvent((*n)->params).c_str());
        } else {
            std::printf("%s\n", (*n)->params.c_str());
        }
        std::fflush(stdout);
    }
}

int run(const Options& opt)
{
    const auto& args = opt.args;
    if (args.empty()) return usageError("missing command");
    const std::string& cmd = args[0];

    // Checking a VMFile needs no daemon: the file and the files it names are read as the caller.
    if (cmd == "check") {
        std::string file(vmr::config::kVmFileName);
        bool json = opt.json;
        for (size_t i = 1; i < args.size(); ++i) {
            if (args[i] == "--file" && i + 1 < args.size())
                file = args[++i];
            else if (args[i] == "--json")
                json = true;
            else
                return usageError("usage: vmrctl check [--file VMFILE] [--json]");
        }
        auto report = vmr::config::checkVmFile(file, vmr::config::Env::fromProcess().home, json);
        std::fputs(report.out.c_str(), stdout);
        std::fputs(report.err.c_str(), stderr);
        return report.exitCode;
    }

    // Validate usage before touching the daemon.
    std::string method;
    std::string params = "{}";
    int (*human)(const std::string&) = nullptr;
    if (cmd == "version") {
        if (args.size() != 1) return usageError("version takes no arguments");
        method = "vmr.version";
        human = [](const std::string& raw) { return vmr::ctl::printVersion(raw); };
    } else if (cmd == "list") {
        if (args.size() != 1) return usageError("list takes no arguments");
        method = "vm.list";
        human = [](const std::string& raw) { return vmr::ctl::printList(raw, ::isatty(STDOUT_FILENO) != 0); };
    } else if (cmd == "status") {
        if (args.size() != 2) return usageError("status needs exactly one VM name: vmrctl status NAME");
        method = "vm.status";
        vmr::json::Writer w;
        w.beginObject().field("name", args[1]).endObject();
        params = w.take();
        human = [](const std::string& raw) {
            return vmr::ctl::printStatus(vmr::ctl::withVmfileChanged(raw));
        };
    } else if (cmd == "template") {
        if (args.size() != 2 || args[1] != "list") return usageError("usage: vmrctl template list");
        method = "template.list";
        human = [](const std::string& raw) { return vmr::ctl::printTemplates(raw); };
    } else if (cmd == "rpc") {
        if (args.size() < 2 || args.size() > 3) return usageError("usage: vmrctl rpc METHOD [JSON-PARAMS]");
        method = args[1];
        params = args.size() == 3 ? args[2] : "";
        if (!params.empty()) {
            simdjson::dom::parser p;
            simdjson::dom::element el;
            if (p.parse(params).get(el) != simdjson::SUCCESS || (!el.is_object() && !el.is_array())) {
                return usageError("rpc: PARAMS must be a JSON object or array, e.g. '{\"name\":\"vm1\"}'");
            }
        }
    } else if (vmr::ctl::isVmCommand(cmd)) {
        auto inv = vmr::ctl::parseVmCommand(args);
        if (!inv) return usageError(inv.error().message());
        auto client = connectDaemon(opt);
        if (!client) return reportError(client.error());
        // Creating and booting a VM under TCG takes a while; give the daemon time. A download
        // (--image-url) reports its progress meanwhile.
        bool tty = ::isatty(STDERR_FILENO) != 0;
        vmr::ctl::ProgressMeter meter(std::chrono::steady_clock::now());
        bool showedProgress = false;
        auto progress = [&](const vmr::rpc::Notification& n) {
            if (n.method != "image.progress" || opt.json) return;
            simdjson::dom::parser p;
            simdjson::dom::object o;
            if (p.parse(n.params).get(o) != simdjson::SUCCESS) return;
            uint64_t received = 0, total = 0;
            if (o["received"].get_uint64().get(received) != simdjson::SUCCESS) return;
            std::optional<uint64_t> t;
            if (o["total"].get_uint64().get(total) == simdjson::SUCCESS) t = total;
            meter.update(received, t, std::chrono::steady_clock::now());
            if (tty) {
                std::fprintf(stderr, "\r%s", meter.bar(30).c_str());
                showedProgress = true;
            }
        };
        auto r = client->call(inv->method, inv->params, std::chrono::hours(24), progress);
        if (showedProgress) std::fprintf(stderr, "\n");
        if (!r) return reportError(r.error());
        if (cmd == "destroy" && !opt.json) {
            std::printf("Destroyed %s\n", args[1].c_str());
            return kExitOk;
        }
        return printResult(opt, *r, [](const std::string& raw) { return vmr::ctl::printStatus(raw); });
    } else if (vmr::ctl::isVmfileCommand(cmd) || cmd == "provision") {
        auto inv = vmr::ctl::parseVmfileCommand(args);
        if (!inv) return usageError(inv.error().message());
        if (*inv) {
            auto client = connectDaemon(opt);
            if (!client) return reportError(client.error());
            return vmr::ctl::runVmfileCommand(*client, **inv, opt.json);
        }
        // provision NAME: handled below, after connecting
    } else if (cmd == "events" || cmd == "ssh" || cmd == "log") {
        // handled below, after connecting
    } else if (cmd == "console") {
        auto a = vmr::ctl::parseConsoleArgs(args);
        if (!a) return usageError(a.error().message());
        auto client = connectDaemon(opt);  // starts vmrd if needed; the console has its own connection
        if (!client) return reportError(client.error());
        auto r = vmr::ctl::runConsole(client->path(), *a);
        if (!r) return reportError(r.error());
        return *r;
    } else if (cmd == "image") {
        auto inv = vmr::ctl::parseImageCommand(args);
        if (!inv) return usageError(inv.error().message());
        vmr::ctl::ImageIo io;
        io.connect = [&opt] { return connectDaemon(opt); };
        io.reportError = [](const Error& e) { return reportError(e); };
        io.json = opt.json;
        return vmr::ctl::runImageCommand(*inv, io);
    } else if (cmd == "help") {
        std::fputs(kUsage, stdout);
        return kExitOk;
    } else {
        return usageError("unknown command `" + cmd + "`");
    }

    auto client = connectDaemon(opt);
    if (!client) return reportError(client.error());
    if (cmd == "events") return cmdEvents(*client, opt, args);
    auto report = [](const Error& e) {
        return e.kind() == ErrorKind::InvalidArgument ? usageError(e.message()) : reportError(e);
    };
    if (cmd == "provision") return vmr::ctl::runProvision(*client, args, opt.json, report);
    if (cmd == "ssh") {
        // No VM name: the VMFile's only VM.
        bool named = false;
        for (size_t i = 1; i < args.size() && args[i] != "--"; ++i) {
            if (args[i] == "--user" || args[i] == "--key")
                ++i;
            else if (args[i].empty() || args[i][0] != '-')
                named = true;
        }
        if (named) return vmr::ctl::runSsh(*client, args, report);
        auto sole =
            vmr::ctl::soleVmName(std::string(vmr::config::kVmFileName), vmr::config::Env::fromProcess().home);
        if (!sole) return reportError(sole.error());
        std::vector<std::string> withName = args;
        withName.insert(withName.begin() + 1, *sole);
        return vmr::ctl::runSsh(*client, withName, report);
    }
    if (cmd == "log") {
        auto a = vmr::ctl::parseLogArgs(args);
        if (!a) return usageError(a.error().message());
        auto r = vmr::ctl::runLog(*client, *a);
        if (!r) return reportError(r.error());
        return *r;
    }

    auto r = client->call(method, params);
    if (!r) return reportError(r.error());
    if (cmd == "version" && !opt.json) {
        std::printf("vmrctl %s\n", VMR_VERSION);
    }
    return printResult(opt, *r, human);
}

}  // namespace

int main(int argc, char** argv)
{
    std::signal(SIGPIPE, SIG_IGN);
    Options opt;
    opt.autostart = !envTrue("VMR_NO_AUTOSTART");
    bool commandSeen = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (!commandSeen && (a == "-h" || a == "--help")) {
            std::fputs(kUsage, stdout);
            return kExitOk;
        }
        if (!commandSeen && a == "--version") {
            std::printf("vmrctl %s\n", VMR_VERSION);
            return kExitOk;
        }
        if (!commandSeen && a == "--json") {
            opt.json = true;
            gJsonErrors = true;
        } else if (!commandSeen && a == "--no-autostart") {
            opt.autostart = false;
        } else if (!commandSeen && a == "--socket") {
            if (i + 1 >= argc) return usageError("--socket needs a path");
            opt.socket = argv[++i];
        } else if (!commandSeen && a.rfind("--socket=", 0) == 0) {
            opt.socket = a.substr(9);
        } else if (!commandSeen && a.size() > 1 && a[0] == '-') {
            return usageError("unknown option `" + a + "`");
        } else {
            commandSeen = true;
            opt.args.push_back(a);
        }
    }
    return run(opt);
}
