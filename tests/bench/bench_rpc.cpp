// Benchmark of vmrd's control plane. Prints figures; never fails on a time.
//
//   build/tests/bench/bench_rpc [--requests N] [--backend uring|uv|both] [--vms N]
//
// For each backend: vmr.ping and vm.list pipelined on one connection; closed-loop clients
// on 1, 16 and 256 connections (p50/p99 latency); vmrd RSS idle and after load.

#include "../integration/harness.h"
#include "proc_stats.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

using namespace vmr::test;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
    int requests = 200000;
    int vms = 100;
    std::vector<std::string> backends = {"uring", "uv"};
};

std::string request(int id, const char* method)
{
    return "{\"jsonrpc\":\"2.0\",\"id\":" + std::to_string(id) + ",\"method\":\"" + method + "\"}\n";
}

// Pipelined: keep up to `window` requests in flight on one connection. Returns req/s.
double pipelined(const std::string& socket, const char* method, int total, int window = 512)
{
    RawClient c(socket);
    if (!c.connected()) return 0;
    int sent = 0, received = 0;
    std::string out;
    std::string in;
    char buf[1 << 16];
    auto t0 = Clock::now();
    while (received < total) {
        int inflight = sent - received;
        if (inflight < window / 2 && sent < total) {
            out.clear();
            while (sent < total && sent - received < window) out += request(sent++, method);
            c.send(out);
        }
        pollfd p{c.fd(), POLLIN, 0};
        if (::poll(&p, 1, 5000) <= 0) {
            std::fprintf(stderr, "pipelined %s: stalled at %d/%d\n", method, received, total);
            return 0;
        }
        ssize_t n = ::recv(c.fd(), buf, sizeof buf, 0);
        if (n <= 0) return 0;
        for (ssize_t i = 0; i < n; ++i) {
            if (buf[i] == '\n') ++received;
        }
    }
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    return total / secs;
}

struct LoadResult {
    double rps = 0;
    double p50us = 0;
    double p99us = 0;
};

// Closed loop: each connection has one request in flight; one poll loop drives all.
LoadResult closedLoop(const std::string& socket, int connections, int total)
{
    std::vector<RawClient> clients;
    clients.reserve(connections);
    for (int i = 0; i < connections; ++i) clients.emplace_back(socket);
    std::vector<Clock::time_point> started(connections);
    std::vector<double> latencies;
    latencies.reserve(total);
    std::vector<pollfd> fds(connections);
    int sent = 0;
    for (int i = 0; i < connections && sent < total; ++i) {
        started[i] = Clock::now();
        clients[i].send(request(sent++, "vmr.ping"));
        fds[i] = {clients[i].fd(), POLLIN, 0};
    }
    char buf[4096];
    auto t0 = Clock::now();
    int done = 0;
    while (done < total) {
        if (::poll(fds.data(), fds.size(), 5000) <= 0) break;
        for (int i = 0; i < connections; ++i) {
            if ((fds[i].revents & POLLIN) == 0) continue;
            ssize_t n = ::recv(fds[i].fd, buf, sizeof buf, 0);
            if (n <= 0) continue;
            auto now = Clock::now();
            latencies.push_back(std::chrono::duration<double, std::micro>(now - started[i]).count());
            ++done;
            if (sent < total) {
                started[i] = Clock::now();
                clients[i].send(request(sent++, "vmr.ping"));
            }
        }
    }
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    std::sort(latencies.begin(), latencies.end());
    LoadResult r;
    r.rps = done / secs;
    if (!latencies.empty()) {
        r.p50us = latencies[latencies.size() / 2];
        r.p99us = latencies[std::min(latencies.size() - 1, latencies.size() * 99 / 100)];
    }
    return r;
}

void seedVms(const TempDir& dir, int n)
{
    for (int i = 0; i < n; ++i) {
        std::string name = "vm" + std::to_string(i);
        char id[16];
        std::snprintf(id, sizeof id, "%08x", 0x1000 + i);
        std::string json =
            std::string("{\"version\":1,\"name\":\"") + name + "\",\"id\":\"" + id +
            "\",\"backend\":\"qemu\",\"created\":1700000000,\"image\":\"/img/base.qcow2\",\"vcpus\":1,"
            "\"memory_mib\":1024,\"network\":\"user\",\"state\":\"stopped\",\"state_reason\":\"\",\"pid\":"
            "null,"
            "\"pid_start_time\":null,\"ssh_port\":" +
            std::to_string(10022 + i) +
            ",\"mac\":\"52:54:00:00:10:00\",\"vnc_port\":null,\"disk_gib\":null,\"kernel\":null,"
            "\"initrd\":null,\"cmdline\":\"\",\"accel\":\"\"}";
        writeFile(dir / ("state/vms/" + name + "/vm.json"), json);
    }
}

void benchBackend(const Args& a, const std::string& backend)
{
    TempDir dir;
    seedVms(dir, a.vms);
    Daemon::Config cfg;
    cfg.extraArgs = {"--reactor", backend};
    Daemon d(dir, cfg);
    if (!d.waitReady()) {
        std::printf("%s: vmrd did not start\n%s\n", backend.c_str(), d.log().c_str());
        return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    long idle = vmr::bench::rssKiB(d.pid());

    double ping = pipelined(d.socket(), "vmr.ping", a.requests);
    double list = pipelined(d.socket(), "vm.list", std::max(1000, a.requests / 50), 64);
    std::printf("[%s] vmrd idle RSS                 %8.2f MiB\n", backend.c_str(), idle / 1024.0);
    std::printf("[%s] vmr.ping pipelined, 1 conn    %8.0f req/s\n", backend.c_str(), ping);
    std::printf("[%s] vm.list (%d VMs) pipelined    %8.0f req/s\n", backend.c_str(), a.vms, list);
    for (int conns : {1, 16, 256}) {
        auto r = closedLoop(d.socket(), conns, std::max(a.requests / 4, conns * 20));
        std::printf("[%s] vmr.ping closed loop %3d conn %8.0f req/s   p50 %7.1f us   p99 %7.1f us\n",
                    backend.c_str(), conns, r.rps, r.p50us, r.p99us);
    }
    std::printf("[%s] vmrd RSS after load           %8.2f MiB (peak %.2f MiB)\n", backend.c_str(),
                vmr::bench::rssKiB(d.pid()) / 1024.0, vmr::bench::statusField(d.pid(), "VmHWM:") / 1024.0);
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv)
{
    Args a;
    for (int i = 1; i < argc; ++i) {
        std::string s = argv[i];
        if (s == "--requests" && i + 1 < argc)
            a.requests = std::stoi(argv[++i]);
        else if (s == "--vms" && i + 1 < argc)
            a.vms = std::stoi(argv[++i]);
        else if (s == "--backend" && i + 1 < argc) {
            std::string b = argv[++i];
            a.backends = b == "both" ? std::vector<std::string>{"uring", "uv"} : std::vector<std::string>{b};
        } else {
            std::fprintf(stderr, "usage: bench_rpc [--requests N] [--vms N] [--backend uring|uv|both]\n");
            return 2;
        }
    }
    std::printf("vmrd control-plane benchmark: %d requests, %d VM records, %u CPUs\n", a.requests, a.vms,
                std::thread::hardware_concurrency());
    for (auto& b : a.backends) benchBackend(a, b);
    return 0;
}
