#include "vm/qemu_driver.h"

#include "qmp/status.h"
#include "vm/logger.h"
#include "vm/qemu_argv.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>

namespace vmr::vm {

using reactor::Task;
using namespace std::chrono_literals;

QemuDriver::QemuDriver(reactor::Reactor& r, DriverConfig cfg, VmState initial)
    : Driver(r, std::move(cfg), initial)
{
}

QemuDriver::~QemuDriver() = default;

Result<void> QemuDriver::preflight() const
{
    if (auto found = reactor::findProgram(cfg_.binary); !found)
        return Error(ErrorKind::ToolMissing, "QEMU is not installed: " + found.error().message(),
                     kQemuMissingHint);
    return success();
}

qmp::Client::Handlers QemuDriver::qmpHandlers()
{
    // The client is ours and runs no handler after it is destroyed: `this` outlives the calls.
    return {[this](const qmp::Event& ev) { onEvent(ev); },
            [this](const Error* err) {
                if (err != nullptr) lg().debug("VM {}: QMP connection failed: {}", vmName(), err->what());
            }};
}

void QemuDriver::onEvent(const qmp::Event& ev)
{
    EventEffect e = effectOfEvent(ev.name, ev.data);
    if (!e.reason.empty() || e.state) lg().debug("VM {}: QMP event {} {}", vmName(), ev.name, ev.data);
    if (e.onExit) announced_ = e.onExit;
    if (e.state) setState(*e.state, e.reason);
}

StateChange QemuDriver::exitState(const reactor::ExitStatus& st)
{
    return stateForExit(announced_, stopRequested(), st.exited() && st.code == 0, st.describe());
}

Result<Driver::Spawn> QemuDriver::spawnPlan()
{
    // The QMP and serial sockets are made here and handed to QEMU already listening: a connect()
    // succeeds at once, with no polling for a socket to appear, and QEMU needs no access to the
    // runtime folder. So is the console log, opened for appending.
    VMR_TRY_ASSIGN(UniqueFd qmp, reactor::listenUnix(cfg_.paths.control, 0600, 4));
    VMR_TRY_ASSIGN(UniqueFd serial, reactor::listenUnix(cfg_.paths.serialSocket, 0600, 16));
    UniqueFd log(
        ::open(cfg_.paths.consoleLog.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!log) return Error::fromErrno(errno, "Cannot open " + cfg_.paths.consoleLog);
    QemuCommand cmd = buildQemuCommand(cfg_.binary, cfg_.spec, cfg_.launch);
    Spawn plan;
    plan.argv = std::move(cmd.argv);
    plan.fds.emplace_back(std::move(qmp), kQmpChildFd);
    plan.fds.emplace_back(std::move(serial), kSerialChildFd);
    plan.fds.emplace_back(std::move(log), kConsoleLogChildFd);
    for (auto [ours, theirs] : cmd.files) {
        UniqueFd copy(::fcntl(ours, F_DUPFD_CLOEXEC, 0));
        if (!copy) return Error::fromErrno(errno, "Cannot pass a file to QEMU");
        plan.fds.emplace_back(std::move(copy), theirs);
    }
    return plan;
}

Task<Result<void>> QemuDriver::connect(reactor::Clock::time_point deadline)
{
    // The greeting comes once QEMU has initialised (tens of ms). A failed attempt (QEMU died, or
    // closed the connection) is retried until the deadline.
    reactor::Duration pause = 1ms;
    for (;;) {
        if (!processAlive()) co_return exitedAtStart();
        auto left = std::chrono::duration_cast<reactor::Duration>(deadline - reactor_.now());
        if (left <= reactor::Duration::zero())
            co_return Error(
                ErrorKind::Timeout,
                "QEMU did not answer on QMP within " +
                    std::to_string(
                        std::chrono::duration_cast<std::chrono::seconds>(cfg_.startTimeout).count()) +
                    " s",
                "See " + cfg_.paths.vmmLog);
        auto c = co_await qmp::Client::connect(reactor_, cfg_.paths.control, left, qmpHandlers());
        if (c) {
            client_ = std::move(*c);
            break;
        }
        (void)co_await reactor::sleep(reactor_, pause);
        pause = std::min<reactor::Duration>(pause * 2, 16ms);
    }
    VMR_CO_TRY(co_await readState(false));
    co_await readVncPort();
    co_return success();
}

Task<Result<void>> QemuDriver::reconnect()
{
    auto c = co_await qmp::Client::connect(reactor_, cfg_.paths.control, 5s, qmpHandlers());
    if (!c) co_return Error(ErrorKind::Unavailable, "QMP does not answer").causedBy(std::move(c).error());
    client_ = std::move(*c);
    // Whatever the record said, QEMU's own answer is the truth now.
    if (auto st = co_await readState(true); !st)
        co_return Error(st.error().kind(), "query-status failed").causedBy(std::move(st).error());
    co_await readVncPort();
    co_return success();
}

Task<Result<std::string>> QemuDriver::command(std::string_view name)
{
    if (!qmpUsable()) co_return Error(ErrorKind::Unavailable, "No QMP connection to VM \"" + vmName() + "\"");
    co_return co_await client_->execute(name);
}

Task<void> QemuDriver::readVncPort()
{
    vncPort_.reset();
    if (!cfg_.spec.vnc || !qmpUsable()) co_return;
    auto ret = co_await client_->execute("query-vnc");
    if (!ret) {
        lg().warn("VM {}: query-vnc failed: {}", vmName(), ret.error().what());
        co_return;
    }
    auto port = qmp::parseVncPort(*ret);
    if (!port) {
        lg().warn("VM {}: {}", vmName(), port.error().what());
        co_return;
    }
    vncPort_ = *port;
}

Task<Result<void>> QemuDriver::readState(bool force)
{
    VMR_CO_TRY_ASSIGN(std::string ret, co_await command("query-status"));
    VMR_CO_TRY_ASSIGN(auto info, qmp::parseStatusInfo(ret));
    StateChange s = stateForRunState(info.status);
    setState(s.state, s.reason, force);
    co_return success();
}

Task<bool> QemuDriver::powerButton()
{
    auto r = co_await command("system_powerdown");
    if (!r) lg().warn("VM {}: system_powerdown failed: {}", vmName(), r.error().what());
    co_return r.ok();
}

Task<Result<void>> QemuDriver::pauseVm()
{
    VMR_CO_TRY(co_await command("stop"));
    co_return success();
}

Task<Result<void>> QemuDriver::resumeVm()
{
    VMR_CO_TRY(co_await command("cont"));
    co_return success();
}

}  // namespace vmr::vm
