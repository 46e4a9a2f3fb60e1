#pragma once

// Reading model objects out of JSON (simdjson's DOM) with errors that name the member, in the
// words of where the JSON came from: "Parameter `vcpus` ..." in a request, "Field "vcpus" ..."
// in a record. Included by .cpp files only.

#include "base/result.h"

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vmr::model::jsonread {

// How a value reads in a message: a string is quoted, a number shown, the rest named.
std::string describe(const simdjson::dom::element& e);

// "Parameter `vcpus` must be ..." (requests) or "Field "vcpus" must be ..." (records).
Error memberError(ErrorKind kind, std::string_view key, std::string_view problem, std::string hint = {});

// Typed reads of one member; the problem in the error names the type that was wanted.
Result<std::string> string(ErrorKind kind, std::string_view key, const simdjson::dom::element& e);
Result<int64_t> integer(ErrorKind kind, std::string_view key, const simdjson::dom::element& e);
Result<uint64_t> unsignedInt(ErrorKind kind, std::string_view key, const simdjson::dom::element& e,
                             uint64_t min, uint64_t max);
Result<bool> boolean(ErrorKind kind, std::string_view key, const simdjson::dom::element& e);
// Null: an empty string.
Result<std::string> nullableString(ErrorKind kind, std::string_view key, const simdjson::dom::element& e);

// Parse `json` as one object.
Result<simdjson::dom::object> object(simdjson::dom::parser& parser, const simdjson::padded_string& json,
                                     ErrorKind kind, std::string_view what);

}  // namespace vmr::model::jsonread
