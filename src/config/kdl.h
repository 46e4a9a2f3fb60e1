#pragma once

// KDL documents: the model (Document, Node, Value with type annotations and source
// positions), the parser (KDL 2.0, with KDL 1.0 as a fallback) and the normalised writer
// used by the KDL test suite and `kdlfmt`. docs/kdl.md describes what is accepted.

#include "base/result.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmr::config::kdl {

// A place in the source text. Lines and columns count from 1; a column counts Unicode code
// points (a tab is one column). Line breaks are the ones KDL defines (LF, CRLF, CR, NEL,
// VT, FF, LS, PS), so a position agrees with lineText() below.
struct Position {
    uint32_t line = 0;
    uint32_t column = 0;
    bool operator==(const Position&) const = default;
};

enum class Version { V1 = 1, V2 = 2 };

enum class ValueKind { String, Integer, Float, Boolean, Null, Inf, NegInf, NaN };

struct Value {
    ValueKind kind = ValueKind::Null;
    // String: the decoded text (UTF-8). Integer: decimal digits with a leading '-' when
    // negative, whatever radix was written ("0x10" is "16"), no size limit. Float: the
    // normalised decimal text ("1.5E+10"), kept as text so no precision is lost.
    std::string text;
    bool boolean = false;
    std::optional<std::string> type;  // the type annotation, without its parentheses
    Position pos;                     // of the annotation if any, else of the value

    bool isString() const noexcept { return kind == ValueKind::String; }
    bool isNumber() const noexcept
    {
        return kind == ValueKind::Integer || kind == ValueKind::Float || kind == ValueKind::Inf ||
               kind == ValueKind::NegInf || kind == ValueKind::NaN;
    }
    // The integer, if this is an Integer that fits int64_t.
    std::optional<int64_t> toInt64() const;
};

struct Property {
    std::string name;
    Position pos;  // of the key
    Value value;
};

struct Node {
    std::optional<std::string> type;
    std::string name;
    Position pos;  // of the type annotation if any, else of the name
    std::vector<Value> args;
    // Every property as written, in order, duplicates included (the last one wins: prop()).
    std::vector<Property> props;
    std::vector<Node> children;
    bool hasChildrenBlock = false;  // `{}` was written, even if empty

    // The effective value of property `name` (the rightmost one), or null.
    const Property* prop(std::string_view name) const;
};

struct Document {
    std::vector<Node> nodes;
    Version version = Version::V2;  // the dialect the document was read as
};

// Which dialects to try. A version marker on the first line (`/- kdl-version 1`) overrides.
enum class Dialect {
    V2,        // KDL 2.0 only
    V1,        // KDL 1.0 only
    V2ThenV1,  // KDL 2.0, and KDL 1.0 when that fails (the spec guarantees no ambiguity)
};

struct ParseOptions {
    Dialect dialect = Dialect::V2ThenV1;
    // Children blocks nested deeper than this are refused (bounded stack on any input).
    size_t maxDepth = 128;
};

struct SyntaxError {
    Position pos;
    std::string message;  // starts with a capital, no position in it
    std::string hint;
    Version version = Version::V2;  // the dialect whose error this is
};

struct ParseResult {
    std::optional<Document> document;
    SyntaxError error;  // meaningful when document is empty
    bool ok() const noexcept { return document.has_value(); }
};

ParseResult parseDocument(std::string_view text, const ParseOptions& options = {});

// The same, as a Result: the error is ErrorKind::ParseError with the message
// "<fileName>:<line>:<column>: <message>".
Result<Document> parse(std::string_view text, std::string_view fileName, const ParseOptions& options = {});

// The normalised KDL 2 text of a document, as the KDL test suite's expected_kdl files write
// it: no comments, 4-space indents, arguments then properties sorted by key (duplicates
// collapsed to the last), strings quoted only when they cannot be bare identifiers,
// integers in decimal, floats in E notation, keywords with `#`. Ends with a newline; an
// empty document is "\n".
std::string format(const Document& doc);
std::string formatValue(const Value& value);
// `s` bare when it is a valid KDL 2 identifier string, else quoted with escapes.
std::string formatString(std::string_view s);
bool isBareIdentifier(std::string_view s);

// Line `line` (1-based) of `text` without its line break, split as positions are counted;
// empty when there is no such line.
std::string_view lineText(std::string_view text, uint32_t line);

}  // namespace vmr::config::kdl
