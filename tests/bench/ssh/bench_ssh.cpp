// Provisioning many guests at once from one loop thread: N runs (connect, host-key check, key
// login, an inline step, a script step, a 1 MiB file upload, a step that waits 0.5 s on the
// guest) against a loopback sshd, alone and then 20 at once. Prints wall time and this
// process's CPU time (user + system) for each; never fails on a time.
//
// Run: build/tests/unit/provision/ssh/bench_ssh (or `meson test -C build --benchmark ssh`).

#include "provision/ssh/provisioner.h"
#include "sshd.h"

#include <sys/resource.h>

#include <cstdio>
#include <vector>

using namespace vmr;
using namespace vmr::provision;
using namespace vmr::provision::test;

namespace {

double cpuSeconds(int who = RUSAGE_SELF)
{
    rusage ru{};
    ::getrusage(who, &ru);
    auto sec = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; };
    return sec(ru.ru_utime) + sec(ru.ru_stime);
}

Task<Result<void>> provisionOne(Reactor& r, ConnectOptions opts, std::vector<ProvisionStep> steps,
                                ProvisionOptions popts)
{
    auto s = co_await Session::connect(r, opts);
    if (!s) co_return std::move(s).error();
    auto done = co_await runProvisioners(**s, std::move(steps), std::move(popts));
    if (!done) co_return std::move(done).error();
    co_return co_await (*s)->disconnect();
}

struct Figures {
    double wall = 0;
    double cpu = 0;        // this process: the loop thread running every session
    double serverCpu = 0;  // sshd and the processes it forked, reaped when it stops
};

// n runs against a fresh sshd, so that its CPU time is this phase's alone.
Figures runMany(Reactor& r, int n, const std::string& tag)
{
    TempDir dir;
    Sshd sshd(r, dir);
    writeFile(dir / "setup.sh", "#!/bin/sh\nfor i in 1 2 3; do echo step $i; done\n", 0755);
    writeFile(dir / "payload.bin", std::string(1 << 20, 'p'), 0644);
    double children0 = cpuSeconds(RUSAGE_CHILDREN);
    sshd.start();

    std::string payload = dir / "payload.bin";
    std::string script = dir / "setup.sh";
    std::vector<Task<Result<void>>> runs;
    auto start = r.now();
    double cpu0 = cpuSeconds();
    for (int i = 0; i < n; ++i) {
        std::string guest = dir / (tag + "-" + std::to_string(i));
        REQUIRE(::mkdir(guest.c_str(), 0755) == 0);
        std::vector<ProvisionStep> steps = {ShellInline{"echo hello from $(hostname)"}, ShellScript{script},
                                            FileUpload{payload, guest + "/"}, ShellInline{"sleep 0.5"}};
        ProvisionOptions popts;
        popts.logPath = guest + "/provision.log";
        popts.remoteScriptDir = guest;
        auto opts = sshd.options();
        opts.timeout = 120s;
        runs.push_back(provisionOne(r, opts, std::move(steps), std::move(popts)));
    }
    REQUIRE(runAll(r, runs, 300s));
    Figures f;
    f.wall = std::chrono::duration<double>(r.now() - start).count();
    f.cpu = cpuSeconds() - cpu0;
    for (auto& t : runs) {
        auto res = t.result();
        if (!res) FAIL(res.error().what() << "\n" << sshd.log());
    }
    // sshd's connection processes end after the clients disconnect; give the listener a moment
    // to reap them, so their CPU time reaches us when it exits.
    (void)r.runFor(500ms);
    sshd.stop();
    f.serverCpu = cpuSeconds(RUSAGE_CHILDREN) - children0;
    return f;
}

}  // namespace

TEST_CASE("bench: 20 provisioning runs at once vs one alone")
{
    VMR_REQUIRE_SSHD();
    auto r = makeReactor();
    auto one = runMany(*r, 1, "one");
    auto twenty = runMany(*r, 20, "twenty");
    std::printf(
        "ssh provisioning (%s backend, loopback sshd; each run: connect + 4 steps incl. 1 MiB upload "
        "and a 0.5 s wait)\n",
        std::string(reactor::backendName(r->backend())).c_str());
    std::printf("  1 run alone:     wall %.2f s, client CPU %.3f s, sshd CPU %.2f s\n", one.wall, one.cpu,
                one.serverCpu);
    std::printf(
        "  20 runs at once: wall %.2f s (x%.1f of one), client CPU %.3f s (%.4f s per run), "
        "sshd CPU %.2f s\n",
        twenty.wall, twenty.wall / one.wall, twenty.cpu, twenty.cpu / 20, twenty.serverCpu);
}
