// The QMP client against a real qemu-system-x86_64 (-machine none: no guest, ~40 ms to start).
// Skipped with a warning when QEMU is not installed.

#include "../unit/qmp/helpers.h"
#include "qmp/client.h"
#include "qmp/status.h"

#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

extern char** environ;

using namespace vmr;
using vmr::test::TempDir;
using namespace vmr::qmp;
using namespace vmr::qmp::test;

namespace {

constexpr const char* kQemu = "qemu-system-x86_64";

std::string findInPath(const std::string& name)
{
    const char* path = std::getenv("PATH");
    std::string rest = path != nullptr ? path : "/usr/bin:/bin";
    size_t pos = 0;
    while (pos <= rest.size()) {
        size_t end = rest.find(':', pos);
        if (end == std::string::npos) end = rest.size();
        std::string candidate = rest.substr(pos, end - pos) + "/" + name;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
        pos = end + 1;
    }
    return {};
}

// A QEMU process held through its pidfd; killed and reaped at the end if still there.
class Qemu {
public:
    Qemu(const std::string& binary, const std::string& socket, bool paused)
    {
        std::vector<std::string> args = {
            binary,     "-machine", "none", "-nodefaults",
            "-display", "none",     "-qmp", "unix:" + socket + ",server=on,wait=off"};
        if (paused) args.emplace_back("-S");
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        REQUIRE(::posix_spawn(&pid_, binary.c_str(), nullptr, nullptr, argv.data(), environ) == 0);
        int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
        REQUIRE(fd >= 0);
        pidfd_.reset(fd);
    }
    ~Qemu()
    {
        if (reaped_) return;
        ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
        (void)wait(10000);
    }

    // Wait for the exit through the pidfd; the wait status, or nullopt after timeoutMs.
    std::optional<siginfo_t> wait(int timeoutMs)
    {
        pollfd p{pidfd_.get(), POLLIN, 0};
        if (::poll(&p, 1, timeoutMs) != 1) return std::nullopt;
        siginfo_t info{};
        if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_.get()), &info, WEXITED) != 0) {
            return std::nullopt;
        }
        reaped_ = true;
        return info;
    }

private:
    pid_t pid_ = -1;
    UniqueFd pidfd_;
    bool reaped_ = false;
};

struct Fixture {
    std::string binary = findInPath(kQemu);
    TempDir dir;
    std::unique_ptr<Reactor> r = makeReactor();
    std::unique_ptr<Qemu> qemu;
    std::unique_ptr<Client> client;
    std::vector<Event> events;
    int closeCount = 0;
    bool closeWasEof = false;
    std::string closeText;

    bool available() const { return !binary.empty(); }

    void start(bool paused)
    {
        std::string socket = dir / "qmp.sock";
        qemu = std::make_unique<Qemu>(binary, socket, paused);
        Client::Handlers h{[this](const Event& e) { events.push_back(e); },
                           [this](const Error* e) {
                               ++closeCount;
                               closeWasEof = e == nullptr;
                               if (e != nullptr) closeText = e->what();
                           }};
        // The socket appears while QEMU initialises: retry until it answers.
        auto deadline = std::chrono::steady_clock::now() + 10s;
        for (;;) {
            auto t = Client::connect(*r, socket, 5s, h);
            auto c = finish(*r, t);
            if (c) {
                client = std::move(*c);
                return;
            }
            if (std::chrono::steady_clock::now() > deadline)
                FAIL("Cannot connect to QEMU: " << c.error().what());
            (void)r->runFor(10ms);
        }
    }

    Result<std::string> run(std::string_view command, std::string_view args = {})
    {
        auto t = client->execute(command, args);
        return finish(*r, t);
    }

    StatusInfo status()
    {
        auto s = run("query-status");
        if (!s) FAIL(s.error().what());
        auto info = parseStatusInfo(*s);
        if (!info) FAIL(info.error().what() << " in " << *s);
        return *info;
    }

    bool waitEvent(const std::string& name, size_t from = 0)
    {
        return r->runUntil(
            [&] {
                for (size_t i = from; i < events.size(); ++i) {
                    if (events[i].name == name) return true;
                }
                return false;
            },
            5s);
    }
};

}  // namespace

TEST_CASE("real QEMU: status, version, stop/cont events, quit")
{
    Fixture f;
    if (!f.available()) {
        WARN("SKIP: " << kQemu << " is not installed");
        return;
    }
    f.start(false);

    const auto& g = f.client->greeting();
    CHECK(g.version.major >= 2);

    auto version = f.run("query-version");
    REQUIRE(version.ok());
    CHECK_THAT(*version, Catch::Contains("\"major\":" + std::to_string(g.version.major)) &&
                             Catch::Contains("\"package\""));

    auto st = f.status();
    CHECK(st.status == RunState::Running);
    CHECK(st.running);
    CHECK(lifecycleOf(st.status) == Lifecycle::Running);

    // Several commands in flight at once.
    auto a = f.client->execute("query-kvm");
    auto b = f.client->execute("query-name");
    auto c = f.client->execute("query-status");
    a.start();
    b.start();
    c.start();
    CHECK(waitFor(*f.r, a).ok());
    CHECK(waitFor(*f.r, b).ok());
    CHECK(waitFor(*f.r, c).ok());

    auto unknown = f.run("no-such-command");
    REQUIRE_FALSE(unknown.ok());
    CHECK(unknown.error().kind() == ErrorKind::Unsupported);
    CHECK_THAT(unknown.error().message(), Catch::Contains("CommandNotFound"));

    auto badArgs = f.run("stop", R"({"unexpected": 1})");
    REQUIRE_FALSE(badArgs.ok());
    CHECK(badArgs.error().kind() == ErrorKind::InvalidArgument);
    CHECK_THAT(badArgs.error().message(), Catch::Contains("GenericError"));

    auto stop = f.run("stop");
    REQUIRE(stop.ok());
    CHECK(*stop == "{}");
    REQUIRE(f.waitEvent("STOP"));
    CHECK(f.events.back().timestamp.seconds > 1600000000);
    st = f.status();
    CHECK(st.status == RunState::Paused);
    CHECK_FALSE(st.running);

    size_t mark = f.events.size();
    REQUIRE(f.run("cont").ok());
    REQUIRE(f.waitEvent("RESUME", mark));
    CHECK(f.status().status == RunState::Running);

    mark = f.events.size();
    auto quit = f.run("quit");
    REQUIRE(quit.ok());
    REQUIRE(f.waitEvent("SHUTDOWN", mark));
    for (size_t i = mark; i < f.events.size(); ++i) {
        if (f.events[i].name == "SHUTDOWN")
            CHECK(f.events[i].data == R"({"guest":false,"reason":"host-qmp-quit"})");
    }
    REQUIRE(f.r->runUntil([&] { return f.closeCount > 0; }, 5s));
    CHECK(f.closeCount == 1);
    INFO(f.closeText);
    CHECK(f.closeWasEof);
    CHECK(f.client->closed());

    auto after = f.run("query-status");
    REQUIRE_FALSE(after.ok());
    CHECK(after.error().kind() == ErrorKind::Unavailable);

    auto exit = f.qemu->wait(5000);
    REQUIRE(exit);
    CHECK(exit->si_code == CLD_EXITED);
    CHECK(exit->si_status == 0);
}

TEST_CASE("real QEMU with -S: prelaunch, then cont starts it")
{
    Fixture f;
    if (!f.available()) {
        WARN("SKIP: " << kQemu << " is not installed");
        return;
    }
    f.start(true);
    auto st = f.status();
    CHECK(st.status == RunState::Prelaunch);
    CHECK_FALSE(st.running);
    CHECK(lifecycleOf(st.status) == Lifecycle::Created);

    REQUIRE(f.run("cont").ok());
    REQUIRE(f.waitEvent("RESUME"));
    CHECK(f.status().status == RunState::Running);

    // A device that does not exist.
    auto del = f.run("device_del", R"({"id": "nope"})");
    REQUIRE_FALSE(del.ok());
    CHECK_THAT(del.error().message(), Catch::Contains("nope"));

    // QEMU killed under the client: pending commands fail, onClose reports it.
    auto pending = f.client->execute("query-status", "", 30s);
    pending.start();
    f.qemu.reset();  // SIGKILL, reaped through the pidfd
    auto r = waitFor(*f.r, pending);
    // The reply may have been sent before the kill.
    if (!r) CHECK(r.error().kind() == ErrorKind::Unavailable);
    REQUIRE(f.r->runUntil([&] { return f.closeCount > 0; }, 5s));
    CHECK(f.client->closed());
}
