// vmrd: the vmr daemon. One thread, one event loop.

#include "base/log.h"
#include "vmrd/daemon.h"

#include "config.h"

#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitBusy = 3;  // another vmrd already serves this state dir

constexpr const char* kUsage = R"(Usage: vmrd [OPTIONS]

The vmr daemon: manages VMs and serves vmrctl over a JSON-RPC control socket.

Options:
  --user                   User mode: state in $XDG_DATA_HOME/vmr, socket in $XDG_RUNTIME_DIR/vmr
  --system                 System mode (the default as root): /var/lib/vmr, /run/vmr/vmrd.sock
  --config FILE            Configuration file (default /etc/vmr/vmrd.toml or $XDG_CONFIG_HOME/vmr/vmrd.toml)
  --socket PATH            Control socket path (overrides the configuration)
  --state-dir DIR          State folder (overrides the configuration)
  --runtime-dir DIR        Runtime folder for sockets (overrides the configuration)
  --reactor uring|uv       Force an event-loop backend (also: VMR_REACTOR); default: probe
  -v, -vv, -vvv            More logging; at -vv every external command is logged as a shell line
  -h, --help               Show this help
  --version                Show the version

Signals: SIGTERM/SIGINT shut down (VMs keep running); SIGHUP reloads the configuration.
)";

int usage(const std::string& msg)
{
    std::fprintf(stderr, "vmrd: %s\nRun `vmrd --help` for usage.\n", msg.c_str());
    return kExitUsage;
}

}  // namespace

int main(int argc, char** argv)
{
    using vmr::vmrd::Options;
    Options opt;
    auto takeValue = [&](int& i, const std::string& a, const char* name,
                         std::optional<std::string>& out) -> bool {
        std::string flag = std::string("--") + name;
        if (a == flag) {
            if (i + 1 >= argc) return false;
            out = argv[++i];
            return true;
        }
        if (a.rfind(flag + "=", 0) == 0) {
            out = a.substr(flag.size() + 1);
            return true;
        }
        return false;
    };
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        std::optional<std::string> v;
        if (a == "-h" || a == "--help") {
            std::fputs(kUsage, stdout);
            return kExitOk;
        }
        if (a == "--version") {
            std::printf("vmrd %s\n", VMR_VERSION);
            return kExitOk;
        }
        if (a == "--user") {
            opt.mode = vmr::config::Mode::User;
        } else if (a == "--system") {
            opt.mode = vmr::config::Mode::System;
        } else if (a == "-v" || a == "-vv" || a == "-vvv") {
            opt.verbose = std::max(opt.verbose, 0) + static_cast<int>(a.size()) - 1;
        } else if (takeValue(i, a, "config", v)) {
            opt.configPath = v;
        } else if (takeValue(i, a, "socket", v)) {
            opt.socket = v;
        } else if (takeValue(i, a, "state-dir", v)) {
            opt.stateDir = v;
        } else if (takeValue(i, a, "runtime-dir", v)) {
            opt.runtimeDir = v;
        } else if (takeValue(i, a, "reactor", v)) {
            auto b = vmr::reactor::parseBackend(*v);
            if (!b) return usage(b.error().what());
            opt.reactor = *b;
        } else if (a == "--config" || a == "--socket" || a == "--state-dir" || a == "--runtime-dir" ||
                   a == "--reactor") {
            return usage(a + " needs a value");
        } else {
            return usage("unknown option `" + a + "`");
        }
    }
    std::signal(SIGPIPE, SIG_IGN);
    // A host with hundreds of VMs holds a few fds per VM and per client: use the hard limit.
    rlimit nofile{};
    if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &nofile);
    }
    if (opt.verbose >= 0) vmr::log::setVerbosity(opt.verbose);

    auto daemon = vmr::vmrd::Daemon::create(std::move(opt));
    if (!daemon) {
        const auto& e = daemon.error();
        vmr::log::get("vmrd").error("{}", e.what());
        if (!e.hint().empty()) vmr::log::get("vmrd").error("hint: {}", e.hint());
        return e.kind() == vmr::ErrorKind::Busy ? kExitBusy : kExitError;
    }
    auto r = (*daemon)->run();
    if (!r) {
        vmr::log::get("vmrd").error("{}", r.error().what());
        return kExitError;
    }
    return kExitOk;
}
