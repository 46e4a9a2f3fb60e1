#pragma once

// JSON-RPC 2.0 messages: a pure parser (one line in, typed structs out) and encoders.
// No sockets here: the server and vmrctl drive these over their own streams.
//
// Strictness (docs/protocol.md): a request needs "jsonrpc":"2.0" and a string "method";
// "params" is an object or an array; "id" is a string, a number or null (null is a request
// with id null, not a notification); any other member is an Invalid Request. When a member
// appears twice, the last one wins. Invalid JSON anywhere in a line, text after the value,
// or nesting deeper than kMaxDepth is one Parse error for the whole line, even in a batch.

#include "base/error.h"
#include "base/result.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmr::rpc {

inline constexpr int kMaxDepth = 128;  // deeper JSON is refused as a Parse error

// The id of a request, as raw JSON text: a number as sent, a string re-quoted, or "null".
// `absent` marks a notification (no id member); an explicit null id is present.
struct Id {
    std::string json = "null";
    bool absent = false;

    bool present() const noexcept { return !absent; }
    static Id none() { return Id{"null", true}; }
    static Id null() { return Id{}; }
    static Id number(int64_t n) { return Id{std::to_string(n)}; }
    static Id string(std::string_view s);

    friend bool operator==(const Id&, const Id&) = default;
};

struct Request {
    Id id;  // !id.present() => notification: no reply is sent
    std::string method;
    std::string params;  // raw JSON text of params (object or array), "" when absent

    bool notification() const noexcept { return !id.present(); }
};

// One request of a line: either a valid Request, or an error to answer with `id` (the
// request's id when it could be recovered, else null; always present()).
struct Item {
    std::optional<Request> request;
    std::optional<Error> error;
    Id id;
};

// One parsed line. A single request, a batch, or an empty batch `[]` (which is answered by
// one Invalid Request error: batch=false with one error item).
struct Message {
    bool batch = false;
    std::vector<Item> items;
};

// The type of a JSON value.
enum class JsonType : uint8_t { Null, Boolean, Number, String, Array, Object };
std::string_view jsonTypeName(JsonType t) noexcept;  // "null", "a boolean", "a number"...

// One member of a JSON object (or one element of an array, with an empty name).
struct JsonField {
    std::string name;  // unescaped member name
    JsonType type = JsonType::Null;
    std::string raw;   // the value's raw JSON text, as sent (whitespace inside kept)
    std::string text;  // for strings: the unescaped value; for booleans: "true"/"false"
};

// Server side: `{"jsonrpc":"2.0","id":..,"result":..}` etc. A Response as read by a client.
struct Response {
    Id id;
    std::optional<std::string> result;  // raw JSON
    std::optional<Error> error;
    int code = 0;  // the error's code when error is set
};

struct Notification {
    std::string method;
    std::string params;  // raw JSON, "" when absent
};

// One line from the server: a single response, a notification, or a batch of responses.
struct Incoming {
    std::optional<Response> response;
    std::optional<Notification> notification;
    std::vector<Response> batch;
};

// Owns a simdjson parser and a padded input buffer, both reused across lines: parsing a
// small request allocates only the strings and the vector it returns. Not thread-safe.
class Parser {
public:
    Parser();
    ~Parser();
    Parser(Parser&&) noexcept;
    Parser& operator=(Parser&&) noexcept;

    // Server side. The Result is an error only for a Parse error (answered with id null).
    Result<Message> parse(std::string_view line);

    // Client side: a response, a batch of responses, or a notification. Anything else is an
    // error (ParseError kind, with a message saying what is wrong).
    Result<Incoming> parseIncoming(std::string_view line);

    // Validate `json` as exactly one JSON object (or array, when allowed) and split it into
    // its members (elements). `isArray` reports which it was.
    Result<std::vector<JsonField>> split(std::string_view json, bool allowArray, bool* isArray = nullptr);

    // Whether `json` is exactly one valid JSON value (within kMaxDepth).
    bool valid(std::string_view json);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Encoders: one JSON text without the trailing newline (callers add it). resultJson and
// paramsJson are trusted raw JSON (from vmr::json::Writer or from a parsed message); an
// empty resultJson is sent as null and an empty paramsJson omits "params".
std::string encodeResult(const Id& id, std::string_view resultJson);
// {"jsonrpc":"2.0","id":..,"error":{"code":..,"message":..,"data":{"kind":..,"hint":..,"cause":..}}}
// The hint is the error's, or defaultHint(kind); "cause" is the rest of what() after the
// message (the cause chain and errno text), omitted when empty.
std::string encodeError(const Id& id, const Error& err);
std::string encodeRequest(const Id& id, std::string_view method, std::string_view paramsJson);
std::string encodeNotification(std::string_view method, std::string_view paramsJson);

// Client side with a parser per thread.
Result<Incoming> parseIncoming(std::string_view line);

}  // namespace vmr::rpc
