// A real vmrd in a temp dir, driven by the real vmrctl and by raw clients of the socket.

#include "catch.h"
#include "harness.h"

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>

using namespace vmr::test;

namespace {

constexpr const char* kRecord =
    R"({"version":1,"name":"web1","id":"0a1b2c3d","backend":"qemu","created":1700000000,
"image":"/var/lib/images/debian.qcow2","vcpus":2,"memory_mib":2048,"network":"user","state":"stopped",
"state_reason":"created","pid":null,"pid_start_time":null,"ssh_port":10022,"mac":"52:54:00:0a:1b:2c","vnc_port":null,"disk_gib":null,
"kernel":null,"initrd":null,"cmdline":"","accel":"auto"})";

void seedRecord(const TempDir& dir, const std::string& name, const std::string& json)
{
    writeFile(dir / ("state/vms/" + name + "/vm.json"), json);
}

// The environment of a user without a vmrd: vmrctl finds its folder under dir/xdgrun.
std::map<std::string, std::string> userEnv(const TempDir& dir)
{
    return {{"HOME", dir.path()},
            {"XDG_RUNTIME_DIR", dir / "xdgrun"},
            {"XDG_DATA_HOME", dir / "data"},
            {"XDG_CONFIG_HOME", dir / "config"},
            {"VMR_SOCKET", ""},
            {"VMR_NO_AUTOSTART", ""},
            {"VMR_VMRD", binary("VMR_VMRD")}};
}

// A listening socket planted where vmrctl looks for its vmrd; it tells whether anyone called.
class PlantedSocket {
public:
    explicit PlantedSocket(const std::string& path) : fd_(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0))
    {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(fd_, 16) == 0);
        ::chmod(path.c_str(), 0777);
    }
    ~PlantedSocket() { ::close(fd_); }
    PlantedSocket(const PlantedSocket&) = delete;
    PlantedSocket& operator=(const PlantedSocket&) = delete;
    // A connection waits in the backlog.
    bool called() const
    {
        pollfd p{fd_, POLLIN, 0};
        return ::poll(&p, 1, 0) == 1;
    }

private:
    int fd_;
};

// argv run as another user through setpriv; nullopt when this test cannot switch users.
std::optional<std::vector<std::string>> asUser(uid_t uid, gid_t gid, const std::vector<std::string>& argv)
{
    if (::geteuid() != 0 || ::access("/usr/bin/setpriv", X_OK) != 0) return std::nullopt;
    std::vector<std::string> out = {"/usr/bin/setpriv", "--reuid=" + std::to_string(uid),
                                    "--regid=" + std::to_string(gid), "--clear-groups", "--"};
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
}

// What refuses a folder planted by someone else; a vmrd started anyway would leave its lock.
void checkRefusedUntouched(const TempDir& dir, const ProcResult& r, const std::string& says)
{
    INFO(r.err);
    CHECK(r.code == 1);
    CHECK(r.err.find("vmrctl: " + says) != std::string::npos);
    CHECK(r.err.find("hint: ") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir / "data/vmr/vmrd.lock"));
}

}  // namespace

TEST_CASE("vmrctl version talks to vmrd", "[control]")
{
    TempDir dir;
    Daemon d(dir);
    REQUIRE(d.waitReady());
    auto r = d.ctl({"version"});
    INFO(r.err << d.log());
    CHECK(r.code == 0);
    CHECK(r.out.find("vmrctl 0.1.0") != std::string::npos);
    CHECK(r.out.find("vmrd 0.1.0") != std::string::npos);
    CHECK(r.out.find("reactor: ") != std::string::npos);

    auto j = d.ctl({"--json", "version"});
    CHECK(j.code == 0);
    CHECK(j.out.find("\"api\":1") != std::string::npos);
    CHECK(j.out.find("\"mode\":\"user\"") != std::string::npos);
    CHECK(j.out.find("\"state_dir\":\"" + d.stateDir() + "\"") != std::string::npos);
}

TEST_CASE("the control socket is mode 0660 and logged callers are named", "[control]")
{
    TempDir dir;
    Daemon d(dir);
    REQUIRE(d.waitReady());
    struct stat st {};
    REQUIRE(::stat(d.socket().c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 0777) == 0660);
}

TEST_CASE("list and status read the VM records", "[control]")
{
    TempDir dir;
    seedRecord(dir, "web1", kRecord);
    Daemon d(dir);
    REQUIRE(d.waitReady());

    auto list = d.ctl({"list"});
    INFO(list.err << d.log());
    REQUIRE(list.code == 0);
    CHECK(list.out.find("NAME") != std::string::npos);
    CHECK(list.out.find("web1") != std::string::npos);
    CHECK(list.out.find("2048M") != std::string::npos);
    CHECK(list.out.find("10022") != std::string::npos);

    auto status = d.ctl({"status", "web1"});
    REQUIRE(status.code == 0);
    CHECK(status.out.find("mac:") != std::string::npos);
    CHECK(status.out.find("52:54:00:0a:1b:2c") != std::string::npos);

    auto json = d.ctl({"--json", "list"});
    CHECK(json.code == 0);
    CHECK(json.out.find("\"name\":\"web1\"") != std::string::npos);
}

TEST_CASE("errors carry a kind, a message and a hint, and set the exit code", "[control]")
{
    TempDir dir;
    Daemon d(dir);
    REQUIRE(d.waitReady());

    auto missing = d.ctl({"status", "nope"});
    CHECK(missing.code == 1);
    CHECK(missing.err.find("No VM named \"nope\"") != std::string::npos);
    CHECK(missing.err.find("vmrctl list") != std::string::npos);

    auto bad = d.ctl({"status", "../etc"});
    CHECK(bad.code == 1);
    CHECK(bad.err.find("..") != std::string::npos);

    auto unknown = d.ctl({"rpc", "vm.frobnicate"});
    CHECK(unknown.code == 1);
    CHECK(unknown.err.find("vm.frobnicate") != std::string::npos);

    auto raw = d.ctl({"--json", "rpc", "vm.status", "{\"name\":\"nope\"}"});
    CHECK(raw.code == 1);

    CHECK(d.ctl({"rpc", "vmr.ping", "{not json"}).code == 2);
    CHECK(d.ctl({"status"}).code == 2);
    CHECK(d.ctl({"frobnicate"}).code == 2);
    CHECK(d.ctl({"--bogus", "list"}).code == 2);

    auto ping = d.ctl({"rpc", "vmr.ping"});
    CHECK(ping.code == 0);
    CHECK(ping.out == "{\"pong\":true}\n");
}

TEST_CASE("vmrctl exits 3 when no daemon answers and autostart is off", "[control]")
{
    TempDir dir;
    auto r = run({binary("VMR_VMRCTL"), "--no-autostart", "--socket", dir / "none.sock", "list"});
    CHECK(r.code == 3);
    CHECK(r.err.find("Cannot reach vmrd") != std::string::npos);
    CHECK(r.err.find("hint:") != std::string::npos);
}

TEST_CASE("a corrupt record is reported and kept aside; the daemon still starts", "[control][store]")
{
    TempDir dir;
    seedRecord(dir, "web1", kRecord);
    seedRecord(dir, "bad", "{\"version\":1,\"name\":\"bro");
    Daemon d(dir);
    REQUIRE(d.waitReady());
    auto list = d.ctl({"list"});
    CHECK(list.code == 0);
    CHECK(list.out.find("web1") != std::string::npos);
    // Listed as broken, with why (test_crash.cpp has the rest of a broken VM's life).
    CHECK(list.out.find("bad is broken: its record could not be read (") != std::string::npos);
    CHECK(d.log().find("VM bad is broken") != std::string::npos);
    bool kept = false;
    for (auto& e : std::filesystem::directory_iterator(dir / "state/vms/bad")) {
        if (e.path().filename().string().rfind("vm.json.corrupt-", 0) == 0) kept = true;
    }
    CHECK(kept);
}

TEST_CASE("a second vmrd on the same state dir refuses to start", "[control]")
{
    TempDir dir;
    Daemon first(dir);
    REQUIRE(first.waitReady());
    Daemon::Config cfg;
    cfg.extraArgs = {"--socket", dir / "run/other.sock"};
    Daemon second(dir, cfg);
    auto code = second.waitExit(10s);
    REQUIRE(code.has_value());
    CHECK(*code == 3);
    CHECK(first.running());
    CHECK(first.ctl({"version"}).code == 0);
}

TEST_CASE("SIGTERM shuts vmrd down cleanly and removes its socket", "[control]")
{
    TempDir dir;
    Daemon d(dir);
    REQUIRE(d.waitReady());
    CHECK(d.terminate() == 0);
    CHECK(!std::filesystem::exists(d.socket()));
}

TEST_CASE("SIGHUP reloads the configuration and emits an event", "[control][events]")
{
    TempDir dir;
    Daemon::Config cfg;
    cfg.configToml = "log_level = \"info\"\n";
    Daemon d(dir, cfg);
    REQUIRE(d.waitReady());

    RawClient sub(d.socket());
    REQUIRE(sub.send(
        R"({"jsonrpc":"2.0","id":1,"method":"events.subscribe","params":{"topics":["daemon.reloaded"]}})"
        "\n"));
    auto ack = sub.readLine();
    REQUIRE(ack);
    CHECK(ack->find("\"subscribed\":true") != std::string::npos);

    d.signal(SIGHUP);
    auto ev = sub.readLine(10s);
    REQUIRE(ev);
    CHECK(ev->find("\"method\":\"event\"") != std::string::npos);
    CHECK(ev->find("\"topic\":\"daemon.reloaded\"") != std::string::npos);
    CHECK(ev->find("\"ok\":true") != std::string::npos);

    // A broken file on reload: the daemon keeps running on its old settings and says why.
    writeFile(dir / "vmrd.toml", "log_levle = \"debug\"\n");
    d.signal(SIGHUP);
    auto bad = sub.readLine(10s);
    REQUIRE(bad);
    CHECK(bad->find("\"ok\":false") != std::string::npos);
    CHECK(bad->find("log_level") != std::string::npos);  // the did-you-mean suggestion
    CHECK(d.running());
    CHECK(d.ctl({"version"}).code == 0);
}

TEST_CASE("vmrctl events streams notifications", "[control][events]")
{
    TempDir dir;
    Daemon d(dir);
    REQUIRE(d.waitReady());
    // vmrctl events never ends by itself: run it with a timeout while reloading twice.
    std::thread hup([&] {
        std::this_thread::sleep_for(700ms);
        d.signal(SIGHUP);
        std::this_thread::sleep_for(200ms);
        d.signal(SIGHUP);
    });
    auto r =
        run({binary("VMR_VMRCTL"), "--socket", d.socket(), "events", "--topic", "daemon.reloaded"}, {}, 3s);
    hup.join();
    size_t count = 0;
    for (size_t pos = 0; (pos = r.out.find("daemon.reloaded", pos)) != std::string::npos; ++pos) ++count;
    CHECK(count == 2);
}

TEST_CASE("a bad config file stops vmrd with the file, line and key", "[control]")
{
    TempDir dir;
    Daemon::Config cfg;
    cfg.configToml = "state_dir = \"/x\"\n[limits]\nmax_clients = \"many\"\n";
    Daemon d(dir, cfg);
    auto code = d.waitExit(10s);
    REQUIRE(code);
    CHECK(*code == 1);
    CHECK(d.log().find("vmrd.toml:3") != std::string::npos);
    CHECK(d.log().find("max_clients") != std::string::npos);
}

TEST_CASE("socket activation: vmrd serves a listening socket passed as fd 3", "[control]")
{
    TempDir dir;
    std::string path = dir / "activated.sock";
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd, 16) == 0);
    Daemon::Config cfg;
    cfg.listenFd = fd;
    Daemon d(dir, cfg);
    ::close(fd);
    REQUIRE(eventually([&] { return RawClient(path).connected(); }));
    auto r = run({binary("VMR_VMRCTL"), "--socket", path, "rpc", "vmr.ping"});
    CHECK(r.code == 0);
    CHECK(d.log().find("service manager") != std::string::npos);
}

TEST_CASE("protocol: batches, notifications, parse errors", "[control][protocol]")
{
    TempDir dir;
    Daemon d(dir);
    REQUIRE(d.waitReady());
    RawClient c(d.socket());
    REQUIRE(c.connected());

    REQUIRE(c.send(R"([{"jsonrpc":"2.0","id":1,"method":"vmr.ping"},{"jsonrpc":"2.0","method":"vmr.ping"},)"
                   R"({"jsonrpc":"2.0","id":"b","method":"nope"},{"foo":1}])"
                   "\n"));
    auto batch = c.readLine();
    REQUIRE(batch);
    CHECK(batch->front() == '[');
    CHECK(batch->find("\"id\":1,\"result\":{\"pong\":true}") != std::string::npos);
    CHECK(batch->find("-32601") != std::string::npos);
    CHECK(batch->find("-32600") != std::string::npos);

    // A notification alone gets no reply: the next line answers the next request.
    REQUIRE(
        c.send("{\"jsonrpc\":\"2.0\",\"method\":\"vmr.ping\"}\n{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":"
               "\"vmr.ping\"}\n"));
    auto next = c.readLine();
    REQUIRE(next);
    CHECK(next->find("\"id\":9") != std::string::npos);

    REQUIRE(c.send("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\"\n"));
    auto parseErr = c.readLine();
    REQUIRE(parseErr);
    CHECK(parseErr->find("-32700") != std::string::npos);
    CHECK(parseErr->find("\"id\":null") != std::string::npos);

    // The connection is still usable after errors.
    REQUIRE(c.send("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"vmr.ping\"}\n"));
    CHECK(c.readLine());
}

TEST_CASE("a request line over 1 MiB gets an error and the connection is closed", "[control][limits]")
{
    TempDir dir;
    Daemon d(dir);
    REQUIRE(d.waitReady());
    RawClient c(d.socket());
    std::string big = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"vmr.ping\",\"params\":{\"x\":\"";
    big.append((1 << 20) + 16, 'a');
    c.send(big);
    auto err = c.readLine(10s);
    REQUIRE(err);
    CHECK(err->find("too_large") != std::string::npos);
    CHECK(c.waitClosed(10s));
    // Other clients are unaffected.
    CHECK(d.ctl({"version"}).code == 0);
}

TEST_CASE("a client that stops reading is disconnected without slowing others", "[control][limits]")
{
    TempDir dir;
    Daemon::Config cfg;
    cfg.configToml = "[limits]\nmax_client_backlog = 65536\n";
    Daemon d(dir, cfg);
    REQUIRE(d.waitReady());

    RawClient stalled(d.socket());
    REQUIRE(stalled.connected());
    int small = 4096;
    ::setsockopt(stalled.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    std::string burst;
    for (int i = 0; i < 2000; ++i)
        burst += "{\"jsonrpc\":\"2.0\",\"id\":" + std::to_string(i) + ",\"method\":\"vmr.version\"}\n";

    std::atomic<bool> done{false};
    std::thread writer([&] {
        // Keep sending without ever reading; the daemon must cut us off.
        for (int round = 0; round < 200 && !done; ++round) {
            if (!stalled.send(burst)) break;
        }
    });
    // Meanwhile another client is served promptly.
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i) CHECK(d.ctl({"rpc", "vmr.ping"}).code == 0);
    auto elapsed = std::chrono::steady_clock::now() - t0;
    CHECK(elapsed < 20s);
    CHECK(eventually([&] { return d.log().find("stopped reading") != std::string::npos; }, 20s));
    done = true;
    ::shutdown(stalled.fd(), SHUT_RDWR);
    writer.join();
    CHECK(d.running());
}

TEST_CASE("1000 simultaneous clients are served", "[control][limits]")
{
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max < 2200) {
        WARN("RLIMIT_NOFILE hard limit too low for this test: " << rl.rlim_max);
        return;
    }
    rl.rlim_cur = std::max<rlim_t>(rl.rlim_cur, 4096);
    ::setrlimit(RLIMIT_NOFILE, &rl);

    TempDir dir;
    Daemon d(dir);
    REQUIRE(d.waitReady());
    std::vector<RawClient> clients;
    clients.reserve(1000);
    for (int i = 0; i < 1000; ++i) {
        clients.emplace_back(d.socket());
        REQUIRE(clients.back().connected());
    }
    for (int i = 0; i < 1000; ++i) {
        REQUIRE(clients[i].send("{\"jsonrpc\":\"2.0\",\"id\":" + std::to_string(i) +
                                ",\"method\":\"vmr.ping\"}\n"));
    }
    int answered = 0;
    for (int i = 0; i < 1000; ++i) {
        auto line = clients[i].readLine(10s);
        if (line && line->find("\"id\":" + std::to_string(i) + ",") != std::string::npos) ++answered;
    }
    CHECK(answered == 1000);
}

TEST_CASE("vmrctl starts a user-mode vmrd when none answers, and only one", "[control][autostart]")
{
    TempDir dir;
    std::map<std::string, std::string> env = {{"HOME", dir.path()},
                                              {"XDG_RUNTIME_DIR", dir / "xdgrun"},
                                              {"XDG_DATA_HOME", dir / "data"},
                                              {"XDG_CONFIG_HOME", dir / "config"},
                                              {"VMR_SOCKET", ""},
                                              {"VMR_NO_AUTOSTART", ""},
                                              {"VMR_VMRD", binary("VMR_VMRD")}};
    ProcResult a, b;
    std::thread ta([&] { a = run({binary("VMR_VMRCTL"), "version"}, env); });
    std::thread tb([&] { b = run({binary("VMR_VMRCTL"), "version"}, env); });
    ta.join();
    tb.join();
    INFO(a.err << b.err);
    CHECK(a.code == 0);
    CHECK(b.code == 0);
    // The folder vmrctl made for it (and the missing XDG_RUNTIME_DIR above it) are private; the
    // log is appended to a file of its own.
    CHECK(modeOf(dir / "xdgrun") == 0700);
    CHECK(modeOf(dir / "xdgrun/vmr") == 0700);
    CHECK(modeOf(dir / "xdgrun/vmr/vmrd.log") == 0600);

    std::string lock = readFile(dir / "data/vmr/vmrd.lock");
    REQUIRE(!lock.empty());
    pid_t pid = std::stoi(lock);
    // Both clients reached the same daemon.
    CHECK(a.out.find("vmrd 0.1.0") != std::string::npos);
    auto j = run({binary("VMR_VMRCTL"), "--json", "version"}, env);
    CHECK(j.out.find("\"pid\":" + std::to_string(pid)) != std::string::npos);
    // Only one vmrd keeps running on this state dir (a second one, started by the other
    // vmrctl, may still be on its way out after losing the lock).
    auto vmrdCount = [&] {
        int count = 0;
        for (auto& e : std::filesystem::directory_iterator("/proc")) {
            std::string environ = readFile(e.path().string() + "/environ");
            if (environ.find("XDG_DATA_HOME=" + (dir / "data")) == std::string::npos) continue;
            std::string cmdline = readFile(e.path().string() + "/cmdline");
            if (cmdline.find("vmrd") != std::string::npos && cmdline.find("vmrctl") == std::string::npos)
                ++count;
        }
        return count;
    };
    CHECK(eventually([&] { return vmrdCount() == 1; }, 10s));
    // We started it (through vmrctl): stop it, and learn that it exited from its pidfd.
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    REQUIRE(pidfd >= 0);
    ::kill(pid, SIGTERM);
    pollfd p{pidfd, POLLIN, 0};
    CHECK(::poll(&p, 1, 10000) == 1);
    ::close(pidfd);
}

TEST_CASE("vmrctl refuses a runtime folder another user made, and uses nothing in it", "[control][autostart]")
{
    if (::geteuid() != 0) {
        WARN("not root: cannot make a folder owned by someone else");
        return;
    }
    TempDir dir;
    std::string folder = dir / "xdgrun/vmr";
    std::filesystem::create_directories(folder);
    PlantedSocket planted(folder + "/vmrd.sock");
    writeFile(dir / "victim", "precious\n");
    REQUIRE(::symlink((dir / "victim").c_str(), (folder + "/vmrd.log").c_str()) == 0);
    REQUIRE(::chmod(folder.c_str(), 0755) == 0);
    REQUIRE(::chown(folder.c_str(), 12345, 12345) == 0);

    auto r = run({binary("VMR_VMRCTL"), "version"}, userEnv(dir));
    checkRefusedUntouched(
        dir, r, "Cannot use " + folder + ": it is not a directory owned by uid 0 (root): uid 12345 made it");
    auto quiet = run({binary("VMR_VMRCTL"), "--no-autostart", "list"}, userEnv(dir));
    checkRefusedUntouched(dir, quiet, "Cannot use " + folder);
    auto json = run({binary("VMR_VMRCTL"), "--json", "version"}, userEnv(dir));
    CHECK(json.code == 1);
    CHECK(json.err.find("{\"error\":{\"kind\":\"permission_denied\",\"message\":\"Cannot use " + folder) ==
          0);

    CHECK_FALSE(planted.called());
    CHECK(readFile(dir / "victim") == "precious\n");
    CHECK(listDir(folder) == std::vector<std::string>{"vmrd.log", "vmrd.sock"});
    CHECK(modeOf(folder) == 0755);
}

TEST_CASE("vmrctl refuses its own runtime folder when others can write in it", "[control][autostart]")
{
    TempDir dir;
    std::string folder = dir / "xdgrun/vmr";
    std::filesystem::create_directories(folder);
    PlantedSocket planted(folder + "/vmrd.sock");
    REQUIRE(::chmod(folder.c_str(), 0777) == 0);

    auto r = run({binary("VMR_VMRCTL"), "version"}, userEnv(dir));
    checkRefusedUntouched(dir, r,
                          "Cannot use " + folder + ": its mode 0777 lets other users put files in it");
    CHECK(r.err.find("rm -r " + folder) != std::string::npos);
    CHECK_FALSE(planted.called());
    CHECK(modeOf(folder) == 0777);
    CHECK(listDir(folder) == std::vector<std::string>{"vmrd.sock"});
}

TEST_CASE("vmrctl never appends vmrd's log through a planted link", "[control][autostart]")
{
    if (std::filesystem::exists("/run/vmr/vmrd.sock")) {
        WARN("a system vmrd runs here: vmrctl would use it instead of starting one");
        return;
    }
    TempDir dir;
    std::string folder = dir / "xdgrun/vmr";
    std::filesystem::create_directories(folder);
    REQUIRE(::chmod((dir / "xdgrun").c_str(), 0700) == 0);
    REQUIRE(::chmod(folder.c_str(), 0700) == 0);
    writeFile(dir / "victim", "precious\n");
    REQUIRE(::symlink((dir / "victim").c_str(), (folder + "/vmrd.log").c_str()) == 0);

    auto r = run({binary("VMR_VMRCTL"), "version"}, userEnv(dir));
    checkRefusedUntouched(dir, r, "Cannot use " + folder + "/vmrd.log as vmrd's log: it is a symbolic link");
    CHECK(readFile(dir / "victim") == "precious\n");
    CHECK(std::filesystem::is_symlink(folder + "/vmrd.log"));
    CHECK(listDir(folder) == std::vector<std::string>{"vmrd.log"});
}

TEST_CASE("without XDG_RUNTIME_DIR, a planted /tmp/vmr-<uid> is refused", "[control][autostart]")
{
    // A user of our own, unlikely to be anyone else's, so that /tmp/vmr-<uid> is ours to plant.
    uid_t uid = 40000 + static_cast<uid_t>(::getpid() % 20000);
    auto argv = asUser(uid, uid, {binary("VMR_VMRCTL"), "version"});
    if (!argv) {
        WARN("not root, or no setpriv: cannot run vmrctl as another user");
        return;
    }
    std::string folder = "/tmp/vmr-" + std::to_string(uid);
    std::filesystem::remove_all(folder);
    struct Cleanup {
        std::string path;
        ~Cleanup() { std::filesystem::remove_all(path); }
    } cleanup{folder};
    // Mallory (uid 12345) was there first, and left the door open.
    REQUIRE(::mkdir(folder.c_str(), 0777) == 0);
    REQUIRE(::chmod(folder.c_str(), 0777) == 0);
    PlantedSocket planted(folder + "/vmrd.sock");
    REQUIRE(::chown(folder.c_str(), 12345, 12345) == 0);

    TempDir dir;
    auto env = userEnv(dir);
    env["XDG_RUNTIME_DIR"] = "";  // unset
    auto r = run(*argv, env);
    checkRefusedUntouched(dir, r,
                          "Cannot use " + folder + ": it is not a directory owned by uid " +
                              std::to_string(uid) + ": uid 12345 made it");
    CHECK_FALSE(planted.called());
    CHECK(listDir(folder) == std::vector<std::string>{"vmrd.sock"});
}

TEST_CASE("a socket that keeps the user out is permission_denied, naming it", "[control][access]")
{
    TempDir dir;
    Daemon d(dir);
    REQUIRE(d.waitReady());
    // nobody can reach the folders, but may not open the socket (0660, root's group).
    REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
    REQUIRE(::chmod((dir / "run").c_str(), 0755) == 0);
    auto argv = asUser(65534, 65534, {binary("VMR_VMRCTL"), "--socket", d.socket(), "list"});
    if (!argv) {
        WARN("not root, or no setpriv: cannot run vmrctl as another user");
        return;
    }
    auto r = run(*argv);
    INFO(r.err);
    CHECK(r.code == 1);
    CHECK(r.err.find("vmrctl: Not allowed to connect to vmrd at " + d.socket() + "\n") != std::string::npos);
    CHECK(r.err.find("hint: ") != std::string::npos);

    auto viaEnv =
        run(*asUser(65534, 65534, {binary("VMR_VMRCTL"), "--json", "list"}), {{"VMR_SOCKET", d.socket()}});
    CHECK(viaEnv.code == 1);
    CHECK(viaEnv.err.find(
              R"({"error":{"kind":"permission_denied","message":"Not allowed to connect to vmrd at )" +
              d.socket() + "\"") == 0);
}

TEST_CASE("vmrd's refusal at connect is shown as it is", "[control][access]")
{
    TempDir dir;
    std::string path = dir / "refusing.sock";
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd, 16) == 0);
    // Like vmrd's rpc::Server: one error line, id null, then close, without reading.
    std::atomic<bool> stop{false};
    std::thread server([&] {
        while (!stop) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 50) != 1) continue;
            int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) continue;
            static constexpr std::string_view kLine =
                R"({"jsonrpc":"2.0","id":null,"error":{"code":-32010,"message":"uid 1000 may not use this vmrd",)"
                R"("data":{"kind":"permission_denied","hint":"To use it, join group vmr to manage VMs"}}})"
                "\n";
            (void)::send(c, kLine.data(), kLine.size(), MSG_NOSIGNAL);
            ::close(c);
        }
    });
    for (auto cmd : std::vector<std::vector<std::string>>{
             {"list"}, {"version"}, {"events"}, {"console", "web"}, {"log", "web"}, {"stop", "web"}}) {
        std::vector<std::string> argv = {binary("VMR_VMRCTL"), "--socket", path};
        argv.insert(argv.end(), cmd.begin(), cmd.end());
        auto r = run(argv, {}, 10s);
        INFO(cmd[0] << ": " << r.err);
        CHECK(r.code == 1);
        CHECK(r.err ==
              "vmrctl: uid 1000 may not use this vmrd\nhint: To use it, join group vmr to manage VMs\n");
    }
    auto json = run({binary("VMR_VMRCTL"), "--json", "--socket", path, "list"}, {}, 10s);
    CHECK(json.code == 1);
    CHECK(json.err == R"({"error":{"kind":"permission_denied","message":"uid 1000 may not use this vmrd",)"
                      R"("hint":"To use it, join group vmr to manage VMs"}})"
                      "\n");
    stop = true;
    server.join();
    ::close(fd);
}

TEST_CASE("a user vmrd's refusal of another user reaches that user", "[control][access]")
{
    TempDir dir;
    Daemon d(dir);
    REQUIRE(d.waitReady());
    REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
    REQUIRE(::chmod((dir / "run").c_str(), 0755) == 0);
    // nobody, in root's group: the socket (0660) lets them in; the vmrd (uid 0's own) does not.
    auto argv = asUser(65534, 0, {binary("VMR_VMRCTL"), "--json", "--socket", d.socket(), "list"});
    if (!argv) {
        WARN("not root, or no setpriv: cannot run vmrctl as another user");
        return;
    }
    auto r = run(*argv);
    INFO(r.err << d.log());
    CHECK(r.code == 1);
    CHECK(r.err.find(R"({"error":{"kind":"permission_denied")") == 0);
    CHECK(r.err.find("closed the connection") == std::string::npos);
}
