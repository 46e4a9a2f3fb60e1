// The pure HTTP/1.1 codec: the request writer, responses and requests fed whole, byte by byte
// and in two parts, chunked bodies, every limit, malformed input, and the error chain.

#include "chv/http.h"

#include <catch2/catch.hpp>

#include <string>

using namespace vmr;
using namespace vmr::chv::http;

namespace {

// Feed `text` in pieces of `step` bytes; the message, or FAIL.
Message parseWhole(Parser::Kind kind, std::string_view text, size_t step, bool eof = false)
{
    Parser p(kind);
    bool done = false;
    for (size_t i = 0; i < text.size(); i += step) {
        auto r = p.feed(text.substr(i, step));
        if (!r) FAIL("feed: " << r.error().what());
        done = *r;
        if (done) REQUIRE(i + step >= text.size());  // nothing completes early
    }
    if (eof && !done) {
        auto r = p.finish();
        if (!r) FAIL("finish: " << r.error().what());
        done = *r;
    }
    REQUIRE(done);
    return p.take();
}

Error parseFailure(Parser::Kind kind, std::string_view text, Limits limits = {})
{
    Parser p(kind, limits);
    auto r = p.feed(text);
    if (r && !*r) r = p.finish();
    if (r) FAIL("should have failed: " << text);
    return r.error();
}

}  // namespace

TEST_CASE("request writer: one request per connection, body with its length")
{
    auto r = encodeRequest("PUT", "/api/v1/vm.create", R"({"payload":{}})");
    REQUIRE(r);
    CHECK(*r ==
          "PUT /api/v1/vm.create HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
          "Content-Type: application/json\r\nContent-Length: 14\r\nConnection: close\r\n\r\n"
          R"({"payload":{}})");
    auto get = encodeRequest("GET", "/api/v1/vmm.ping");
    REQUIRE(get);
    CHECK(*get ==
          "GET /api/v1/vmm.ping HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
          "Content-Length: 0\r\nConnection: close\r\n\r\n");
}

TEST_CASE("request writer refuses what would break the request line")
{
    CHECK(encodeRequest("P UT", "/x").error().kind() == ErrorKind::InvalidArgument);
    CHECK(encodeRequest("", "/x").error().kind() == ErrorKind::InvalidArgument);
    CHECK(encodeRequest("GET", "x").error().kind() == ErrorKind::InvalidArgument);
    CHECK(encodeRequest("GET", "/a b").error().kind() == ErrorKind::InvalidArgument);
    CHECK(encodeRequest("GET", "/a\r\nX: y").error().kind() == ErrorKind::InvalidArgument);
}

TEST_CASE("a response with Content-Length, whole and fragmented")
{
    std::string text =
        "HTTP/1.1 200 OK\r\nServer: Cloud Hypervisor API\r\nConnection: keep-alive\r\n"
        "Content-Type: application/json\r\nContent-Length: 19\r\n\r\n{\"version\":\"v53.0\"}";
    for (size_t step : {text.size(), size_t{1}, size_t{7}, text.size() / 2 + 1}) {
        Message m = parseWhole(Parser::Kind::Response, text, step);
        CHECK(m.status == 200);
        CHECK(m.reason == "OK");
        CHECK(m.versionMinor == 1);
        CHECK(m.body == "{\"version\":\"v53.0\"}");
        CHECK(m.header("content-type") == "application/json");
        CHECK(m.header("SERVER") == "Cloud Hypervisor API");
        CHECK_FALSE(m.header("X-Nothing"));
    }
}

TEST_CASE("204 has no body even with bytes after it; LF-only lines are read too")
{
    Parser p(Parser::Kind::Response);
    auto r = p.feed("HTTP/1.1 204 No Content\nServer: x\n\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    REQUIRE(r);
    REQUIRE(*r);
    Message first = p.take();
    CHECK(first.status == 204);
    CHECK(first.body.empty());
    // The next message was kept.
    r = p.feed({});
    REQUIRE(r);
    REQUIRE(*r);
    CHECK(p.take().body == "ok");
}

TEST_CASE("chunked body with extensions and trailers")
{
    std::string text =
        "HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5;ext=1\r\n[\"Err\r\n"
        "0B\r\nor from API\r\n"
        "2\r\n\"]\r\n"
        "0\r\nX-Trailer: yes\r\n\r\n";
    for (size_t step : {text.size(), size_t{1}, size_t{3}}) {
        Message m = parseWhole(Parser::Kind::Response, text, step);
        CHECK(m.status == 500);
        CHECK(m.reason == "Internal Server Error");
        CHECK(m.body == "[\"Error from API\"]");
    }
}

TEST_CASE("a response without a length runs until EOF")
{
    Message m = parseWhole(Parser::Kind::Response, "HTTP/1.0 200 OK\r\n\r\nuntil the end", 4, true);
    CHECK(m.versionMinor == 0);
    CHECK(m.body == "until the end");
}

TEST_CASE("interim 100 Continue is skipped")
{
    Message m = parseWhole(Parser::Kind::Response,
                           "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", 5);
    CHECK(m.status == 200);
    CHECK(m.body == "x");
}

TEST_CASE("EOF in the middle of a message is an error; before any byte it is not")
{
    Parser idle(Parser::Kind::Response);
    auto r = idle.finish();
    REQUIRE(r);
    CHECK_FALSE(*r);

    Parser p(Parser::Kind::Response);
    REQUIRE(p.feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"));
    auto cut = p.finish();
    REQUIRE_FALSE(cut);
    CHECK(cut.error().kind() == ErrorKind::ParseError);
    CHECK(cut.error().message().find("closed in the middle") != std::string::npos);
}

TEST_CASE("malformed responses are ParseErrors naming the problem")
{
    auto R = Parser::Kind::Response;
    CHECK(parseFailure(R, "SSH-2.0-OpenSSH\r\n\r\n").message().find("has no space") != std::string::npos);
    CHECK(parseFailure(R, "HTTP/2 200 OK\r\n\r\n").message().find("protocol version") != std::string::npos);
    CHECK(parseFailure(R, "HTTP/1.1 20 OK\r\n\r\n").message().find("3-digit") != std::string::npos);
    CHECK(parseFailure(R, "HTTP/1.1 999 Nope\r\n\r\n").message().find("out of range") != std::string::npos);
    CHECK(parseFailure(R, "HTTP/1.1 200OK\r\n\r\n").kind() == ErrorKind::ParseError);
    CHECK(parseFailure(R, "HTTP/1.1 200 OK\r\nNo colon\r\n\r\n").message().find("no ':'") !=
          std::string::npos);
    CHECK(parseFailure(R, "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n").message().find("not a token") !=
          std::string::npos);
    CHECK(parseFailure(R, "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n").message().find("folding") !=
          std::string::npos);
    CHECK(parseFailure(R, "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n").message().find("not a number") !=
          std::string::npos);
    CHECK(parseFailure(R, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
              .message()
              .find("two different") != std::string::npos);
    CHECK(parseFailure(R, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
              .message()
              .find("both") != std::string::npos);
    CHECK(parseFailure(R, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n").kind() ==
          ErrorKind::Unsupported);
    CHECK(parseFailure(R, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
              .message()
              .find("not hexadecimal") != std::string::npos);
    CHECK(parseFailure(R, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n")
              .message()
              .find("longer than its size") != std::string::npos);
    CHECK(parseFailure(R, "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n").message().find("bare CR") !=
          std::string::npos);
    CHECK(parseFailure(R, std::string("HTTP/1.1 200 OK\r\nX: a\x01\r\n\r\n")).message().find("control") !=
          std::string::npos);
}

TEST_CASE("every size is bounded")
{
    auto R = Parser::Kind::Response;
    Limits small;
    small.maxHeadBytes = 64;
    small.maxHeaders = 2;
    small.maxBody = 8;
    small.maxChunkLine = 16;
    CHECK(parseFailure(R, "HTTP/1.1 200 OK\r\nX-Long: " + std::string(100, 'a'), small).kind() ==
          ErrorKind::TooLarge);
    CHECK(parseFailure(R, "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", small).kind() ==
          ErrorKind::TooLarge);
    CHECK(parseFailure(R, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", small).kind() ==
          ErrorKind::TooLarge);
    CHECK(parseFailure(R, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\naaaaa\r\n5\r\n", small)
              .kind() == ErrorKind::TooLarge);
    CHECK(
        parseFailure(R, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + std::string(20, '0'), small)
            .kind() == ErrorKind::TooLarge);
    CHECK(parseFailure(R, "HTTP/1.1 200 OK\r\n\r\n" + std::string(9, 'x'), small).kind() ==
          ErrorKind::TooLarge);
    CHECK(parseFailure(R, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF\r\n")
              .kind() == ErrorKind::ParseError);
    // The head limit also holds when each line is short.
    std::string many = "HTTP/1.1 200 OK\r\n";
    for (int i = 0; i < 10; ++i) many += "A: 1234567\r\n";
    Limits head;
    head.maxHeadBytes = 64;
    CHECK(parseFailure(R, many + "\r\n", head).kind() == ErrorKind::TooLarge);
}

TEST_CASE("requests, as fake-chv reads them")
{
    auto text = encodeRequest("PUT", "/api/v1/vm.boot", "{}");
    REQUIRE(text);
    Message m = parseWhole(Parser::Kind::Request, *text, 3);
    CHECK(m.method == "PUT");
    CHECK(m.target == "/api/v1/vm.boot");
    CHECK(m.body == "{}");
    CHECK(m.header("Connection") == "close");

    Message bare = parseWhole(Parser::Kind::Request, "GET /api/v1/vm.info HTTP/1.1\r\n\r\n", 1);
    CHECK(bare.body.empty());

    auto Q = Parser::Kind::Request;
    CHECK(parseFailure(Q, "GET /a HTTP/1.1 x\r\n\r\n").kind() == ErrorKind::ParseError);
    CHECK(parseFailure(Q, "GET\r\n\r\n").kind() == ErrorKind::ParseError);
    CHECK(parseFailure(Q, "G(T /a HTTP/1.1\r\n\r\n").message().find("method") != std::string::npos);
}

TEST_CASE("encodeResponse writes what the parser reads back")
{
    Message m = parseWhole(Parser::Kind::Response, encodeResponse(500, R"(["a","b"])"), 2);
    CHECK(m.status == 500);
    CHECK(m.body == R"(["a","b"])");
    Message empty = parseWhole(Parser::Kind::Response, encodeResponse(204), 2);
    CHECK(empty.status == 204);
    CHECK(empty.header("Content-Length") == std::nullopt);
}

TEST_CASE("error chain: a JSON array of strings, else the body as one entry")
{
    CHECK(errorChain(R"(["Error from API","The VM could not boot","VM is not created"])") ==
          std::vector<std::string>{"Error from API", "The VM could not boot", "VM is not created"});
    CHECK(errorChain("[]").empty());
    CHECK(errorChain("").empty());
    CHECK(errorChain("  \n").empty());
    CHECK(errorChain("  plain text\n") == std::vector<std::string>{"plain text"});
    CHECK(errorChain(R"(["a",1])") == std::vector<std::string>{R"(["a",1])"});
    CHECK(errorChain("line\x01two") == std::vector<std::string>{"line two"});
    CHECK(errorChain(std::string(600, 'x')).front().size() == 512);
}
