// QEMU VMs through vmrd and vmrctl, booting the tiny test guest under TCG
// (tests/guest/build.sh; $VMR_TEST_GUEST, default /tmp/vmr-guest).

#include "harness.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

using namespace vmr::test;

namespace {

// A raw base image and the create command for a guest VM on it.
std::vector<std::string> createArgs(const std::string& name, const std::string& base)
{
    return {"create",
            "--name",
            name,
            "--image",
            base,
            "--kernel",
            guestDir() + "/vmlinux",
            "--initrd",
            guestDir() + "/initramfs.cpio.gz",
            "--cmdline",
            "console=ttyS0",
            "--memory",
            "256"};
}

// Each test process gets its own SSH port range, so suites running side by side (one per
// reactor backend) never hand the same host port to two QEMUs.
Daemon::Config vmConfig()
{
    Daemon::Config cfg;
    cfg.configToml = sshPortsToml(20000, 100);
    return cfg;
}

std::string makeBase(const TempDir& dir)
{
    std::string base = dir / "base.img";
    auto r = run({"/usr/bin/qemu-img", "create", "-f", "raw", base, "64M"});
    REQUIRE(r.code == 0);
    return base;
}

}  // namespace

TEST_CASE("a VM's whole life through vmrctl, with events", "[vms]")
{
    if (!haveGuest()) {
        WARN("no test guest at " << guestDir() << ": build it with tests/guest/build.sh");
        return;
    }
    TempDir dir;
    Daemon d(dir, vmConfig());
    REQUIRE(d.waitReady());
    std::string base = makeBase(dir);
    std::string before = readFile(base);

    RawClient sub(d.socket());
    REQUIRE(
        sub.send(R"({"jsonrpc":"2.0","id":1,"method":"events.subscribe","params":{"topics":["vm.state"]}})"
                 "\n"));
    REQUIRE(sub.readLine());

    auto args = createArgs("web", base);
    args.push_back("--start");
    auto created = d.ctl(args, 120s);
    INFO(created.err << d.log());
    REQUIRE(created.code == 0);
    CHECK(field(created.out, "state") == "running");
    CHECK(std::filesystem::exists(dir / "state/vms/web/overlay.qcow2"));

    auto list = d.ctl({"list"});
    CHECK(list.out.find("web") != std::string::npos);
    CHECK(list.out.find("running") != std::string::npos);

    CHECK(d.ctl({"suspend", "web"}).code == 0);
    CHECK(field(d.ctl({"status", "web"}).out, "state") == "paused");
    auto again = d.ctl({"suspend", "web"});
    CHECK(again.code == 1);
    CHECK(again.err.find("paused") != std::string::npos);
    CHECK(d.ctl({"resume", "web"}).code == 0);
    auto bad = d.ctl({"resume", "web"});
    CHECK(bad.code == 1);
    CHECK(bad.err.find("hint:") != std::string::npos);

    // Let the guest reach userspace so it answers the ACPI power button.
    CHECK(eventually(
        [&] {
            return readFile(dir / "state/vms/web/console.log").find("VMR-GUEST-READY") != std::string::npos;
        },
        60s));
    auto stopped = d.ctl({"stop", "web"}, 60s);
    CHECK(stopped.code == 0);
    CHECK(field(stopped.out, "state") == "stopped");

    CHECK(d.ctl({"destroy", "web"}).code == 0);
    CHECK(!std::filesystem::exists(dir / "state/vms/web"));
    CHECK(d.ctl({"status", "web"}).code == 1);
    CHECK(readFile(base) == before);  // the base image is never written

    // The subscriber saw the transitions in order.
    std::string seen;
    while (auto line = sub.readLine(500ms)) {
        auto to = line->find("\"to\":\"");
        if (to != std::string::npos) seen += line->substr(to + 6, line->find('"', to + 6) - to - 6) + " ";
    }
    INFO(seen);
    CHECK(seen.find("running") != std::string::npos);
    CHECK(seen.find("paused") != std::string::npos);
    CHECK(seen.find("stopped") != std::string::npos);
    CHECK(seen.find("destroyed") != std::string::npos);
}

TEST_CASE("a VM survives kill -9 of vmrd and is re-adopted", "[vms]")
{
    if (!haveGuest()) {
        WARN("no test guest at " << guestDir());
        return;
    }
    TempDir dir;
    std::string base = makeBase(dir);
    std::string pid;
    {
        Daemon d(dir, vmConfig());
        REQUIRE(d.waitReady());
        auto args = createArgs("db", base);
        args.push_back("--start");
        auto r = d.ctl(args, 120s);
        INFO(r.err << d.log());
        REQUIRE(r.code == 0);
        pid = field(r.out, "pid");
        REQUIRE(!pid.empty());
        d.signal(SIGKILL);
        REQUIRE(d.waitExit(10s));
    }
    REQUIRE(::kill(std::stoi(pid), 0) == 0);  // QEMU kept running without vmrd
    Daemon d(dir, vmConfig());
    REQUIRE(d.waitReady());
    auto status = d.ctl({"status", "db"});
    INFO(d.log());
    CHECK(eventually([&] { return field(d.ctl({"status", "db"}).out, "state") == "running"; }, 10s));
    CHECK(field(d.ctl({"status", "db"}).out, "pid") == pid);
    CHECK(d.ctl({"suspend", "db"}).code == 0);  // QMP reconnected
    CHECK(d.ctl({"resume", "db"}).code == 0);
    CHECK(d.ctl({"stop", "db", "--force"}, 30s).code == 0);
    CHECK(field(d.ctl({"status", "db"}).out, "state") == "stopped");
}

TEST_CASE("kill -9 of QEMU is noticed at once and recorded", "[vms]")
{
    if (!haveGuest()) {
        WARN("no test guest at " << guestDir());
        return;
    }
    TempDir dir;
    Daemon d(dir, vmConfig());
    REQUIRE(d.waitReady());
    std::string base = makeBase(dir);
    auto args = createArgs("k", base);
    args.push_back("--start");
    auto r = d.ctl(args, 120s);
    REQUIRE(r.code == 0);
    ::kill(std::stoi(field(r.out, "pid")), SIGKILL);  // a QEMU this test started through vmrd
    CHECK(eventually([&] { return field(d.ctl({"status", "k"}).out, "state") != "running"; }, 5s));
    auto status = d.ctl({"status", "k"}).out;
    CHECK(field(status, "state_reason").find("SIGKILL") != std::string::npos);
    CHECK(d.ctl({"destroy", "k"}).code == 0);
}

TEST_CASE("bad creates are refused with distinct errors and leave nothing behind", "[vms]")
{
    TempDir dir;
    Daemon d(dir, vmConfig());
    REQUIRE(d.waitReady());
    std::string base = makeBase(dir);

    auto missing = d.ctl({"create", "--name", "a", "--image", dir / "nope.img"});
    CHECK(missing.code == 1);
    CHECK(missing.err.find("nope.img") != std::string::npos);
    CHECK(!std::filesystem::exists(dir / "state/vms/a"));

    auto tap = d.ctl({"create", "--name", "a", "--image", base, "--network", "tap"});
    CHECK(tap.code == 1);
    CHECK(tap.err.find("not supported yet") != std::string::npos);
    CHECK(!std::filesystem::exists(dir / "state/vms/a"));

    auto name = d.ctl({"--json", "rpc", "vm.create", R"({"name":"../x","image":")" + base + "\"}"});
    CHECK(name.code == 1);

    REQUIRE(d.ctl({"create", "--name", "a", "--image", base}).code == 0);
    auto dup = d.ctl({"create", "--name", "a", "--image", base});
    CHECK(dup.code == 1);
    CHECK(dup.err.find("exists") != std::string::npos);
    CHECK(field(d.ctl({"status", "a"}).out, "state") == "prepared");

    // Two VMs on one base get distinct overlays, ports and MACs.
    REQUIRE(d.ctl({"create", "--name", "b", "--image", base}).code == 0);
    auto a = d.ctl({"status", "a"}).out;
    auto b = d.ctl({"status", "b"}).out;
    CHECK(field(a, "ssh_port") != field(b, "ssh_port"));
    CHECK(field(a, "mac") != field(b, "mac"));
    CHECK(d.ctl({"destroy", "a"}).code == 0);
    CHECK(d.ctl({"destroy", "b"}).code == 0);
}

TEST_CASE("50 VMs get 50 distinct SSH ports and MACs, and keep them across a restart", "[vms]")
{
    TempDir dir;
    std::string base = makeBase(dir);
    std::map<std::string, std::string> ports;
    std::set<std::string> seenPorts, seenMacs;
    {
        Daemon d(dir, vmConfig());
        REQUIRE(d.waitReady());
        for (int i = 0; i < 50; ++i) {
            std::string name = "vm" + std::to_string(i);
            auto r = d.ctl({"create", "--name", name, "--image", base});
            REQUIRE(r.code == 0);
            ports[name] = field(r.out, "ssh_port");
            seenPorts.insert(ports[name]);
            seenMacs.insert(field(r.out, "mac"));
        }
        CHECK(seenPorts.size() == 50);
        CHECK(seenMacs.size() == 50);
        CHECK(readFile(base).size() == 64u << 20);
    }
    Daemon d(dir, vmConfig());
    REQUIRE(d.waitReady());
    for (auto& [name, port] : ports) CHECK(field(d.ctl({"status", name}).out, "ssh_port") == port);
}

namespace {

// With --json, a failed vmrctl prints one JSON error object on stderr: its "kind".
std::string errorKind(const ProcResult& r)
{
    auto p = r.err.find("\"kind\":\"");
    if (p == std::string::npos) return "";
    p += 8;
    return r.err.substr(p, r.err.find('"', p) - p);
}

// A top-level value of a JSON object printed by `vmrctl --json status`: string or raw.
std::string jsonValue(const std::string& json, const std::string& key)
{
    auto p = json.find("\"" + key + "\":");
    if (p == std::string::npos) return "";
    p += key.size() + 3;
    if (json[p] == '"') return json.substr(p + 1, json.find('"', p + 1) - p - 1);
    return json.substr(p, json.find_first_of(",}", p) - p);
}

bool waitReady(const TempDir& dir, const std::string& vm)
{
    return eventually(
        [&] {
            return readFile(dir / ("state/vms/" + vm + "/console.log")).find("VMR-GUEST-READY") !=
                   std::string::npos;
        },
        90s);
}

// A vmrd on a temp folder with a raw base image: the setup of most tests here.
struct Fixture {
    TempDir dir;
    Daemon d{dir, vmConfig()};
    std::string base;

    explicit Fixture(Daemon::Config cfg = vmConfig()) : d(dir, std::move(cfg))
    {
        REQUIRE(d.waitReady());
        base = makeBase(dir);
    }

    // Create and start a test-guest VM; the test stops here if that fails.
    ProcResult startGuest(const std::string& name, const std::vector<std::string>& extra = {})
    {
        auto args = createArgs(name, base);
        args.insert(args.end(), extra.begin(), extra.end());
        args.push_back("--start");
        auto r = d.ctl(args, 120s);
        INFO(r.err << d.log());
        REQUIRE(r.code == 0);
        return r;
    }
};

}  // namespace

#define VMR_REQUIRE_GUEST()                                                                    \
    do {                                                                                       \
        if (!haveGuest()) {                                                                    \
            WARN("no test guest at " << guestDir() << ": build it with tests/guest/build.sh"); \
            return;                                                                            \
        }                                                                                      \
    } while (0)

TEST_CASE("each refusal has its own error kind and a hint", "[vms]")
{
    Fixture f;
    auto& [dir, d, base] = f;

    auto noImage = d.ctl({"--json", "create", "--name", "a", "--image", dir / "nope.img"});
    CHECK(noImage.code == 1);
    CHECK(errorKind(noImage) == "image.not_found");
    auto unknown = d.ctl({"--json", "status", "ghost"});
    CHECK(unknown.code == 1);
    CHECK(errorKind(unknown) == "vm.not_found");
    auto badFirmware = d.ctl({"--json", "create", "--name", "a", "--image", base, "--firmware", "coreboot"});
    CHECK(errorKind(badFirmware) == "invalid_params");
    CHECK(!std::filesystem::exists(dir / "state/vms/a"));

    REQUIRE(d.ctl({"create", "--name", "a", "--image", base}).code == 0);
    auto dup = d.ctl({"--json", "create", "--name", "a", "--image", base});
    CHECK(errorKind(dup) == "vm.exists");
    auto wrongState = d.ctl({"--json", "resume", "a"});
    CHECK(wrongState.code == 1);
    CHECK(errorKind(wrongState) == "vm.bad_state");
    for (const ProcResult* r : {&noImage, &unknown, &badFirmware, &dup, &wrongState}) {
        INFO(r->err);
        CHECK(r->err.find("\"hint\":\"") != std::string::npos);
    }
    // Human output names the problem and the fix.
    auto human = d.ctl({"resume", "a"});
    CHECK(human.err.find("vmrctl: ") == 0);
    CHECK(human.err.find("hint: ") != std::string::npos);
}

TEST_CASE("QEMU missing is refused at create, before anything is made", "[vms]")
{
    Daemon::Config cfg = vmConfig();
    cfg.configToml += "[qemu]\nbinary = \"/nonexistent/qemu-system-x86_64\"\n";
    Fixture f(cfg);
    auto& [dir, d, base] = f;
    auto r = d.ctl({"--json", "create", "--name", "a", "--image", base, "--start"});
    INFO(r.err << d.log());
    CHECK(r.code == 1);
    CHECK(errorKind(r) == "tool.missing");
    CHECK(r.err.find("/nonexistent/qemu-system-x86_64") != std::string::npos);
    CHECK(r.err.find("apt-get install qemu-system-x86") != std::string::npos);
    CHECK(!std::filesystem::exists(dir / "state/vms/a"));
    CHECK(d.ctl({"list"}).out.find("a ") == std::string::npos);
}

TEST_CASE("the guest powering itself off is noticed at once and recorded", "[vms]")
{
    VMR_REQUIRE_GUEST();
    Fixture f;
    auto& [dir, d, base] = f;
    f.startGuest("off");
    REQUIRE(waitReady(dir, "off"));
    // The guest runs a shell on its serial console: type poweroff there, through vmrd's hub.
    RawClient console(d.socket());
    REQUIRE(
        console.send(R"({"jsonrpc":"2.0","id":1,"method":"vm.console","params":{"name":"off","mode":"rw"}})"
                     "\n"));
    auto attached = console.readLine(10s);
    REQUIRE(attached);
    REQUIRE(attached->find("\"result\"") != std::string::npos);
    REQUIRE(console.send("\npoweroff\n"));
    CHECK(eventually([&] { return field(d.ctl({"status", "off"}).out, "state") == "stopped"; }, 60s));
    auto status = d.ctl({"--json", "status", "off"}).out;
    CHECK(jsonValue(status, "state_reason") == "guest powered off");
    CHECK(jsonValue(status, "pid") == "null");
    // It boots again from the same overlay.
    CHECK(d.ctl({"start", "off"}, 120s).code == 0);
    CHECK(d.ctl({"destroy", "off"}, 60s).code == 0);
}

TEST_CASE("VNC on 127.0.0.1 at the port QEMU picked; status names every file", "[vms]")
{
    VMR_REQUIRE_GUEST();
    Fixture f;
    auto& [dir, d, base] = f;
    f.startGuest("vnc", {"--vnc"});
    std::string status = d.ctl({"--json", "status", "vnc"}).out;
    INFO(status);
    CHECK(jsonValue(status, "vnc") == "true");
    CHECK(jsonValue(status, "accel_in_use") == "tcg");
    std::string port = jsonValue(status, "vnc_port");
    REQUIRE(!port.empty());
    REQUIRE(port != "null");
    int p = std::stoi(port);
    CHECK(p >= 5900);
    CHECK(p <= 5999);
    // A VNC server greets with its protocol version ("RFB 003.008\n").
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(p));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    char greeting[12] = {};
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t n = ::recv(fd, greeting, sizeof greeting, MSG_WAITALL);
    ::close(fd);
    CHECK(n == 12);
    CHECK(std::string(greeting, 4) == "RFB ");

    CHECK(jsonValue(status, "work_dir") == dir / "state/vms/vnc");
    CHECK(jsonValue(status, "overlay") == dir / "state/vms/vnc/overlay.qcow2");
    CHECK(jsonValue(status, "console_log") == dir / "state/vms/vnc/console.log");
    CHECK(jsonValue(status, "seed") == dir / "state/vms/vnc/seed.iso");
    CHECK(std::filesystem::exists(jsonValue(status, "control_socket")));
    // The human form lists the same fields.
    std::string human = d.ctl({"status", "vnc"}).out;
    for (const char* key :
         {"work_dir:", "overlay:", "seed:", "vnc_port:", "accel_in_use:", "mac:", "ssh_port:"})
        CHECK(human.find(key) != std::string::npos);

    REQUIRE(d.ctl({"stop", "vnc", "--force"}, 30s).code == 0);
    status = d.ctl({"--json", "status", "vnc"}).out;
    CHECK(jsonValue(status, "vnc_port") == "null");
    CHECK(jsonValue(status, "accel_in_use") == "null");
    CHECK(d.ctl({"destroy", "vnc"}).code == 0);
}

TEST_CASE("UEFI firmware: OVMF with the VM's own variable store", "[vms]")
{
    VMR_REQUIRE_GUEST();
    Fixture f;
    auto& [dir, d, base] = f;
    f.startGuest("efi", {"--firmware", "uefi"});
    std::string status = d.ctl({"--json", "status", "efi"}).out;
    CHECK(jsonValue(status, "firmware") == "uefi");
    CHECK(jsonValue(status, "state") == "running");
    std::string vars = jsonValue(status, "uefi_vars");
    CHECK(vars == dir / "state/vms/efi/efivars.fd");
    CHECK(std::filesystem::file_size(vars) > 0);
    // QEMU really runs OVMF: the code and the store are its pflash devices, and it holds the
    // VM's store open (handed over as a descriptor: the command line names no path).
    std::string pid = jsonValue(status, "pid");
    std::string cmdline = readFile("/proc/" + pid + "/cmdline");
    CHECK(cmdline.find("pflash0=uefi-code,pflash1=uefi-vars") != std::string::npos);
    CHECK(cmdline.find(vars) == std::string::npos);
    bool holdsVars = false;
    for (const auto& fd : std::filesystem::directory_iterator("/proc/" + pid + "/fd"))
        holdsVars = holdsVars || std::filesystem::read_symlink(fd.path()) == vars;
    CHECK(holdsVars);
    CHECK(d.ctl({"destroy", "efi"}, 60s).code == 0);
    CHECK(!std::filesystem::exists(vars));
}
