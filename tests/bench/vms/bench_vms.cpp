// Benchmark of VM operations through vmrd, beside raw QEMU in the same run. Prints figures;
// never fails on a time.
//
//   build/tests/bench/vms/bench_vms [--counts 1,50,200] [--idle SECONDS] [--guest]
//
// The VMs are QEMU with `-machine none` (vmrd.toml: qemu.machine = "none"; no CPU, devices,
// disks or NIC, TCG): every VM is a real QEMU process with QMP and a serial socket, so what is
// measured is vmrd's own work, not guest boot time. "raw" is the same QEMU command line
// spawned directly by this program, ready when QMP answers query-status. With --guest, one
// more round starts the tiny test guest ($VMR_TEST_GUEST) both ways.

#include "../integration/harness.h"
#include "../proc_stats.h"
#include "vm/qemu_argv.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

using namespace vmr::test;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
    std::vector<int> counts = {1, 50, 200};
    int idleSeconds = 60;
    bool guest = false;
};

double msSince(Clock::time_point t0)
{
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

struct Stats {
    double median = 0;
    double p99 = 0;
    double max = 0;
    double total = 0;
};

Stats stats(std::vector<double> v)
{
    Stats s;
    if (v.empty()) return s;
    std::sort(v.begin(), v.end());
    s.median = v[v.size() / 2];
    s.p99 = v[std::min(v.size() - 1, v.size() * 99 / 100)];
    s.max = v.back();
    s.total = std::accumulate(v.begin(), v.end(), 0.0);
    return s;
}

// ---- raw QEMU -------------------------------------------------------------------------------

// A VM with no guest: its spec, and what a start adds (-machine none, TCG).
struct RawVm {
    vmr::model::VmSpec spec;
    vmr::vm::Launch launch;
};

RawVm noneSpec(const std::string& name, int)
{
    RawVm vm;
    vm.spec.name = name;
    vm.spec.memoryMib = 64;
    vm.spec.network.mode = vmr::model::NetMode::None;
    vm.launch.machineNone = true;
    vm.launch.accel = vmr::vm::Accel::Tcg;
    return vm;
}

vmr::vm::RuntimePaths rawPaths(const TempDir& dir, const std::string& name)
{
    return {dir / (name + ".qmp"), dir / (name + ".serial"), dir / (name + ".console.log"),
            dir / (name + ".qemu.log")};
}

// Spawn QEMU as vmrd does: the QMP and serial sockets bound and listening here, the console log
// opened here, all handed over as descriptors (3, 4, 5; the launch files after them).
pid_t spawnRaw(const std::string& binary, const RawVm& vm, const vmr::vm::RuntimePaths& paths)
{
    auto cmd = vmr::vm::buildQemuCommand(binary, vm.spec, vm.launch);
    auto qmp = vmr::reactor::listenUnix(paths.control, 0600, 4);
    auto serial = vmr::reactor::listenUnix(paths.serialSocket, 0600, 16);
    vmr::UniqueFd log(::open(paths.consoleLog.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!qmp || !serial || !log) {
        std::fprintf(stderr, "cannot make the sockets or the log of %s\n", paths.control.c_str());
        return -1;
    }
    std::vector<char*> cargv;
    for (const auto& a : cmd.argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    // Above every descriptor the child will take, so no dup2 overwrites a source.
    std::vector<std::pair<int, int>> moves = {{qmp->get(), 3}, {serial->get(), 4}, {log.get(), 5}};
    moves.insert(moves.end(), cmd.files.begin(), cmd.files.end());
    pid_t pid = ::fork();
    if (pid == 0) {
        int null = ::open("/dev/null", O_RDWR);
        ::dup2(null, 0);
        ::dup2(null, 1);
        ::dup2(null, 2);
        std::vector<int> high;
        for (auto [from, to] : moves) high.push_back(::fcntl(from, F_DUPFD, 100));
        for (size_t i = 0; i < moves.size(); ++i) ::dup2(high[i], moves[i].second);
        ::setsid();
        ::execvp(cargv[0], cargv.data());
        ::_exit(127);
    }
    return pid;
}

// Until QMP answers query-status: connect (retrying 1 ms apart), greeting, capabilities.
bool qmpReady(const std::string& socket, std::chrono::milliseconds timeout = 30s)
{
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        RawClient c(socket);
        if (!c.connected()) {
            std::this_thread::sleep_for(1ms);
            continue;
        }
        auto greeting = c.readLine(5s);
        if (!greeting || greeting->find("\"QMP\"") == std::string::npos) return false;
        c.send("{\"execute\":\"qmp_capabilities\"}\n");
        auto caps = c.readLine(5s);
        if (!caps || caps->find("\"return\"") == std::string::npos) return false;
        c.send("{\"execute\":\"query-status\"}\n");
        for (;;) {
            auto line = c.readLine(5s);
            if (!line) return false;
            if (line->find("\"return\"") != std::string::npos) return true;
        }
    }
    return false;
}

void killAll(std::vector<pid_t>& pids)
{
    for (pid_t p : pids)
        if (p > 0) ::kill(p, SIGKILL);  // processes this benchmark spawned (never -1: everyone)
    for (pid_t p : pids)
        if (p > 0) ::waitpid(p, nullptr, 0);
    pids.clear();
}

struct RawFigures {
    Stats sequential;  // per VM: spawn -> query-status answered
    double concurrentMs = 0;
};

RawFigures rawQemu(int n, const std::string& binary)
{
    TempDir dir;
    RawFigures f;
    std::vector<pid_t> pids;
    std::vector<double> each;
    for (int i = 0; i < n; ++i) {
        std::string name = "raw" + std::to_string(i);
        auto t0 = Clock::now();
        pids.push_back(spawnRaw(binary, noneSpec(name, i), rawPaths(dir, name)));
        if (!qmpReady(rawPaths(dir, name).control)) std::fprintf(stderr, "raw QEMU %d never answered\n", i);
        each.push_back(msSince(t0));
    }
    f.sequential = stats(each);
    killAll(pids);

    TempDir dir2;
    auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) {
        std::string name = "raw" + std::to_string(i);
        pids.push_back(spawnRaw(binary, noneSpec(name, i), rawPaths(dir2, name)));
    }
    for (int i = 0; i < n; ++i) {
        if (!qmpReady(rawPaths(dir2, "raw" + std::to_string(i)).control, 120s))
            std::fprintf(stderr, "raw QEMU %d never answered\n", i);
    }
    f.concurrentMs = msSince(t0);
    killAll(pids);
    return f;
}

// ---- through vmrd ---------------------------------------------------------------------------

// One JSON-RPC connection; a failed call is printed, never fatal.
class Rpc {
public:
    explicit Rpc(const std::string& socket) : c_(socket) {}
    bool connected() const { return c_.connected(); }

    bool call(const std::string& method, const std::string& params, std::string* result = nullptr)
    {
        c_.send(line(method, params));
        auto reply = c_.readLine(300s);
        if (!reply || reply->find("\"error\"") != std::string::npos) {
            std::fprintf(stderr, "%s %s: %s\n", method.c_str(), params.c_str(),
                         reply ? reply->c_str() : "(no reply)");
            return false;
        }
        if (result != nullptr) *result = *reply;
        return true;
    }

    // All at once on this connection; returns when every reply is in.
    int pipeline(const std::vector<std::pair<std::string, std::string>>& calls)
    {
        std::string out;
        for (const auto& [m, p] : calls) out += line(m, p);
        c_.send(out);
        int failed = 0;
        for (size_t i = 0; i < calls.size(); ++i) {
            auto reply = c_.readLine(600s);
            if (!reply) return failed + static_cast<int>(calls.size() - i);
            if (reply->find("\"error\"") != std::string::npos) {
                if (failed++ == 0) std::fprintf(stderr, "pipelined call failed: %s\n", reply->c_str());
            }
        }
        return failed;
    }

private:
    std::string line(const std::string& method, const std::string& params)
    {
        return "{\"jsonrpc\":\"2.0\",\"id\":" + std::to_string(next_++) + ",\"method\":\"" + method +
               "\",\"params\":" + params + "}\n";
    }
    RawClient c_;
    int next_ = 1;
};

std::string nameParam(const std::string& name)
{
    return "{\"name\":\"" + name + "\"}";
}

std::string createParams(const std::string& name, const std::string& base)
{
    return "{\"name\":\"" + name + "\",\"image\":\"" + base + "\",\"network\":\"none\",\"memory_mib\":64}";
}

Daemon::Config benchConfig(const std::string& machine)
{
    Daemon::Config cfg;
    cfg.configToml = "[qemu]\naccel = \"tcg\"\nmachine = \"" + machine +
                     "\"\n[network]\nssh_port_range = \"30000-30999\"\n";
    return cfg;
}

double ctlWallMs(const Daemon& d, const std::vector<std::string>& args, int runs)
{
    std::vector<double> v;
    for (int i = 0; i < runs; ++i) {
        auto t0 = Clock::now();
        auto r = d.ctl(args);
        v.push_back(msSince(t0));
        if (r.code != 0) std::fprintf(stderr, "vmrctl failed: %s\n", r.err.c_str());
    }
    return stats(v).median;
}

void row(const char* what, const std::string& vmrd, const std::string& raw = "")
{
    std::printf("  %-44s %18s %18s\n", what, vmrd.c_str(), raw.c_str());
}

std::string fmt(const char* f, double v)
{
    char b[64];
    std::snprintf(b, sizeof b, f, v);
    return b;
}

std::string statsMs(const Stats& s)
{
    char b[64];
    std::snprintf(b, sizeof b, "%.1f / %.1f ms", s.median, s.p99);
    return b;
}

void benchN(int n, const Args& args, const std::string& qemu)
{
    std::printf("\nN = %d VMs (QEMU -machine none, TCG)                 %18s %18s\n", n, "vmrd", "raw QEMU");
    RawFigures raw = rawQemu(n, qemu);

    TempDir dir;
    std::string base = dir / "base.img";
    if (run({"/usr/bin/qemu-img", "create", "-q", "-f", "raw", base, "64M"}).code != 0) {
        std::fprintf(stderr, "qemu-img create failed\n");
        return;
    }
    auto d = std::make_unique<Daemon>(dir, benchConfig("none"));
    if (!d->waitReady()) {
        std::fprintf(stderr, "vmrd did not start: %s\n", d->log().c_str());
        return;
    }
    long idleRss = vmr::bench::rssKiB(d->pid());
    Rpc rpc(d->socket());

    // Sequential: create, then start, one VM at a time.
    std::vector<double> creates, starts, both;
    for (int i = 0; i < n; ++i) {
        std::string name = "s" + std::to_string(i);
        auto t0 = Clock::now();
        rpc.call("vm.create", createParams(name, base));
        double c = msSince(t0);
        auto t1 = Clock::now();
        rpc.call("vm.start", nameParam(name));
        double s = msSince(t1);
        creates.push_back(c);
        starts.push_back(s);
        both.push_back(c + s);
    }
    Stats st = stats(starts);
    std::printf("  (median / p99)\n");
    row("create per VM (overlay, record)", statsMs(stats(creates)));
    row("start per VM (spawn -> QMP running)", statsMs(st), statsMs(raw.sequential));
    row("start overhead over raw, median", fmt("%+.1f ms", st.median - raw.sequential.median));
    row("create+start, all N one by one", fmt("%.0f ms", stats(both).total),
        fmt("%.0f ms", raw.sequential.total));

    // Queries with N running.
    row("vmrctl list (wall, process included)", fmt("%.1f ms", ctlWallMs(*d, {"list"}, 10)));
    row("vmrctl status (wall)", fmt("%.1f ms", ctlWallMs(*d, {"status", "s0"}, 10)));
    std::vector<double> statusLat, suspendLat, resumeLat;
    for (int i = 0; i < 200; ++i) {
        auto t0 = Clock::now();
        rpc.call("vm.status", nameParam("s" + std::to_string(i % n)));
        statusLat.push_back(msSince(t0) * 1000);
    }
    Stats sl = stats(statusLat);
    row("vm.status latency (RPC)", fmt("%.0f us", sl.median) + fmt(" / %.0f us", sl.p99));
    for (int i = 0; i < 20; ++i) {
        std::string name = nameParam("s" + std::to_string(i % n));
        auto t0 = Clock::now();
        rpc.call("vm.suspend", name);
        suspendLat.push_back(msSince(t0));
        auto t1 = Clock::now();
        rpc.call("vm.resume", name);
        resumeLat.push_back(msSince(t1));
    }
    row("suspend (QMP stop)", statsMs(stats(suspendLat)));
    row("resume (QMP cont)", statsMs(stats(resumeLat)));
    pid_t vmrd = d->pid();
    row("vmrd RSS idle before / with N VMs",
        fmt("%.1f MiB", idleRss / 1024.0) + fmt(" / %.1f MiB", vmr::bench::rssKiB(vmrd) / 1024.0));
    row("vmrd threads / open fds",
        fmt("%.0f", double(vmr::bench::threads(vmrd))) + fmt(" / %.0f", double(vmr::bench::openFds(vmrd))));
    double cpu0 = vmr::bench::cpuSeconds(vmrd);
    std::this_thread::sleep_for(std::chrono::seconds(args.idleSeconds));
    double idleCpu = vmr::bench::cpuSeconds(vmrd) - cpu0;
    row(("vmrd CPU while idle for " + std::to_string(args.idleSeconds) + " s").c_str(),
        fmt("%.2f s", idleCpu));

    // Restart: vmrd goes, the VMs stay; a new vmrd re-adopts them all.
    d->terminate();
    auto t0 = Clock::now();
    d = std::make_unique<Daemon>(dir, benchConfig("none"));
    bool adopted = eventually([&] { return d->log().find("Re-adopted") != std::string::npos; }, 120s);
    double adoptWall = msSince(t0);
    std::string logged = d->log();
    auto at = logged.find("Re-adopted");
    std::string own = at == std::string::npos ? "?" : logged.substr(at, logged.find('\n', at) - at);
    row("restart until all re-adopted (wall)", adopted ? fmt("%.0f ms", adoptWall) : "timed out");
    std::printf("    vmrd says: %s\n", own.c_str());
    Rpc rpc2(d->socket());
    if (!rpc2.call("vm.suspend", nameParam("s0")) || !rpc2.call("vm.resume", nameParam("s0")))
        std::fprintf(stderr, "re-adopted VM s0 does not answer\n");

    // Destroy each running VM (forced), one by one.
    std::vector<double> destroys;
    for (int i = 0; i < n; ++i) {
        auto t1 = Clock::now();
        rpc2.call("vm.destroy", nameParam("s" + std::to_string(i)));
        destroys.push_back(msSince(t1));
    }
    row("destroy a running VM (forced)", statsMs(stats(destroys)));

    // Concurrent: N creates at once, then N starts at once.
    std::vector<std::pair<std::string, std::string>> calls;
    for (int i = 0; i < n; ++i) calls.push_back({"vm.create", createParams("c" + std::to_string(i), base)});
    auto tc = Clock::now();
    int failed = rpc2.pipeline(calls);
    double createAll = msSince(tc);
    calls.clear();
    for (int i = 0; i < n; ++i) calls.push_back({"vm.start", nameParam("c" + std::to_string(i))});
    auto ts = Clock::now();
    failed += rpc2.pipeline(calls);
    double startAll = msSince(ts);
    row("create all N at once", fmt("%.0f ms", createAll));
    row("start all N at once", fmt("%.0f ms", startAll), fmt("%.0f ms", raw.concurrentMs));
    row("  ratio to raw", fmt("%.2fx", startAll / raw.concurrentMs));
    if (failed != 0) std::printf("    (%d calls failed)\n", failed);
    calls.clear();
    for (int i = 0; i < n; ++i) calls.push_back({"vm.destroy", nameParam("c" + std::to_string(i))});
    auto td = Clock::now();
    rpc2.pipeline(calls);
    row("destroy all N at once", fmt("%.0f ms", msSince(td)));
    d->terminate();
}

// The tiny guest, once: start through vmrd vs the same QEMU command line by hand.
void benchGuest(const std::string& qemu)
{
    const char* env = std::getenv("VMR_TEST_GUEST");
    std::string guest = env != nullptr ? env : "/tmp/vmr-guest";
    std::printf("\nTiny guest (q35, TCG, direct kernel boot from %s)\n", guest.c_str());
    TempDir dir;
    std::string base = dir / "base.img";
    run({"/usr/bin/qemu-img", "create", "-q", "-f", "raw", base, "64M"});

    RawVm spec = noneSpec("rawguest", 1);
    spec.launch.machineNone = false;
    spec.spec.memoryMib = 256;
    spec.spec.kernel = guest + "/vmlinux";
    spec.spec.initrd = guest + "/initramfs.cpio.gz";
    spec.spec.cmdline = "console=ttyS0";
    for (auto [file, path] :
         {std::pair{&spec.launch.kernel, spec.spec.kernel}, {&spec.launch.initrd, spec.spec.initrd}})
        *file = vmr::vm::LaunchFile(path, vmr::UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)));
    auto paths = rawPaths(dir, "rawguest");
    auto t0 = Clock::now();
    std::vector<pid_t> pids = {spawnRaw(qemu, spec, paths)};
    qmpReady(paths.control);
    double rawStart = msSince(t0);
    eventually([&] { return readFile(paths.consoleLog).find("VMR-GUEST-READY") != std::string::npos; }, 120s);
    double rawReady = msSince(t0);
    killAll(pids);

    Daemon d(dir, benchConfig("q35"));
    if (!d.waitReady()) return;
    Rpc rpc(d.socket());
    std::string params = "{\"name\":\"g\",\"image\":\"" + base +
                         "\",\"network\":\"none\",\"memory_mib\":256,\"kernel\":\"" + spec.spec.kernel +
                         "\",\"initrd\":\"" + spec.spec.initrd + "\",\"cmdline\":\"console=ttyS0\"}";
    rpc.call("vm.create", params);
    auto t1 = Clock::now();
    rpc.call("vm.start", nameParam("g"));
    double start = msSince(t1);
    eventually(
        [&] {
            return readFile(dir / "state/vms/g/console.log").find("VMR-GUEST-READY") != std::string::npos;
        },
        120s);
    double ready = msSince(t1);
    row("start (spawn -> QMP running)", fmt("%.1f ms", start), fmt("%.1f ms", rawStart));
    row("until the guest prints VMR-GUEST-READY", fmt("%.0f ms", ready), fmt("%.0f ms", rawReady));
    rpc.call("vm.destroy", nameParam("g"));
}

}  // namespace

int main(int argc, char** argv)
{
    Args args;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--counts" && i + 1 < argc) {
            args.counts.clear();
            std::string list = argv[++i];
            size_t p = 0;
            while (p < list.size()) {
                size_t comma = list.find(',', p);
                args.counts.push_back(std::stoi(list.substr(p, comma - p)));
                p = comma == std::string::npos ? list.size() : comma + 1;
            }
        } else if (a == "--idle" && i + 1 < argc) {
            args.idleSeconds = std::stoi(argv[++i]);
        } else if (a == "--guest") {
            args.guest = true;
        } else {
            std::fprintf(stderr, "usage: bench_vms [--counts 1,50,200] [--idle SECONDS] [--guest]\n");
            return 2;
        }
    }
    std::string qemu = "qemu-system-x86_64";
    std::printf("bench_vms: vmrd %s, reactor %s\n", binary("VMR_VMRD").c_str(),
                std::getenv("VMR_REACTOR") != nullptr ? std::getenv("VMR_REACTOR") : "auto");
    for (int n : args.counts) benchN(n, args, qemu);
    if (args.guest) benchGuest(qemu);
    return 0;
}
