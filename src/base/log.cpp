#include "base/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <map>

namespace vmr::log {

namespace {

struct Registry {
    std::shared_ptr<spdlog::sinks::sink> sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    std::map<std::string, std::shared_ptr<spdlog::logger>, std::less<>> loggers;
    spdlog::level::level_enum level = spdlog::level::info;
    int verbose = 0;
};

Registry& registry()
{
    static Registry r;
    return r;
}

}  // namespace

spdlog::logger& get(std::string_view module)
{
    auto& r = registry();
    auto it = r.loggers.find(module);
    if (it != r.loggers.end()) return *it->second;
    auto logger = std::make_shared<spdlog::logger>(std::string(module), r.sink);
    logger->set_level(r.level);
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
    auto& ref = *logger;
    r.loggers.emplace(std::string(module), std::move(logger));
    return ref;
}

void setVerbosity(int verbose)
{
    auto& r = registry();
    r.verbose = verbose;
    r.level = verbose <= 0 ? spdlog::level::info : verbose == 1 ? spdlog::level::debug : spdlog::level::trace;
    for (auto& [name, logger] : r.loggers) logger->set_level(r.level);
}

int verbosity()
{
    return registry().verbose;
}

std::string shellQuote(std::string_view word)
{
    if (word.empty()) return "''";
    bool plain = true;
    for (char c : word) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  std::string_view("@%_-+=:,./").find(c) != std::string_view::npos;
        if (!ok) {
            plain = false;
            break;
        }
    }
    if (plain) return std::string(word);
    std::string out = "'";
    for (char c : word) {
        if (c == '\'')
            out += "'\\''";
        else
            out += c;
    }
    out += '\'';
    return out;
}

void command(std::string_view module, std::span<const std::string> argv)
{
    if (registry().verbose < 2) return;
    std::string line;
    for (const auto& a : argv) {
        if (!line.empty()) line += ' ';
        line += shellQuote(a);
    }
    get(module).trace("exec: {}", line);
}

}  // namespace vmr::log
