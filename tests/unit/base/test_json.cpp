#include "base/json.h"

#include <catch2/catch.hpp>

using vmr::json::quote;
using vmr::json::Writer;

TEST_CASE("strings are escaped per RFC 8259", "[json]")
{
    CHECK(quote("plain") == "\"plain\"");
    CHECK(quote("a\"b\\c") == "\"a\\\"b\\\\c\"");
    CHECK(quote("line\nnext\r\t") == "\"line\\nnext\\r\\t\"");
    CHECK(quote(std::string_view("\x01\x1f", 2)) == "\"\\u0001\\u001f\"");
    CHECK(quote(std::string_view("nul\0x", 5)) == "\"nul\\u0000x\"");
    CHECK(quote("\b\f") == "\"\\b\\f\"");
    CHECK(quote("/") == "\"/\"");
}

TEST_CASE("valid UTF-8 passes through, invalid bytes become U+FFFD", "[json]")
{
    CHECK(quote("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80") ==
          "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"");
    CHECK(quote("\xff") == "\"\\ufffd\"");
    CHECK(quote("\xc3") == "\"\\ufffd\"");                                   // truncated sequence
    CHECK(quote("\xc0\xaf") == "\"\\ufffd\\ufffd\"");                        // overlong '/'
    CHECK(quote("\xed\xa0\x80") == "\"\\ufffd\\ufffd\\ufffd\"");             // surrogate
    CHECK(quote("\xf4\x90\x80\x80") == "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");  // > U+10FFFF
}

TEST_CASE("writer places commas and colons", "[json]")
{
    Writer w;
    w.beginObject()
        .field("jsonrpc", "2.0")
        .field("id", 7)
        .key("result")
        .beginArray()
        .value(true)
        .null()
        .value(-3L)
        .value(18446744073709551615ULL)
        .beginObject()
        .endObject()
        .beginArray()
        .endArray()
        .endArray()
        .key("raw")
        .raw("{\"x\":1}")
        .endObject();
    CHECK(w.str() ==
          R"({"jsonrpc":"2.0","id":7,"result":[true,null,-3,18446744073709551615,{},[]],"raw":{"x":1}})");
}

TEST_CASE("doubles are finite JSON numbers", "[json]")
{
    Writer w;
    w.beginArray().value(1.5).value(0.0).value(1.0 / 0.0).endArray();
    CHECK(w.str() == "[1.5,0,null]");
}
