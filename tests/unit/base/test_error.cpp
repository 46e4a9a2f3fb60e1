#include "base/error.h"
#include "base/log.h"
#include "base/result.h"

#include <catch2/catch.hpp>

#include <cerrno>
#include <set>

using namespace vmr;

TEST_CASE("every error kind has a distinct dotted name", "[error]")
{
    std::set<std::string_view> seen;
    for (int i = 0; i < static_cast<int>(ErrorKind::Count_); ++i) {
        auto name = kindName(static_cast<ErrorKind>(i));
        CHECK(!name.empty());
        CHECK(seen.insert(name).second);
    }
    CHECK(kindName(ErrorKind::VmNotFound) == "vm.not_found");
}

TEST_CASE("what() joins the cause chain and errno text", "[error]")
{
    Error io = Error::fromErrno(ENOENT, "Cannot open /x");
    CHECK(io.kind() == ErrorKind::NotFound);
    Error top = Error(ErrorKind::Config, "Cannot load vmrd.toml", "Check the path").causedBy(io);
    CHECK(top.what() == "Cannot load vmrd.toml: Cannot open /x: No such file or directory");
    CHECK(top.hint() == "Check the path");
    REQUIRE(top.cause() != nullptr);
    CHECK(top.cause()->sysErrno() == ENOENT);
}

namespace {
Result<int> half(int v)
{
    if (v % 2) return Unexpected(Error(ErrorKind::InvalidArgument, "Odd"));
    return v / 2;
}
Result<int> quarter(int v)
{
    auto h = half(v);
    if (!h) return std::move(h).error();
    return half(*h);
}
Result<void> check(int v)
{
    VMR_TRY(quarter(v));
    return success();
}
}  // namespace

TEST_CASE("Result carries a value or an error", "[result]")
{
    CHECK(*quarter(8) == 2);
    CHECK(!quarter(6).ok());
    CHECK(quarter(6).error().message() == "Odd");
    CHECK(check(8).ok());
    CHECK(check(2).error().kind() == ErrorKind::InvalidArgument);
}

TEST_CASE("shell quoting for logged commands", "[log]")
{
    CHECK(log::shellQuote("qemu-img") == "qemu-img");
    CHECK(log::shellQuote("") == "''");
    CHECK(log::shellQuote("a b") == "'a b'");
    CHECK(log::shellQuote("it's") == "'it'\\''s'");
    CHECK(log::shellQuote("file=/x,format=raw") == "file=/x,format=raw");
}
