#include "base/suggest.h"

#include <catch2/catch.hpp>

#include <array>

using vmr::closestMatch;
using vmr::editDistance;

TEST_CASE("edit distance counts inserts, deletes, substitutions and swaps", "[suggest]")
{
    CHECK(editDistance("", "") == 0);
    CHECK(editDistance("abc", "") == 3);
    CHECK(editDistance("", "abc") == 3);
    CHECK(editDistance("log_level", "log_level") == 0);
    CHECK(editDistance("log_levle", "log_level") == 1);  // transposition
    CHECK(editDistance("loglevel", "log_level") == 1);
    CHECK(editDistance("log_levels", "log_level") == 1);
    CHECK(editDistance("kitten", "sitting") == 3);
}

TEST_CASE("closest match only suggests plausible typos", "[suggest]")
{
    constexpr std::array<std::string_view, 3> kWords = {"state_dir", "runtime_dir", "socket"};
    CHECK(closestMatch("stat_dir", kWords) == "state_dir");
    CHECK(closestMatch("runtimedir", kWords) == "runtime_dir");
    CHECK(closestMatch("sockt", kWords) == "socket");
    CHECK_FALSE(closestMatch("colour", kWords).has_value());
    CHECK_FALSE(closestMatch("x", kWords).has_value());
}
