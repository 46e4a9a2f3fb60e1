#include "rpc/json_walk.h"

#include <string>

namespace vmr::rpc::json_walk {

namespace {

bool isDigit(char c)
{
    return c >= '0' && c <= '9';
}

}  // namespace

std::string_view trim(std::string_view s)
{
    auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    while (!s.empty() && ws(s.front())) s.remove_prefix(1);
    while (!s.empty() && ws(s.back())) s.remove_suffix(1);
    return s;
}

bool isJsonNumber(std::string_view s)
{
    size_t i = 0;
    auto digits = [&]() {
        size_t start = i;
        while (i < s.size() && isDigit(s[i])) ++i;
        return i > start;
    };
    if (i < s.size() && s[i] == '-') ++i;
    if (i < s.size() && s[i] == '0') {
        ++i;
    } else if (!digits()) {
        return false;
    }
    if (i < s.size() && s[i] == '.') {
        ++i;
        if (!digits()) return false;
    }
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
        if (!digits()) return false;
    }
    return i == s.size();
}

JsonType toJsonType(od::json_type t)
{
    switch (t) {
        case od::json_type::array: return JsonType::Array;
        case od::json_type::object: return JsonType::Object;
        case od::json_type::number: return JsonType::Number;
        case od::json_type::string: return JsonType::String;
        case od::json_type::boolean: return JsonType::Boolean;
        case od::json_type::null: break;
    }
    return JsonType::Null;
}

sj::error_code walk(od::value& v, int depth)
{
    if (depth > kMaxDepth) return sj::DEPTH_ERROR;
    od::json_type t;
    if (auto e = v.type().get(t)) return e;
    switch (t) {
        case od::json_type::object:
            return forEachMember(
                v, [&](std::string_view, od::value& val, od::json_type) { return walk(val, depth + 1); });
        case od::json_type::array:
            return forEachElement(v, [&](od::value& el, od::json_type) { return walk(el, depth + 1); });
        case od::json_type::number:
            return isJsonNumber(trim(v.raw_json_token())) ? sj::SUCCESS : sj::NUMBER_ERROR;
        case od::json_type::string: {
            std::string_view s;
            return v.get_string().get(s);
        }
        case od::json_type::boolean: {
            bool b = false;
            return v.get_bool().get(b);
        }
        case od::json_type::null: {
            bool n = false;
            if (auto e = v.is_null().get(n)) return e;
            return n ? sj::SUCCESS : sj::N_ATOM_ERROR;
        }
    }
    return sj::INCORRECT_TYPE;
}

sj::error_code walkSpan(od::document& doc, od::value& v, int depth, JsonType& type, std::string_view& out)
{
    od::json_type t;
    if (auto e = v.type().get(t)) return e;
    type = toJsonType(t);
    std::string_view token = v.raw_json_token();
    if (auto e = walk(v, depth)) return e;
    if (t == od::json_type::object || t == od::json_type::array) {
        // The value is consumed: the iterator stands on the token after it (there is always
        // one: the closing bracket of the wrapper the parser adds around every input).
        const char* end = nullptr;
        if (auto e = doc.current_location().get(end)) return e;
        out = trim(std::string_view(token.data(), static_cast<size_t>(end - token.data())));
    } else {
        out = trim(token);
    }
    return sj::SUCCESS;
}

Error jsonError(sj::error_code e)
{
    std::string why = e == sj::DEPTH_ERROR
                          ? "JSON nested deeper than " + std::to_string(kMaxDepth) + " levels"
                          : std::string(sj::error_message(e));
    return Error(ErrorKind::ParseError, "Invalid JSON")
        .causedBy(Error(ErrorKind::ParseError, std::move(why)));
}

}  // namespace vmr::rpc::json_walk
