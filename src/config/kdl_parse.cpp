// The KDL parser: one recursive-descent parser over decoded code points, with a flag for
// the KDL 1 differences (docs/kdl.md lists them). It follows the "Full Grammar" section of
// the KDL 2 draft; the only recursion is into children blocks, bounded by maxDepth.

#include "config/kdl.h"
#include "config/kdl_chars.h"

#include <algorithm>
#include <array>
#include <cstdio>

namespace vmr::config::kdl {

namespace {

using chars::isDigit;
using chars::isSign;
using chars::isSpace;

// A non-decimal integer longer than this is refused: converting it to decimal costs
// quadratic time, and no configuration needs a 4096-digit number.
constexpr size_t kMaxRadixDigits = 4096;

constexpr std::array<std::u32string_view, 6> kV2BareKeywords = {U"true", U"false", U"null",
                                                                U"inf",  U"-inf",  U"nan"};

std::string toUtf8(std::u32string_view s)
{
    std::string out;
    for (char32_t c : s) chars::appendUtf8(out, c);
    return out;
}

std::string describe(char32_t c)
{
    if (c >= 0x21 && c < 0x7F) return std::string("'") + static_cast<char>(c) + "'";
    char buf[16];
    std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(c));
    return buf;
}

// One character of a multi-line string body before dedenting: a literal character, a
// literal line break (c == '\n', escaped == false), or a character produced by an escape
// (never whitespace or a line break for the dedent rules).
struct BodyChar {
    char32_t c;
    bool escaped;
};

class Parser {
public:
    Parser(std::u32string_view text, std::vector<uint32_t> lineStarts, bool v1, size_t maxDepth)
        : s_(text), lineStarts_(std::move(lineStarts)), v1_(v1), maxDepth_(maxDepth)
    {
    }

    bool parseDocument(std::vector<Node>& out)
    {
        if (!v1_ && peek() == 0xFEFF) ++i_;
        return parseNodes(&out, 0, false);
    }

    const SyntaxError& error() const { return err_; }

private:
    // ---- Input ----
    bool eof() const { return i_ >= s_.size(); }
    char32_t peek(size_t ahead = 0) const { return i_ + ahead < s_.size() ? s_[i_ + ahead] : 0; }
    bool startsWith(std::u32string_view w) const { return s_.substr(i_, w.size()) == w; }

    Position posAt(size_t index) const
    {
        auto it = std::upper_bound(lineStarts_.begin(), lineStarts_.end(), static_cast<uint32_t>(index));
        size_t line = static_cast<size_t>(it - lineStarts_.begin());
        return Position{static_cast<uint32_t>(line),
                        static_cast<uint32_t>(index - lineStarts_[line - 1] + 1)};
    }

    bool fail(size_t at, std::string message, std::string hint = {})
    {
        if (!failed_) {
            failed_ = true;
            err_.pos = posAt(at);
            err_.message = std::move(message);
            err_.hint = std::move(hint);
            err_.version = v1_ ? Version::V1 : Version::V2;
        }
        return false;
    }

    bool isNewlineAt() const { return !eof() && chars::isNewline(peek(), v1_); }
    bool isIdentChar(char32_t c) const { return chars::isIdentChar(c, v1_); }

    // Consume one line break (CRLF counts as one).
    void takeNewline()
    {
        if (peek() == '\r' && peek(1) == '\n') ++i_;
        ++i_;
    }

    // ---- Whitespace and comments ----
    // `/* ... */`, nested. Iterative, so deep nesting cannot exhaust the stack.
    bool blockComment()
    {
        size_t start = i_;
        i_ += 2;
        size_t depth = 1;
        while (depth > 0) {
            if (eof()) return fail(start, "Unclosed /* comment", "Close the comment with */");
            if (startsWith(U"/*")) {
                ++depth;
                i_ += 2;
            } else if (startsWith(U"*/")) {
                --depth;
                i_ += 2;
            } else {
                ++i_;
            }
        }
        return true;
    }

    void lineComment()
    {
        i_ += 2;
        while (!eof() && !isNewlineAt()) ++i_;
        if (!eof()) takeNewline();
    }

    // ws*: spaces and block comments (and, in KDL 1, a BOM anywhere). Returns false on error.
    bool ws(bool& any)
    {
        for (;;) {
            if (eof()) return true;
            char32_t c = peek();
            if (isSpace(c) || (v1_ && c == 0xFEFF)) {
                ++i_;
                any = true;
            } else if (startsWith(U"/*")) {
                if (!blockComment()) return false;
                any = true;
            } else {
                return true;
            }
        }
    }

    // escline: `\` ws* (single-line comment | newline | eof). Only called at a `\`.
    bool escline()
    {
        size_t start = i_;
        ++i_;
        bool any = false;
        if (!ws(any)) return false;
        if (startsWith(U"//")) {
            lineComment();
            return true;
        }
        if (isNewlineAt()) {
            takeNewline();
            return true;
        }
        if (eof() && !v1_) return true;
        return fail(start, "A line continuation \\ must be followed by the end of the line",
                    "Remove the \\ or move what follows it to the next line");
    }

    // node-space*: whitespace and line continuations within a node. Sets `any`.
    bool nodeSpace(bool& any)
    {
        for (;;) {
            if (!ws(any)) return false;
            if (peek() == '\\' && !eof()) {
                if (!escline()) return false;
                any = true;
                continue;
            }
            return true;
        }
    }
    bool nodeSpace()
    {
        bool any = false;
        return nodeSpace(any);
    }

    // line-space*: node-space, line breaks and single-line comments.
    bool lineSpace()
    {
        for (;;) {
            bool any = false;
            if (!nodeSpace(any)) return false;
            if (isNewlineAt()) {
                takeNewline();
            } else if (startsWith(U"//")) {
                lineComment();
            } else if (!any) {
                return true;
            }
        }
    }

    // After a slashdash: KDL 2 allows line breaks and comments; KDL 1 only node-space.
    bool afterSlashdash()
    {
        size_t at = i_;
        i_ += 2;
        if (!(v1_ ? nodeSpace() : lineSpace())) return false;
        if (startsWith(U"/-"))
            return fail(i_, "A slashdash /- cannot comment out another slashdash",
                        "Remove one of the two /-");
        if (eof() || peek() == '}' || peek() == ';')
            return fail(at, "Nothing follows this slashdash /-",
                        "A /- comments out the node, argument, property or children block after it");
        return true;
    }

    bool atNodeEnd() const
    {
        return eof() || isNewlineAt() || peek() == ';' || peek() == '}' || startsWith(U"//");
    }

    // ---- Nodes ----
    bool parseNodes(std::vector<Node>* out, size_t depth, bool inBlock, size_t open = 0)
    {
        for (;;) {
            if (!lineSpace()) return false;
            if (eof()) {
                if (inBlock)
                    return fail(open, "This children block is never closed",
                                "Add a } to close the block opened here");
                return true;
            }
            if (peek() == '}') {
                if (inBlock) return true;
                return fail(i_, "Unexpected } outside a children block", "Remove it, or add the matching {");
            }
            bool dashed = false;
            if (startsWith(U"/-")) {
                if (!afterSlashdash()) return false;
                dashed = true;
            }
            Node node;
            if (!parseNode(node, depth)) return false;
            // Terminator.
            if (peek() == ';') {
                ++i_;
            } else if (isNewlineAt()) {
                takeNewline();
            } else if (startsWith(U"//")) {
                lineComment();
            } else if (eof()) {
            } else if (peek() == '}' && inBlock) {
                if (v1_)
                    return fail(i_, "In KDL 1 the last node of a children block needs a ; or a line break");
            } else {
                return fail(i_, "Unexpected " + describe(peek()) + " after the node",
                            "End the node with a line break or ;");
            }
            if (!dashed && out) out->push_back(std::move(node));
        }
    }

    bool parseChildren(std::vector<Node>* out, size_t depth)
    {
        size_t open = i_;
        if (depth + 1 > maxDepth_)
            return fail(open, "Children blocks are nested more than " + std::to_string(maxDepth_) + " deep",
                        "Flatten the document");
        ++i_;
        if (!parseNodes(out, depth + 1, true, open)) return false;
        ++i_;  // the '}'
        return true;
    }

    bool parseNode(Node& node, size_t depth)
    {
        node.pos = posAt(i_);
        if (peek() == '(') {
            std::string type;
            if (!parseType(type)) return false;
            node.type = std::move(type);
            if (!v1_ && !nodeSpace()) return false;
        }
        size_t nameAt = i_;
        Value name;
        if (!parseValue(name, ValueRole::Name)) return false;
        if (!name.isString() || name.type)
            return fail(nameAt, "A node name must be a string", "Quote it to make it a string");
        node.name = std::move(name.text);

        enum { Entries, AfterDashedChildren, AfterChildren } state = Entries;
        for (;;) {
            bool space = false;
            if (!nodeSpace(space)) return false;
            if (atNodeEnd()) return true;
            if (startsWith(U"/-")) {
                size_t dashAt = i_;
                if (!afterSlashdash()) return false;
                if (peek() == '{') {
                    if (!parseChildren(nullptr, depth)) return false;
                    if (state == Entries) state = AfterDashedChildren;
                    continue;
                }
                if (state != Entries) return entriesAfterChildren(dashAt);
                Node discard;
                if (!parseEntry(discard)) return false;
                continue;
            }
            if (peek() == '{') {
                if (state == AfterChildren)
                    return fail(i_, "A node can have only one children block", "Merge the two blocks");
                if (!parseChildren(&node.children, depth)) return false;
                node.hasChildrenBlock = true;
                state = AfterChildren;
                continue;
            }
            if (state != Entries) return entriesAfterChildren(i_);
            if (!space)
                return fail(i_, "Expected a space before this argument or property",
                            "Separate arguments and properties with spaces");
            if (!parseEntry(node)) return false;
        }
    }

    bool entriesAfterChildren(size_t at)
    {
        return fail(at, "Arguments and properties must come before the children block",
                    "Move them before the {");
    }

    // ---- Entries ----
    enum class ValueRole { Name, Entry, Type };

    bool parseEntry(Node& node)
    {
        size_t start = i_;
        Value v;
        if (!parseValue(v, ValueRole::Entry)) return false;
        // KDL 1: a bare word is only valid as a property key.
        bool bareV1 = bareValueNotAllowed_;
        bareValueNotAllowed_ = false;
        if (v.isString() && !v.type) {
            size_t afterKey = i_;
            if (!v1_ && !nodeSpace()) return false;
            if (peek() == '=') return parsePropValue(node, std::move(v.text), start);
            if (bareV1) {
                bool any = false;
                if (ws(any) && any && peek() == '=')
                    return fail(afterKey, "KDL 1 does not allow spaces around =", "Write key=value");
                i_ = start;
                return bareValueError();
            }
            i_ = afterKey;
            node.args.push_back(std::move(v));
            return true;
        }
        if (bareV1) return bareValueError();
        size_t after = i_;
        if (!v1_ && !nodeSpace()) return false;
        if (peek() == '=') {
            if (v.type)
                return fail(start, "A type annotation cannot come before a property key",
                            "Put it before the value: key=(type)value");
            return fail(start, "A property key must be a string", "Quote the key");
        }
        i_ = after;
        node.args.push_back(std::move(v));
        return true;
    }

    // After a property key, at the '='.
    bool parsePropValue(Node& node, std::string key, size_t keyAt)
    {
        ++i_;
        if (!v1_ && !nodeSpace()) return false;
        if (atNodeEnd() || peek() == '{' || startsWith(U"/-"))
            return fail(keyAt, "Property \"" + key + "\" has no value", "Write key=value");
        Property p{std::move(key), posAt(keyAt), {}};
        if (!parseValue(p.value, ValueRole::Entry)) return false;
        if (bareValueNotAllowed_) return bareValueError();
        node.props.push_back(std::move(p));
        return true;
    }

    bool bareValueError()
    {
        bareValueNotAllowed_ = false;
        return fail(i_, "KDL 1 does not allow a bare word as a value", "Quote the value");
    }

    bool parseType(std::string& out)
    {
        size_t open = i_;
        ++i_;
        if (!v1_ && !nodeSpace()) return false;
        Value t;
        size_t at = i_;
        if (peek() == ')')
            return fail(at, "Empty type annotation", "Write a type name inside ( ), or remove them");
        if (!parseValue(t, ValueRole::Type)) return false;
        if (!t.isString()) return fail(at, "A type annotation must be a string", "Quote it");
        if (!v1_ && !nodeSpace()) return false;
        if (peek() != ')')
            return fail(open, "This type annotation is not closed", "Add a ) after the type name");
        ++i_;
        out = std::move(t.text);
        return true;
    }

    // A value, a node name, a property key or a type name: string, number or keyword, with
    // an optional type annotation for entries.
    bool parseValue(Value& v, ValueRole role)
    {
        v.pos = posAt(i_);
        if (peek() == '(' && role == ValueRole::Entry) {
            std::string type;
            if (!parseType(type)) return false;
            v.type = std::move(type);
            if (!v1_ && !nodeSpace()) return false;
        }
        if (eof()) return fail(i_, "Expected a value at the end of the document");
        char32_t c = peek();
        if (c == '"') return parseQuoted(v);
        if (!v1_ && c == '#') {
            size_t n = 0;
            while (peek(n) == '#') ++n;
            if (peek(n) == '"') return parseRaw(v, n, n);
            return parseKeyword(v);
        }
        if (v1_ && c == 'r' && (peek(1) == '"' || peek(1) == '#')) {
            size_t n = 0;
            while (peek(1 + n) == '#') ++n;
            if (peek(1 + n) == '"') return parseRaw(v, n, n + 1);
        }
        if (isDigit(c) || (isSign(c) && isDigit(peek(1)))) {
            if (role != ValueRole::Entry)
                return fail(i_,
                            role == ValueRole::Name ? "A node name cannot be a number"
                                                    : "A type annotation cannot be a number",
                            "Quote it to make it a string");
            return parseNumber(v);
        }
        return parseIdentifier(v, role);
    }

    bool parseIdentifier(Value& v, ValueRole role)
    {
        size_t start = i_;
        while (!eof() && isIdentChar(peek())) ++i_;
        if (i_ == start) {
            char32_t c = peek();
            if (c == '=' || c == ')' || c == ']' || c == '[' || c == '#' || c == ',' || c == '<' || c == '>')
                return fail(i_, "Unexpected " + describe(c), "Quote strings that contain it");
            return fail(i_, "Unexpected " + describe(c));
        }
        std::u32string_view word = s_.substr(start, i_ - start);
        if (v1_) {
            if (word == U"true" || word == U"false" || word == U"null") {
                if (role != ValueRole::Entry)
                    return fail(start, "\"" + toUtf8(word) + "\" is a keyword, not a name", "Quote it");
                v.kind = word == U"null" ? ValueKind::Null : ValueKind::Boolean;
                v.boolean = word == U"true";
                return true;
            }
            v.kind = ValueKind::String;
            v.text = toUtf8(word);
            if (role == ValueRole::Entry) bareValueNotAllowed_ = true;
            return true;
        }
        for (auto k : kV2BareKeywords) {
            if (word == k) {
                std::string w = toUtf8(word);
                return fail(start, "Bare \"" + w + "\" is not allowed",
                            "Write #" + w + " for the keyword, or \"" + w + "\" for a string");
            }
        }
        size_t skip = isSign(word[0]) ? 1 : 0;
        if (word.size() > skip + 1 && word[skip] == '.' && isDigit(word[skip + 1]))
            return fail(start, "\"" + toUtf8(word) + "\" looks like a number but is not one",
                        "Write a digit before the point (0.5), or quote it for a string");
        v.kind = ValueKind::String;
        v.text = toUtf8(word);
        return true;
    }

    bool parseKeyword(Value& v)
    {
        size_t start = i_;
        ++i_;
        while (!eof() && isIdentChar(peek())) ++i_;
        std::u32string_view word = s_.substr(start, i_ - start);
        if (word == U"#true" || word == U"#false") {
            v.kind = ValueKind::Boolean;
            v.boolean = word == U"#true";
        } else if (word == U"#null") {
            v.kind = ValueKind::Null;
        } else if (word == U"#inf") {
            v.kind = ValueKind::Inf;
        } else if (word == U"#-inf") {
            v.kind = ValueKind::NegInf;
        } else if (word == U"#nan") {
            v.kind = ValueKind::NaN;
        } else {
            return fail(
                start, "Unknown keyword \"" + toUtf8(word) + "\"",
                "Keywords are #true, #false, #null, #inf, #-inf and #nan; quote strings that contain #");
        }
        return true;
    }

    // ---- Numbers ----
    bool parseNumber(Value& v)
    {
        size_t start = i_;
        while (!eof() && isIdentChar(peek())) ++i_;
        std::u32string_view tok = s_.substr(start, i_ - start);
        auto bad = [&](std::string why) {
            return fail(start, "Invalid number \"" + toUtf8(tok) + "\": " + why,
                        "Fix the number, or quote it to make it a string");
        };
        bool negative = tok[0] == '-';
        std::u32string_view body = isSign(tok[0]) ? tok.substr(1) : tok;
        if (body.size() > 1 && body[0] == '0' && (body[1] == 'x' || body[1] == 'o' || body[1] == 'b')) {
            unsigned radix = body[1] == 'x' ? 16 : body[1] == 'o' ? 8 : 2;
            std::vector<unsigned> digits;
            for (size_t k = 2; k < body.size(); ++k) {
                char32_t c = body[k];
                if (c == '_') {
                    if (k == 2) return bad("a digit must come first after the prefix");
                    continue;
                }
                int d = -1;
                if (isDigit(c)) d = static_cast<int>(c - '0');
                if (c >= 'a' && c <= 'f') d = static_cast<int>(c - 'a' + 10);
                if (c >= 'A' && c <= 'F') d = static_cast<int>(c - 'A' + 10);
                if (d < 0 || static_cast<unsigned>(d) >= radix)
                    return bad(describe(c) + " is not a base-" + std::to_string(radix) + " digit");
                digits.push_back(static_cast<unsigned>(d));
            }
            if (digits.empty()) return bad("no digits after the prefix");
            if (digits.size() > kMaxRadixDigits) return bad("more than 4096 digits");
            v.kind = ValueKind::Integer;
            v.text = radixToDecimal(digits, radix);
            if (negative && v.text != "0") v.text.insert(0, 1, '-');
            return true;
        }
        // decimal := sign? integer ('.' integer)? exponent?
        size_t k = 0;
        auto integer = [&](std::string& out) {
            if (k >= body.size() || !isDigit(body[k])) return false;
            while (k < body.size() && (isDigit(body[k]) || body[k] == '_')) {
                if (body[k] != '_') out += static_cast<char>(body[k]);
                ++k;
            }
            return true;
        };
        std::string intPart, fracPart, expPart;
        bool hasFrac = false, hasExp = false, expNegative = false;
        if (!integer(intPart)) return bad("expected a digit");
        if (k < body.size() && body[k] == '.') {
            ++k;
            hasFrac = true;
            if (!integer(fracPart)) return bad("expected a digit after the decimal point");
        }
        if (k < body.size() && (body[k] == 'e' || body[k] == 'E')) {
            ++k;
            hasExp = true;
            if (k < body.size() && isSign(body[k])) expNegative = body[k++] == '-';
            if (!integer(expPart)) return bad("expected a digit in the exponent");
        }
        if (k != body.size()) return bad("unexpected " + describe(body[k]));
        auto trimZeros = [](std::string s) {
            size_t nz = s.find_first_not_of('0');
            return nz == std::string::npos ? std::string("0") : s.substr(nz);
        };
        intPart = trimZeros(intPart);
        if (!hasFrac && !hasExp) {
            v.kind = ValueKind::Integer;
            v.text = (negative && intPart != "0" ? "-" : "") + intPart;
            return true;
        }
        v.kind = ValueKind::Float;
        v.text = (negative ? "-" : "") + intPart;
        if (hasFrac) v.text += "." + fracPart;
        if (hasExp) v.text += std::string("E") + (expNegative ? "-" : "+") + trimZeros(expPart);
        return true;
    }

    static std::string radixToDecimal(const std::vector<unsigned>& digits, unsigned radix)
    {
        // Little-endian limbs of 10^9.
        std::vector<uint32_t> limbs{0};
        for (unsigned d : digits) {
            uint64_t carry = d;
            for (auto& limb : limbs) {
                uint64_t x = static_cast<uint64_t>(limb) * radix + carry;
                limb = static_cast<uint32_t>(x % 1000000000u);
                carry = x / 1000000000u;
            }
            if (carry) limbs.push_back(static_cast<uint32_t>(carry));
        }
        std::string out = std::to_string(limbs.back());
        for (size_t k = limbs.size() - 1; k-- > 0;) {
            std::string part = std::to_string(limbs[k]);
            out += std::string(9 - part.size(), '0') + part;
        }
        return out;
    }

    // ---- Strings ----
    // A `\` escape in a quoted string (i_ at the `\`). Whitespace escapes yield nothing.
    bool parseEscape(std::u32string& out, bool& produced)
    {
        size_t at = i_;
        ++i_;
        produced = true;
        char32_t c = peek();
        if (eof()) return fail(at, "Unclosed string");
        if (!v1_ && (isSpace(c) || chars::isNewline(c))) {
            while (!eof() && (isSpace(peek()) || isNewlineAt())) {
                if (isNewlineAt())
                    takeNewline();
                else
                    ++i_;
            }
            produced = false;
            return true;
        }
        ++i_;
        switch (c) {
            case 'n': out += U'\n'; return true;
            case 'r': out += U'\r'; return true;
            case 't': out += U'\t'; return true;
            case '\\': out += U'\\'; return true;
            case '"': out += U'"'; return true;
            case 'b': out += U'\b'; return true;
            case 'f': out += U'\f'; return true;
            default: break;
        }
        if (c == 's' && !v1_) {
            out += U' ';
            return true;
        }
        if (c == '/' && v1_) {
            out += U'/';
            return true;
        }
        if (c == 'u') {
            if (peek() != '{') return fail(at, "A \\u escape needs braces: \\u{41}");
            ++i_;
            uint32_t cp = 0;
            size_t n = 0;
            while (!eof() && peek() != '}') {
                char32_t h = peek();
                int d = isDigit(h)               ? static_cast<int>(h - '0')
                        : (h >= 'a' && h <= 'f') ? static_cast<int>(h - 'a' + 10)
                        : (h >= 'A' && h <= 'F') ? static_cast<int>(h - 'A' + 10)
                                                 : -1;
                if (d < 0 || ++n > 6) return fail(at, "A \\u{...} escape takes 1 to 6 hexadecimal digits");
                cp = cp * 16 + static_cast<uint32_t>(d);
                ++i_;
            }
            if (eof() || n == 0) return fail(at, "A \\u{...} escape takes 1 to 6 hexadecimal digits");
            ++i_;
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return fail(at,
                            "\\u{...} must name a Unicode scalar value (not a surrogate, at most 10FFFF)");
            out += static_cast<char32_t>(cp);
            return true;
        }
        return fail(
            at, "Invalid escape \\" + toUtf8(std::u32string(1, c)),
            v1_ ? "Valid escapes: \\n \\r \\t \\\\ \\/ \\\" \\b \\f \\u{...}"
                : "Valid escapes: \\n \\r \\t \\\\ \\\" \\b \\f \\s \\u{...}; write \\\\ for a backslash");
    }

    bool parseQuoted(Value& v)
    {
        size_t start = i_;
        if (!v1_ && startsWith(U"\"\"\"")) return parseMultiline(v);
        ++i_;
        std::u32string out;
        for (;;) {
            if (eof()) return fail(start, "Unclosed string", "Add the closing \"");
            char32_t c = peek();
            if (c == '"') {
                ++i_;
                break;
            }
            if (c == '\\') {
                bool produced = false;
                if (!parseEscape(out, produced)) return false;
                continue;
            }
            if (!v1_ && isNewlineAt())
                return fail(start, "A quoted string cannot contain a line break",
                            "Close it on the same line, write \\n, or use a \"\"\" multi-line string");
            out += c;
            ++i_;
        }
        v.kind = ValueKind::String;
        v.text = toUtf8(out);
        return true;
    }

    bool parseMultiline(Value& v)
    {
        size_t start = i_;
        i_ += 3;
        if (!isNewlineAt())
            return fail(start, "A \"\"\" multi-line string must start with a line break after \"\"\"",
                        "Use \"...\" for a single-line string");
        takeNewline();
        std::vector<BodyChar> body;
        for (;;) {
            if (eof()) return fail(start, "Unclosed multi-line string", "End it with \"\"\" on its own line");
            if (startsWith(U"\"\"\"")) {
                i_ += 3;
                break;
            }
            if (peek() == '\\') {
                std::u32string one;
                bool produced = false;
                if (!parseEscape(one, produced)) return false;
                if (produced) body.push_back({one[0], true});
                continue;
            }
            if (isNewlineAt()) {
                takeNewline();
                body.push_back({U'\n', false});
                continue;
            }
            body.push_back({peek(), false});
            ++i_;
        }
        return dedent(body, start, v);
    }

    bool parseRaw(Value& v, size_t hashes, size_t prefix)
    {
        size_t start = i_;
        i_ += prefix;  // `#`s (and KDL 1's `r`)
        std::u32string closing(hashes + 1, U'#');
        closing[0] = U'"';
        if (!v1_ && startsWith(U"\"\"\"")) {
            i_ += 3;
            if (!isNewlineAt())
                return fail(start, "A multi-line raw string must start with a line break after \"\"\"",
                            "Use #\"...\"# for a single-line raw string");
            takeNewline();
            std::u32string close(hashes + 3, U'#');
            close[0] = close[1] = close[2] = U'"';
            std::vector<BodyChar> body;
            for (;;) {
                if (eof())
                    return fail(start, "Unclosed multi-line raw string", "End it with " + toUtf8(close));
                if (startsWith(close)) {
                    i_ += close.size();
                    break;
                }
                if (isNewlineAt()) {
                    takeNewline();
                    body.push_back({U'\n', false});
                } else {
                    body.push_back({peek(), false});
                    ++i_;
                }
            }
            return dedent(body, start, v);
        }
        ++i_;
        std::u32string out;
        for (;;) {
            if (eof()) return fail(start, "Unclosed raw string", "End it with " + toUtf8(closing));
            if (startsWith(closing)) {
                i_ += closing.size();
                break;
            }
            if (!v1_ && isNewlineAt())
                return fail(start, "A raw string cannot contain a line break",
                            "Use a multi-line raw string: #\"\"\" ... \"\"\"#");
            out += peek();
            ++i_;
        }
        v.kind = ValueKind::String;
        v.text = toUtf8(out);
        return true;
    }

    // Multi-line string rules: the last line holds only whitespace and is the prefix every
    // other non-blank line must start with; it is removed from them.
    bool dedent(const std::vector<BodyChar>& body, size_t start, Value& v)
    {
        std::vector<std::vector<BodyChar>> lines(1);
        for (const auto& bc : body) {
            if (bc.c == U'\n' && !bc.escaped)
                lines.emplace_back();
            else
                lines.back().push_back(bc);
        }
        auto blank = [](const std::vector<BodyChar>& line) {
            return std::all_of(line.begin(), line.end(),
                               [](const BodyChar& bc) { return !bc.escaped && isSpace(bc.c); });
        };
        const auto& last = lines.back();
        if (!blank(last))
            return fail(start, "The closing \"\"\" of a multi-line string must be on a line of its own",
                        "Put a line break before the closing \"\"\"");
        std::u32string out;
        for (size_t n = 0; n + 1 < lines.size(); ++n) {
            const auto& line = lines[n];
            if (n > 0) out += U'\n';
            if (blank(line)) continue;
            bool prefixed = line.size() >= last.size();
            for (size_t k = 0; prefixed && k < last.size(); ++k)
                prefixed = !line[k].escaped && line[k].c == last[k].c;
            if (!prefixed)
                return fail(
                    start,
                    "Line " + std::to_string(n + 1) +
                        " of this multi-line string does not start with the closing line's indentation",
                    "Indent every line at least as much as the closing \"\"\", with the same characters");
            for (size_t k = last.size(); k < line.size(); ++k) out += line[k].c;
        }
        v.kind = ValueKind::String;
        v.text = toUtf8(out);
        return true;
    }

    std::u32string_view s_;
    std::vector<uint32_t> lineStarts_;  // code-point index where each line begins
    size_t i_ = 0;
    bool v1_;
    size_t maxDepth_;
    bool failed_ = false;
    // KDL 1: the last value was a bare identifier, which is only valid as a property key.
    bool bareValueNotAllowed_ = false;
    SyntaxError err_;
};

// Decoded text plus where each line starts; or the first encoding problem.
struct Decoded {
    std::u32string text;
    std::vector<uint32_t> lineStarts{0};
    std::optional<SyntaxError> error;
};

Decoded decode(std::string_view in, bool v1)
{
    Decoded d;
    d.text.reserve(in.size());
    size_t i = 0;
    auto failAt = [&](std::string message, std::string hint) {
        SyntaxError e;
        e.pos = Position{static_cast<uint32_t>(d.lineStarts.size()),
                         static_cast<uint32_t>(d.text.size() - d.lineStarts.back() + 1)};
        e.message = std::move(message);
        e.hint = std::move(hint);
        e.version = v1 ? Version::V1 : Version::V2;
        d.error = std::move(e);
    };
    while (i < in.size()) {
        auto c = chars::decodeUtf8(in, i);
        if (!c) {
            failAt("The document is not valid UTF-8", "Save the file as UTF-8");
            return d;
        }
        bool bomOk = d.text.empty() || v1;
        if (chars::isDisallowed(*c) && !(*c == 0xFEFF && bomOk) && !(v1 && *c == 0x0B)) {
            failAt(describe(*c) + " may not appear in a KDL document",
                   *c == 0xFEFF ? "A byte order mark is allowed only at the very start"
                                : "Remove it; inside a quoted string write it as \\u{...}");
            return d;
        }
        d.text.push_back(*c);
        bool crBeforeLf = *c == '\r' && i < in.size() && in[i] == '\n';
        if (chars::isNewline(*c, v1) && !crBeforeLf)
            d.lineStarts.push_back(static_cast<uint32_t>(d.text.size()));
    }
    return d;
}

ParseResult parseAs(std::string_view text, bool v1, size_t maxDepth)
{
    ParseResult r;
    Decoded d = decode(text, v1);
    if (d.error) {
        r.error = std::move(*d.error);
        return r;
    }
    Parser p(d.text, std::move(d.lineStarts), v1, maxDepth);
    Document doc;
    doc.version = v1 ? Version::V1 : Version::V2;
    if (p.parseDocument(doc.nodes))
        r.document = std::move(doc);
    else
        r.error = p.error();
    return r;
}

// `/- kdl-version N` on the first line (after an optional BOM): N, else 0.
int versionMarker(std::string_view text)
{
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
    auto skipSpaces = [&](std::string_view s) {
        size_t i = 0;
        while (i < s.size()) {
            size_t k = i;
            auto c = chars::decodeUtf8(s, k);
            if (!c || !isSpace(*c)) break;
            i = k;
        }
        return s.substr(i);
    };
    if (text.substr(0, 2) != "/-") return 0;
    text = skipSpaces(text.substr(2));
    if (text.substr(0, 11) != "kdl-version") return 0;
    std::string_view rest = skipSpaces(text.substr(11));
    if (rest.size() == text.size() - 11 || rest.empty()) return 0;
    char n = rest[0];
    if (n != '1' && n != '2') return 0;
    rest = skipSpaces(rest.substr(1));
    size_t k = 0;
    auto c = chars::decodeUtf8(rest, k);
    if (!c || !chars::isNewline(*c)) return 0;
    return n - '0';
}

// kdl-rs's heuristic for which error to show when both dialects fail.
bool looksLikeV1(std::string_view text)
{
    for (std::string_view w : {" true", " false", " null", "=true", "=false", "=null", " r\"", " r#\""})
        if (text.find(w) != std::string_view::npos) return true;
    return false;
}

}  // namespace

ParseResult parseDocument(std::string_view text, const ParseOptions& options)
{
    int marker = versionMarker(text);
    if (marker == 1) return parseAs(text, true, options.maxDepth);
    if (marker == 2 || options.dialect == Dialect::V2) return parseAs(text, false, options.maxDepth);
    if (options.dialect == Dialect::V1) return parseAs(text, true, options.maxDepth);
    ParseResult v2 = parseAs(text, false, options.maxDepth);
    if (v2.ok()) return v2;
    ParseResult v1 = parseAs(text, true, options.maxDepth);
    if (v1.ok() || looksLikeV1(text)) return v1;
    return v2;
}

Result<Document> parse(std::string_view text, std::string_view fileName, const ParseOptions& options)
{
    ParseResult r = parseDocument(text, options);
    if (r.ok()) return std::move(*r.document);
    std::string msg(fileName);
    msg += ':' + std::to_string(r.error.pos.line) + ':' + std::to_string(r.error.pos.column) + ": ";
    msg += r.error.message;
    return Error(ErrorKind::ParseError, std::move(msg), r.error.hint);
}

}  // namespace vmr::config::kdl
