// Provisioning many VMs at once through vmrd: N tiny test guests ($VMR_TEST_GUEST) under TCG,
// each provisioned over SSH by vmrd's one thread. Prints figures; never fails on a time.
//
//   build/tests/bench/vms/bench_provision [--vms 20]
//
// Printed: the wall time of one VM's provisioning alone, of N at once, and vmrd's CPU time
// for each (the guests' own CPU is QEMU's, not counted).

#include "../../integration/harness.h"
#include "../proc_stats.h"

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

using namespace vmr::test;
using Clock = std::chrono::steady_clock;

namespace {

double msSince(Clock::time_point t0)
{
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string rpc(const std::string& method, const std::string& params, int id)
{
    return "{\"jsonrpc\":\"2.0\",\"id\":" + std::to_string(id) + ",\"method\":\"" + method +
           "\",\"params\":" + params + "}\n";
}

// Provision these VMs at once (one connection each, so each gets its own output); returns
// how many failed.
int provisionAll(const Daemon& d, const std::vector<std::string>& names, const std::string& steps)
{
    std::vector<RawClient> clients;
    clients.reserve(names.size());
    for (const auto& n : names) {
        clients.emplace_back(d.socket());
        clients.back().send(rpc("vm.provision", R"({"name":")" + n + R"(","steps":)" + steps + "}", 1));
    }
    int failed = 0;
    for (auto& c : clients) {
        for (;;) {
            auto line = c.readLine(600s);
            if (!line) {
                ++failed;
                break;
            }
            if (line->find("\"id\":1") == std::string::npos) continue;  // output notifications
            if (line->find("\"error\"") != std::string::npos) {
                std::fprintf(stderr, "provision failed: %s\n", line->c_str());
                ++failed;
            }
            break;
        }
    }
    return failed;
}

}  // namespace

int main(int argc, char** argv)
{
    int n = 20;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--vms" && i + 1 < argc)
            n = std::stoi(argv[++i]);
        else {
            std::fprintf(stderr, "usage: bench_provision [--vms N]\n");
            return 2;
        }
    }
    if (!haveGuest()) {
        std::fprintf(stderr, "bench_provision: no test guest at %s (tests/guest/build.sh)\n",
                     guestDir().c_str());
        return 1;
    }
    TempDir dir;
    Daemon::Config cfg;
    cfg.configToml = "[qemu]\naccel = \"tcg\"\n" + sshPortsToml(38000, 100);
    Daemon d(dir, cfg);
    if (!d.waitReady()) return 1;
    std::string base = dir / "base.img";
    run({"/usr/bin/qemu-img", "create", "-q", "-f", "raw", base, "64M"});
    std::vector<std::string> names;
    auto tb = Clock::now();
    for (int i = 0; i < n; ++i) {
        names.push_back("p" + std::to_string(i));
        auto r = d.ctl({"create", "--name", names.back(), "--image", base, "--kernel",
                        guestDir() + "/vmlinux", "--initrd", guestDir() + "/initramfs.cpio.gz", "--cmdline",
                        "console=ttyS0", "--memory", "192", "--start"},
                       300s);
        if (r.code != 0) {
            std::fprintf(stderr, "create %s: %s\n", names.back().c_str(), r.err.c_str());
            return 1;
        }
    }
    for (const auto& name : names) {
        eventually(
            [&] {
                return readFile(dir / ("state/vms/" + name + "/console.log")).find("VMR-GUEST-READY") !=
                       std::string::npos;
            },
            600s);
    }
    std::printf("bench_provision: %d tiny guests (TCG) booted in %.1f s\n", n, msSince(tb) / 1000);
    // A step that does a little work on the guest and sends some output back.
    std::string steps = R"J([{"type":"shell","inline":"uname -a; seq 1 2000 | tail -n 1"},)J"
                        R"J({"type":"shell","inline":"echo done-$(hostname)"}])J";
    pid_t vmrd = d.pid();

    double cpu0 = vmr::bench::cpuSeconds(vmrd);
    auto t0 = Clock::now();
    int failedOne = provisionAll(d, {names[0]}, steps);
    double one = msSince(t0);
    double cpuOne = vmr::bench::cpuSeconds(vmrd) - cpu0;

    cpu0 = vmr::bench::cpuSeconds(vmrd);
    t0 = Clock::now();
    int failedAll = provisionAll(d, names, steps);
    double all = msSince(t0);
    double cpuAll = vmr::bench::cpuSeconds(vmrd) - cpu0;

    std::printf("  %-40s %10.0f ms   vmrd CPU %.3f s%s\n", "one VM alone", one, cpuOne,
                failedOne ? " (FAILED)" : "");
    std::printf("  %-40s %10.0f ms   vmrd CPU %.3f s%s\n", (std::to_string(n) + " VMs at once").c_str(), all,
                cpuAll, failedAll ? " (some FAILED)" : "");
    std::printf("  %-40s %10.2fx\n", "at once vs one alone (wall)", all / one);
    std::printf("  vmrd RSS %.1f MiB, threads %ld\n", vmr::bench::rssKiB(vmrd) / 1024.0,
                vmr::bench::threads(vmrd));
    for (const auto& name : names) d.ctl({"destroy", name}, 60s);
    return failedOne + failedAll == 0 ? 0 : 1;
}
