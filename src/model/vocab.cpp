#include "model/vocab.h"

#include "base/json.h"
#include "base/suggest.h"

namespace vmr::model {

std::string joinWords(std::span<const std::string_view> names)
{
    std::string out;
    for (size_t i = 0; i < names.size(); ++i) {
        if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
        out += json::quote(names[i]);
    }
    return out;
}

namespace detail {

Error unknownWord(std::string_view what, std::string_view text, std::span<const std::string_view> names)
{
    std::string hint = "Use " + joinWords(names);
    if (auto m = closestMatch(text, names)) hint = "Did you mean " + json::quote(*m) + "?";
    return Error(ErrorKind::InvalidArgument,
                 "Unknown " + std::string(what) + " " + json::quote(text) + "; expected " + joinWords(names),
                 std::move(hint));
}

}  // namespace detail

}  // namespace vmr::model
