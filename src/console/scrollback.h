#pragma once

// Scrollback: the last bytes of one console, kept as the shared pieces the hub fans out, so that
// a viewer (live, catching up or replaying) is sent the very buffer every other viewer gets.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

namespace vmr::console {

// Bytes are numbered from 0 (the first byte the hub ever read); the scrollback holds the range
// [begin(), end()). It keeps at least the last `capacity` bytes and at most one piece more.
// Small pieces that no viewer holds any more are merged, so that a console that prints a byte at
// a time does not cost one allocation per byte of scrollback.
class Scrollback {
public:
    using Piece = std::shared_ptr<const std::string>;

    static constexpr size_t kMergeLimit = 4096;  // pieces merged up to this size

    explicit Scrollback(size_t capacity) : capacity_(capacity) {}

    // Adds bytes at end(); returns the piece that holds them (shared with the scrollback).
    Piece append(std::string_view data);

    uint64_t begin() const noexcept { return begin_; }
    uint64_t end() const noexcept { return begin_ + bytes_; }
    size_t bytes() const noexcept { return bytes_; }
    size_t capacity() const noexcept { return capacity_; }
    size_t pieces() const noexcept { return pieces_.size(); }

    // The piece holding byte `at` (begin() <= at < end()) and that piece's first byte number.
    struct Slice {
        Piece piece;
        uint64_t first = 0;
    };
    Slice at(uint64_t at) const;

private:
    struct Entry {
        uint64_t first;
        Piece piece;
    };
    void trim();

    size_t capacity_;
    uint64_t begin_ = 0;
    size_t bytes_ = 0;
    std::deque<Entry> pieces_;
};

}  // namespace vmr::console
