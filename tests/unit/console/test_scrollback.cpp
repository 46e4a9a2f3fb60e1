// Scrollback: byte numbering, trimming to capacity, merging of small pieces, lookup.

#include "console/scrollback.h"

#include <catch2/catch.hpp>

using vmr::console::Scrollback;

TEST_CASE("scrollback keeps the last capacity bytes and numbers them from the first byte", "[scrollback]")
{
    Scrollback sb(10000);
    std::string all;
    std::vector<Scrollback::Piece> held;  // as viewers would, so nothing is merged
    for (int i = 0; i < 50; ++i) {
        std::string piece(1000, static_cast<char>('a' + i % 26));
        held.push_back(sb.append(piece));
        all += piece;
    }
    CHECK(sb.end() == 50000);
    CHECK(sb.bytes() >= 10000);
    CHECK(sb.bytes() < 11000);
    CHECK(sb.begin() == sb.end() - sb.bytes());
    for (uint64_t at = sb.begin(); at < sb.end(); at += 333) {
        auto slice = sb.at(at);
        REQUIRE(slice.first <= at);
        REQUIRE(at < slice.first + slice.piece->size());
        CHECK((*slice.piece)[at - slice.first] == all[at]);
    }
    CHECK(sb.append("") == nullptr);
}

TEST_CASE("small pieces nobody holds are merged; held ones never change", "[scrollback]")
{
    Scrollback sb(1 << 20);
    for (int i = 0; i < 1000; ++i) sb.append("x");
    CHECK(sb.pieces() == 1);
    CHECK(sb.bytes() == 1000);

    auto held = sb.append("y");  // a viewer holds the merged piece now
    CHECK(*held == std::string(1000, 'x') + "y");
    auto next = sb.append("z");
    CHECK(*held == std::string(1000, 'x') + "y");  // unchanged
    CHECK(*next == "z");
    CHECK(sb.pieces() == 2);

    std::string big(Scrollback::kMergeLimit, 'b');
    next.reset();
    sb.append(big);  // too big to merge
    CHECK(sb.pieces() == 3);
    auto slice = sb.at(1001);
    CHECK(*slice.piece == "z");
    CHECK(slice.first == 1001);
}
