#include "model/json_read.h"

#include "base/json.h"

namespace vmr::model::jsonread {

using simdjson::dom::element;
using simdjson::dom::element_type;

std::string describe(const element& e)
{
    switch (e.type()) {
        case element_type::ARRAY: return "an array";
        case element_type::OBJECT: return "an object";
        case element_type::INT64: return std::to_string(int64_t(e.get_int64().value_unsafe()));
        case element_type::UINT64: return std::to_string(uint64_t(e.get_uint64().value_unsafe()));
        case element_type::DOUBLE: return "a fractional number";
        case element_type::STRING: return json::quote(std::string_view(e.get_string().value_unsafe()));
        case element_type::BOOL: return "a boolean";
        case element_type::NULL_VALUE: return "null";
    }
    return "an unknown value";
}

Error memberError(ErrorKind kind, std::string_view key, std::string_view problem, std::string hint)
{
    std::string who = kind == ErrorKind::StoreCorrupt ? "Field " + json::quote(key)
                                                      : "Parameter `" + std::string(key) + "`";
    return Error(kind, who + " " + std::string(problem), std::move(hint));
}

Result<std::string> string(ErrorKind kind, std::string_view key, const element& e)
{
    std::string_view s;
    if (e.get_string().get(s) != simdjson::SUCCESS)
        return memberError(kind, key, "must be a string, not " + describe(e));
    if (s.find('\0') != std::string_view::npos)
        return memberError(kind, key, "must not contain a NUL character");
    return std::string(s);
}

Result<std::string> nullableString(ErrorKind kind, std::string_view key, const element& e)
{
    if (e.is_null()) return std::string();
    return string(kind, key, e);
}

Result<int64_t> integer(ErrorKind kind, std::string_view key, const element& e)
{
    if (e.type() == element_type::INT64) return int64_t(e.get_int64().value_unsafe());
    if (e.type() == element_type::UINT64) {
        uint64_t v = e.get_uint64().value_unsafe();
        if (v <= uint64_t(INT64_MAX)) return static_cast<int64_t>(v);
        return INT64_MAX;  // out of every range: the range check names it
    }
    return memberError(kind, key, "must be an integer, not " + describe(e));
}

Result<uint64_t> unsignedInt(ErrorKind kind, std::string_view key, const element& e, uint64_t min,
                             uint64_t max)
{
    uint64_t v = 0;
    bool ok = false;
    if (e.type() == element_type::UINT64) {
        v = e.get_uint64().value_unsafe();
        ok = true;
    } else if (e.type() == element_type::INT64) {
        int64_t i = e.get_int64().value_unsafe();
        ok = i >= 0;
        v = static_cast<uint64_t>(i);
    }
    if (!ok || v < min || v > max)
        return memberError(kind, key,
                           "must be an integer from " + std::to_string(min) + " to " + std::to_string(max) +
                               ", not " + describe(e));
    return v;
}

Result<bool> boolean(ErrorKind kind, std::string_view key, const element& e)
{
    bool b = false;
    if (e.get_bool().get(b) != simdjson::SUCCESS)
        return memberError(kind, key, "must be true or false, not " + describe(e));
    return b;
}

Result<simdjson::dom::object> object(simdjson::dom::parser& parser, const simdjson::padded_string& json,
                                     ErrorKind kind, std::string_view what)
{
    element root;
    if (auto err = parser.parse(json).get(root); err != simdjson::SUCCESS)
        return Error(kind, std::string(what) + " is not valid JSON: " + simdjson::error_message(err));
    simdjson::dom::object obj;
    if (root.get_object().get(obj) != simdjson::SUCCESS)
        return Error(kind, std::string(what) + " must be a JSON object, not " + describe(root));
    return obj;
}

}  // namespace vmr::model::jsonread
