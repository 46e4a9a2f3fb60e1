#include "rpc/params.h"

#include "base/json.h"
#include "base/suggest.h"

#include <algorithm>
#include <charconv>
#include <numeric>

namespace vmr::rpc {

namespace {

Error invalid(std::string message, std::string hint = {})
{
    return Error(ErrorKind::InvalidParams, std::move(message), std::move(hint));
}

std::string quoted(std::string_view name)
{
    std::string s = "`";
    s += name;
    s += '`';
    return s;
}

Error missing(std::string_view name)
{
    return invalid("Missing parameter " + quoted(name));
}

Error wrongType(std::string_view name, std::string_view expected, JsonType got)
{
    return invalid("Parameter " + quoted(name) + " must be " + std::string(expected) + ", not " +
                   std::string(jsonTypeName(got)));
}

}  // namespace

Result<Params> Params::parse(std::string_view paramsJson, bool allowArray)
{
    Params p;
    if (paramsJson.empty()) return p;
    thread_local Parser parser;
    bool isArray = false;
    auto fields = parser.split(paramsJson, true, &isArray);
    if (!fields) {
        if (fields.error().kind() == ErrorKind::ParseError)
            return invalid("The params are not valid JSON").causedBy(std::move(fields).error());
        return invalid("The params must be a JSON object");
    }
    if (isArray && !allowArray)
        return invalid("This method takes named params (a JSON object), not an array",
                       "Send \"params\": {\"name\": value, ...}");
    p.array_ = isArray;
    p.fields_ = std::move(*fields);
    if (!isArray && p.fields_.size() > 1) {
        // The last of duplicate members wins; keep the order of first appearance otherwise.
        std::vector<size_t> order(p.fields_.size());
        std::iota(order.begin(), order.end(), size_t{0});
        std::stable_sort(order.begin(), order.end(),
                         [&](size_t x, size_t y) { return p.fields_[x].name < p.fields_[y].name; });
        std::vector<bool> drop(p.fields_.size(), false);
        bool any = false;
        for (size_t k = 0; k + 1 < order.size(); ++k) {
            if (p.fields_[order[k]].name != p.fields_[order[k + 1]].name) continue;
            // Same name: move the later value into the earlier slot, drop the later slot.
            p.fields_[order[k]] = std::move(p.fields_[order[k + 1]]);
            drop[order[k + 1]] = true;
            order[k + 1] = order[k];
            any = true;
        }
        if (any) {
            size_t out = 0;
            for (size_t i = 0; i < p.fields_.size(); ++i) {
                if (drop[i]) continue;
                if (out != i) p.fields_[out] = std::move(p.fields_[i]);
                ++out;
            }
            p.fields_.resize(out);
        }
    }
    return p;
}

const JsonField* Params::find(std::string_view name) const
{
    if (array_) return nullptr;
    for (const auto& f : fields_) {
        if (f.name == name) return &f;
    }
    return nullptr;
}

bool Params::has(std::string_view name) const
{
    return find(name) != nullptr;
}

std::string Params::json() const
{
    json::Writer w;
    if (array_) {
        w.beginArray();
        for (const auto& f : fields_) w.raw(f.raw);
        w.endArray();
    } else {
        w.beginObject();
        for (const auto& f : fields_) w.key(f.name).raw(f.raw);
        w.endObject();
    }
    return w.take();
}

Result<std::string> Params::string(std::string_view name) const
{
    const JsonField* f = find(name);
    if (f == nullptr) return missing(name);
    if (f->type != JsonType::String) return wrongType(name, "a string", f->type);
    return f->text;
}

Result<std::optional<std::string>> Params::optString(std::string_view name) const
{
    const JsonField* f = find(name);
    if (f == nullptr || f->type == JsonType::Null) return std::optional<std::string>();
    if (f->type != JsonType::String) return wrongType(name, "a string", f->type);
    return std::optional<std::string>(f->text);
}

Result<int64_t> Params::integer(std::string_view name, int64_t min, int64_t max) const
{
    auto v = optInt(name, min, max);
    if (!v) return std::move(v).error();
    if (!*v) return missing(name);
    return **v;
}

Result<std::optional<int64_t>> Params::optInt(std::string_view name, int64_t min, int64_t max) const
{
    const JsonField* f = find(name);
    if (f == nullptr || f->type == JsonType::Null) return std::optional<int64_t>();
    if (f->type != JsonType::Number) return wrongType(name, "an integer", f->type);
    auto range = [&]() {
        return invalid("Parameter " + quoted(name) + " must be between " + std::to_string(min) + " and " +
                       std::to_string(max));
    };
    int64_t v = 0;
    const char* end = f->raw.data() + f->raw.size();
    auto [ptr, ec] = std::from_chars(f->raw.data(), end, v);
    if (ptr != end) {
        // A fraction or exponent: not an integer (1.0 and 1e3 are refused too: be exact).
        if (f->raw.find_first_of(".eE") != std::string::npos)
            return invalid("Parameter " + quoted(name) + " must be an integer, not " + f->raw);
        return range();
    }
    if (ec == std::errc::result_out_of_range || v < min || v > max) return range();
    return std::optional<int64_t>(v);
}

Result<std::optional<bool>> Params::optBool(std::string_view name) const
{
    const JsonField* f = find(name);
    if (f == nullptr || f->type == JsonType::Null) return std::optional<bool>();
    if (f->type != JsonType::Boolean) return wrongType(name, "true or false", f->type);
    return std::optional<bool>(f->text == "true");
}

Result<std::optional<std::string>> Params::optRaw(std::string_view name) const
{
    const JsonField* f = find(name);
    if (f == nullptr) return std::optional<std::string>();
    return std::optional<std::string>(f->raw);
}

Result<void> Params::allowOnly(std::initializer_list<std::string_view> names) const
{
    if (array_) return success();
    for (const auto& f : fields_) {
        if (std::find(names.begin(), names.end(), f.name) != names.end()) continue;
        Error err = invalid("Unknown parameter " + quoted(f.name));
        std::optional<std::string> best =
            closestMatch(f.name, std::span<const std::string_view>(names.begin(), names.size()));
        if (best) {
            err.withHint("Did you mean " + quoted(*best) + "?");
        } else if (names.size() == 0) {
            err.withHint("This method takes no parameters");
        } else {
            std::string known;
            for (std::string_view n : names) {
                if (!known.empty()) known += ", ";
                known += n;
            }
            err.withHint("Known parameters: " + known);
        }
        return err;
    }
    return success();
}

}  // namespace vmr::rpc
