#include "store/names.h"

#include "base/json.h"

namespace vmr::store {

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

}  // namespace vmr::store
