#include "console_commands.h"

#include "base/json.h"
#include "rpc/params.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

namespace vmr::ctl {

namespace {

Error usage(std::string message)
{
    return Error(ErrorKind::InvalidArgument, std::move(message));
}

Result<uint64_t> number(const std::string& option, const std::string& value)
{
    if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos || value.size() > 12)
        return usage(option + " needs a whole number, not `" + value + "`");
    return std::stoull(value);
}

// --opt VALUE or --opt=VALUE at args[i]; advances i past a separate value.
std::optional<Result<std::string>> optionValue(const std::vector<std::string>& args, size_t& i,
                                               const std::string& opt)
{
    const std::string& a = args[i];
    if (a.rfind(opt + "=", 0) == 0) return Result<std::string>(a.substr(opt.size() + 1));
    if (a != opt) return std::nullopt;
    if (i + 1 >= args.size()) return Result<std::string>(usage(opt + " needs a value"));
    return Result<std::string>(args[++i]);
}

Result<void> setName(std::string& name, const std::string& arg, const std::string& command)
{
    if (!arg.empty() && arg[0] == '-') return usage(command + ": unknown option `" + arg + "`");
    if (!name.empty()) return usage(command + ": unexpected argument `" + arg + "` (one VM name only)");
    name = arg;
    return success();
}

// ---- the raw connection -----------------------------------------------------------------

// The terminal in raw mode while this lives (when stdin is a terminal).
class RawTerminal {
public:
    RawTerminal() = default;
    RawTerminal(const RawTerminal&) = delete;
    RawTerminal& operator=(const RawTerminal&) = delete;
    ~RawTerminal() { restore(); }

    bool enter(int fd)
    {
        if (::tcgetattr(fd, &saved_) < 0) return false;
        termios raw = saved_;
        ::cfmakeraw(&raw);
        if (::tcsetattr(fd, TCSANOW, &raw) < 0) return false;
        fd_ = fd;
        return true;
    }
    void restore()
    {
        if (fd_ >= 0) ::tcsetattr(fd_, TCSANOW, &saved_);
        fd_ = -1;
    }

private:
    int fd_ = -1;
    termios saved_{};
};

// SIGINT, SIGTERM, SIGHUP and SIGQUIT arrive through a signalfd while this lives, so that every
// one of them leaves through the ordinary return path (which restores the terminal).
class SignalCatcher {
public:
    SignalCatcher()
    {
        sigemptyset(&set_);
        for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&set_, s);
        ::sigprocmask(SIG_BLOCK, &set_, &old_);
        fd_ = UniqueFd(::signalfd(-1, &set_, SFD_CLOEXEC));
        ::signal(SIGPIPE, SIG_IGN);
    }
    SignalCatcher(const SignalCatcher&) = delete;
    SignalCatcher& operator=(const SignalCatcher&) = delete;
    ~SignalCatcher() { ::sigprocmask(SIG_SETMASK, &old_, nullptr); }
    int fd() const { return fd_.get(); }
    // The signal that arrived (0 if none could be read).
    int take()
    {
        signalfd_siginfo si{};
        if (::read(fd_.get(), &si, sizeof si) != static_cast<ssize_t>(sizeof si)) return 0;
        return static_cast<int>(si.ssi_signo);
    }

private:
    sigset_t set_{};
    sigset_t old_{};
    UniqueFd fd_;
};

Result<void> writeAll(int fd, const char* data, size_t n)
{
    while (n > 0) {
        ssize_t w = ::write(fd, data, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return Error::fromErrno(errno, "Cannot write");
        data += w;
        n -= static_cast<size_t>(w);
    }
    return success();
}

Result<void> sendAll(int fd, const char* data, size_t n)
{
    while (n > 0) {
        ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return Error::fromErrno(errno, "Cannot send to vmrd");
        data += w;
        n -= static_cast<size_t>(w);
    }
    return success();
}

struct Attached {
    UniqueFd fd;
    std::string early;   // console bytes that came with the reply
    std::string result;  // the reply's result (raw JSON)
};

// Connect, call vm.console, and return the connection once the success reply is read.
Result<Attached> attach(const std::string& socketPath, const std::string& params)
{
    auto client = Client::connect(socketPath, std::chrono::seconds(2));
    if (!client) return std::move(client).error();
    auto result = client->call("vm.console", params, std::chrono::seconds(30));
    if (!result) return std::move(result).error();
    auto stream = std::move(*client).release();
    Attached a;
    a.fd = std::move(stream.fd);
    a.early = std::move(stream.early);
    a.result = std::move(*result);
    return a;
}

struct RelayMode {
    bool input = false;     // read stdin at all
    bool terminal = false;  // stdin is a raw terminal: Ctrl-] detaches, EOF is not expected
    bool send = false;      // what is typed goes to the VM (rw)
};

// Copy the console to stdout and stdin to the console until the console ends, stdin ends (pipe),
// Ctrl-] (terminal), or a signal. Returns the exit status.
Result<int> relay(Attached& conn, RelayMode mode, SignalCatcher& signals, const std::string& name)
{
    VMR_TRY(writeAll(STDOUT_FILENO, conn.early.data(), conn.early.size()));
    bool stdinOpen = mode.input;
    char buf[65536];
    for (;;) {
        pollfd fds[3] = {{conn.fd.get(), POLLIN, 0}, {signals.fd(), POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
        int pr = ::poll(fds, stdinOpen ? 3 : 2, -1);
        if (pr < 0 && errno == EINTR) continue;
        if (pr < 0) return Error::fromErrno(errno, "poll");
        if (fds[1].revents != 0) {
            int sig = signals.take();
            if (sig != 0) return 128 + sig;
        }
        if (fds[0].revents != 0) {
            ssize_t n = ::recv(conn.fd.get(), buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                if (mode.terminal)
                    std::fprintf(stderr, "\r\n[vmrctl: the console of %s closed]\r\n", name.c_str());
                return 0;
            }
            if (auto w = writeAll(STDOUT_FILENO, buf, static_cast<size_t>(n)); !w)
                return errno == EPIPE ? Result<int>(0) : Result<int>(w.error());
        }
        if (stdinOpen && fds[2].revents != 0) {
            ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                // End of input: the stream ends once vmrd has flushed what it queued for us.
                stdinOpen = false;
                ::shutdown(conn.fd.get(), SHUT_WR);
                continue;
            }
            size_t len = static_cast<size_t>(n);
            const char* detach =
                mode.terminal ? static_cast<const char*>(std::memchr(buf, kDetachByte, len)) : nullptr;
            if (detach != nullptr) len = static_cast<size_t>(detach - buf);
            if (mode.send && len > 0) VMR_TRY(sendAll(conn.fd.get(), buf, len));
            if (detach != nullptr) {
                std::fprintf(stderr, "\r\n[vmrctl: detached from %s]\r\n", name.c_str());
                return 0;
            }
        }
    }
}

void printSection(const std::string& header, const std::string& text, bool withHeader)
{
    if (withHeader) std::printf("==> %s <==\n", header.c_str());
    std::fwrite(text.data(), 1, text.size(), stdout);
    if (!text.empty() && text.back() != '\n') std::fputc('\n', stdout);
}

}  // namespace

Result<ConsoleArgs> parseConsoleArgs(const std::vector<std::string>& args)
{
    ConsoleArgs a;
    for (size_t i = 1; i < args.size(); ++i) {
        if (args[i] == "--ro") {
            a.readOnly = true;
        } else if (auto v = optionValue(args, i, "--scrollback")) {
            if (!*v) return std::move(*v).error();
            auto n = number("--scrollback", **v);
            if (!n) return std::move(n).error();
            a.scrollback = *n;
        } else {
            VMR_TRY(setName(a.name, args[i], "console"));
        }
    }
    if (a.name.empty())
        return usage("console needs a VM name: vmrctl console NAME [--ro] [--scrollback BYTES]");
    return a;
}

Result<LogArgs> parseLogArgs(const std::vector<std::string>& args)
{
    LogArgs a;
    for (size_t i = 1; i < args.size(); ++i) {
        if (args[i] == "--console") {
            a.console = true;
        } else if (args[i] == "--provision") {
            a.provision = true;
        } else if (args[i] == "-f" || args[i] == "--follow") {
            a.follow = true;
        } else if (auto v = optionValue(args, i, "--tail")) {
            if (!*v) return std::move(*v).error();
            auto n = number("--tail", **v);
            if (!n) return std::move(n).error();
            a.tail = *n;
        } else {
            VMR_TRY(setName(a.name, args[i], "log"));
        }
    }
    if (a.name.empty())
        return usage("log needs a VM name: vmrctl log NAME [--console] [--provision] [--tail N] [-f]");
    if (a.follow && a.provision && !a.console)
        return usage("log: -f follows the console; the provision log cannot be followed (drop --provision)");
    return a;
}

std::string consoleParams(const ConsoleArgs& a)
{
    json::Writer w;
    w.beginObject()
        .field("name", a.name)
        .field("mode", std::string(a.readOnly ? "ro" : "rw"))
        .field("scrollback", a.scrollback)
        .endObject();
    return w.take();
}

std::string logParams(const LogArgs& a)
{
    json::Writer w;
    w.beginObject().field("name", a.name);
    if (a.console) w.field("console", true);
    if (a.provision) w.field("provision", true);
    if (a.tail) w.field("tail", *a.tail);
    w.endObject();
    return w.take();
}

Result<int> runConsole(const std::string& socketPath, const ConsoleArgs& a)
{
    SignalCatcher signals;  // before the terminal changes: no signal can skip the restore
    auto conn = attach(socketPath, consoleParams(a));
    if (!conn) return std::move(conn).error();
    RelayMode mode;
    mode.input = true;
    mode.send = !a.readOnly;
    RawTerminal term;
    if (::isatty(STDIN_FILENO)) {
        std::fprintf(stderr, "Connected to the console of %s (%s). Detach with Ctrl-].\n", a.name.c_str(),
                     a.readOnly ? "read-only" : "read-write");
        mode.terminal = term.enter(STDIN_FILENO);
    }
    return relay(*conn, mode, signals, a.name);
}

Result<int> runLog(Client& client, const LogArgs& a)
{
    auto res = client.call("vm.log", logParams(a));
    if (!res) return std::move(res).error();
    auto fields = rpc::Params::parse(*res);
    if (!fields) return Error(ErrorKind::ParseError, "vmrd sent a vm.log result vmrctl cannot read");
    bool both = a.console == a.provision;
    for (const char* which : {"provision", "console"}) {
        auto text = fields->optString(which);
        if (!text || !*text) continue;
        printSection(a.name + "/" + which + ".log", **text, both);
    }
    std::fflush(stdout);
    if (!a.follow) return 0;

    SignalCatcher signals;
    ConsoleArgs c;
    c.name = a.name;
    c.readOnly = true;
    c.scrollback = 0;
    auto conn = attach(client.path(), consoleParams(c));
    if (!conn) {
        if (conn.error().kind() != ErrorKind::VmBadState) return std::move(conn).error();
        std::fprintf(stderr, "vmrctl: %s; nothing to follow\n", conn.error().message().c_str());
        return 0;
    }
    return relay(*conn, RelayMode{}, signals, a.name);
}

}  // namespace vmr::ctl
