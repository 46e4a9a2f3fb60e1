#pragma once

// Internal to src/rpc: reading a JSON text completely with simdjson On-Demand. On-Demand
// checks only what is read, and a line with invalid JSON anywhere is one Parse error, so
// these helpers read (walk) every value they pass over, and give raw spans of the input
// where the protocol keeps JSON as text (params, result).

#include "base/error.h"
#include "rpc/protocol.h"

#include <simdjson.h>

#include <string_view>
#include <utility>

namespace vmr::rpc::json_walk {

namespace sj = simdjson;
namespace od = simdjson::ondemand;

// Without JSON whitespace at either end.
std::string_view trim(std::string_view s);

// The JSON number grammar (RFC 8259, section 6). simdjson refuses numbers it cannot
// represent (huge integers, 1e400) although they are valid JSON; they pass here and are
// echoed as sent.
bool isJsonNumber(std::string_view s);

JsonType toJsonType(od::json_type t);

// Validate one value completely, `depth` levels down (kMaxDepth at most).
sj::error_code walk(od::value& v, int depth);

// Validate a value and give its type and raw text (a view into the parser's input buffer).
sj::error_code walkSpan(od::document& doc, od::value& v, int depth, JsonType& type, std::string_view& out);

// The Parse error for a simdjson error.
Error jsonError(sj::error_code e);

// fn(key, value, type) for each member of the object `v`, in order; stops at the first error.
template <typename Fn>
sj::error_code forEachMember(od::value& v, Fn&& fn)
{
    od::object o;
    if (auto e = v.get_object().get(o)) return e;
    for (auto f : o) {
        od::field fld;
        if (auto e = std::move(f).get(fld)) return e;
        std::string_view key;
        if (auto e = fld.unescaped_key().get(key)) return e;
        od::value& val = fld.value();
        od::json_type t;
        if (auto e = val.type().get(t)) return e;
        if (auto e = fn(key, val, t)) return e;
    }
    return sj::SUCCESS;
}

// fn(value, type) for each element of the array `v`, in order; stops at the first error.
template <typename Fn>
sj::error_code forEachElement(od::value& v, Fn&& fn)
{
    od::array a;
    if (auto e = v.get_array().get(a)) return e;
    for (auto el : a) {
        od::value ev;
        if (auto e = el.get(ev)) return e;
        od::json_type t;
        if (auto e = ev.type().get(t)) return e;
        if (auto e = fn(ev, t)) return e;
    }
    return sj::SUCCESS;
}

}  // namespace vmr::rpc::json_walk
