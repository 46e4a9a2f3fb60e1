// The API client against fake-chv (a real process on a real unix socket), on the backend
// VMR_REACTOR selects: answers, error statuses with their chain, and a server that hangs,
// dies mid-request, closes or sends garbage. SCM_RIGHTS against an in-process server.

#include "chv/client.h"
#include "chv/vm_config.h"
#include "fake.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstring>

using namespace vmr;
using namespace vmr::chv;
using namespace vmr::chv::test;

namespace {

// Ping until the fake has bound its socket.
void waitUp(Reactor& r, Client& c)
{
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
        auto p = finish(r, c.ping(1s));
        if (p) {
            CHECK(p->version == "53.0.0");
            return;
        }
        (void)r.runFor(10ms);
    }
    FAIL("fake-chv did not come up");
}

const std::string kConfig =
    R"({"cpus":{"boot_vcpus":1,"max_vcpus":1},"memory":{"size":67108864},"payload":{"kernel":"/bin/sh"},)"
    R"("console":{"mode":"Off"}})";

}  // namespace

TEST_CASE("the VM life cycle over the API, with the server's error chains")
{
    auto r = makeReactor();
    FakeVmm vmm(*r);
    Client c(*r, vmm.api());
    waitUp(*r, c);

    auto none = finish(*r, c.info());
    REQUIRE_FALSE(none);
    CHECK(none.error().kind() == ErrorKind::NotFound);
    CHECK(none.error().message() == "cloud-hypervisor answered GET vm.info with 404 Not Found");
    CHECK_FALSE(none.error().hint().empty());
    CHECK(none.error().what().find("Error from API: VM is not created") != std::string::npos);

    auto bad = finish(
        *r, c.put("vm.create", R"({"payload":{"kernel":"/k"},"cpus":{"boot_vcpus":0,"max_vcpus":1}})"));
    REQUIRE_FALSE(bad);
    CHECK(bad.error().kind() == ErrorKind::InvalidArgument);
    CHECK(bad.error().what().find("boot_vcpus: must be at least 1") != std::string::npos);

    auto create = finish(*r, c.put("vm.create", kConfig));
    if (!create) FAIL(create.error().what());
    auto again = finish(*r, c.put("vm.create", kConfig));
    REQUIRE_FALSE(again);
    CHECK(again.error().message() ==
          "cloud-hypervisor answered PUT vm.create with 500 Internal Server Error");
    CHECK(again.error().cause() != nullptr);
    CHECK(again.error().cause()->message() == "Error from API");

    auto created = finish(*r, c.info());
    REQUIRE(created);
    CHECK(created->state == VmRunState::Created);
    REQUIRE(finish(*r, c.put("vm.boot")));
    auto running = finish(*r, c.info());
    REQUIRE(running);
    CHECK(running->state == VmRunState::Running);
    CHECK(running->configJson.find("\"kernel\":\"/bin/sh\"") != std::string::npos);

    REQUIRE(finish(*r, c.put("vm.pause")));
    auto twice = finish(*r, c.put("vm.pause"));
    REQUIRE_FALSE(twice);
    CHECK(twice.error().kind() == ErrorKind::Unavailable);
    CHECK(twice.error().what().find("VM is not running") != std::string::npos);
    REQUIRE(finish(*r, c.put("vm.resume")));

    // Raw answers: wrong method 400, unknown endpoint 404.
    auto post = finish(*r, c.request("POST", "vm.pause"));
    REQUIRE(post);
    CHECK(post->status == 400);
    auto unknown = finish(*r, c.request("GET", "vm.nothing"));
    REQUIRE(unknown);
    CHECK(unknown->status == 404);

    // vm.shutdown keeps the config: Created again.
    REQUIRE(finish(*r, c.put("vm.shutdown")));
    CHECK(finish(*r, c.info())->state == VmRunState::Created);

    REQUIRE(finish(*r, c.put("vmm.shutdown")));
    REQUIRE(r->runUntil([&] { return vmm.child().exited(); }, 5s));
    CHECK(vmm.child().status()->code == 0);
    auto gone = finish(*r, c.ping(1s));
    REQUIRE_FALSE(gone);
    CHECK(gone.error().kind() == ErrorKind::Unavailable);
}

TEST_CASE("a server that hangs: Timeout, and the next request is not held up")
{
    auto r = makeReactor();
    FakeVmm vmm(*r, {"FAKE_CHV_FAULTS=vm.info=hang"});
    Client c(*r, vmm.api());
    waitUp(*r, c);
    auto t0 = std::chrono::steady_clock::now();
    auto hung = finish(*r, c.info(300ms));
    REQUIRE_FALSE(hung);
    CHECK(hung.error().kind() == ErrorKind::Timeout);
    CHECK(hung.error().message() == "cloud-hypervisor did not answer GET vm.info within 300 ms");
    CHECK(std::chrono::steady_clock::now() - t0 < 3s);
    REQUIRE(finish(*r, c.ping(2s)));
}

TEST_CASE("a slow answer within the timeout arrives; past it, Timeout")
{
    auto r = makeReactor();
    FakeVmm vmm(*r, {"FAKE_CHV_FAULTS=vm.counters=delay:300"});
    Client c(*r, vmm.api());
    waitUp(*r, c);
    auto late = finish(*r, c.request("GET", "vm.counters", {}, 50ms));
    REQUIRE_FALSE(late);
    CHECK(late.error().kind() == ErrorKind::Timeout);
    auto slow = finish(*r, c.request("GET", "vm.counters", {}, 5s));
    REQUIRE(slow);
    CHECK(slow->status == 404);  // no VM: the delayed answer is still the real one
}

TEST_CASE("a server that dies mid-request: Unavailable at once")
{
    auto r = makeReactor();
    FakeVmm vmm(*r, {"FAKE_CHV_FAULTS=vm.boot=die"});
    Client c(*r, vmm.api());
    waitUp(*r, c);
    auto t0 = std::chrono::steady_clock::now();
    auto died = finish(*r, c.put("vm.boot", {}, 10s));
    REQUIRE_FALSE(died);
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);
    CHECK(died.error().kind() == ErrorKind::Unavailable);
    CHECK(died.error().message() == "cloud-hypervisor closed the connection before answering PUT vm.boot");
    REQUIRE(r->runUntil([&] { return vmm.child().exited(); }, 5s));
    CHECK(vmm.child().status()->code == 3);
}

TEST_CASE("garbage and a closed connection are errors, not answers")
{
    auto r = makeReactor();
    FakeVmm vmm(*r, {"FAKE_CHV_FAULTS=vmm.ping=garbage,vm.info=close,vm.pause=status:503"});
    Client c(*r, vmm.api());
    auto deadline = std::chrono::steady_clock::now() + 10s;
    Result<PingInfo> p = Error(ErrorKind::Internal, "not tried");
    // Until the socket is up, connecting fails; then the garbage arrives.
    while (std::chrono::steady_clock::now() < deadline) {
        p = finish(*r, c.ping(1s));
        if (!p && p.error().message().find("malformed answer") != std::string::npos) break;
        (void)r->runFor(10ms);
    }
    REQUIRE_FALSE(p);
    CHECK(p.error().kind() == ErrorKind::Unavailable);
    REQUIRE(p.error().cause() != nullptr);
    CHECK(p.error().cause()->kind() == ErrorKind::ParseError);

    auto closed = finish(*r, c.info(2s));
    REQUIRE_FALSE(closed);
    CHECK(closed.error().message() == "cloud-hypervisor closed the connection before answering GET vm.info");

    auto status = finish(*r, c.put("vm.pause"));
    REQUIRE_FALSE(status);
    CHECK(status.error().message() == "cloud-hypervisor answered PUT vm.pause with 503 Service Unavailable");
    CHECK(status.error().what().find("injected failure of vm.pause") != std::string::npos);
}

TEST_CASE("no server: a clear error naming the socket")
{
    auto r = makeReactor();
    TempDir dir;
    Client c(*r, dir.path() + "/none.api");
    auto p = finish(*r, c.ping(1s));
    REQUIRE_FALSE(p);
    CHECK(p.error().kind() == ErrorKind::Unavailable);
    CHECK(p.error().message() ==
          "Cannot connect to cloud-hypervisor's API socket " + dir.path() + "/none.api for GET vmm.ping");
}

TEST_CASE("tap fds go along with the request (SCM_RIGHTS)")
{
    auto r = makeReactor();
    TempDir dir;
    std::string path = dir.path() + "/api";
    auto listening = reactor::listenUnix(path, 0600);
    REQUIRE(listening);
    int pipeFds[2];
    REQUIRE(::pipe2(pipeFds, O_CLOEXEC) == 0);
    UniqueFd readEnd(pipeFds[0]), writeEnd(pipeFds[1]);

    Client c(*r, path);
    std::string body = R"({"tap":"tap0"})";
    auto task = c.request("PUT", "vm.add-net", body, 5s, {readEnd.get()});
    task.start();

    UniqueFd conn;
    REQUIRE(r->runUntil(
        [&] {
            // runUntil() may ask again after the answer was yes.
            if (!conn.valid())
                conn.reset(::accept4(listening->get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
            return conn.valid();
        },
        5s));
    http::Parser parser(http::Parser::Kind::Request);
    std::vector<UniqueFd> got;
    bool complete = false;
    REQUIRE(r->runUntil(
        [&] {
            if (complete) return true;
            char buf[4096];
            char control[CMSG_SPACE(sizeof(int) * 4)];
            iovec iov{buf, sizeof buf};
            msghdr msg{};
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control;
            msg.msg_controllen = sizeof control;
            ssize_t n = ::recvmsg(conn.get(), &msg, MSG_CMSG_CLOEXEC);
            if (n <= 0) return false;
            for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm != nullptr; cm = CMSG_NXTHDR(&msg, cm)) {
                size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < count; ++i) {
                    int fd;
                    std::memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
                    got.emplace_back(fd);
                }
            }
            auto done = parser.feed(std::string_view(buf, static_cast<size_t>(n)));
            REQUIRE(done);
            complete = *done;
            return complete;
        },
        5s));
    http::Message req = parser.take();
    CHECK(req.method == "PUT");
    CHECK(req.target == "/api/v1/vm.add-net");
    CHECK(req.body == body);
    REQUIRE(got.size() == 1);
    struct stat a {
    }, b{};
    REQUIRE(::fstat(got[0].get(), &a) == 0);
    REQUIRE(::fstat(readEnd.get(), &b) == 0);
    CHECK(a.st_ino == b.st_ino);  // the same pipe

    std::string answer = http::encodeResponse(200, R"({"id":"net0","bdf":"0000:00:05.0"})");
    REQUIRE(::send(conn.get(), answer.data(), answer.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(answer.size()));
    REQUIRE(r->runUntil([&] { return task.done(); }, 5s));
    auto res = task.result();
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->body == R"({"id":"net0","bdf":"0000:00:05.0"})");
}

TEST_CASE("fake-chv is strict: what the schema or cloud-hypervisor refuses is a 400")
{
    auto r = makeReactor();
    FakeVmm vmm(*r);
    Client c(*r, vmm.api());
    waitUp(*r, c);
    const std::string k = R"("payload":{"kernel":"/k"})";
    struct Bad {
        std::string body;
        std::string why;
    };
    auto bad = GENERATE_COPY(
        Bad{"", "Missing VM configuration"}, Bad{"{", "Error parsing JSON"},
        Bad{R"({"cpus":{"boot_vcpus":1,"max_vcpus":1}})", "missing field `payload`"},
        Bad{"{" + k + R"(,"cpus":{"boot_vcpus":1}})", "missing field `max_vcpus`"},
        Bad{"{" + k + R"(,"cpus":{"boot_vcpus":2,"max_vcpus":1}})", "max_vcpus is lower than boot_vcpus"},
        Bad{"{" + k + R"(,"memory":{"size":"1G"}})", "VmConfig.memory.size: invalid type"},
        Bad{"{" + k + R"(,"memory":{}})", "missing field `size`"},
        Bad{"{" + k + R"(,"serial":{"mode":"socket"}})", "unknown variant `socket`"},
        Bad{"{" + k + R"(,"serial":{"mode":"Socket"}})", "Socket mode needs a socket path"},
        Bad{"{" + k + R"(,"console":{"mode":"Socket","socket":"/s"}})",
            "No socket option support for console"},
        Bad{"{" + k + R"(,"disks":[{"path":"/a","image_type":"qcow2"}]})", "unknown variant `qcow2`"},
        Bad{"{" + k + R"(,"disks":[{"path":"/a","id":"x"},{"path":"/b","id":"x"}]})",
            "identifier x is not unique"},
        Bad{"{" + k + R"(,"disks":[{"readonly":true}]})", "a disk needs a path"},
        Bad{"{" + k + R"(,"net":[{"tap":"t","mac":"52:54:00:12:34"}]})", "invalid MAC address"},
        Bad{"{" + k + R"(,"rng":{}})", "missing field `src`"},
        Bad{"{" + k + R"(,"payload":{}})", "duplicate field"},
        Bad{"{" + k + R"(,"cpus":{"boot_vcpus":1,"max_vcpus":1,"turbo":true}})", "unknown field `turbo`"},
        Bad{R"({"payload":{}})", "a kernel or a firmware is required"},
        Bad{"[]", "expected struct VmConfig"});
    CAPTURE(bad.body);
    auto res = finish(*r, c.put("vm.create", bad.body));
    REQUIRE_FALSE(res);
    CHECK(res.error().kind() == ErrorKind::InvalidArgument);
    CHECK(res.error().what().find(bad.why) != std::string::npos);
    CHECK(finish(*r, c.info()).error().kind() == ErrorKind::NotFound);  // nothing was created
}

TEST_CASE("the VmConfig vmr builds passes fake-chv's schema, and boot checks the files")
{
    auto r = makeReactor();
    FakeVmm vmm(*r);
    Client c(*r, vmm.api());
    waitUp(*r, c);
    model::VmSpec spec;
    spec.vcpus = 2;
    spec.memoryMib = 128;
    Attachments att;
    att.firmware = vmm.dir() + "/hypervisor-fw";
    att.overlay = vmm.dir() + "/overlay.qcow2";
    att.seedIso = vmm.dir() + "/seed.iso";
    att.tap = "vmr-no-such-tap";
    att.mac = "52:54:00:12:34:56";
    att.serialSocket = vmm.dir() + "/serial";
    auto body = buildVmConfig(spec, att);
    REQUIRE(body);
    REQUIRE(finish(*r, c.put("vm.create", *body)));
    auto info = finish(*r, c.info());
    REQUIRE(info);
    CHECK(info->configJson == *body);

    auto noFirmware = finish(*r, c.put("vm.boot"));
    REQUIRE_FALSE(noFirmware);
    CHECK(noFirmware.error().what().find("Cannot open the firmware") != std::string::npos);
    for (const auto& f : {att.firmware, att.overlay, att.seedIso}) {
        std::FILE* file = std::fopen(f.c_str(), "w");
        REQUIRE(file != nullptr);
        std::fclose(file);
    }
    auto noTap = finish(*r, c.put("vm.boot"));
    REQUIRE_FALSE(noTap);
    CHECK(noTap.error().what().find("cannot create tap devices") != std::string::npos);
    CHECK(finish(*r, c.info())->state == VmRunState::Created);
}

TEST_CASE("with --no-shutdown a guest power-off leaves the VMM up and the VM Created")
{
    auto r = makeReactor();
    FakeVmm vmm(*r, {}, {"--no-shutdown"});
    Client c(*r, vmm.api());
    waitUp(*r, c);
    REQUIRE(finish(*r, c.put("vm.create", kConfig)));
    REQUIRE(finish(*r, c.put("vm.boot")));
    REQUIRE(finish(*r, c.put("vm.reboot")));
    CHECK(finish(*r, c.info())->state == VmRunState::Running);
    REQUIRE(::kill(vmm.child().pid(), SIGUSR1) == 0);
    auto deadline = std::chrono::steady_clock::now() + 5s;
    auto state = VmRunState::Running;
    while (state != VmRunState::Created && std::chrono::steady_clock::now() < deadline) {
        (void)r->runFor(20ms);
        auto info = finish(*r, c.info());
        REQUIRE(info);
        state = info->state;
    }
    CHECK(state == VmRunState::Created);
    auto reboot = finish(*r, c.put("vm.reboot"));
    REQUIRE_FALSE(reboot);
    CHECK(reboot.error().what().find("VM is not running") != std::string::npos);
    REQUIRE(finish(*r, c.put("vm.boot")));  // the config was kept
    REQUIRE(finish(*r, c.put("vm.delete")));
    CHECK(finish(*r, c.info()).error().kind() == ErrorKind::NotFound);
    CHECK_FALSE(vmm.child().exited());
}
