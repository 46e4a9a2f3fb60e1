// Security on a shared host, tried as local users would try it (docs/security.md): a system vmrd
// with its own state folder and sockets in a temp folder, an admin group, a read-only group and
// a hypervisor user, all made for this test program and removed at its end. Needs root (and
// useradd, setpriv); elsewhere every case says why it did nothing.

#include "catch.h"
#include "harness.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace vmr::test;

namespace {

struct Account {
    std::string name;
    uid_t uid = 0;
    gid_t gid = 0;
};

// The users and groups of one test program: "vt<pid>" plus a letter, short enough for useradd.
class Accounts {
public:
    Accounts()
    {
        usable_ = ::geteuid() == 0 && ::access("/usr/sbin/useradd", X_OK) == 0 &&
                  ::access("/usr/sbin/groupadd", X_OK) == 0 && ::access("/usr/bin/setpriv", X_OK) == 0;
        if (!usable_) return;
        std::string tag = "vt" + std::to_string(::getpid() % 100000);
        admins = tag + "a";
        watchers = tag + "r";
        for (const auto& g : {admins, watchers}) make({"/usr/sbin/groupadd", "--system", g}, g, true);
        outsider = user(tag + "o", "");
        watcher = user(tag + "w", watchers);
        member = user(tag + "m", admins);
        other = user(tag + "x", admins);
        vmm = user(tag + "q", "");
    }
    ~Accounts()
    {
        for (auto it = made_.rbegin(); it != made_.rend(); ++it)
            run(it->second ? std::vector<std::string>{"/usr/sbin/groupdel", it->first}
                           // --force: a QEMU of its may not be reaped yet (PID 1 reaps slowly).
                           : std::vector<std::string>{"/usr/sbin/userdel", "--force", it->first});
    }
    Accounts(const Accounts&) = delete;
    Accounts& operator=(const Accounts&) = delete;

    bool usable() const { return usable_; }

    std::string admins, watchers;
    Account outsider, watcher, member, other, vmm;

private:
    void make(const std::vector<std::string>& argv, const std::string& name, bool isGroup)
    {
        auto r = run(argv);
        INFO(r.err);
        REQUIRE(r.code == 0);
        made_.emplace_back(name, isGroup);
    }
    Account user(const std::string& name, const std::string& group)
    {
        std::vector<std::string> argv = {"/usr/sbin/useradd", "--system",   "--no-create-home",
                                         "--shell",           "/bin/false", "--user-group"};
        if (!group.empty()) argv.insert(argv.end(), {"--groups", group});
        argv.push_back(name);
        make(argv, name, false);
        passwd* pw = ::getpwnam(name.c_str());
        REQUIRE(pw != nullptr);
        return {name, pw->pw_uid, pw->pw_gid};
    }

    bool usable_ = false;
    std::vector<std::pair<std::string, bool>> made_;  // name, is a group
};

Accounts& accounts()
{
    static Accounts a;
    return a;
}

#define REQUIRE_ACCOUNTS()                                                                     \
    do {                                                                                       \
        if (!accounts().usable()) {                                                            \
            WARN("needs root, useradd and setpriv: cannot make the users this test is about"); \
            return;                                                                            \
        }                                                                                      \
    } while (0)

// argv as `who`: its uid, its primary group and its supplementary groups.
std::vector<std::string> as(const Account& who, std::vector<std::string> argv)
{
    std::vector<std::string> out = {"/usr/bin/setpriv", "--reuid=" + std::to_string(who.uid),
                                    "--regid=" + std::to_string(who.gid), "--init-groups", "--"};
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
}

gid_t groupOf(const std::string& path)
{
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0 ? st.st_gid : static_cast<gid_t>(-1);
}

// A number member of vmrd's JSON ("" when missing).
std::string jsonNumber(const std::string& json, const std::string& key)
{
    auto p = json.find("\"" + key + "\":");
    if (p == std::string::npos) return "";
    p += key.size() + 3;
    return json.substr(p, json.find_first_of(",}", p) - p);
}

// A system vmrd in `dir` (made traversable, so users reach its sockets) and each user's folder.
class SharedHost {
public:
    explicit SharedHost(const std::string& machine = "none")
    {
        auto& a = accounts();
        REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
        for (const Account* u : {&a.member, &a.other, &a.watcher, &a.outsider}) {
            std::string home = dir / u->name;
            std::filesystem::create_directories(home);
            REQUIRE(::chown(home.c_str(), u->uid, u->gid) == 0);
            REQUIRE(::chmod(home.c_str(), 0700) == 0);
        }
        Daemon::Config cfg;
        cfg.system = true;
        cfg.configToml = "socket_group = \"" + a.admins + "\"\nreadonly_group = \"" + a.watchers +
                         "\"\nhypervisor_user = \"" + a.vmm.name + "\"\n" + sshPortsToml(60000, 50) +
                         "[qemu]\naccel = \"tcg\"\nmachine = \"" + machine + "\"\n";
        daemon = std::make_unique<Daemon>(dir, cfg);
        REQUIRE(daemon->waitReady());
        socket = daemon->socket();
        readOnly = dir / "run/vmrd-ro.sock";
    }

    std::string home(const Account& u) const { return dir / u.name; }

    // vmrctl as `who`, on `sock` (the admin socket by default).
    ProcResult ctl(const Account& who, std::vector<std::string> args, const std::string& sock = "") const
    {
        std::vector<std::string> argv = {binary("VMR_VMRCTL"), "--socket", sock.empty() ? socket : sock};
        argv.insert(argv.end(), args.begin(), args.end());
        return run(as(who, argv), {{"HOME", home(who)}, {"VMR_NO_AUTOSTART", "1"}, {"XDG_RUNTIME_DIR", ""}});
    }

    // A file of `who`'s own (a raw image of `size` bytes by default) in their folder.
    std::string ownFile(const Account& who, const std::string& name, size_t size = 1 << 20) const
    {
        std::string path = home(who) + "/" + name;
        std::filesystem::resize_file(
            (std::ofstream(path, std::ios::binary | std::ios::trunc).close(), std::filesystem::path(path)),
            size);
        REQUIRE(::chown(path.c_str(), who.uid, who.gid) == 0);
        return path;
    }

    TempDir dir;
    std::unique_ptr<Daemon> daemon;
    std::string socket;
    std::string readOnly;
};

void checkDenied(const ProcResult& r, const std::string& says)
{
    INFO(r.out << r.err);
    CHECK(r.code == 1);
    CHECK(r.err.find(says) != std::string::npos);
}

// `vmrctl --json` failed with kind permission_denied, saying `says`.
void checkPermissionDenied(const ProcResult& r, const std::string& says)
{
    INFO(r.out << r.err);
    CHECK(r.code == 1);
    CHECK(r.err.find("\"kind\":\"permission_denied\"") != std::string::npos);
    CHECK(r.err.find(says) != std::string::npos);
}

}  // namespace

TEST_CASE("a user outside both groups is refused at connect, told which group to join", "[access]")
{
    REQUIRE_ACCOUNTS();
    SharedHost host;
    auto& a = accounts();
    CHECK(modeOf(host.socket) == 0660);
    CHECK(groupOf(host.socket) == ::getgrnam(a.admins.c_str())->gr_gid);
    CHECK(modeOf(host.readOnly) == 0660);
    CHECK(groupOf(host.readOnly) == ::getgrnam(a.watchers.c_str())->gr_gid);

    for (const auto& sock : {host.socket, host.readOnly}) {
        auto r = host.ctl(a.outsider, {"--json", "list"}, sock);
        checkPermissionDenied(r, "Not allowed to connect to vmrd at " + sock);
    }
    auto r = host.ctl(a.outsider, {"list"});
    checkDenied(r, "hint: Join its group " + a.admins);

    // Past the socket's mode (here opened to everyone), vmrd itself refuses, naming both groups.
    REQUIRE(::chmod(host.socket.c_str(), 0666) == 0);
    auto past = host.ctl(a.outsider, {"--json", "list"});
    checkPermissionDenied(past, "uid " + std::to_string(a.outsider.uid) + " may not use this vmrd");
    CHECK(past.err.find("join group " + a.admins + " to manage VMs, or " + a.watchers + " to watch them") !=
          std::string::npos);
    CHECK(host.daemon->running());
}

TEST_CASE("a watcher lists, reads and watches, and changes nothing", "[access]")
{
    REQUIRE_ACCOUNTS();
    SharedHost host;
    auto& a = accounts();
    std::string image = host.ownFile(a.member, "disk.img");
    auto made = host.ctl(a.member, {"create", "--name", "web", "--image", image, "--start"});
    INFO(made.err);
    REQUIRE(made.code == 0);
    // Every change is logged with who made it.
    CHECK(host.daemon->log().find("vm.create by uid=" + std::to_string(a.member.uid) +
                                  " gid=" + std::to_string(a.member.gid) + " pid=") != std::string::npos);
    CHECK(host.daemon->log().find("(VM web)") != std::string::npos);

    // Its socket is the read-only one; the admins' socket keeps it out.
    checkDenied(host.ctl(a.watcher, {"list"}), "Not allowed to connect to vmrd at " + host.socket);
    auto list = host.ctl(a.watcher, {"list"}, host.readOnly);
    INFO(list.err);
    CHECK(list.code == 0);
    CHECK(list.out.find("web") != std::string::npos);
    auto status = host.ctl(a.watcher, {"status", "web"}, host.readOnly);
    CHECK(status.code == 0);
    CHECK(field(status.out, "state") == "running");
    CHECK(host.ctl(a.watcher, {"log", "web"}, host.readOnly).code == 0);
    CHECK(host.ctl(a.watcher, {"image", "list"}, host.readOnly).code == 0);

    for (std::vector<std::string> change : {std::vector<std::string>{"stop", "web", "--force"},
                                            {"destroy", "web"},
                                            {"suspend", "web"},
                                            {"create", "--name", "mine", "--image", image},
                                            {"image", "rm", "debian"},
                                            {"provision", "web", "--shell", "true"}}) {
        std::vector<std::string> args = {"--json"};
        args.insert(args.end(), change.begin(), change.end());
        auto r = host.ctl(a.watcher, args, host.readOnly);
        INFO(change[0]);
        checkPermissionDenied(r, "changes VMs, and this connection is read-only");
    }
    // The console: watching, not typing. vmrctl as the watcher (stdin ends at once: it detaches
    // after what vmrd had queued).
    auto watched = host.ctl(a.watcher, {"console", "web", "--ro"}, host.readOnly);
    INFO(watched.err);
    CHECK(watched.code == 0);
    checkPermissionDenied(host.ctl(a.watcher, {"--json", "console", "web"}, host.readOnly),
                          "vmrctl console web --ro");
    RawClient ro(host.readOnly);
    REQUIRE(ro.connected());
    ro.send(R"({"jsonrpc":"2.0","id":1,"method":"vm.console","params":{"name":"web","mode":"rw"}})"
            "\n");
    auto rw = ro.readLine();
    REQUIRE(rw);
    CHECK(rw->find("\"kind\":\"permission_denied\"") != std::string::npos);
    CHECK(rw->find("vmrctl console web --ro") != std::string::npos);
    RawClient watch(host.readOnly);
    watch.send(R"({"jsonrpc":"2.0","id":1,"method":"vm.console","params":{"name":"web","mode":"ro"}})"
               "\n");
    auto attached = watch.readLine();
    REQUIRE(attached);
    CHECK(attached->find("\"result\"") != std::string::npos);

    auto after = host.daemon->ctl({"status", "web"});
    CHECK(field(after.out, "state") == "running");
}

TEST_CASE("a member cannot make vmrd read a file the member cannot read", "[access]")
{
    REQUIRE_ACCOUNTS();
    SharedHost host;
    auto& a = accounts();
    const Account& m = a.member;
    REQUIRE(::access("/etc/shadow", F_OK) == 0);
    std::string image = host.ownFile(m, "disk.img");
    std::string denied = "as uid " + std::to_string(m.uid);
    bool madeOne = false;  // a section that makes VM "a" of the member's own

    SECTION("image inspect")
    {
        checkPermissionDenied(host.ctl(m, {"--json", "image", "inspect", "/etc/shadow"}),
                              "Cannot open the image /etc/shadow " + denied);
        // Root can.
        auto root = host.daemon->ctl({"image", "inspect", "/etc/shadow"});
        INFO(root.err);
        CHECK(root.code == 0);
    }
    SECTION("create --image, --kernel, --initrd, --firmware")
    {
        checkPermissionDenied(host.ctl(m, {"--json", "create", "--name", "a", "--image", "/etc/shadow"}),
                              "/etc/shadow " + denied);
        checkPermissionDenied(host.ctl(m, {"--json", "create", "--name", "a", "--image", image, "--kernel",
                                           "/etc/shadow", "--initrd", image}),
                              "Cannot open the kernel /etc/shadow " + denied);
        checkPermissionDenied(host.ctl(m, {"--json", "create", "--name", "a", "--image", image, "--kernel",
                                           image, "--initrd", "/etc/shadow"}),
                              "Cannot open the initrd /etc/shadow " + denied);
        checkPermissionDenied(
            host.ctl(m, {"--json", "create", "--name", "a", "--image", image, "--firmware", "/etc/shadow"}),
            "Cannot open the firmware /etc/shadow " + denied);
    }
    SECTION("a raw vm.create, past vmrctl's own checks")
    {
        checkPermissionDenied(
            host.ctl(m, {"--json", "rpc", "vm.create", R"({"name":"a","image":"/etc/shadow"})"}),
            "/etc/shadow " + denied);
        checkPermissionDenied(
            host.ctl(
                m, {"--json", "rpc", "vm.create",
                    R"({"name":"a","image":")" + image +
                        R"(","provision":[{"type":"file","source":"/etc/shadow","destination":"/tmp/s"}]})"}),
            "Cannot open the provisioning file /etc/shadow " + denied);
    }
    SECTION("a raw vmfile.up: the image, and a provisioner's file")
    {
        std::string file = host.home(m) + "/VMFile.kdl";
        std::string sha(64, 'a');
        checkPermissionDenied(host.ctl(m, {"--json", "rpc", "vmfile.up",
                                           R"({"file":")" + file + R"(","sha256":")" + sha +
                                               R"(","vms":[{"name":"a","image":"/etc/shadow"}]})"}),
                              "/etc/shadow " + denied);
        checkPermissionDenied(
            host.ctl(m,
                     {"--json", "rpc", "vmfile.up",
                      R"({"file":")" + file + R"(","sha256":")" + sha + R"(","vms":[{"name":"a","image":")" +
                          image + R"(","provision":[{"type":"shell","script":"/etc/shadow"}]}]})"}),
            "Cannot open the provisioning file /etc/shadow " + denied);
    }
    SECTION("provision --file and --script on a running VM")
    {
        madeOne = true;
        auto made = host.ctl(m, {"create", "--name", "a", "--image", image, "--start"});
        INFO(made.err);
        REQUIRE(made.code == 0);
        checkPermissionDenied(host.ctl(m, {"--json", "provision", "a", "--file", "/etc/shadow:/tmp/s2"}),
                              "Cannot open the provisioning file /etc/shadow " + denied);
        checkPermissionDenied(host.ctl(m, {"--json", "provision", "a", "--script", "/etc/shadow"}),
                              "Cannot open the provisioning file /etc/shadow " + denied);
    }
    SECTION("--ssh-key and --cloud-init are read by vmrctl, as the member")
    {
        auto key = host.ctl(m, {"create", "--name", "a", "--image", image, "--ssh-key", "/etc/shadow"});
        CHECK(key.err.find("vmrctl: create: --ssh-key: cannot read /etc/shadow: Permission denied") == 0);
        auto userData =
            host.ctl(m, {"create", "--name", "a", "--image", image, "--cloud-init", "/etc/shadow"});
        CHECK(userData.err.find("vmrctl: create: --cloud-init: cannot read /etc/shadow: Permission denied") ==
              0);
    }
    SECTION("a symbolic link in the member's own folder")
    {
        std::string link = host.home(m) + "/innocent.img";
        REQUIRE(::symlink("/etc/shadow", link.c_str()) == 0);
        checkPermissionDenied(host.ctl(m, {"--json", "create", "--name", "a", "--image", link}),
                              "Cannot open the image " + link + " " + denied);
    }
    SECTION("a qcow2 of the member's whose backing file is /etc/shadow")
    {
        std::string q = host.home(m) + "/layer.qcow2";
        auto made = run(as(m, {"/usr/bin/qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", "/etc/shadow",
                               "-F", "raw", q, "1M"}));
        INFO(made.err);
        REQUIRE(made.code == 0);
        auto r = host.ctl(m, {"--json", "create", "--name", "a", "--image", q});
        INFO(r.err);
        CHECK(r.code == 1);
        CHECK(r.err.find("backing file") != std::string::npos);
    }
    // Whatever was tried, nothing was made.
    if (madeOne) return;
    auto list = host.daemon->ctl({"--json", "list"});
    CHECK(list.out.find("\"name\":\"a\"") == std::string::npos);
    CHECK_FALSE(std::filesystem::exists(host.daemon->stateDir() + "/vms/a"));
}

TEST_CASE("a link swapped in the member's folder never reaches a file the member cannot read", "[access]")
{
    REQUIRE_ACCOUNTS();
    SharedHost host;
    const Account& m = accounts().member;
    std::string image = host.ownFile(m, "disk.img", 3 << 20);
    std::string link = host.home(m) + "/vm.img";
    REQUIRE(::symlink(image.c_str(), link.c_str()) == 0);

    // Between create (which probed the image) and start (which opens it again), the link moves.
    auto made = host.ctl(m, {"create", "--name", "a", "--image", link});
    INFO(made.err);
    REQUIRE(made.code == 0);
    REQUIRE(::unlink(link.c_str()) == 0);
    REQUIRE(::symlink("/etc/shadow", link.c_str()) == 0);
    // With machine "none" no disk is opened at start: here the swap is tried on image inspect,
    // which opens the path once and reads from that descriptor, while the link flips.
    std::atomic<bool> stop{false};
    std::thread flipper([&] {
        std::string a = link + ".a", b = link + ".b";
        (void)!::symlink(image.c_str(), a.c_str());
        (void)!::symlink("/etc/shadow", b.c_str());
        bool which = false;
        while (!stop) {
            std::string tmp = link + ".t";
            ::unlink(tmp.c_str());
            (void)!::symlink(which ? image.c_str() : "/etc/shadow", tmp.c_str());
            ::rename(tmp.c_str(), link.c_str());
            which = !which;
        }
    });
    int answered = 0, refused = 0;
    for (int i = 0; i < 40; ++i) {
        auto r = host.ctl(m, {"--json", "image", "inspect", link});
        if (r.code == 0) {
            ++answered;
            CHECK(jsonNumber(r.out, "virtual_size") == std::to_string(3 << 20));
        } else {
            ++refused;
            INFO(r.code << " " << r.out << r.err);
            CHECK(r.err.find("\"kind\":\"permission_denied\"") != std::string::npos);
        }
    }
    stop = true;
    flipper.join();
    INFO(answered << " answered, " << refused << " refused");
    CHECK(answered + refused == 40);
}

TEST_CASE("QEMU runs as the hypervisor user, sandboxed, given its files as descriptors", "[access][guest]")
{
    REQUIRE_ACCOUNTS();
    if (!haveGuest()) {
        WARN("no test guest at " << guestDir() << ": build it with tests/guest/build.sh");
        return;
    }
    SharedHost host("q35");
    const Account& m = accounts().member;
    std::string image = host.ownFile(m, "disk.img", 64 << 20);
    // The guest's boot files, as the member's own (the member may not be able to read the build).
    for (const char* f : {"vmlinux", "initramfs.cpio.gz"}) {
        std::filesystem::copy_file(guestDir() + "/" + f, host.home(m) + "/" + f);
        REQUIRE(::chown((host.home(m) + "/" + f).c_str(), m.uid, m.gid) == 0);
    }
    auto made = host.ctl(
        m, {"create", "--name", "g", "--image", image, "--kernel", host.home(m) + "/vmlinux", "--initrd",
            host.home(m) + "/initramfs.cpio.gz", "--cmdline", "console=ttyS0", "--memory", "256", "--start"});
    INFO(made.err << host.daemon->log());
    REQUIRE(made.code == 0);
    std::string vmDir = host.daemon->stateDir() + "/vms/g";
    CHECK(eventually(
        [&] { return readFile(vmDir + "/console.log").find("VMR-GUEST-READY") != std::string::npos; }, 120s));

    auto status = host.ctl(m, {"--json", "status", "g"});
    CHECK(jsonNumber(status.out, "owner_uid") == std::to_string(m.uid));
    std::string pid = jsonNumber(status.out, "pid");
    REQUIRE(!pid.empty());
    std::string procStatus = readFile("/proc/" + pid + "/status");
    std::string uid = std::to_string(accounts().vmm.uid);
    CHECK(procStatus.find("\nUid:\t" + uid + "\t" + uid + "\t" + uid + "\t" + uid + "\n") !=
          std::string::npos);
    CHECK(procStatus.find("\nNoNewPrivs:\t1\n") != std::string::npos);
    CHECK(procStatus.find("\nSeccomp:\t2\n") != std::string::npos);
    // Its command line names no path of the member's or of vmrd's: descriptors only.
    std::string cmdline = readFile("/proc/" + pid + "/cmdline");
    CHECK(cmdline.find(host.home(m)) == std::string::npos);
    CHECK(cmdline.find(host.daemon->stateDir()) == std::string::npos);
    CHECK(cmdline.find("/proc/self/fd/") != std::string::npos);

    // What vmrd wrote: private.
    std::string state = host.daemon->stateDir();
    CHECK(modeOf(state) == 0700);
    CHECK(modeOf(state + "/vms") == 0700);
    CHECK(modeOf(state + "/images") == 0700);
    CHECK(modeOf(vmDir) == 0700);
    CHECK(modeOf(vmDir + "/vm.json") == 0600);
    CHECK(modeOf(vmDir + "/overlay.qcow2") == 0600);
    CHECK(modeOf(vmDir + "/console.log") == 0600);
    for (const auto& f : listDir(vmDir)) {
        INFO(f);
        if (f.size() > 4 && f.substr(f.size() - 4) == ".pub")
            CHECK(modeOf(vmDir + "/" + f) == 0644);
        else
            CHECK((modeOf(vmDir + "/" + f) & 0077) == 0);
    }
    CHECK(modeOf(host.dir / "run") == 0755);
    CHECK(modeOf(host.dir / "run/vms") == 0700);

    auto stopped = host.ctl(m, {"stop", "g", "--force"});
    CHECK(stopped.code == 0);
}
