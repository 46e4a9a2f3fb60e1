#pragma once

// Typed access to a request's params, with errors that name the parameter (InvalidParams,
// -32602). Params own their data and are cheap to move; handlers receive them by reference.

#include "base/result.h"
#include "rpc/protocol.h"

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmr::rpc {

class Params {
public:
    Params() = default;

    // "" or "{}" give empty params. An array is refused unless allowArray (positional params,
    // read through fields()). A member given twice: the last one wins.
    static Result<Params> parse(std::string_view paramsJson, bool allowArray = false);

    // A null value counts as absent for the opt* accessors.
    Result<std::string> string(std::string_view name) const;  // required
    Result<std::optional<std::string>> optString(std::string_view name) const;
    Result<int64_t> integer(std::string_view name, int64_t min, int64_t max) const;  // required
    Result<std::optional<int64_t>> optInt(std::string_view name, int64_t min, int64_t max) const;
    Result<std::optional<bool>> optBool(std::string_view name) const;
    // The raw JSON of any value (objects and arrays included).
    Result<std::optional<std::string>> optRaw(std::string_view name) const;

    // An unknown parameter is an error naming it, with "did you mean" when one is close.
    Result<void> allowOnly(std::initializer_list<std::string_view> names) const;

    bool has(std::string_view name) const;  // present (null included)
    // The params as one JSON object again (duplicates resolved), for decoders that take JSON.
    std::string json() const;
    bool empty() const noexcept { return fields_.empty(); }
    bool isArray() const noexcept { return array_; }
    const std::vector<JsonField>& fields() const noexcept { return fields_; }

private:
    const JsonField* find(std::string_view name) const;

    std::vector<JsonField> fields_;  // in the order sent, duplicates removed
    bool array_ = false;
};

}  // namespace vmr::rpc
