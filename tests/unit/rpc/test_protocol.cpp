#include "rpc/errors.h"
#include "rpc/protocol.h"

#include <catch2/catch.hpp>

#include <string>

using namespace vmr;
using namespace vmr::rpc;

namespace {

Message parseOk(Parser& p, std::string_view line)
{
    auto r = p.parse(line);
    INFO(line);
    REQUIRE(r.ok());
    return std::move(r).value();
}

// The single error item of a line, checked for its kind and id.
void requireOneError(Parser& p, std::string_view line, ErrorKind kind, std::string_view idJson = "null")
{
    INFO(line);
    Message m = parseOk(p, line);
    CHECK_FALSE(m.batch);
    REQUIRE(m.items.size() == 1);
    CHECK_FALSE(m.items[0].request);
    REQUIRE(m.items[0].error);
    CHECK(m.items[0].error->kind() == kind);
    CHECK(m.items[0].id.json == idJson);
    CHECK(m.items[0].id.present());
}

void requireParseError(Parser& p, std::string_view line)
{
    INFO(line);
    auto r = p.parse(line);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind() == ErrorKind::ParseError);
    CHECK(errorCode(r.error().kind()) == -32700);
}

}  // namespace

TEST_CASE("a call with positional and named params (spec examples)", "[protocol]")
{
    Parser p;
    Message m = parseOk(p, R"({"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1})");
    CHECK_FALSE(m.batch);
    REQUIRE(m.items.size() == 1);
    REQUIRE(m.items[0].request);
    const Request& r = *m.items[0].request;
    CHECK(r.method == "subtract");
    CHECK(r.params == "[42, 23]");
    CHECK(r.id.json == "1");
    CHECK_FALSE(r.notification());
    CHECK(m.items[0].id == r.id);

    m = parseOk(
        p,
        R"({"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3})");
    REQUIRE(m.items[0].request);
    CHECK(m.items[0].request->params == R"({"subtrahend": 23, "minuend": 42})");
    CHECK(m.items[0].request->id.json == "3");
}

TEST_CASE("notifications have no id; an id of null is a request", "[protocol]")
{
    Parser p;
    Message m = parseOk(p, R"({"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]})");
    REQUIRE(m.items[0].request);
    CHECK(m.items[0].request->notification());
    CHECK_FALSE(m.items[0].request->id.present());
    CHECK(m.items[0].request->params == "[1,2,3,4,5]");

    m = parseOk(p, R"({"jsonrpc": "2.0", "method": "foobar"})");
    REQUIRE(m.items[0].request);
    CHECK(m.items[0].request->notification());
    CHECK(m.items[0].request->params.empty());

    m = parseOk(p, R"({"jsonrpc":"2.0","method":"vmr.ping","id":null})");
    REQUIRE(m.items[0].request);
    CHECK_FALSE(m.items[0].request->notification());
    CHECK(m.items[0].request->id.json == "null");
}

TEST_CASE("ids: strings are re-quoted, numbers kept as sent", "[protocol]")
{
    Parser p;
    auto id = [&](std::string_view line) {
        Message m = parseOk(p, line);
        REQUIRE(m.items[0].request);
        return m.items[0].request->id.json;
    };
    CHECK(id(R"({"jsonrpc":"2.0","method":"m","id":"abc"})") == R"("abc")");
    CHECK(id(R"({"jsonrpc":"2.0","method":"m","id":"a\u0041\n"})") == R"("aA\n")");
    CHECK(id(R"({"jsonrpc":"2.0","method":"m","id":-12.5e3})") == "-12.5e3");
    CHECK(id(R"({"jsonrpc":"2.0","method":"m","id":123456789012345678901234567890})") ==
          "123456789012345678901234567890");
    CHECK(id(R"({"jsonrpc":"2.0","method":"m","id":  7  })") == "7");
    // Duplicates: the last one wins.
    CHECK(id(R"({"jsonrpc":"2.0","method":"m","id":1,"id":2})") == "2");
}

TEST_CASE("invalid JSON is one parse error (spec examples)", "[protocol]")
{
    Parser p;
    requireParseError(p, R"({"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz])");
    requireParseError(p, R"([
  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
  {"jsonrpc": "2.0", "method"
])");
    requireParseError(p, R"({"jsonrpc":"2.0","method":"m","id":1} x)");
    requireParseError(p, R"({"jsonrpc":"2.0","method":"m","id":1}{})");
    requireParseError(p, R"({"jsonrpc":"2.0","method":"m","id":1},{})");
    requireParseError(p, R"({"jsonrpc":"2.0","method":"m","id":1}],[1)");
    requireParseError(p, R"({"jsonrpc":"2.0","method":"m","id":01})");
    requireParseError(p, R"({"jsonrpc":"2.0","method":"m","params":{"a":tru}})");
    requireParseError(p, R"({"jsonrpc":"2.0","method":"m","params":{"a":nul}})");
    requireParseError(p, R"({"jsonrpc":"2.0","method":"m","params":[1,]})");
    requireParseError(p, R"({"jsonrpc":"2.0","method":"m","params":{"a":"\x"}})");
    requireParseError(p, "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":{\"a\":\"\x01\"}}");
    requireParseError(p, "{\"jsonrpc\":\"2.0\",\"method\":\"m\xff\"}");
    requireParseError(p, R"({"jsonrpc":"2.0","method":"m","x":[1 2]})");
    requireParseError(p, "");
    requireParseError(p, "   ");
    requireParseError(p, "]");
    requireParseError(p, "1 2");
    // Invalid JSON inside a batch that is otherwise fine: still one parse error.
    requireParseError(
        p, R"([{"jsonrpc":"2.0","method":"a","id":1},{"jsonrpc":"2.0","method":"b","params":[-]}])");
    // Nesting is bounded.
    std::string deep(kMaxDepth + 5, '[');
    deep += std::string(kMaxDepth + 5, ']');
    requireParseError(p, R"({"jsonrpc":"2.0","method":"m","params":)" + deep + "}");
    // The parser is reusable after errors.
    CHECK(parseOk(p, R"({"jsonrpc":"2.0","method":"m","id":1})").items[0].request);
}

TEST_CASE("invalid request objects (spec examples)", "[protocol]")
{
    Parser p;
    requireOneError(p, R"({"jsonrpc": "2.0", "method": 1, "params": "bar"})", ErrorKind::InvalidRequest);
    requireOneError(p, R"([])", ErrorKind::InvalidRequest);
    requireOneError(p, R"(1)", ErrorKind::InvalidRequest);
    requireOneError(p, R"("x")", ErrorKind::InvalidRequest);
    requireOneError(p, R"(null)", ErrorKind::InvalidRequest);
    requireOneError(p, R"({"method":"m","id":1})", ErrorKind::InvalidRequest, "1");
    requireOneError(p, R"({"jsonrpc":"1.0","method":"m","id":1})", ErrorKind::InvalidRequest, "1");
    requireOneError(p, R"({"jsonrpc":2.0,"method":"m","id":1})", ErrorKind::InvalidRequest, "1");
    requireOneError(p, R"({"jsonrpc":"2.0","id":"a"})", ErrorKind::InvalidRequest, R"("a")");
    requireOneError(p, R"({"jsonrpc":"2.0","method":"m","params":"bar","id":2})", ErrorKind::InvalidRequest,
                    "2");
    requireOneError(p, R"({"jsonrpc":"2.0","method":"m","params":null,"id":2})", ErrorKind::InvalidRequest,
                    "2");
    requireOneError(p, R"({"jsonrpc":"2.0","method":"m","id":{"a":1}})", ErrorKind::InvalidRequest);
    requireOneError(p, R"({"jsonrpc":"2.0","method":"m","id":[1]})", ErrorKind::InvalidRequest);
    requireOneError(p, R"({"jsonrpc":"2.0","method":"m","id":true})", ErrorKind::InvalidRequest);
    requireOneError(p, R"({"jsonrpc":"2.0","method":"m","id":3,"param":{}})", ErrorKind::InvalidRequest, "3");
    // An invalid request without an id is still answered (with id null).
    requireOneError(p, R"({"jsonrpc":"2.0","method":5})", ErrorKind::InvalidRequest);
    // Last duplicate wins: a bad first method is forgiven by a good last one, and vice versa.
    CHECK(parseOk(p, R"({"jsonrpc":"2.0","method":1,"method":"m"})").items[0].request);
    requireOneError(p, R"({"jsonrpc":"2.0","method":"m","method":1})", ErrorKind::InvalidRequest);
}

TEST_CASE("batches (spec examples)", "[protocol]")
{
    Parser p;
    Message m = parseOk(p, "[1]");
    CHECK(m.batch);
    REQUIRE(m.items.size() == 1);
    CHECK(m.items[0].error->kind() == ErrorKind::InvalidRequest);

    m = parseOk(p, "[1,2,3]");
    CHECK(m.batch);
    REQUIRE(m.items.size() == 3);
    for (const auto& it : m.items) {
        CHECK_FALSE(it.request);
        REQUIRE(it.error);
        CHECK(it.error->kind() == ErrorKind::InvalidRequest);
        CHECK(it.id.json == "null");
    }

    m = parseOk(p, R"([
        {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
    ])");
    CHECK(m.batch);
    REQUIRE(m.items.size() == 6);
    CHECK(m.items[0].request->method == "sum");
    CHECK(m.items[0].request->params == "[1,2,4]");
    CHECK(m.items[0].id.json == R"("1")");
    CHECK(m.items[1].request->notification());
    CHECK(m.items[2].request->id.json == R"("2")");
    CHECK_FALSE(m.items[3].request);
    CHECK(m.items[3].error->kind() == ErrorKind::InvalidRequest);
    CHECK(m.items[3].id.json == "null");
    CHECK(m.items[4].request->params == R"({"name": "myself"})");
    CHECK(m.items[5].request->params.empty());

    // All notifications: items are there, none has an id.
    m = parseOk(
        p, R"([{"jsonrpc":"2.0","method":"notify_sum","params":[1,2,4]},{"jsonrpc":"2.0","method":"n"}])");
    CHECK(m.batch);
    REQUIRE(m.items.size() == 2);
    CHECK(m.items[0].request->notification());
    CHECK(m.items[1].request->notification());

    // A batch inside a batch is not a request.
    m = parseOk(p, R"([[{"jsonrpc":"2.0","method":"m","id":1}]])");
    REQUIRE(m.items.size() == 1);
    CHECK(m.items[0].error->kind() == ErrorKind::InvalidRequest);
}

TEST_CASE("encoders produce the documented shapes", "[protocol]")
{
    CHECK(encodeResult(Id::number(1), R"({"a":1})") == R"({"jsonrpc":"2.0","id":1,"result":{"a":1}})");
    CHECK(encodeResult(Id::string("x\"y"), "") == R"({"jsonrpc":"2.0","id":"x\"y","result":null})");
    CHECK(encodeRequest(Id::number(7), "vmr.ping", "") == R"({"jsonrpc":"2.0","id":7,"method":"vmr.ping"})");
    CHECK(encodeRequest(Id::null(), "a\nb", "[1]") ==
          R"({"jsonrpc":"2.0","id":null,"method":"a\nb","params":[1]})");
    CHECK(encodeNotification("event", R"({"topic":"vm"})") ==
          R"({"jsonrpc":"2.0","method":"event","params":{"topic":"vm"}})");

    Error e(ErrorKind::VmNotFound, "No VM named `web`");
    CHECK(
        encodeError(Id::number(2), e) ==
        R"({"jsonrpc":"2.0","id":2,"error":{"code":-32003,"message":"No VM named `web`","data":{"kind":"vm.not_found","hint":"Run `vmrctl list` to see VMs"}}})");
    Error chained = Error(ErrorKind::Config, "Cannot load vmrd.toml", "Fix it")
                        .causedBy(Error::fromErrno(ENOENT, "Cannot open /x"));
    CHECK(
        encodeError(Id::null(), chained) ==
        R"({"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Cannot load vmrd.toml","data":{"kind":"config","hint":"Fix it","cause":"Cannot open /x: No such file or directory"}}})");
    Error empty(ErrorKind::Internal, "");
    CHECK(encodeError(Id::null(), empty).find(R"("message":"Internal error")") != std::string::npos);
}

TEST_CASE("encoded messages parse back (server and client sides)", "[protocol]")
{
    Parser p;
    std::string line = encodeRequest(Id::string("q1"), "vm.start", R"({"name":"web","wait":true})");
    Message m = parseOk(p, line);
    REQUIRE(m.items[0].request);
    CHECK(m.items[0].request->method == "vm.start");
    CHECK(m.items[0].request->params == R"({"name":"web","wait":true})");
    CHECK(m.items[0].request->id == Id::string("q1"));

    auto in = parseIncoming(encodeResult(Id::number(5), R"([1,{"a":"b"}])"));
    REQUIRE(in.ok());
    REQUIRE(in->response);
    CHECK(in->response->id.json == "5");
    REQUIRE(in->response->result);
    CHECK(*in->response->result == R"([1,{"a":"b"}])");
    CHECK_FALSE(in->response->error);

    in = parseIncoming(encodeResult(Id::number(5), "\"str\""));
    REQUIRE(in.ok());
    CHECK(*in->response->result == "\"str\"");

    Error chained =
        Error(ErrorKind::VmBadState, "VM `web` is stopped").causedBy(Error(ErrorKind::Internal, "why"));
    in = parseIncoming(encodeError(Id::string("z"), chained));
    REQUIRE(in.ok());
    REQUIRE(in->response);
    REQUIRE(in->response->error);
    CHECK(in->response->id.json == R"("z")");
    CHECK(in->response->code == -32005);
    CHECK(in->response->error->kind() == ErrorKind::VmBadState);
    CHECK(in->response->error->message() == "VM `web` is stopped");
    CHECK(in->response->error->hint() == defaultHint(ErrorKind::VmBadState));
    CHECK(in->response->error->what() == chained.what());

    in = parseIncoming(encodeNotification("event", R"({"topic":"vm.state"})"));
    REQUIRE(in.ok());
    REQUIRE(in->notification);
    CHECK(in->notification->method == "event");
    CHECK(in->notification->params == R"({"topic":"vm.state"})");

    in = parseIncoming("[" + encodeResult(Id::number(1), "1") + "," + encodeError(Id::number(2), chained) +
                       "]");
    REQUIRE(in.ok());
    REQUIRE(in->batch.size() == 2);
    CHECK(*in->batch[0].result == "1");
    CHECK(in->batch[1].error->kind() == ErrorKind::VmBadState);

    // A foreign server's error without data: the code decides.
    in = parseIncoming(R"({"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found"}})");
    REQUIRE(in.ok());
    CHECK(in->response->error->kind() == ErrorKind::MethodNotFound);
}

TEST_CASE("parseIncoming refuses what is not a response or notification", "[protocol]")
{
    for (std::string_view bad : {
             R"({"jsonrpc":"2.0","id":1})",
             R"({"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1,"message":"x"}})",
             R"({"jsonrpc":"2.0","result":1})",
             R"({"id":1,"result":1})",
             R"({"jsonrpc":"2.0","id":1,"error":{"message":"x"}})",
             R"({"jsonrpc":"2.0","id":1,"error":"x"})",
             R"({"jsonrpc":"2.0","id":1,"method":"x"})",
             R"({"jsonrpc":"2.0","id":[1],"result":1})",
             R"({"jsonrpc":"2.0","method":"event","params":3})",
             R"([])",
             R"([1])",
             R"(3)",
             R"({"jsonrpc":"2.0","id":1,"result":1} 2)",
             R"({"jsonrpc":"2.0","id":1,"result":[1,}])",
         }) {
        INFO(bad);
        auto in = parseIncoming(bad);
        REQUIRE_FALSE(in.ok());
        CHECK(in.error().kind() == ErrorKind::ParseError);
    }
}

TEST_CASE("split and valid", "[protocol]")
{
    Parser p;
    bool isArray = true;
    auto f = p.split(R"({"a":"x\ty","b":{"c":[1, 2]},"d":true,"e":null,"f":-1.5})", false, &isArray);
    REQUIRE(f.ok());
    CHECK_FALSE(isArray);
    REQUIRE(f->size() == 5);
    CHECK((*f)[0].name == "a");
    CHECK((*f)[0].type == JsonType::String);
    CHECK((*f)[0].text == "x\ty");
    CHECK((*f)[0].raw == R"("x\ty")");
    CHECK((*f)[1].raw == R"({"c":[1, 2]})");
    CHECK((*f)[1].type == JsonType::Object);
    CHECK((*f)[2].text == "true");
    CHECK((*f)[3].type == JsonType::Null);
    CHECK((*f)[4].raw == "-1.5");

    auto arr = p.split("[1,\"a\"]", true, &isArray);
    REQUIRE(arr.ok());
    CHECK(isArray);
    CHECK(arr->size() == 2);
    CHECK_FALSE(p.split("[1]", false).ok());
    CHECK_FALSE(p.split("1", true).ok());

    CHECK(p.valid(R"({"a":[1,2,{"b":null}]})"));
    CHECK(p.valid("1e400"));
    CHECK(p.valid("\"\\u00e9\""));
    CHECK_FALSE(p.valid("{\"a\":1}}"));
    CHECK_FALSE(p.valid("[1] [2]"));
    CHECK_FALSE(p.valid("-"));
    CHECK_FALSE(p.valid("1."));
    CHECK_FALSE(p.valid("1e"));
    CHECK_FALSE(p.valid(".5"));
}
