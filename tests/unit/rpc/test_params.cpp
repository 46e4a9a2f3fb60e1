#include "rpc/params.h"

#include <catch2/catch.hpp>

#include <climits>

using namespace vmr;
using namespace vmr::rpc;

namespace {

Params parsed(std::string_view json)
{
    auto p = Params::parse(json);
    INFO(json);
    REQUIRE(p.ok());
    return std::move(p).value();
}

template <typename T>
std::string failure(const Result<T>& r)
{
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind() == ErrorKind::InvalidParams);
    return r.error().message();
}

}  // namespace

TEST_CASE("empty params", "[params]")
{
    CHECK(parsed("").empty());
    CHECK(parsed("{}").empty());
    CHECK(parsed(" { } ").empty());
    Params p;
    CHECK(failure(p.string("name")) == "Missing parameter `name`");
    CHECK_FALSE(p.optString("name")->has_value());
}

TEST_CASE("strings", "[params]")
{
    Params p = parsed(R"({"name":"web\u00e9","n":3,"nul":null})");
    CHECK(*p.string("name") == "web\xc3\xa9");
    CHECK(**p.optString("name") == "web\xc3\xa9");
    CHECK(failure(p.string("n")) == "Parameter `n` must be a string, not a number");
    CHECK(failure(p.optString("n")) == "Parameter `n` must be a string, not a number");
    CHECK(failure(p.string("nul")) == "Parameter `nul` must be a string, not null");
    CHECK_FALSE(p.optString("nul")->has_value());
    CHECK(p.has("nul"));
    CHECK_FALSE(p.has("other"));
}

TEST_CASE("integers are exact and range checked", "[params]")
{
    Params p =
        parsed(R"({"cpus":4,"neg":-9223372036854775808,"big":9223372036854775808,"f":1.5,"e":1e3,"s":"4"})");
    CHECK(**p.optInt("cpus", 1, 256) == 4);
    CHECK(*p.integer("cpus", 1, 256) == 4);
    CHECK(failure(p.optInt("cpus", 8, 256)) == "Parameter `cpus` must be between 8 and 256");
    CHECK(**p.optInt("neg", INT64_MIN, 0) == INT64_MIN);
    CHECK(failure(p.optInt("big", 0, INT64_MAX)) ==
          "Parameter `big` must be between 0 and 9223372036854775807");
    CHECK(failure(p.optInt("f", 0, 10)) == "Parameter `f` must be an integer, not 1.5");
    CHECK(failure(p.optInt("e", 0, 10000)) == "Parameter `e` must be an integer, not 1e3");
    CHECK(failure(p.optInt("s", 0, 10)) == "Parameter `s` must be an integer, not a string");
    CHECK_FALSE(p.optInt("absent", 0, 1)->has_value());
    CHECK(failure(p.integer("absent", 0, 1)) == "Missing parameter `absent`");
}

TEST_CASE("booleans and raw values", "[params]")
{
    Params p = parsed(R"({"wait":true,"no":false,"obj":{"a":[1, 2]},"arr":[],"str":"x"})");
    CHECK(**p.optBool("wait") == true);
    CHECK(**p.optBool("no") == false);
    CHECK(failure(p.optBool("str")) == "Parameter `str` must be true or false, not a string");
    CHECK(**p.optRaw("obj") == R"({"a":[1, 2]})");
    CHECK(**p.optRaw("arr") == "[]");
    CHECK(**p.optRaw("str") == "\"x\"");
    CHECK_FALSE(p.optRaw("none")->has_value());
}

TEST_CASE("duplicates: the last one wins, order of first appearance kept", "[params]")
{
    Params p = parsed(R"({"a":1,"b":2,"a":"x","c":3,"b":4})");
    REQUIRE(p.fields().size() == 3);
    CHECK(p.fields()[0].name == "a");
    CHECK(p.fields()[1].name == "b");
    CHECK(p.fields()[2].name == "c");
    CHECK(*p.string("a") == "x");
    CHECK(**p.optInt("b", 0, 10) == 4);
}

TEST_CASE("allowOnly names the unknown parameter and suggests", "[params]")
{
    Params p = parsed(R"({"nmae":"web"})");
    auto r = p.allowOnly({"name", "wait"});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind() == ErrorKind::InvalidParams);
    CHECK(r.error().message() == "Unknown parameter `nmae`");
    CHECK(r.error().hint() == "Did you mean `name`?");

    r = parsed(R"({"zzzzzz":1})").allowOnly({"name", "wait"});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().hint() == "Known parameters: name, wait");
    r = parsed(R"({"x":1})").allowOnly({});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().hint() == "This method takes no parameters");
    CHECK(parsed(R"({"name":"a","wait":true})").allowOnly({"name", "wait"}).ok());
    CHECK(parsed("{}").allowOnly({}).ok());
}

TEST_CASE("params that are not an object", "[params]")
{
    CHECK(failure(Params::parse("[1,2]")) == "This method takes named params (a JSON object), not an array");
    CHECK(failure(Params::parse("3")) == "The params must be a JSON object");
    CHECK(failure(Params::parse("{\"a\":")) == "The params are not valid JSON");
    auto arr = Params::parse(R"([1,"b"])", true);
    REQUIRE(arr.ok());
    CHECK(arr->isArray());
    REQUIRE(arr->fields().size() == 2);
    CHECK(arr->fields()[1].text == "b");
    CHECK_FALSE(arr->has(""));
}
