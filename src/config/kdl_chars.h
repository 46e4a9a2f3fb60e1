#pragma once

// Character classes of KDL 1 and 2 and a small UTF-8 codec, shared by the KDL parser and
// writer. Internal to src/config.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace vmr::config::kdl::chars {

// Unicode White_Space that is not a line break.
constexpr bool isSpace(char32_t c) noexcept
{
    return c == 0x09 || c == 0x20 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

// Line breaks (CRLF is handled by the callers as one). KDL 1 has no VT.
constexpr bool isNewline(char32_t c, bool v1 = false) noexcept
{
    return c == 0x0A || c == 0x0D || c == 0x85 || c == 0x0C || c == 0x2028 || c == 0x2029 ||
           (c == 0x0B && !v1);
}

// Code points that may not appear literally in a KDL 2 document (the BOM is checked apart).
constexpr bool isDisallowed(char32_t c) noexcept
{
    return c <= 0x08 || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0xD800 && c <= 0xDFFF) ||
           c == 0x200E || c == 0x200F || (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069) ||
           c == 0xFEFF;
}

constexpr bool isDigit(char32_t c) noexcept
{
    return c >= '0' && c <= '9';
}

constexpr bool isSign(char32_t c) noexcept
{
    return c == '+' || c == '-';
}

// A character that may be part of an identifier string.
constexpr bool isIdentChar(char32_t c, bool v1 = false) noexcept
{
    if (isSpace(c) || isNewline(c, v1) || isDisallowed(c)) return false;
    constexpr std::u32string_view kV2 = U"\\/(){};[]\"#=";
    constexpr std::u32string_view kV1 = U"\\/(){}<>;[]=,\"";
    return (v1 ? kV1 : kV2).find(c) == std::u32string_view::npos;
}

// Append `c` as UTF-8.
void appendUtf8(std::string& out, char32_t c);

// Decode one code point at `s[i]`, advancing i; nullopt on malformed UTF-8 (overlong,
// surrogate, truncated, above U+10FFFF).
std::optional<char32_t> decodeUtf8(std::string_view s, size_t& i);

}  // namespace vmr::config::kdl::chars
