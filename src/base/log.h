#pragma once

// One spdlog logger per module (STYLE.md, practice 10). Levels are described in
// docs/logging.md. Lower layers log at debug at most; the manager logs once, at the top.

#include <spdlog/spdlog.h>

#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace vmr::log {

// The logger for a module ("reactor", "rpc", "store", "vmrd", ...), created on first use
// and sharing the process-wide sink and level.
spdlog::logger& get(std::string_view module);

// -v count → level: 0 info, 1 debug, 2+ trace (and external commands logged as shell lines).
void setVerbosity(int verbose);
int verbosity();

// Log an external command as a copy-pasteable shell line (at -vv and above).
void command(std::string_view module, std::span<const std::string> argv);

// Quote one word for a POSIX shell, only when it needs it.
std::string shellQuote(std::string_view word);

}  // namespace vmr::log
