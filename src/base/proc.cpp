#include "base/proc.h"

#include "base/files.h"

#include <charconv>
#include <string>

namespace vmr {

Result<uint64_t> parseStatStartTime(std::string_view text)
{
    auto bad = [](std::string_view why) {
        return Error(ErrorKind::ParseError, "Cannot parse /proc/<pid>/stat: " + std::string(why));
    };
    auto close = text.rfind(')');
    if (close == std::string_view::npos || text.find('(') == std::string_view::npos || text.find('(') > close)
        return bad("no command name in parentheses");
    std::string_view rest = text.substr(close + 1);
    // Fields after comm start at 3 (state); starttime is field 22.
    constexpr int kStartTimeField = 22;
    int field = 2;
    size_t i = 0;
    while (i < rest.size()) {
        while (i < rest.size() && rest[i] == ' ') ++i;
        if (i >= rest.size()) break;
        size_t end = rest.find(' ', i);
        if (end == std::string_view::npos) end = rest.size();
        std::string_view word = rest.substr(i, end - i);
        if (!word.empty() && word.back() == '\n') word.remove_suffix(1);
        if (++field == kStartTimeField) {
            uint64_t v = 0;
            auto r = std::from_chars(word.data(), word.data() + word.size(), v);
            if (word.empty() || r.ec != std::errc() || r.ptr != word.data() + word.size())
                return bad("field 22 is not a number");
            return v;
        }
        i = end;
    }
    return bad("fewer than 22 fields");
}

Result<uint64_t> processStartTime(pid_t pid)
{
    if (pid <= 0) return Error(ErrorKind::InvalidArgument, "Invalid pid " + std::to_string(pid));
    auto text = readFile("/proc/" + std::to_string(pid) + "/stat", 64 * 1024);
    if (!text) return std::move(text).error();
    return parseStatStartTime(*text);
}

char parseStatState(std::string_view text)
{
    auto close = text.rfind(')');
    if (close == std::string_view::npos || close + 2 >= text.size()) return '?';
    return text[close + 2];
}

bool isZombie(pid_t pid)
{
    if (pid <= 0) return false;
    auto text = readFile("/proc/" + std::to_string(pid) + "/stat", 64 * 1024);
    return text && (parseStatState(*text) == 'Z' || parseStatState(*text) == 'X');
}

}  // namespace vmr
