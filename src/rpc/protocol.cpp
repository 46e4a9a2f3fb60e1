#include "rpc/protocol.h"

#include "base/json.h"
#include "rpc/errors.h"
#include "rpc/json_walk.h"

#include <algorithm>
#include <cstring>

namespace vmr::rpc {

namespace sj = simdjson;
namespace od = simdjson::ondemand;

using json_walk::forEachElement;
using json_walk::forEachMember;
using json_walk::isJsonNumber;
using json_walk::jsonError;
using json_walk::toJsonType;
using json_walk::trim;
using json_walk::walk;
using json_walk::walkSpan;

namespace {

// The members of a message are two levels down: the message itself is at depth 1.
constexpr int kMemberDepth = 2;

Error invalidRequest(std::string message)
{
    return Error(ErrorKind::InvalidRequest, std::move(message), defaultHint(ErrorKind::InvalidRequest));
}

// The answer to an element of a request line that is not a JSON object.
Item notAnObject(od::json_type t)
{
    return Item{
        {},
        invalidRequest("A request must be a JSON object, not " + std::string(jsonTypeName(toJsonType(t)))),
        Id::null()};
}

// A member set zero, one or more times: the last occurrence decides.
enum class Member : uint8_t { Missing, Ok, Bad };

// A member that must be a string: its text, or nullopt (the value validated) for another type.
sj::error_code stringMember(od::value& val, od::json_type t, std::optional<std::string_view>& out)
{
    out.reset();
    if (t != od::json_type::string) return walk(val, kMemberDepth);
    std::string_view s;
    if (auto e = val.get_string().get(s)) return e;
    out = s;
    return sj::SUCCESS;
}

// `jsonrpc`, which must be "2.0".
sj::error_code versionMember(od::value& val, od::json_type t, Member& state)
{
    std::optional<std::string_view> s;
    if (auto e = stringMember(val, t, s)) return e;
    state = s && *s == "2.0" ? Member::Ok : Member::Bad;
    return sj::SUCCESS;
}

// `id` of a request or a response: a string, a number (kept as sent) or null; another type
// reads as null and is Bad.
sj::error_code idMember(od::value& val, od::json_type t, Id& id, Member& state)
{
    state = Member::Ok;
    if (t == od::json_type::string) {
        std::string_view s;
        if (auto e = val.get_string().get(s)) return e;
        id = Id::string(s);
        return sj::SUCCESS;
    }
    if (t == od::json_type::number) {
        std::string_view n = trim(val.raw_json_token());
        if (!isJsonNumber(n)) return sj::NUMBER_ERROR;
        id = Id{std::string(n)};
        return sj::SUCCESS;
    }
    id = Id::null();
    if (t != od::json_type::null) state = Member::Bad;
    return walk(val, kMemberDepth);
}

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

    // Iterate the single value of `text`, calling fn(doc, value, type) for it; checks that
    // nothing follows it.
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
            od::json_type t;
            if (auto e = v.type().get(t)) return e;
            if (auto e = fn(doc, v, t)) return e;
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
    Request req;
    req.id = Id::none();
    Member jsonrpc = Member::Missing, method = Member::Missing, params = Member::Missing,
           id = Member::Missing;
    std::string unknown;
    auto status =
        forEachMember(v, [&](std::string_view key, od::value& val, od::json_type t) -> sj::error_code {
            if (key == "jsonrpc") return versionMember(val, t, jsonrpc);
            if (key == "id") return idMember(val, t, req.id, id);
            if (key == "method") {
                std::optional<std::string_view> s;
                if (auto e = stringMember(val, t, s)) return e;
                if (s) req.method.assign(*s);
                method = s ? Member::Ok : Member::Bad;
                return sj::SUCCESS;
            }
            if (key == "params") {
                JsonType pt;
                std::string_view raw;
                if (auto e = walkSpan(doc, val, kMemberDepth, pt, raw)) return e;
                if (pt == JsonType::Object || pt == JsonType::Array) {
                    req.params.assign(raw);
                    params = Member::Ok;
                } else {
                    req.params.clear();
                    params = Member::Bad;
                }
                return sj::SUCCESS;
            }
            if (unknown.empty()) unknown.assign(key);
            return walk(val, kMemberDepth);
        });
    if (status) return status;

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
    auto err = impl_->one(line, [&](od::document& doc, od::value& top, od::json_type t) -> sj::error_code {
        if (t == od::json_type::object) {
            msg.items.emplace_back();
            return impl_->request(doc, top, msg.items.back());
        }
        if (t != od::json_type::array) {
            msg.items.push_back(notAnObject(t));
            return walk(top, 1);
        }
        auto status = forEachElement(top, [&](od::value& v, od::json_type et) -> sj::error_code {
            if (et != od::json_type::object) {
                msg.items.push_back(notAnObject(et));
                return walk(v, 2);
            }
            msg.items.emplace_back();
            return impl_->request(doc, v, msg.items.back());
        });
        if (status) return status;
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
    std::optional<int64_t> code;
    std::string message, kind, hint, cause;
    auto status =
        forEachMember(v, [&](std::string_view key, od::value& val, od::json_type t) -> sj::error_code {
            if (key == "code" && t == od::json_type::number) {
                int64_t c = 0;
                if (val.get_int64().get(c) != sj::SUCCESS) return walk(val, 3);
                code = c;
                return sj::SUCCESS;
            }
            if (key == "message" && t == od::json_type::string) {
                std::string_view s;
                if (auto e = val.get_string().get(s)) return e;
                message.assign(s);
                return sj::SUCCESS;
            }
            if (key != "data" || t != od::json_type::object) return walk(val, 3);
            return forEachMember(
                val, [&](std::string_view dkey, od::value& dval, od::json_type dt) -> sj::error_code {
                    std::string* target = dkey == "kind"    ? &kind
                                          : dkey == "hint"  ? &hint
                                          : dkey == "cause" ? &cause
                                                            : nullptr;
                    if (target == nullptr || dt != od::json_type::string) return walk(dval, 4);
                    std::string_view s;
                    if (auto e = dval.get_string().get(s)) return e;
                    target->assign(s);
                    return sj::SUCCESS;
                });
        });
    if (status) return status;
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
    Member jsonrpc = Member::Missing, id = Member::Missing;
    bool hasResult = false, hasError = false, hasMethod = false;
    std::string method, params;
    auto status =
        forEachMember(v, [&](std::string_view key, od::value& val, od::json_type t) -> sj::error_code {
            if (key == "jsonrpc") return versionMember(val, t, jsonrpc);
            if (key == "id") return idMember(val, t, resp.id, id);
            if (key == "result") {
                JsonType rt;
                std::string_view raw;
                if (auto e = walkSpan(doc, val, kMemberDepth, rt, raw)) return e;
                resp.result.emplace(raw);
                hasResult = true;
                return sj::SUCCESS;
            }
            if (key == "error") {
                hasError = true;
                if (t == od::json_type::object) return errorObject(val, resp, problem);
                problem = "The member `error` must be an object";
                return walk(val, kMemberDepth);
            }
            if (key == "method") {
                hasMethod = true;
                std::optional<std::string_view> s;
                if (auto e = stringMember(val, t, s)) return e;
                if (s)
                    method.assign(*s);
                else
                    problem = "The member `method` must be a string";
                return sj::SUCCESS;
            }
            if (key == "params") {
                JsonType pt;
                std::string_view raw;
                if (auto e = walkSpan(doc, val, kMemberDepth, pt, raw)) return e;
                if (pt != JsonType::Object && pt != JsonType::Array)
                    problem = "The member `params` must be an object or an array";
                params.assign(raw);
                return sj::SUCCESS;
            }
            // Unknown members are ignored: a newer vmrd may add some.
            return walk(val, kMemberDepth);
        });
    if (status) return status;
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
    auto err = impl_->one(line, [&](od::document& doc, od::value& top, od::json_type t) -> sj::error_code {
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
        auto status = forEachElement(top, [&](od::value& v, od::json_type et) -> sj::error_code {
            if (et != od::json_type::object) {
                if (problem.empty()) problem = "A batch response holds only response objects";
                return walk(v, 2);
            }
            Response resp;
            std::optional<Notification> note;
            if (auto e = impl_->incoming(doc, v, resp, note, problem)) return e;
            if (note && problem.empty()) problem = "A batch response holds only response objects";
            in.batch.push_back(std::move(resp));
            return sj::SUCCESS;
        });
        if (status) return status;
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
    auto err = impl_->one(json, [&](od::document& doc, od::value& top, od::json_type t) -> sj::error_code {
        container = toJsonType(t);
        auto add = [&](std::string_view name, od::value& v, od::json_type vt) -> sj::error_code {
            JsonField f;
            f.name.assign(name);
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
        if (t == od::json_type::object) return forEachMember(top, add);
        if (t == od::json_type::array && allowArray)
            return forEachElement(top, [&](od::value& v, od::json_type vt) { return add({}, v, vt); });
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
    return impl_->one(json, [](od::document&, od::value& v, od::json_type) { return walk(v, 1); }) ==
           sj::SUCCESS;
}

Result<Incoming> parseIncoming(std::string_view line)
{
    thread_local Parser parser;
    return parser.parseIncoming(line);
}

}  // namespace vmr::rpc
