#include "rpc/protocol.h"

#include "base/json.h"
#include "rpc/errors.h"

#include <simdjson.h>

#include <algorithm>
#include <cstring>

namespace vmr::rpc {

namespace sj = simdjson;
namespace od = simdjson::ondemand;

namespace {

constexpr std::string_view kJsonrpc = R"({"jsonrpc":"2.0")";

std::string_view trim(std::string_view s)
{
    auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    while (!s.empty() && ws(s.front())) s.remove_prefix(1);
    while (!s.empty() && ws(s.back())) s.remove_suffix(1);
    return s;
}

bool isDigit(char c)
{
    return c >= '0' && c <= '9';
}

// The JSON number grammar (RFC 8259, section 6). simdjson refuses numbers it cannot
// represent (huge integers, 1e400) although they are valid JSON; they pass here and are
// echoed as sent.
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

// Validate one value completely (ondemand only checks what is read, so read everything).
sj::error_code walk(od::value& v, int depth)
{
    if (depth > kMaxDepth) return sj::DEPTH_ERROR;
    od::json_type t;
    if (auto e = v.type().get(t)) return e;
    switch (t) {
        case od::json_type::object: {
            od::object o;
            if (auto e = v.get_object().get(o)) return e;
            for (auto f : o) {
                od::field fld;
                if (auto e = std::move(f).get(fld)) return e;
                std::string_view key;
                if (auto e = fld.unescaped_key().get(key)) return e;
                if (auto e = walk(fld.value(), depth + 1)) return e;
            }
            return sj::SUCCESS;
        }
        case od::json_type::array: {
            od::array a;
            if (auto e = v.get_array().get(a)) return e;
            for (auto el : a) {
                od::value ev;
                if (auto e = el.get(ev)) return e;
                if (auto e = walk(ev, depth + 1)) return e;
            }
            return sj::SUCCESS;
        }
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

// Validate a value and return its raw text (a view into the parser's input buffer).
sj::error_code walkSpan(od::document& doc, od::value& v, int depth, JsonType& type, std::string_view& out)
{
    od::json_type t;
    if (auto e = v.type().get(t)) return e;
    type = toJsonType(t);
    std::string_view token = v.raw_json_token();
    if (auto e = walk(v, depth)) return e;
    if (t == od::json_type::object || t == od::json_type::array) {
        // The value is consumed: the iterator stands on the token after it (there is always
        // one: the closing bracket of the wrapper added by Impl::load).
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

Error invalidRequest(std::string message)
{
    return Error(ErrorKind::InvalidRequest, std::move(message), defaultHint(ErrorKind::InvalidRequest));
}

// A member set zero, one or more times: the last occurrence decides.
enum class Member : uint8_t { Missing, Ok, Bad };

}  // namespace

Id Id::string(std::string_view s)
{
    return Id{json::quote(s)};
}

std::string_view jsonTypeName(JsonType t) noexcept
{
    switch (t) {
        case JsonType::Null: return "null";
        case JsonType::Boolean: return "a boolean";
        case JsonType::Number: return "a number";
        case JsonType::String: return "a string";
        case JsonType::Array: return "an array";
        case JsonType::Object: return "an object";
    }
    return "null";
}

struct Parser::Impl {
    od::parser parser;
    std::unique_ptr<char[]> buf;  // '[' + input + ']' + SIMDJSON_PADDING
    size_t capacity = 0;

    // Every input is parsed wrapped in [ ]: the root is then always an array, so values and
    // documents are handled alike, and the wrapper must hold exactly one element.
    sj::padded_string_view load(std::string_view text)
    {
        size_t len = text.size() + 2;
        if (capacity < len + sj::SIMDJSON_PADDING) {
            capacity = std::max<size_t>(len + sj::SIMDJSON_PADDING, 4096);
            buf = std::make_unique<char[]>(capacity);
        }
        buf[0] = '[';
        if (!text.empty()) std::memcpy(buf.get() + 1, text.data(), text.size());
        buf[len - 1] = ']';
        std::memset(buf.get() + len, 0, sj::SIMDJSON_PADDING);
        return sj::padded_string_view(buf.get(), len, capacity);
    }

    // Iterate the single value of `text`, calling fn(doc, value) for it; checks that nothing
    // follows it.
    template <typename Fn>
    sj::error_code one(std::string_view text, Fn&& fn)
    {
        od::document doc;
        if (auto e = parser.iterate(load(text)).get(doc)) return e;
        od::array wrapper;
        if (auto e = doc.get_array().get(wrapper)) return e;
        size_t n = 0;
        for (auto el : wrapper) {
            od::value v;
            if (auto e = el.get(v)) return e;
            if (++n > 1) return sj::TRAILING_CONTENT;
            if (auto e = fn(doc, v)) return e;
        }
        if (n == 0) return sj::EMPTY;
        const char* rest = nullptr;
        if (doc.current_location().get(rest) != sj::OUT_OF_BOUNDS) return sj::TRAILING_CONTENT;
        return sj::SUCCESS;
    }

    sj::error_code request(od::document& doc, od::value& v, Item& item);
    sj::error_code incoming(od::document& doc, od::value& v, Response& resp,
                            std::optional<Notification>& note, std::string& problem);
    sj::error_code errorObject(od::value& v, Response& resp, std::string& problem);
};

sj::error_code Parser::Impl::request(od::document& doc, od::value& v, Item& item)
{
    od::object o;
    if (auto e = v.get_object().get(o)) return e;
    Request req;
    req.id = Id::none();
    Member jsonrpc = Member::Missing, method = Member::Missing, params = Member::Missing,
           id = Member::Missing;
    std::string unknown;
    for (auto f : o) {
        od::field fld;
        if (auto e = std::move(f).get(fld)) return e;
        std::string_view key;
        if (auto e = fld.unescaped_key().get(key)) return e;
        od::value& val = fld.value();
        od::json_type t;
        if (auto e = val.type().get(t)) return e;
        if (key == "jsonrpc") {
            std::string_view s;
            if (t != od::json_type::string) {
                if (auto e = walk(val, 2)) return e;
                jsonrpc = Member::Bad;
            } else {
                if (auto e = val.get_string().get(s)) return e;
                jsonrpc = s == "2.0" ? Member::Ok : Member::Bad;
            }
        } else if (key == "method") {
            if (t != od::json_type::string) {
                if (auto e = walk(val, 2)) return e;
                method = Member::Bad;
            } else {
                std::string_view s;
                if (auto e = val.get_string().get(s)) return e;
                req.method.assign(s);
                method = Member::Ok;
            }
        } else if (key == "params") {
            JsonType pt;
            std::string_view raw;
            if (auto e = walkSpan(doc, val, 2, pt, raw)) return e;
            if (pt == JsonType::Object || pt == JsonType::Array) {
                req.params.assign(raw);
                params = Member::Ok;
            } else {
                req.params.clear();
                params = Member::Bad;
            }
        } else if (key == "id") {
            id = Member::Ok;
            if (t == od::json_type::string) {
                std::string_view s;
                if (auto e = val.get_string().get(s)) return e;
                req.id = Id::string(s);
            } else if (t == od::json_type::number) {
                std::string_view n = trim(val.raw_json_token());
                if (!isJsonNumber(n)) return sj::NUMBER_ERROR;
                req.id = Id{std::string(n)};
            } else if (t == od::json_type::null) {
                if (auto e = walk(val, 2)) return e;
                req.id = Id::null();
            } else {
                if (auto e = walk(val, 2)) return e;
                req.id = Id::null();
                id = Member::Bad;
            }
        } else {
            if (auto e = walk(val, 2)) return e;
            if (unknown.empty()) unknown.assign(key);
        }
    }

    item.id = id == Member::Ok ? req.id : Id::null();
    if (id == Member::Bad)
        item.error = invalidRequest("The request `id` must be a string, a number or null");
    else if (jsonrpc == Member::Missing)
        item.error = invalidRequest("The request has no `\"jsonrpc\": \"2.0\"` member");
    else if (jsonrpc == Member::Bad)
        item.error = invalidRequest("The request member `jsonrpc` must be the string \"2.0\"");
    else if (method == Member::Missing)
        item.error = invalidRequest("The request has no `method` member");
    else if (method == Member::Bad)
        item.error = invalidRequest("The request member `method` must be a string");
    else if (params == Member::Bad)
        item.error = invalidRequest("The request member `params` must be an object or an array");
    else if (!unknown.empty())
        item.error = invalidRequest("Unknown request member `" + unknown + "`")
                         .withHint("A request has only the members jsonrpc, id, method and params");
    else
        item.request = std::move(req);
    return sj::SUCCESS;
}

Parser::Parser() : impl_(std::make_unique<Impl>()) {}
Parser::~Parser() = default;
Parser::Parser(Parser&&) noexcept = default;
Parser& Parser::operator=(Parser&&) noexcept = default;

Result<Message> Parser::parse(std::string_view line)
{
    Message msg;
    auto err = impl_->one(line, [&](od::document& doc, od::value& top) -> sj::error_code {
        od::json_type t;
        if (auto e = top.type().get(t)) return e;
        if (t == od::json_type::object) {
            msg.items.emplace_back();
            return impl_->request(doc, top, msg.items.back());
        }
        if (t != od::json_type::array) {
            if (auto e = walk(top, 1)) return e;
            msg.items.push_back(Item{{},
                                     invalidRequest("A request must be a JSON object, not " +
                                                    std::string(jsonTypeName(toJsonType(t)))),
                                     Id::null()});
            return sj::SUCCESS;
        }
        od::array batch;
        if (auto e = top.get_array().get(batch)) return e;
        for (auto el : batch) {
            od::value v;
            if (auto e = el.get(v)) return e;
            od::json_type et;
            if (auto e = v.type().get(et)) return e;
            if (et == od::json_type::object) {
                msg.items.emplace_back();
                if (auto e = impl_->request(doc, v, msg.items.back())) return e;
            } else {
                if (auto e = walk(v, 2)) return e;
                msg.items.push_back(Item{{},
                                         invalidRequest("A request must be a JSON object, not " +
                                                        std::string(jsonTypeName(toJsonType(et)))),
                                         Id::null()});
            }
        }
        msg.batch = !msg.items.empty();
        if (msg.items.empty()) msg.items.push_back(Item{{}, invalidRequest("Empty batch"), Id::null()});
        return sj::SUCCESS;
    });
    if (err == sj::EMPTY) return Error(ErrorKind::ParseError, "Empty message");
    if (err) return jsonError(err);
    return msg;
}

sj::error_code Parser::Impl::errorObject(od::value& v, Response& resp, std::string& problem)
{
    od::object o;
    if (auto e = v.get_object().get(o)) return e;
    std::optional<int64_t> code;
    std::string message, kind, hint, cause;
    for (auto f : o) {
        od::field fld;
        if (auto e = std::move(f).get(fld)) return e;
        std::string_view key;
        if (auto e = fld.unescaped_key().get(key)) return e;
        od::value& val = fld.value();
        od::json_type t;
        if (auto e = val.type().get(t)) return e;
        if (key == "code" && t == od::json_type::number) {
            int64_t c = 0;
            if (val.get_int64().get(c) == sj::SUCCESS) {
                code = c;
            } else if (auto e = walk(val, 3)) {
                return e;
            }
        } else if (key == "message" && t == od::json_type::string) {
            std::string_view s;
            if (auto e = val.get_string().get(s)) return e;
            message.assign(s);
        } else if (key == "data" && t == od::json_type::object) {
            od::object data;
            if (auto e = val.get_object().get(data)) return e;
            for (auto df : data) {
                od::field dfld;
                if (auto e = std::move(df).get(dfld)) return e;
                std::string_view dkey;
                if (auto e = dfld.unescaped_key().get(dkey)) return e;
                od::value& dval = dfld.value();
                od::json_type dt;
                if (auto e = dval.type().get(dt)) return e;
                std::string* target = dkey == "kind"    ? &kind
                                      : dkey == "hint"  ? &hint
                                      : dkey == "cause" ? &cause
                                                        : nullptr;
                if (target != nullptr && dt == od::json_type::string) {
                    std::string_view s;
                    if (auto e = dval.get_string().get(s)) return e;
                    target->assign(s);
                } else if (auto e = walk(dval, 4)) {
                    return e;
                }
            }
        } else if (auto e = walk(val, 3)) {
            return e;
        }
    }
    if (!code || *code < INT32_MIN || *code > INT32_MAX) {
        problem = "The error object has no integer `code`";
        return sj::SUCCESS;
    }
    resp.code = static_cast<int>(*code);
    ErrorKind k = kindFromCode(resp.code, kind);
    Error err(k, message.empty() ? std::string(defaultMessage(k)) : std::move(message), std::move(hint));
    if (!cause.empty()) err.causedBy(Error(k, std::move(cause)));
    resp.error = std::move(err);
    return sj::SUCCESS;
}

sj::error_code Parser::Impl::incoming(od::document& doc, od::value& v, Response& resp,
                                      std::optional<Notification>& note, std::string& problem)
{
    od::object o;
    if (auto e = v.get_object().get(o)) return e;
    Member jsonrpc = Member::Missing, id = Member::Missing;
    bool hasResult = false, hasError = false, hasMethod = false;
    std::string method, params;
    for (auto f : o) {
        od::field fld;
        if (auto e = std::move(f).get(fld)) return e;
        std::string_view key;
        if (auto e = fld.unescaped_key().get(key)) return e;
        od::value& val = fld.value();
        od::json_type t;
        if (auto e = val.type().get(t)) return e;
        if (key == "jsonrpc" && t == od::json_type::string) {
            std::string_view s;
            if (auto e = val.get_string().get(s)) return e;
            jsonrpc = s == "2.0" ? Member::Ok : Member::Bad;
        } else if (key == "jsonrpc") {
            if (auto e = walk(val, 2)) return e;
            jsonrpc = Member::Bad;
        } else if (key == "id") {
            id = Member::Ok;
            if (t == od::json_type::string) {
                std::string_view s;
                if (auto e = val.get_string().get(s)) return e;
                resp.id = Id::string(s);
            } else if (t == od::json_type::number) {
                std::string_view n = trim(val.raw_json_token());
                if (!isJsonNumber(n)) return sj::NUMBER_ERROR;
                resp.id = Id{std::string(n)};
            } else {
                if (auto e = walk(val, 2)) return e;
                resp.id = Id::null();
                if (t != od::json_type::null) id = Member::Bad;
            }
        } else if (key == "result") {
            JsonType rt;
            std::string_view raw;
            if (auto e = walkSpan(doc, val, 2, rt, raw)) return e;
            resp.result.emplace(raw);
            hasResult = true;
        } else if (key == "error") {
            hasError = true;
            if (t != od::json_type::object) {
                if (auto e = walk(val, 2)) return e;
                problem = "The member `error` must be an object";
            } else if (auto e = errorObject(val, resp, problem)) {
                return e;
            }
        } else if (key == "method") {
            hasMethod = true;
            if (t != od::json_type::string) {
                if (auto e = walk(val, 2)) return e;
                problem = "The member `method` must be a string";
            } else {
                std::string_view s;
                if (auto e = val.get_string().get(s)) return e;
                method.assign(s);
            }
        } else if (key == "params") {
            JsonType pt;
            std::string_view raw;
            if (auto e = walkSpan(doc, val, 2, pt, raw)) return e;
            if (pt != JsonType::Object && pt != JsonType::Array)
                problem = "The member `params` must be an object or an array";
            params.assign(raw);
        } else if (auto e = walk(val, 2)) {
            // Unknown members are ignored: a newer vmrd may add some.
            return e;
        }
    }
    if (!problem.empty()) return sj::SUCCESS;
    if (jsonrpc != Member::Ok) {
        problem = "The message is not JSON-RPC 2.0 (no `\"jsonrpc\": \"2.0\"`)";
    } else if (hasMethod) {
        if (id != Member::Missing)
            problem = "The server sent a request; vmrctl answers none";
        else
            note = Notification{std::move(method), std::move(params)};
    } else if (id == Member::Missing) {
        problem = "The response has no `id`";
    } else if (id == Member::Bad) {
        problem = "The response `id` must be a string, a number or null";
    } else if (hasResult == hasError) {
        problem = hasResult ? "The response has both `result` and `error`"
                            : "The response has neither `result` nor `error`";
    }
    return sj::SUCCESS;
}

Result<Incoming> Parser::parseIncoming(std::string_view line)
{
    Incoming in;
    std::string problem;
    auto err = impl_->one(line, [&](od::document& doc, od::value& top) -> sj::error_code {
        od::json_type t;
        if (auto e = top.type().get(t)) return e;
        if (t == od::json_type::object) {
            Response resp;
            std::optional<Notification> note;
            if (auto e = impl_->incoming(doc, top, resp, note, problem)) return e;
            if (note)
                in.notification = std::move(note);
            else
                in.response = std::move(resp);
            return sj::SUCCESS;
        }
        if (t != od::json_type::array) {
            problem = "Expected a JSON-RPC response, got " + std::string(jsonTypeName(toJsonType(t)));
            return walk(top, 1);
        }
        od::array batch;
        if (auto e = top.get_array().get(batch)) return e;
        for (auto el : batch) {
            od::value v;
            if (auto e = el.get(v)) return e;
            od::json_type et;
            if (auto e = v.type().get(et)) return e;
            if (et != od::json_type::object) {
                if (problem.empty()) problem = "A batch response holds only response objects";
                if (auto e = walk(v, 2)) return e;
                continue;
            }
            Response resp;
            std::optional<Notification> note;
            if (auto e = impl_->incoming(doc, v, resp, note, problem)) return e;
            if (note && problem.empty()) problem = "A batch response holds only response objects";
            in.batch.push_back(std::move(resp));
        }
        if (in.batch.empty() && problem.empty()) problem = "Empty batch response";
        return sj::SUCCESS;
    });
    if (err == sj::EMPTY) return Error(ErrorKind::ParseError, "Empty message");
    if (err) return jsonError(err);
    if (!problem.empty()) return Error(ErrorKind::ParseError, std::move(problem));
    return in;
}

Result<std::vector<JsonField>> Parser::split(std::string_view json, bool allowArray, bool* isArray)
{
    std::vector<JsonField> fields;
    std::optional<JsonType> container;
    auto err = impl_->one(json, [&](od::document& doc, od::value& top) -> sj::error_code {
        od::json_type t;
        if (auto e = top.type().get(t)) return e;
        container = toJsonType(t);
        auto add = [&](std::string_view name, od::value& v) -> sj::error_code {
            JsonField f;
            f.name.assign(name);
            od::json_type vt;
            if (auto e = v.type().get(vt)) return e;
            if (vt == od::json_type::string) {
                f.type = JsonType::String;
                std::string_view token = trim(v.raw_json_token());
                std::string_view s;
                if (auto e = v.get_string().get(s)) return e;
                f.text.assign(s);
                f.raw.assign(token);
            } else {
                std::string_view raw;
                if (auto e = walkSpan(doc, v, 2, f.type, raw)) return e;
                f.raw.assign(raw);
                if (f.type == JsonType::Boolean) f.text.assign(raw);
            }
            fields.push_back(std::move(f));
            return sj::SUCCESS;
        };
        if (t == od::json_type::object) {
            od::object o;
            if (auto e = top.get_object().get(o)) return e;
            for (auto f : o) {
                od::field fld;
                if (auto e = std::move(f).get(fld)) return e;
                std::string_view key;
                if (auto e = fld.unescaped_key().get(key)) return e;
                if (auto e = add(key, fld.value())) return e;
            }
            return sj::SUCCESS;
        }
        if (t == od::json_type::array && allowArray) {
            od::array a;
            if (auto e = top.get_array().get(a)) return e;
            for (auto el : a) {
                od::value v;
                if (auto e = el.get(v)) return e;
                if (auto e = add({}, v)) return e;
            }
            return sj::SUCCESS;
        }
        return walk(top, 1);
    });
    if (err == sj::EMPTY) return Error(ErrorKind::ParseError, "Empty JSON text");
    if (err) return jsonError(err);
    bool array = container == JsonType::Array;
    if (container != JsonType::Object && !(array && allowArray)) {
        return Error(ErrorKind::InvalidArgument, std::string("Expected a JSON object") +
                                                     (allowArray ? " or array" : "") + ", got " +
                                                     std::string(jsonTypeName(*container)));
    }
    if (isArray != nullptr) *isArray = array;
    return fields;
}

bool Parser::valid(std::string_view json)
{
    return impl_->one(json, [](od::document&, od::value& v) { return walk(v, 1); }) == sj::SUCCESS;
}

std::string encodeResult(const Id& id, std::string_view resultJson)
{
    if (resultJson.empty()) resultJson = "null";
    std::string out;
    out.reserve(kJsonrpc.size() + id.json.size() + resultJson.size() + 16);
    out += kJsonrpc;
    out += R"(,"id":)";
    out += id.json;
    out += R"(,"result":)";
    out += resultJson;
    out += '}';
    return out;
}

std::string encodeError(const Id& id, const Error& err)
{
    std::string_view message = err.message();
    if (message.empty()) message = defaultMessage(err.kind());
    std::string hint = err.hint().empty() ? defaultHint(err.kind()) : err.hint();
    // The cause chain and errno text, as what() prints them after the message.
    std::string cause = err.what();
    if (cause.size() >= err.message().size()) cause.erase(0, err.message().size());
    if (cause.starts_with(": ")) cause.erase(0, 2);

    std::string out;
    out.reserve(128 + message.size() + hint.size() + cause.size());
    out += kJsonrpc;
    out += R"(,"id":)";
    out += id.json;
    out += R"(,"error":{"code":)";
    out += std::to_string(errorCode(err.kind()));
    out += R"(,"message":)";
    json::appendString(out, message);
    out += R"(,"data":{"kind":)";
    json::appendString(out, err.kindName());
    if (!hint.empty()) {
        out += R"(,"hint":)";
        json::appendString(out, hint);
    }
    if (!cause.empty()) {
        out += R"(,"cause":)";
        json::appendString(out, cause);
    }
    out += "}}}";
    return out;
}

std::string encodeRequest(const Id& id, std::string_view method, std::string_view paramsJson)
{
    std::string out;
    out.reserve(kJsonrpc.size() + id.json.size() + method.size() + paramsJson.size() + 32);
    out += kJsonrpc;
    if (id.present()) {
        out += R"(,"id":)";
        out += id.json;
    }
    out += R"(,"method":)";
    json::appendString(out, method);
    if (!paramsJson.empty()) {
        out += R"(,"params":)";
        out += paramsJson;
    }
    out += '}';
    return out;
}

std::string encodeNotification(std::string_view method, std::string_view paramsJson)
{
    return encodeRequest(Id::none(), method, paramsJson);
}

Result<Incoming> parseIncoming(std::string_view line)
{
    thread_local Parser parser;
    return parser.parseIncoming(line);
}

}  // namespace vmr::rpc
