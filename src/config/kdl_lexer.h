#pragma once

// The lexical half of the KDL parser, internal to src/config: a cursor over the decoded code
// points that keeps the first error, whitespace and comments, and the scalars (strings in all
// their forms, numbers, keywords and bare identifiers) read into a Value. The parser in
// kdl_parse.cpp builds nodes on it; both take a flag for the KDL 1 differences (docs/kdl.md).

#include "config/kdl.h"
#include "config/kdl_chars.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vmr::config::kdl::detail {

std::string toUtf8(std::u32string_view s);
// A character for messages: 'x' when printable ASCII, else U+XXXX.
std::string describe(char32_t c);

// Where a value stands: node names and type names cannot be numbers, nor KDL 1 keywords.
enum class ValueRole { Name, Entry, Type };

class Lexer {
public:
    const SyntaxError& error() const { return err_; }

protected:
    Lexer(std::u32string_view text, std::vector<uint32_t> lineStarts, bool v1)
        : s_(text), lineStarts_(std::move(lineStarts)), v1_(v1)
    {
    }

    // ---- Input ----
    bool eof() const { return i_ >= s_.size(); }
    char32_t peek(size_t ahead = 0) const { return i_ + ahead < s_.size() ? s_[i_ + ahead] : 0; }
    bool startsWith(std::u32string_view w) const { return s_.substr(i_, w.size()) == w; }
    bool isNewlineAt() const { return !eof() && chars::isNewline(peek(), v1_); }
    bool isIdentChar(char32_t c) const { return chars::isIdentChar(c, v1_); }
    // Consume one line break (CRLF counts as one).
    void takeNewline()
    {
        if (peek() == '\r' && peek(1) == '\n') ++i_;
        ++i_;
    }

    Position posAt(size_t index) const;
    // Keeps the first error only (the rest follow from it); always returns false.
    bool fail(size_t at, std::string message, std::string hint = {});

    // ---- Whitespace and comments ----
    // ws*: spaces and block comments (and, in KDL 1, a BOM anywhere). Sets `any`.
    bool ws(bool& any);
    // node-space*: whitespace and line continuations within a node. Sets `any`.
    bool nodeSpace(bool& any);
    bool nodeSpace();
    // line-space*: node-space, line breaks and single-line comments.
    bool lineSpace();
    void lineComment();

    // ---- Scalars ----
    bool parseQuoted(Value& v);
    // `hashes` #s around the quotes; `prefix` characters before the opening quote.
    bool parseRaw(Value& v, size_t hashes, size_t prefix);
    bool parseKeyword(Value& v);
    bool parseNumber(Value& v);
    bool parseIdentifier(Value& v, ValueRole role);

    std::u32string_view s_;
    std::vector<uint32_t> lineStarts_;  // code-point index where each line begins
    size_t i_ = 0;
    bool v1_;
    // KDL 1: the last value was a bare identifier, which is only valid as a property key.
    bool bareValueNotAllowed_ = false;

private:
    struct BodyChar;

    bool blockComment();
    bool escline();
    bool parseEscape(std::u32string& out, bool& produced);
    bool multiline(size_t start, std::u32string_view close, bool raw, Value& v);
    bool dedent(const std::vector<BodyChar>& body, size_t start, Value& v);

    bool failed_ = false;
    SyntaxError err_;
};

}  // namespace vmr::config::kdl::detail
