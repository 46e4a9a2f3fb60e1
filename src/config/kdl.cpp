// KDL model helpers, UTF-8, and the normalised writer (the KDL test suite's rules).

#include "config/kdl.h"

#include "config/kdl_chars.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <map>

namespace vmr::config::kdl {

namespace chars {

void appendUtf8(std::string& out, char32_t c)
{
    auto u = static_cast<uint32_t>(c);
    if (u < 0x80) {
        out += static_cast<char>(u);
    } else if (u < 0x800) {
        out += static_cast<char>(0xC0 | (u >> 6));
        out += static_cast<char>(0x80 | (u & 0x3F));
    } else if (u < 0x10000) {
        out += static_cast<char>(0xE0 | (u >> 12));
        out += static_cast<char>(0x80 | ((u >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (u & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (u >> 18));
        out += static_cast<char>(0x80 | ((u >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((u >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (u & 0x3F));
    }
}

std::optional<char32_t> decodeUtf8(std::string_view s, size_t& i)
{
    auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
        ++i;
        return b0;
    }
    size_t len = 0;
    uint32_t cp = 0;
    uint32_t min = 0;
    if ((b0 & 0xE0) == 0xC0) {
        len = 2;
        cp = b0 & 0x1F;
        min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
        len = 3;
        cp = b0 & 0x0F;
        min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
        len = 4;
        cp = b0 & 0x07;
        min = 0x10000;
    } else {
        return std::nullopt;
    }
    if (i + len > s.size()) return std::nullopt;
    for (size_t k = 1; k < len; ++k) {
        auto b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xC0) != 0x80) return std::nullopt;
        cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
    i += len;
    return static_cast<char32_t>(cp);
}

}  // namespace chars

std::optional<int64_t> Value::toInt64() const
{
    if (kind != ValueKind::Integer) return std::nullopt;
    int64_t v = 0;
    auto r = std::from_chars(text.data(), text.data() + text.size(), v);
    if (r.ec != std::errc() || r.ptr != text.data() + text.size()) return std::nullopt;
    return v;
}

const Property* Node::prop(std::string_view name) const
{
    for (auto it = props.rbegin(); it != props.rend(); ++it)
        if (it->name == name) return &*it;
    return nullptr;
}

bool isBareIdentifier(std::string_view s)
{
    std::u32string cps;
    for (size_t i = 0; i < s.size();) {
        auto c = chars::decodeUtf8(s, i);
        if (!c || !chars::isIdentChar(*c)) return false;
        cps += *c;
    }
    if (cps.empty() || chars::isDigit(cps[0])) return false;
    size_t k = chars::isSign(cps[0]) ? 1 : 0;
    if (k < cps.size() && chars::isDigit(cps[k])) return false;
    if (k < cps.size() && cps[k] == '.' && k + 1 < cps.size() && chars::isDigit(cps[k + 1])) return false;
    for (std::u32string_view kw : {U"true", U"false", U"null", U"inf", U"-inf", U"nan"})
        if (cps == kw) return false;
    return true;
}

std::string formatString(std::string_view s)
{
    if (isBareIdentifier(s)) return std::string(s);
    std::string out = "\"";
    for (size_t i = 0; i < s.size();) {
        size_t at = i;
        auto c = chars::decodeUtf8(s, i);
        if (!c) {  // not produced by the parser; keep the byte's meaning visible
            out += "\\u{fffd}";
            i = at + 1;
            continue;
        }
        switch (*c) {
            case '"': out += "\\\""; continue;
            case '\\': out += "\\\\"; continue;
            case '\b': out += "\\b"; continue;
            case '\f': out += "\\f"; continue;
            case '\n': out += "\\n"; continue;
            case '\r': out += "\\r"; continue;
            case '\t': out += "\\t"; continue;
            default: break;
        }
        if (chars::isDisallowed(*c) || chars::isNewline(*c)) {
            char buf[16];
            std::snprintf(buf, sizeof buf, "\\u{%x}", static_cast<unsigned>(*c));
            out += buf;
            continue;
        }
        out.append(s.substr(at, i - at));
    }
    out += '"';
    return out;
}

namespace {

// GCC 12 warns falsely (-Wrestrict at -O3) on `"(" + std::string&&`; appending avoids it.
void appendType(std::string& out, std::string_view type)
{
    out += '(';
    out += formatString(type);
    out += ')';
}

}  // namespace

std::string formatValue(const Value& value)
{
    std::string out;
    if (value.type) appendType(out, *value.type);
    switch (value.kind) {
        case ValueKind::String: out += formatString(value.text); break;
        case ValueKind::Integer:
        case ValueKind::Float: out += value.text; break;
        case ValueKind::Boolean: out += value.boolean ? "#true" : "#false"; break;
        case ValueKind::Null: out += "#null"; break;
        case ValueKind::Inf: out += "#inf"; break;
        case ValueKind::NegInf: out += "#-inf"; break;
        case ValueKind::NaN: out += "#nan"; break;
    }
    return out;
}

namespace {

void formatNode(const Node& node, size_t depth, std::string& out)
{
    out.append(depth * 4, ' ');
    if (node.type) appendType(out, *node.type);
    out += formatString(node.name);
    for (const auto& a : node.args) {
        out += ' ';
        out += formatValue(a);
    }
    std::map<std::string_view, const Value*> props;  // sorted by key; the last one wins
    for (const auto& p : node.props) props[p.name] = &p.value;
    for (const auto& [k, v] : props) {
        out += ' ';
        out += formatString(k);
        out += '=';
        out += formatValue(*v);
    }
    if (!node.children.empty()) {
        out += " {\n";
        for (const auto& c : node.children) formatNode(c, depth + 1, out);
        out.append(depth * 4, ' ');
        out += "}";
    }
    out += "\n";
}

}  // namespace

std::string format(const Document& doc)
{
    if (doc.nodes.empty()) return "\n";
    std::string out;
    for (const auto& n : doc.nodes) formatNode(n, 0, out);
    return out;
}

std::string_view lineText(std::string_view text, uint32_t line)
{
    uint32_t current = 1;
    size_t begin = 0;
    size_t i = 0;
    while (i < text.size()) {
        size_t at = i;
        auto c = chars::decodeUtf8(text, i);
        if (!c) {
            i = at + 1;
            continue;
        }
        if (!chars::isNewline(*c)) continue;
        if (current == line) return text.substr(begin, at - begin);
        if (*c == '\r' && i < text.size() && text[i] == '\n') ++i;
        ++current;
        begin = i;
    }
    return current == line ? text.substr(begin) : std::string_view();
}

}  // namespace vmr::config::kdl
