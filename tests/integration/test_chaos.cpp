// Chaos (slow suite, -Dslow_tests=true; $VMR_CHAOS_ROUNDS rounds, default 200): eight clients
// create, start, stop, suspend, resume and destroy VMs (QEMU -machine none) on sixteen names
// while vmrd is killed with SIGKILL at a random moment of each round; after every restart the
// state is audited (audit.h). At the end everything is destroyed and nothing may be left: no
// hypervisor, no folder, nothing in the image cache. Prints rounds, operations and violations.

#include "audit.h"
#include "catch.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>

using namespace vmr::test;

namespace {

constexpr int kClients = 8;
constexpr int kNames = 16;

// One client: random verbs on random names until the connection breaks (vmrd was killed).
void client(const std::string& socket, const std::string& base, unsigned seed, std::atomic<long>& calls)
{
    RawClient c(socket);
    if (!c.connected()) return;
    std::mt19937 rng(seed);
    for (long id = 1;; ++id) {
        std::string name = "c" + std::to_string(rng() % kNames);
        std::string method, params = "{\"name\":\"" + name + "\"}";
        switch (rng() % 6) {
            case 0:
                method = "vm.create";
                params = "{\"name\":\"" + name + "\",\"image\":\"" + base +
                         "\",\"start\":" + (rng() % 2 ? "true" : "false") + "}";
                break;
            case 1: method = "vm.start"; break;
            case 2:
                method = "vm.stop";
                params = "{\"name\":\"" + name + "\",\"force\":true}";
                break;
            case 3: method = "vm.suspend"; break;
            case 4: method = "vm.resume"; break;
            default: method = "vm.destroy"; break;
        }
        if (!c.send("{\"jsonrpc\":\"2.0\",\"id\":" + std::to_string(id) + ",\"method\":\"" + method +
                    "\",\"params\":" + params + "}\n"))
            return;
        if (!c.readLine(30s)) return;  // an answer (result or error), or vmrd is gone
        ++calls;
    }
}

}  // namespace

TEST_CASE("chaos: kill -9 at random moments under eight busy clients", "[chaos][slow]")
{
    const char* env = std::getenv("VMR_CHAOS_ROUNDS");
    const int rounds = env != nullptr ? std::atoi(env) : 200;
    TempDir dir;
    std::string base = dir / "base.img";
    writeFile(base, "");
    std::filesystem::resize_file(base, 16 << 20);
    Daemon::Config cfg;
    cfg.configToml = sshPortsToml(36000, 20) + "[qemu]\nmachine = \"none\"\naccel = \"tcg\"\n";
    std::mt19937 rng(std::random_device{}());
    std::atomic<long> calls{0};
    int violations = 0;
    for (int round = 1; round <= rounds; ++round) {
        Daemon d(dir, cfg);
        REQUIRE(d.waitReady());
        auto bad = auditState(d, dir);
        for (const auto& b : bad) std::fprintf(stderr, "round %d: %s\n", round, b.c_str());
        violations += static_cast<int>(bad.size());
        std::vector<std::thread> clients;
        for (int i = 0; i < kClients; ++i)
            clients.emplace_back(client, d.socket(), base, static_cast<unsigned>(rng()), std::ref(calls));
        std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 450));
        d.signal(SIGKILL);
        REQUIRE(d.waitExit(10s));
        for (auto& t : clients) t.join();
    }
    // The last restart: audited, then everything destroyed, and nothing may be left.
    Daemon d(dir, cfg);
    REQUIRE(d.waitReady());
    auto bad = auditState(d, dir);
    for (const auto& b : bad) std::fprintf(stderr, "after the last round: %s\n", b.c_str());
    violations += static_cast<int>(bad.size());
    auto left = listVms(d);
    REQUIRE(left);
    for (const auto& [name, vm] : *left) CHECK(d.ctl({"destroy", name}, 60s).code == 0);
    CHECK(listDir(d.stateDir() + "/vms").empty());
    CHECK(listDir(d.stateDir() + "/images").empty());
    auto using_ = processesUsing(dir.path());
    using_.erase(std::remove(using_.begin(), using_.end(), d.pid()), using_.end());
    CHECK(using_.empty());
    std::printf("chaos: %d rounds, %ld calls answered, %d violations\n", rounds, calls.load(), violations);
    CHECK(violations == 0);
}
