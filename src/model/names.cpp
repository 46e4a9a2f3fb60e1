#include "model/names.h"

#include "base/json.h"

namespace vmr::model {

namespace {

bool isAlnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// Long garbage is cut so that one bad request cannot flood a log line.
constexpr size_t kShownBytes = 80;

}  // namespace

Result<void> validateVmName(std::string_view name)
{
    const char* problem = nullptr;
    if (name.empty()) {
        problem = "it is empty";
    } else if (name.size() > kMaxVmNameLength) {
        problem = "it is longer than 63 characters";
    } else if (!isAlnum(name.front())) {
        problem = "it must start with a letter or a digit";
    } else {
        for (char c : name) {
            if (!isAlnum(c) && c != '.' && c != '_' && c != '-') {
                problem = "it may contain only letters, digits, '.', '_' and '-'";
                break;
            }
        }
    }
    if (!problem) return success();
    std::string shown =
        name.size() > kShownBytes ? json::quote(name.substr(0, kShownBytes)) + "..." : json::quote(name);
    return Error(ErrorKind::InvalidName, "Invalid VM name " + shown + ": " + problem,
                 "A VM name is 1 to 63 characters from A-Z a-z 0-9 . _ - and starts with a letter or digit "
                 "([A-Za-z0-9][A-Za-z0-9._-]{0,62})");
}

bool isValidHostname(std::string_view h)
{
    if (h.empty() || h.size() > 253) return false;
    size_t start = 0;
    for (;;) {
        size_t dot = h.find('.', start);
        std::string_view label = h.substr(start, dot == std::string_view::npos ? h.npos : dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
        for (char c : label)
            if (!isAlnum(c) && c != '-') return false;
        if (dot == std::string_view::npos) return true;
        start = dot + 1;
    }
}

bool isValidInterfaceName(std::string_view name)
{
    if (name.empty() || name.size() > kMaxInterfaceNameLength || name == "." || name == "..") return false;
    for (char c : name)
        if (c == '/' || c == ':' || static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
    return true;
}

bool isSha256Hex(std::string_view s)
{
    if (s.size() != 64) return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
    return true;
}

bool isValidUserName(std::string_view name)
{
    if (name.empty() || name.size() > 32) return false;
    if (!((name[0] >= 'a' && name[0] <= 'z') || name[0] == '_')) return false;
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
    return true;
}

}  // namespace vmr::model
