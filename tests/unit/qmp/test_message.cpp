// The pure QMP codec: every message kind, malformed input, the encoder, the line splitter.

#include "qmp/message.h"

#include <catch2/catch.hpp>

#include <string>
#include <variant>

using namespace vmr;
using namespace vmr::qmp;

namespace {

template <typename T>
T parseAs(std::string_view json)
{
    auto m = parseMessage(json);
    if (!m) FAIL("parseMessage(" << json << "): " << m.error().what());
    REQUIRE(std::holds_alternative<T>(*m));
    return std::get<T>(std::move(*m));
}

std::string parseFailure(std::string_view json)
{
    auto m = parseMessage(json);
    if (m) FAIL("parseMessage(" << json << ") should have failed");
    CHECK(m.error().kind() == ErrorKind::ParseError);
    return m.error().message();
}

}  // namespace

TEST_CASE("greeting of QEMU 7.2")
{
    auto g = parseAs<Greeting>(
        R"({"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}})");
    CHECK(g.version.major == 7);
    CHECK(g.version.minor == 2);
    CHECK(g.version.micro == 22);
    CHECK(g.version.package == "Debian 1:7.2+dfsg-7+deb12u18+b3");
    REQUIRE(g.capabilities.size() == 1);
    CHECK(g.capabilities[0] == "oob");

    auto none = parseAs<Greeting>(
        R"({"QMP":{"version":{"qemu":{"micro":0,"minor":0,"major":9},"package":""},"capabilities":[]},"extra":1})");
    CHECK(none.version.major == 9);
    CHECK(none.capabilities.empty());
}

TEST_CASE("malformed greetings name the faulty member")
{
    CHECK_THAT(parseFailure(R"({"QMP": 1})"), Catch::Contains("'QMP' is not an object"));
    CHECK_THAT(parseFailure(R"({"QMP": {"capabilities": []}})"), Catch::Contains("QMP.version"));
    CHECK_THAT(parseFailure(R"({"QMP": {"version": {"package": ""}, "capabilities": []}})"),
               Catch::Contains("QMP.version.qemu"));
    CHECK_THAT(
        parseFailure(
            R"({"QMP": {"version": {"qemu": {"major": 7, "minor": "2", "micro": 0}, "package": ""}, "capabilities": []}})"),
        Catch::Contains("QMP.version.qemu.minor") && Catch::Contains("not an integer"));
    CHECK_THAT(
        parseFailure(
            R"({"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}}, "capabilities": []}})"),
        Catch::Contains("QMP.version.package"));
    CHECK_THAT(parseFailure(
                   R"({"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": ""}}})"),
               Catch::Contains("QMP.capabilities"));
    CHECK_THAT(
        parseFailure(
            R"({"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": ""}, "capabilities": [1]}})"),
        Catch::Contains("non-string"));
}

TEST_CASE("return replies keep the raw JSON of return and id")
{
    auto r = parseAs<Return>(R"({"return": {}, "id": 1})");
    CHECK(r.json == "{}");
    REQUIRE(r.id);
    CHECK(*r.id == "1");

    auto s = parseAs<Return>(
        R"({"return": {"status": "running", "singlestep": false, "running": true}, "id": "a\"b"})");
    CHECK(s.json == R"({"status":"running","singlestep":false,"running":true})");
    CHECK(*s.id == R"("a\"b")");

    auto n = parseAs<Return>(R"({"id": {"x": [1, 2]}, "return": [1, "two", null, 2.5]})");
    CHECK(n.json == R"([1,"two",null,2.5])");
    CHECK(*n.id == R"({"x":[1,2]})");

    auto hmp = parseAs<Return>(R"({"return": "line1\r\nline2\r\n"})");
    CHECK(hmp.json == R"("line1\r\nline2\r\n")");
    CHECK_FALSE(hmp.id);

    CHECK(parseAs<Return>(R"({"return": null, "id": 3})").json == "null");
}

TEST_CASE("error replies")
{
    auto e = parseAs<ErrorReply>(
        R"({"id": 7, "error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}})");
    CHECK(e.errorClass == "CommandNotFound");
    CHECK(e.desc == "The command nope has not been found");
    REQUIRE(e.id);
    CHECK(*e.id == "7");

    // A JSON syntax error is answered without an id.
    auto noId = parseAs<ErrorReply>(
        R"({"error": {"class": "GenericError", "desc": "JSON parse error, invalid keyword 'x'"}})");
    CHECK_FALSE(noId.id);

    CHECK_THAT(parseFailure(R"({"error": "boom"})"), Catch::Contains("'error' is not an object"));
    CHECK_THAT(parseFailure(R"({"error": {"desc": "x"}})"), Catch::Contains("error.class"));
    CHECK_THAT(parseFailure(R"({"error": {"class": "GenericError"}})"), Catch::Contains("error.desc"));
    CHECK_THAT(parseFailure(R"({"error": {"class": "GenericError", "desc": 3}})"),
               Catch::Contains("not a string"));
}

TEST_CASE("events")
{
    auto stop =
        parseAs<Event>(R"({"timestamp": {"seconds": 1700000000, "microseconds": 123456}, "event": "STOP"})");
    CHECK(stop.name == "STOP");
    CHECK(stop.data == "{}");
    CHECK(stop.timestamp.seconds == 1700000000);
    CHECK(stop.timestamp.microseconds == 123456);

    auto shutdown = parseAs<Event>(
        R"({"timestamp": {"seconds": 1, "microseconds": 2}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}})");
    CHECK(shutdown.name == "SHUTDOWN");
    CHECK(shutdown.data == R"({"guest":false,"reason":"host-qmp-quit"})");

    CHECK_THAT(parseFailure(R"({"event": 5, "timestamp": {"seconds": 1, "microseconds": 2}})"),
               Catch::Contains("'event' is not a string"));
    CHECK_THAT(parseFailure(R"({"event": "", "timestamp": {"seconds": 1, "microseconds": 2}})"),
               Catch::Contains("empty"));
    CHECK_THAT(parseFailure(R"({"event": "STOP"})"), Catch::Contains("timestamp"));
    CHECK_THAT(parseFailure(R"({"event": "STOP", "timestamp": {"seconds": 1}})"),
               Catch::Contains("timestamp.microseconds"));
    CHECK_THAT(parseFailure(R"({"event": "STOP", "timestamp": {"seconds": 1.5, "microseconds": 0}})"),
               Catch::Contains("timestamp.seconds"));
    CHECK_THAT(parseFailure(R"({"event": "X", "data": [1], "timestamp": {"seconds": 1, "microseconds": 2}})"),
               Catch::Contains("'data' is not an object"));
}

TEST_CASE("anything else is an error naming what is wrong")
{
    CHECK_THAT(parseFailure(""), Catch::Contains("not valid JSON"));
    CHECK_THAT(parseFailure("{"), Catch::Contains("not valid JSON"));
    CHECK_THAT(parseFailure(R"({"return": {}} trailing)"), Catch::Contains("not valid JSON"));
    CHECK_THAT(parseFailure("[1,2]"), Catch::Contains("not a JSON object"));
    CHECK_THAT(parseFailure("\"QMP\""), Catch::Contains("not a JSON object"));
    CHECK_THAT(parseFailure("{}"), Catch::Contains("none of the keys"));
    CHECK_THAT(parseFailure(R"({"execute": "stop", "id": 1})"), Catch::Contains("none of the keys"));
    CHECK_THAT(parseFailure(R"({"return": {}, "error": {"class": "A", "desc": "b"}})"),
               Catch::Contains("more than one") && Catch::Contains("'return', 'error'"));
    CHECK_THAT(
        parseFailure(R"({"event": "STOP", "return": 1, "timestamp": {"seconds": 1, "microseconds": 2}})"),
        Catch::Contains("more than one"));
}

TEST_CASE("encodeCommand escapes the name and inserts arguments and id verbatim")
{
    CHECK(encodeCommand("qmp_capabilities") == R"({"execute":"qmp_capabilities"})");
    CHECK(encodeCommand("query-status", "", "2") == R"({"execute":"query-status","id":2})");
    CHECK(encodeCommand("device_del", R"({"id": "net1"})", "3") ==
          R"({"execute":"device_del","arguments":{"id": "net1"},"id":3})");
    CHECK(encodeCommand("a\"b\\c\nd\x01", "", R"("s")") == R"({"execute":"a\"b\\c\nd\u0001","id":"s"})");

    // The encoded command parses back (as JSON) with the same name.
    auto enc = encodeCommand("we\"ird\n", R"({"k":[1,2]})", "9");
    CHECK(enc.find('\n') == std::string::npos);
}

TEST_CASE("validateArguments accepts only one JSON object")
{
    CHECK(validateArguments("").ok());
    CHECK(validateArguments("{}").ok());
    CHECK(validateArguments(R"({"id": "x", "n": [1]})").ok());
    for (std::string_view bad : {"[]", "1", "\"s\"", "{", R"({"a":1} {"b":2})", "null"}) {
        auto r = validateArguments(bad);
        CHECK_FALSE(r.ok());
        if (!r.ok()) CHECK(r.error().kind() == ErrorKind::InvalidArgument);
    }
}

TEST_CASE("QMP error classes map to error kinds")
{
    CHECK(errorKindForClass("CommandNotFound") == ErrorKind::Unsupported);
    CHECK(errorKindForClass("KVMMissingCap") == ErrorKind::Unsupported);
    CHECK(errorKindForClass("DeviceNotFound") == ErrorKind::NotFound);
    CHECK(errorKindForClass("DeviceNotActive") == ErrorKind::VmBadState);
    CHECK(errorKindForClass("GenericError") == ErrorKind::InvalidArgument);
    CHECK(errorKindForClass("SomethingNew") == ErrorKind::InvalidArgument);
}

TEST_CASE("known events")
{
    for (auto name : {"SHUTDOWN", "POWERDOWN", "RESET", "STOP", "RESUME", "GUEST_PANICKED", "DEVICE_DELETED",
                      "BLOCK_IO_ERROR", "WATCHDOG", "SUSPEND", "WAKEUP"}) {
        CHECK(isKnownEvent(name));
    }
    CHECK_FALSE(isKnownEvent("RTC_CHANGE"));
    CHECK_FALSE(isKnownEvent("stop"));
    CHECK_FALSE(isKnownEvent(""));
}

TEST_CASE("line splitter: CRLF and LF, blank lines skipped, every split point")
{
    const std::string stream =
        "{\"QMP\": {}}\r\n\r\n{\"return\": {}, \"id\": 1}\r\n   \n{\"event\": \"STOP\"}\n{\"return\": 2}\r\n";
    const std::vector<std::string> expected = {"{\"QMP\": {}}", "{\"return\": {}, \"id\": 1}",
                                               "{\"event\": \"STOP\"}", "{\"return\": 2}"};
    for (size_t a = 0; a <= stream.size(); ++a) {
        for (size_t b = a; b <= stream.size(); ++b) {
            LineSplitter s;
            std::vector<std::string> got;
            for (auto part : {stream.substr(0, a), stream.substr(a, b - a), stream.substr(b)}) {
                s.append(part);
                for (;;) {
                    auto l = s.next();
                    REQUIRE(l.ok());
                    if (!*l) break;
                    got.emplace_back(**l);
                }
            }
            REQUIRE(got == expected);
            CHECK(s.buffered() == 0);
        }
    }
}

TEST_CASE("line splitter: a partial line stays buffered")
{
    LineSplitter s;
    s.append("{\"return\"");
    auto l = s.next();
    REQUIRE(l.ok());
    CHECK_FALSE(*l);
    CHECK(s.buffered() == 9);
    s.append(": 1}\r");
    CHECK_FALSE(*s.next());
    s.append("\n");
    auto l2 = s.next();
    REQUIRE(l2.ok());
    REQUIRE(*l2);
    CHECK(**l2 == "{\"return\": 1}");
}

TEST_CASE("line splitter: bounded line length")
{
    SECTION("a partial line over the limit")
    {
        LineSplitter s(16);
        s.append(std::string(16, 'x'));
        CHECK(s.next().ok());
        s.append("y");
        auto l = s.next();
        REQUIRE_FALSE(l.ok());
        CHECK(l.error().kind() == ErrorKind::TooLarge);
        // Stays failed.
        s.append("\n{}\n");
        CHECK_FALSE(s.next().ok());
    }
    SECTION("a complete line over the limit")
    {
        LineSplitter s(16);
        s.append(std::string(10, 'x') + "\n" + std::string(17, 'y') + "\n");
        auto first = s.next();
        REQUIRE(first.ok());
        CHECK(**first == std::string(10, 'x'));
        CHECK_FALSE(s.next().ok());
    }
    SECTION("the default limit allows a 1 MiB line")
    {
        LineSplitter s;
        std::string big = "{\"return\": \"" + std::string(1 << 20, 'a') + "\"}";
        s.append(big);
        s.append("\r\n");
        auto l = s.next();
        REQUIRE(l.ok());
        REQUIRE(*l);
        auto m = parseMessage(**l);
        REQUIRE(m.ok());
        CHECK(std::get<Return>(*m).json.size() == (1u << 20) + 2);
    }
}
