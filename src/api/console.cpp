// The console actions: vm.console (the connection becomes the VM's console, raw bytes both ways,
// through its console::Hub) and vm.log (the tails of console.log and provision.log). See
// docs/console.md.

#include "api/console.h"

#include "api/action.h"
#include "base/json.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace vmr::api {

namespace {

using reactor::Task;

constexpr int64_t kMaxScrollbackParam = int64_t{1} << 30;
constexpr uint64_t kMaxLogBytes = 1 << 20;  // per log in one vm.log reply

// The hub of a VM whose console can be attached now.
Result<console::Hub*> liveHub(vm::Manager& m, console::Registry& hubs, const std::string& name)
{
    VMR_TRY_ASSIGN(const store::VmRecord* r, m.get(name));
    model::VmState st = r->runtime.state;
    if (st != model::VmState::Running && st != model::VmState::Paused && st != model::VmState::Starting)
        return Error(ErrorKind::VmBadState,
                     "VM \"" + name + "\" is " + std::string(model::wordOf(st)) + ", not running",
                     "Start it first: vmrctl start " + name + " (`vmrctl log " + name +
                         " --console` shows what it printed)");
    console::Hub* hub = hubs.find(name);
    if (hub == nullptr || !hub->running())
        return Error(ErrorKind::Unavailable, "The console of VM \"" + name + "\" is not connected",
                     "Try again in a moment; the vmrd log says why the serial socket cannot be reached");
    return hub;
}

struct ConsoleRequest {
    std::string name;
    console::Mode mode = console::Mode::ReadWrite;
    size_t scrollback = 0;
};

Result<ConsoleRequest> consoleRequest(const rpc::Params& p)
{
    VMR_TRY(p.allowOnly({"name", "scrollback", "mode"}));
    ConsoleRequest req;
    VMR_TRY_ASSIGN(req.name, nameOf(p));
    auto scrollback = p.optInt("scrollback", 0, kMaxScrollbackParam);
    if (!scrollback) return std::move(scrollback).error();
    req.scrollback = static_cast<size_t>(scrollback->value_or(0));
    auto mode = p.optString("mode");
    if (!mode) return std::move(mode).error();
    if (*mode) {
        auto parsed = console::parseMode(**mode);
        if (!parsed)
            return Error(ErrorKind::InvalidParams,
                         "Parameter `mode` must be \"rw\" or \"ro\", not \"" + **mode + "\"",
                         parsed.error().hint());
        req.mode = *parsed;
    }
    return req;
}

// Typing into a console changes the VM: read-only connections watch (docs/security.md).
Result<void> checkRole(const ConsoleRequest& req, const rpc::Peer& peer)
{
    if (req.mode == console::Mode::ReadWrite && peer.role != rpc::Role::Admin)
        return Error(ErrorKind::PermissionDenied,
                     "This connection is read-only: it may watch the console of VM \"" + req.name +
                         "\" but not type into it",
                     "Attach read-only: vmrctl console " + req.name + " --ro");
    return success();
}

// Checks everything before the reply: after it the connection is no longer JSON-RPC.
Task<Result<std::string>> consoleMethod(vm::Manager& m, console::Registry& hubs, rpc::Peer peer,
                                        rpc::Params p)
{
    auto req = consoleRequest(p);
    if (!req) co_return std::move(req).error();
    if (auto allowed = checkRole(*req, peer); !allowed) co_return std::move(allowed).error();
    auto hub = liveHub(m, hubs, req->name);
    if (!hub) co_return std::move(hub).error();
    // The hand-over follows in the same loop turn, so this is what will be replayed.
    size_t replay =
        std::min({req->scrollback, (*hub)->scrollback().bytes(), (*hub)->scrollback().capacity()});
    json::Writer w;
    w.beginObject()
        .field("vm", req->name)
        .field("mode", std::string(console::modeName(req->mode)))
        .field("scrollback", static_cast<uint64_t>(replay))
        .field("detach", std::string("Ctrl-]"))
        .endObject();
    co_return w.take();
}

void attachViewer(vm::Manager& m, console::Registry& hubs, const rpc::Params& p, rpc::Handover h)
{
    auto req = consoleRequest(p);
    auto hub = req ? liveHub(m, hubs, req->name) : Result<console::Hub*>(req.error());
    if (hub && !checkRole(*req, h.peer)) hub = Error(ErrorKind::PermissionDenied, "read-only");
    if (!hub) {
        h.stream->close();  // cannot happen within one loop turn; never leave it open unowned
        return;
    }
    console::AttachOptions o;
    o.mode = req->mode;
    o.scrollback = req->scrollback;
    o.label = "uid " + std::to_string(h.peer.uid) + " pid " + std::to_string(h.peer.pid);
    o.pendingInput = std::move(h.pending);
    (*hub)->attach(std::move(h.stream), std::move(o));
}

Result<std::string> logMethod(vm::Manager& m, const rpc::Params& p)
{
    VMR_TRY(p.allowOnly({"name", "console", "provision", "tail"}));
    VMR_TRY_ASSIGN(std::string name, nameOf(p));
    VMR_TRY_ASSIGN(const store::VmRecord* r, m.get(name));
    auto wantConsole = p.optBool("console");
    if (!wantConsole) return std::move(wantConsole).error();
    auto wantProvision = p.optBool("provision");
    if (!wantProvision) return std::move(wantProvision).error();
    bool neither = !wantConsole->value_or(false) && !wantProvision->value_or(false);
    auto tail = p.optInt("tail", 0, 1000000);
    if (!tail) return std::move(tail).error();
    uint64_t lines = static_cast<uint64_t>(tail->value_or(0));

    auto paths = m.pathsOf(*r);
    json::Writer w;
    w.beginObject().field("vm", name).field("state", model::wordOf(r->runtime.state));
    if (neither || wantConsole->value_or(false)) {
        auto text = tailFile(paths.runtime.consoleLog, lines, kMaxLogBytes);
        if (!text) return std::move(text).error();
        w.field("console", *text);
    }
    if (neither || wantProvision->value_or(false)) {
        auto text = tailFile(paths.workDir + "/provision.log", lines, kMaxLogBytes);
        if (!text) return std::move(text).error();
        w.field("provision", *text);
    }
    w.endObject();
    return w.take();
}

}  // namespace

Result<std::string> tailFile(const std::string& path, uint64_t lines, uint64_t maxBytes)
{
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT) return std::string();
        return Error::fromErrno(errno, "Cannot open " + path);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) < 0) return Error::fromErrno(errno, "Cannot read the size of " + path);
    uint64_t size = static_cast<uint64_t>(st.st_size);
    uint64_t from = size > maxBytes ? size - maxBytes : 0;
    std::string text(static_cast<size_t>(size - from), '\0');
    size_t got = 0;
    while (got < text.size()) {
        ssize_t n = ::pread(fd.get(), text.data() + got, text.size() - got, static_cast<off_t>(from + got));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Error::fromErrno(errno, "Cannot read " + path);
        if (n == 0) break;  // shrank meanwhile (rotated)
        got += static_cast<size_t>(n);
    }
    text.resize(got);
    if (lines == 0) return text;
    // Count back `lines` line ends; a last line without '\n' counts as one.
    size_t pos = text.size();
    if (pos > 0 && text[pos - 1] == '\n') --pos;
    for (uint64_t seen = 0; pos > 0; --pos) {
        if (text[pos - 1] == '\n' && ++seen == lines) break;
    }
    return text.substr(pos);
}

void registerConsoleActions(rpc::Server& server, Services& s)
{
    vm::Manager* m = &s.manager;
    console::Registry* reg = &s.hubs;
    rpc::Method consoleM;
    consoleM.async = [m, reg](rpc::Peer peer, rpc::Params p) {
        return consoleMethod(*m, *reg, std::move(peer), std::move(p));
    };
    consoleM.takeOver = [m, reg](const rpc::Params& p, rpc::Handover h) {
        attachViewer(*m, *reg, p, std::move(h));
    };
    server.addMethod("vm.console", std::move(consoleM));
    server.addMethod("vm.log", rpc::Method{.sync = [m](const rpc::Call& call) -> Result<std::string> {
                         return logMethod(*m, call.params);
                     }});
}

}  // namespace vmr::api
