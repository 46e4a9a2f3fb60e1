// The KDL parser: one recursive-descent parser over decoded code points, with a flag for
// the KDL 1 differences (docs/kdl.md lists them). It follows the "Full Grammar" section of
// the KDL 2 draft; the only recursion is into children blocks, bounded by maxDepth. The
// lexical half (whitespace, comments and scalars) is kdl_lexer.cpp.

#include "config/kdl.h"
#include "config/kdl_lexer.h"

namespace vmr::config::kdl {

namespace {

using chars::isDigit;
using chars::isSign;
using chars::isSpace;
using detail::describe;
using detail::ValueRole;

class Parser : public detail::Lexer {
public:
    Parser(std::u32string_view text, std::vector<uint32_t> lineStarts, bool v1, size_t maxDepth)
        : Lexer(text, std::move(lineStarts), v1), maxDepth_(maxDepth)
    {
    }

    bool parseDocument(std::vector<Node>& out)
    {
        if (!v1_ && peek() == 0xFEFF) ++i_;
        return parseNodes(&out, 0, false);
    }

private:
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

    size_t maxDepth_;
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
