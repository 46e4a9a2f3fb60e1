// Console hub benchmark: one console fed at full speed by a synthetic serial source (a thread
// writing 64 KiB blocks into the unix socket the hub connects to, as QEMU's chardev would), fanned
// out by the hub on its reactor (this process's main thread, as in vmrd) to 1, 16 and 64 viewers
// read by one reader thread. Prints MB/s per viewer and in all, the hub thread's CPU per MB and
// the process's RSS growth, next to plain unix-socket copies measured in the same run.
//
//   bench_console [SECONDS_PER_CASE] [VIEWER_COUNTS...]      (defaults: 3, 1 16 64)

#include "console/hub.h"

#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

using namespace vmr;
using namespace std::chrono_literals;

namespace {

constexpr size_t kBlock = 64 * 1024;

double seconds(std::chrono::steady_clock::duration d)
{
    return std::chrono::duration<double>(d).count();
}

long rssKib()
{
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    }
    return -1;
}

double threadCpuSeconds()
{
    rusage ru{};
    ::getrusage(RUSAGE_THREAD, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Writes blocks to fd until it fails (the other side closed) or stop is set.
void source(int fd, const std::atomic<bool>& stop)
{
    std::string block(kBlock, '\0');
    for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>("0123456789abcdef\n"[i % 17]);
    while (!stop.load(std::memory_order_relaxed)) {
        ssize_t n = ::send(fd, block.data(), block.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
    }
}

// Reads every fd until stop; counts bytes per fd.
void readers(const std::vector<int>& fds, std::vector<uint64_t>& counts, const std::atomic<bool>& stop)
{
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    for (size_t i = 0; i < fds.size(); ++i) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = i;
        ::epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    std::vector<char> buf(256 * 1024);
    std::vector<epoll_event> evs(fds.size());
    while (!stop.load(std::memory_order_relaxed)) {
        int n = ::epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 50);
        for (int k = 0; k < n; ++k) {
            size_t i = evs[static_cast<size_t>(k)].data.u64;
            ssize_t r = ::recv(fds[i], buf.data(), buf.size(), MSG_DONTWAIT);
            if (r > 0) counts[i] += static_cast<uint64_t>(r);
        }
    }
    ::close(ep);
}

struct Baselines {
    double direct = 0;  // source -> reader, one socket
    double relay = 0;   // source -> a read/write loop -> reader, two sockets (the hub's topology)
};

// The plain copies, with the same source and reader code.
Baselines measureBaselines(double secs)
{
    Baselines b;
    for (int relay = 0; relay < 2; ++relay) {
        int a[2];
        int c[2];
        ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a);
        ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c);
        std::atomic<bool> stop{false};
        std::vector<int> readFds{relay ? c[1] : a[1]};
        std::vector<uint64_t> counts(1, 0);
        std::thread src(source, a[0], std::cref(stop));
        std::thread rd(readers, std::cref(readFds), std::ref(counts), std::cref(stop));
        auto t0 = std::chrono::steady_clock::now();
        auto end = t0 + std::chrono::duration<double>(secs);
        if (relay) {
            std::vector<char> buf(kBlock);
            while (std::chrono::steady_clock::now() < end) {
                ssize_t n = ::recv(a[1], buf.data(), buf.size(), 0);
                if (n <= 0) break;
                for (ssize_t off = 0; off < n;) {
                    ssize_t w = ::send(c[0], buf.data() + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
                    if (w <= 0) break;
                    off += w;
                }
            }
        } else {
            std::this_thread::sleep_until(end);
        }
        double took = seconds(std::chrono::steady_clock::now() - t0);
        uint64_t got = counts[0];
        stop = true;
        for (int fd : {a[0], a[1], c[0], c[1]}) ::shutdown(fd, SHUT_RDWR);
        src.join();
        rd.join();
        for (int fd : {a[0], a[1], c[0], c[1]}) ::close(fd);
        (relay ? b.relay : b.direct) = static_cast<double>(got) / took / 1e6;
    }
    return b;
}

struct HubFigures {
    double perViewerMin = 0;
    double perViewerMean = 0;
    double aggregate = 0;
    double inMBs = 0;       // read from the serial
    double cpuPerMB = 0;    // hub thread CPU ms per MB delivered
    double skippedPct = 0;  // of what viewers were due
    long rssGrowthKib = 0;  // max during the run minus before
};

int listenAt(const std::string& path)
{
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    ::unlink(path.c_str());
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 || ::listen(fd, 4) < 0) {
        std::perror("bind/listen");
        std::exit(1);
    }
    return fd;
}

HubFigures measureHub(reactor::Reactor& r, size_t viewers, double secs, const std::string& dir)
{
    std::string path = dir + "/serial.sock";
    int lfd = listenAt(path);
    auto created = console::Hub::create(r, "bench", console::HubOptions{});
    if (!created) {
        std::fprintf(stderr, "%s\n", created.error().what().c_str());
        std::exit(1);
    }
    std::unique_ptr<console::Hub> hub = std::move(*created);
    std::vector<int> viewerFds;
    for (size_t i = 0; i < viewers; ++i) {
        int sv[2];
        ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
        console::AttachOptions o;
        o.mode = console::Mode::ReadOnly;
        hub->attach(std::make_unique<reactor::Stream>(r, UniqueFd(sv[0])), o);
        viewerFds.push_back(sv[1]);
    }
    std::atomic<bool> stop{false};
    std::vector<uint64_t> counts(viewers, 0);
    std::thread rd(readers, std::cref(viewerFds), std::ref(counts), std::cref(stop));
    hub->vmRunning(path);
    int conn = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    (void)r.runFor(50ms);  // settle: the hub is connected and idle
    long rssBefore = rssKib();
    long rssMax = rssBefore;
    reactor::Timer sampler(r, [&] { rssMax = std::max(rssMax, rssKib()); });
    sampler.start(50ms, 50ms);

    std::thread src(source, conn, std::cref(stop));
    double cpu0 = threadCpuSeconds();
    auto t0 = std::chrono::steady_clock::now();
    (void)r.runFor(std::chrono::milliseconds(static_cast<long>(secs * 1000)));
    double took = seconds(std::chrono::steady_clock::now() - t0);
    double cpu = threadCpuSeconds() - cpu0;
    sampler.stop();
    rssMax = std::max(rssMax, rssKib());

    HubFigures f;
    auto stats = hub->stats();
    auto infos = hub->viewers();
    uint64_t delivered = 0;
    uint64_t skipped = 0;
    uint64_t minCount = UINT64_MAX;
    for (uint64_t c : counts) {
        delivered += c;
        minCount = std::min(minCount, c);
    }
    for (const auto& v : infos) skipped += v.skippedBytes;
    stop = true;
    hub.reset();  // closes the serial (the source's send fails) and the viewers
    ::shutdown(conn, SHUT_RDWR);
    src.join();
    rd.join();
    (void)r.runFor(20ms);
    ::close(conn);
    ::close(lfd);
    for (int fd : viewerFds) ::close(fd);
    ::unlink(path.c_str());

    f.aggregate = static_cast<double>(delivered) / took / 1e6;
    f.perViewerMean = f.aggregate / static_cast<double>(viewers);
    f.perViewerMin = static_cast<double>(minCount) / took / 1e6;
    f.inMBs = static_cast<double>(stats.bytesIn) / took / 1e6;
    f.cpuPerMB = delivered > 0 ? cpu * 1e3 / (static_cast<double>(delivered) / 1e6) : 0;
    double due = static_cast<double>(stats.bytesIn) * static_cast<double>(viewers);
    f.skippedPct = due > 0 ? 100.0 * static_cast<double>(skipped) / due : 0;
    f.rssGrowthKib = rssMax - rssBefore;
    return f;
}

}  // namespace

int main(int argc, char** argv)
{
    double secs = argc > 1 ? std::atof(argv[1]) : 3.0;
    if (secs <= 0) secs = 3.0;
    std::vector<size_t> counts;
    for (int i = 2; i < argc; ++i) counts.push_back(static_cast<size_t>(std::atoi(argv[i])));
    if (counts.empty()) counts = {1, 16, 64};

    auto r = reactor::Reactor::create();
    if (!r) {
        std::fprintf(stderr, "%s\n", r.error().what().c_str());
        return 1;
    }
    char tmpl[] = "/tmp/vmr-bench-con-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return 1;
    std::string dir = tmpl;

    Baselines base = measureBaselines(secs);
    std::printf("console hub benchmark (%s, %.1f s per case, 64 KiB source blocks, %u CPUs)\n",
                std::string(reactor::backendName((*r)->backend())).c_str(), secs,
                std::thread::hardware_concurrency());
    std::printf("plain unix-socket copy: direct %.0f MB/s, through a read/write relay %.0f MB/s\n",
                base.direct, base.relay);
    std::printf("%8s %10s %14s %14s %12s %12s %10s %12s\n", "viewers", "in MB/s", "per viewer", "min viewer",
                "aggregate", "CPU ms/MB", "skipped", "RSS growth");
    for (size_t n : counts) {
        if (n == 0) continue;
        HubFigures f = measureHub(**r, n, secs, dir);
        std::printf("%8zu %10.0f %9.0f MB/s %9.0f MB/s %7.0f MB/s %12.3f %9.1f%% %8ld KiB\n", n, f.inMBs,
                    f.perViewerMean, f.perViewerMin, f.aggregate, f.cpuPerMB, f.skippedPct, f.rssGrowthKib);
        if (n == 1 && base.relay > 0)
            std::printf("%8s single viewer: %.0f%% of the relay copy, %.0f%% of the direct copy\n", "",
                        100.0 * f.aggregate / base.relay, 100.0 * f.aggregate / base.direct);
    }
    ::rmdir(dir.c_str());
    return 0;
}
