#pragma once

// vmrctl console NAME [--ro] [--scrollback N]   and   vmrctl log NAME [--console] [--provision]
// [--tail N] [-f]. The console is the VM's serial console through vmrd's hub (vm.console): raw
// bytes both ways after the reply. See docs/console.md.

#include "base/result.h"
#include "client.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vmr::ctl {

inline constexpr char kDetachByte = 0x1d;  // Ctrl-]
inline constexpr uint64_t kDefaultConsoleScrollback = 4096;

struct ConsoleArgs {
    std::string name;
    bool readOnly = false;
    uint64_t scrollback = kDefaultConsoleScrollback;
};

struct LogArgs {
    std::string name;
    bool console = false;  // neither flag: both logs
    bool provision = false;
    std::optional<uint64_t> tail;  // lines
    bool follow = false;
};

// args[0] is the command. A usage problem is ErrorKind::InvalidArgument with the message to
// print; the caller exits 2.
Result<ConsoleArgs> parseConsoleArgs(const std::vector<std::string>& args);
Result<LogArgs> parseLogArgs(const std::vector<std::string>& args);

// The params of vm.console / vm.log for these arguments (JSON objects).
std::string consoleParams(const ConsoleArgs& a);
std::string logParams(const LogArgs& a);

// Attach to the console through the daemon at socketPath; returns the exit status, or the
// daemon's (or the connection's) error for the caller to report. The terminal, when stdin is one,
// is in raw mode only while attached and is restored on every way out (SIGINT, SIGTERM and
// SIGHUP included).
Result<int> runConsole(const std::string& socketPath, const ConsoleArgs& a);

// Print the logs (with a header each when both are shown); with follow, then the live console.
Result<int> runLog(Client& client, const LogArgs& a);

}  // namespace vmr::ctl
