#include "config/kdl_lexer.h"

#include "base/json.h"

#include <algorithm>
#include <array>
#include <cstdio>

namespace vmr::config::kdl::detail {

namespace {

using chars::isDigit;
using chars::isSign;
using chars::isSpace;

// A non-decimal integer longer than this is refused: converting it to decimal costs
// quadratic time, and no configuration needs a 4096-digit number.
constexpr size_t kMaxRadixDigits = 4096;

constexpr std::array<std::u32string_view, 6> kV2BareKeywords = {U"true", U"false", U"null",
                                                                U"inf",  U"-inf",  U"nan"};

// The value of a hexadecimal (so also octal, binary, decimal) digit, or -1.
int hexDigit(char32_t c)
{
    if (isDigit(c)) return static_cast<int>(c - '0');
    if (c >= 'a' && c <= 'f') return static_cast<int>(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return static_cast<int>(c - 'A' + 10);
    return -1;
}

std::string radixToDecimal(const std::vector<unsigned>& digits, unsigned radix)
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

}  // namespace

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

// ---- Input ----

Position Lexer::posAt(size_t index) const
{
    auto it = std::upper_bound(lineStarts_.begin(), lineStarts_.end(), static_cast<uint32_t>(index));
    size_t line = static_cast<size_t>(it - lineStarts_.begin());
    return Position{static_cast<uint32_t>(line), static_cast<uint32_t>(index - lineStarts_[line - 1] + 1)};
}

bool Lexer::fail(size_t at, std::string message, std::string hint)
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

// ---- Whitespace and comments ----

// `/* ... */`, nested. Iterative, so deep nesting cannot exhaust the stack.
bool Lexer::blockComment()
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

void Lexer::lineComment()
{
    i_ += 2;
    while (!eof() && !isNewlineAt()) ++i_;
    if (!eof()) takeNewline();
}

bool Lexer::ws(bool& any)
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
bool Lexer::escline()
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

bool Lexer::nodeSpace(bool& any)
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

bool Lexer::nodeSpace()
{
    bool any = false;
    return nodeSpace(any);
}

bool Lexer::lineSpace()
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

// ---- Identifiers and keywords ----

bool Lexer::parseIdentifier(Value& v, ValueRole role)
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
                return fail(start, json::quote(toUtf8(word)) + " is a keyword, not a name", "Quote it");
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

bool Lexer::parseKeyword(Value& v)
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
        return fail(start, "Unknown keyword \"" + toUtf8(word) + "\"",
                    "Keywords are #true, #false, #null, #inf, #-inf and #nan; quote strings that contain #");
    }
    return true;
}

// ---- Numbers ----

bool Lexer::parseNumber(Value& v)
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
            int d = hexDigit(c);
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

// ---- Strings ----

// One character of a multi-line string body before dedenting: a literal character, a
// literal line break (c == '\n', escaped == false), or a character produced by an escape
// (never whitespace or a line break for the dedent rules).
struct Lexer::BodyChar {
    char32_t c;
    bool escaped;
};

// A `\` escape in a quoted string (i_ at the `\`). Whitespace escapes yield nothing.
bool Lexer::parseEscape(std::u32string& out, bool& produced)
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
            int d = hexDigit(peek());
            if (d < 0 || ++n > 6) return fail(at, "A \\u{...} escape takes 1 to 6 hexadecimal digits");
            cp = cp * 16 + static_cast<uint32_t>(d);
            ++i_;
        }
        if (eof() || n == 0) return fail(at, "A \\u{...} escape takes 1 to 6 hexadecimal digits");
        ++i_;
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return fail(at, "\\u{...} must name a Unicode scalar value (not a surrogate, at most 10FFFF)");
        out += static_cast<char32_t>(cp);
        return true;
    }
    return fail(
        at, "Invalid escape \\" + toUtf8(std::u32string(1, c)),
        v1_ ? "Valid escapes: \\n \\r \\t \\\\ \\/ \\\" \\b \\f \\u{...}"
            : "Valid escapes: \\n \\r \\t \\\\ \\\" \\b \\f \\s \\u{...}; write \\\\ for a backslash");
}

bool Lexer::parseQuoted(Value& v)
{
    size_t start = i_;
    if (!v1_ && startsWith(U"\"\"\"")) {
        i_ += 3;
        return multiline(start, U"\"\"\"", false, v);
    }
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

bool Lexer::parseRaw(Value& v, size_t hashes, size_t prefix)
{
    size_t start = i_;
    i_ += prefix;  // `#`s (and KDL 1's `r`)
    if (!v1_ && startsWith(U"\"\"\"")) {
        i_ += 3;
        std::u32string close(hashes + 3, U'#');
        close[0] = close[1] = close[2] = U'"';
        return multiline(start, close, true, v);
    }
    std::u32string closing(hashes + 1, U'#');
    closing[0] = U'"';
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

// A multi-line string (raw or not) after its opening quotes, up to and with `close`.
bool Lexer::multiline(size_t start, std::u32string_view close, bool raw, Value& v)
{
    if (!isNewlineAt()) {
        if (raw)
            return fail(start, "A multi-line raw string must start with a line break after \"\"\"",
                        "Use #\"...\"# for a single-line raw string");
        return fail(start, "A \"\"\" multi-line string must start with a line break after \"\"\"",
                    "Use \"...\" for a single-line string");
    }
    takeNewline();
    std::vector<BodyChar> body;
    for (;;) {
        if (eof()) {
            if (raw) return fail(start, "Unclosed multi-line raw string", "End it with " + toUtf8(close));
            return fail(start, "Unclosed multi-line string", "End it with \"\"\" on its own line");
        }
        if (startsWith(close)) {
            i_ += close.size();
            break;
        }
        if (!raw && peek() == '\\') {
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

// Multi-line string rules: the last line holds only whitespace and is the prefix every
// other non-blank line must start with; it is removed from them.
bool Lexer::dedent(const std::vector<BodyChar>& body, size_t start, Value& v)
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
            return fail(start,
                        "Line " + std::to_string(n + 1) +
                            " of this multi-line string does not start with the closing line's indentation",
                        "Indent every line at least as much as the closing \"\"\", with the same characters");
        for (size_t k = last.size(); k < line.size(); ++k) out += line[k].c;
    }
    v.kind = ValueKind::String;
    v.text = toUtf8(out);
    return true;
}

}  // namespace vmr::config::kdl::detail
