// vmrctl console / log: argument parsing and the params they send. Pure: no daemon.

#include "console_commands.h"

#include <catch2/catch.hpp>

using namespace vmr;
using namespace vmr::ctl;

TEST_CASE("vmrctl console arguments", "[ctl]")
{
    auto a = parseConsoleArgs({"console", "web"});
    REQUIRE(a.ok());
    CHECK(a->name == "web");
    CHECK(!a->readOnly);
    CHECK(a->scrollback == kDefaultConsoleScrollback);
    CHECK(consoleParams(*a) == R"({"name":"web","mode":"rw","scrollback":4096})");

    a = parseConsoleArgs({"console", "--ro", "web", "--scrollback", "0"});
    REQUIRE(a.ok());
    CHECK(consoleParams(*a) == R"({"name":"web","mode":"ro","scrollback":0})");
    a = parseConsoleArgs({"console", "--scrollback=65536", "web"});
    REQUIRE(a.ok());
    CHECK(a->scrollback == 65536);

    for (std::vector<std::string> bad : {std::vector<std::string>{"console"},
                                         {"console", "a", "b"},
                                         {"console", "web", "--scrollback"},
                                         {"console", "web", "--scrollback", "-1"},
                                         {"console", "web", "--scrollback", "1k"},
                                         {"console", "web", "--rw"}}) {
        auto r = parseConsoleArgs(bad);
        REQUIRE(!r);
        CHECK(r.error().kind() == ErrorKind::InvalidArgument);
        CHECK(!r.error().message().empty());
    }
    CHECK(parseConsoleArgs({"console", "web", "--rw"}).error().message().find("`--rw`") != std::string::npos);
}

TEST_CASE("vmrctl log arguments", "[ctl]")
{
    auto a = parseLogArgs({"log", "web"});
    REQUIRE(a.ok());
    CHECK(logParams(*a) == R"({"name":"web"})");
    a = parseLogArgs({"log", "web", "--console", "--tail", "20", "-f"});
    REQUIRE(a.ok());
    CHECK(a->follow);
    CHECK(logParams(*a) == R"({"name":"web","console":true,"tail":20})");
    a = parseLogArgs({"log", "--provision", "--tail=5", "web"});
    REQUIRE(a.ok());
    CHECK(logParams(*a) == R"({"name":"web","provision":true,"tail":5})");

    auto r = parseLogArgs({"log", "web", "--provision", "-f"});
    REQUIRE(!r);
    CHECK(r.error().message().find("cannot be followed") != std::string::npos);
    CHECK(!parseLogArgs({"log"}));
    CHECK(!parseLogArgs({"log", "web", "--tail", "x"}));
}
