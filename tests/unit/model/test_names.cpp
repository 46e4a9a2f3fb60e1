#include "model/names.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace vmr;
using vmr::model::validateVmName;

TEST_CASE("valid VM names", "[names]")
{
    const std::vector<std::string> names = {
        "a", "Z", "0", "web", "web-1", "db_2.old", "A.b-c_d", "9lives", std::string(63, 'x')};
    for (const auto& name : names) {
        INFO(name);
        CHECK(validateVmName(name).ok());
    }
}

TEST_CASE("invalid VM names are rejected with the rule and the name", "[names]")
{
    struct Case {
        std::string name;
        std::string shown;
        std::string problem;
    };
    const Case cases[] = {
        {"", "\"\"", "it is empty"},
        {".", "\".\"", "it must start with a letter or a digit"},
        {"..", "\"..\"", "it must start with a letter or a digit"},
        {".hidden", "\".hidden\"", "it must start with a letter or a digit"},
        {"-rf", "\"-rf\"", "it must start with a letter or a digit"},
        {"_x", "\"_x\"", "it must start with a letter or a digit"},
        {"a/b", "\"a/b\"", "it may contain only letters"},
        {"../etc", "\"../etc\"", "it must start with a letter or a digit"},
        {"a/../../etc", "\"a/../../etc\"", "it may contain only letters"},
        {std::string("a\0b", 3), "\"a\\u0000b\"", "it may contain only letters"},
        {"a b", "\"a b\"", "it may contain only letters"},
        {"a\nb", "\"a\\nb\"", "it may contain only letters"},
        {"caf\xc3\xa9", "\"caf\xc3\xa9\"", "it may contain only letters"},
        {"bad\xff", "\"bad\\ufffd\"", "it may contain only letters"},
        {"a$(reboot)", "\"a$(reboot)\"", "it may contain only letters"},
        {std::string(64, 'x'), "\"" + std::string(64, 'x') + "\"", "it is longer than 63 characters"},
    };
    for (const auto& c : cases) {
        INFO(c.shown);
        auto r = validateVmName(c.name);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind() == ErrorKind::InvalidName);
        CHECK_THAT(r.error().message(), Catch::StartsWith("Invalid VM name " + c.shown + ": " + c.problem));
        CHECK_THAT(r.error().hint(), Catch::Contains("[A-Za-z0-9][A-Za-z0-9._-]{0,62}"));
    }
}

TEST_CASE("a huge bad name is shown cut short", "[names]")
{
    auto r = validateVmName(std::string(10000, 'y'));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().size() < 200);
    CHECK_THAT(r.error().message(), Catch::Contains("\"..."));
}
