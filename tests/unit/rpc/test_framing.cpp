#include "rpc/framing.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace vmr;
using namespace vmr::rpc;

namespace {

struct Collector {
    std::vector<std::string> lines;
    std::function<void(std::string_view)> fn = [this](std::string_view l) { lines.emplace_back(l); };
};

}  // namespace

TEST_CASE("lines are split, \\r stripped, empty lines skipped", "[framing]")
{
    LineFramer f;
    Collector c;
    REQUIRE(f.feed("a\nbc\r\n\n\r\nd", c.fn).ok());
    CHECK(c.lines == std::vector<std::string>{"a", "bc"});
    CHECK(f.buffered() == 1);
    REQUIRE(f.feed("e\n", c.fn).ok());
    CHECK(c.lines == std::vector<std::string>{"a", "bc", "de"});
    CHECK(f.buffered() == 0);
}

TEST_CASE("input split at every byte boundary gives the same lines", "[framing]")
{
    const std::string input =
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"vmr.ping\"}\n\r\n[1,2]\r\nx\n\n{\"a\":\"\\n\"}\nlast-"
        "partial";
    const std::vector<std::string> want = {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"vmr.ping\"}", "[1,2]",
                                           "x", "{\"a\":\"\\n\"}"};
    for (size_t i = 0; i <= input.size(); ++i) {
        for (size_t j = i; j <= input.size(); ++j) {
            LineFramer f;
            Collector c;
            REQUIRE(f.feed(std::string_view(input).substr(0, i), c.fn).ok());
            REQUIRE(f.feed(std::string_view(input).substr(i, j - i), c.fn).ok());
            REQUIRE(f.feed(std::string_view(input).substr(j), c.fn).ok());
            INFO("split at " << i << " and " << j);
            REQUIRE(c.lines == want);
            REQUIRE(f.buffered() == std::string_view("last-partial").size());
        }
    }
    // One byte at a time.
    LineFramer f;
    Collector c;
    for (char ch : input) REQUIRE(f.feed(std::string_view(&ch, 1), c.fn).ok());
    CHECK(c.lines == want);
}

TEST_CASE("a line of exactly the limit passes; one byte more is TooLarge", "[framing]")
{
    const size_t limit = kMaxLineBytes;
    CHECK(limit == 1024 * 1024);
    {
        LineFramer f;
        Collector c;
        std::string line(limit, 'x');
        REQUIRE(f.feed(line, c.fn).ok());
        REQUIRE(f.feed("\n", c.fn).ok());
        REQUIRE(c.lines.size() == 1);
        CHECK(c.lines[0].size() == limit);
    }
    {
        // Pending data past the limit fails at once, before any newline.
        LineFramer f;
        Collector c;
        std::string line(limit, 'x');
        REQUIRE(f.feed(line, c.fn).ok());
        auto r = f.feed("y", c.fn);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind() == ErrorKind::TooLarge);
        CHECK(c.lines.empty());
        CHECK(f.buffered() == 0);
    }
    {
        // A complete 1 MiB + 1 line in one chunk, after a good line that is still delivered.
        LineFramer f;
        Collector c;
        std::string data = "ok\n" + std::string(limit + 1, 'z') + "\n";
        auto r = f.feed(data, c.fn);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind() == ErrorKind::TooLarge);
        CHECK(c.lines == std::vector<std::string>{"ok"});
    }
}

TEST_CASE("a long line in many small pieces is linear, not quadratic", "[framing]")
{
    // 1 MiB in 16-byte pieces: a quadratic rescan would touch ~32 GiB and time out.
    LineFramer f;
    Collector c;
    std::string piece(16, 'a');
    for (size_t n = 0; n < kMaxLineBytes / piece.size(); ++n) REQUIRE(f.feed(piece, c.fn).ok());
    CHECK(f.buffered() == kMaxLineBytes);
    REQUIRE(f.feed("\n", c.fn).ok());
    REQUIRE(c.lines.size() == 1);
    CHECK(c.lines[0].size() == kMaxLineBytes);
    CHECK(f.buffered() == 0);
}

TEST_CASE("a small limit", "[framing]")
{
    LineFramer f(4);
    Collector c;
    REQUIRE(f.feed("abcd\nab", c.fn).ok());
    REQUIRE(f.feed("cd", c.fn).ok());
    REQUIRE_FALSE(f.feed("e", c.fn).ok());
    // After an error the framer is empty and usable (callers normally close).
    REQUIRE(f.feed("xy\n", c.fn).ok());
    CHECK(c.lines == std::vector<std::string>{"abcd", "xy"});
}
