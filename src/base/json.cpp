#include "base/json.h"

#include <charconv>
#include <cmath>

namespace vmr::json {

namespace {

constexpr char kHex[] = "0123456789abcdef";

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is invalid.
size_t utf8SequenceLength(std::string_view s, size_t i)
{
    auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = b(i);
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) {
        n = 2;
        cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3;
        cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (i + n > s.size()) return 0;
    for (size_t k = 1; k < n; ++k) {
        if ((b(i + k) & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (b(i + k) & 0x3F);
    }
    // Reject overlong forms, surrogates and values past U+10FFFF.
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return 0;
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    if (cp > 0x10FFFF) return 0;
    return n;
}

}  // namespace

void appendString(std::string& out, std::string_view s)
{
    out.reserve(out.size() + s.size() + 2);
    out += '"';
    size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            // Copy the longest plain ASCII run at once.
            size_t j = i + 1;
            while (j < s.size()) {
                auto d = static_cast<unsigned char>(s[j]);
                if (d < 0x20 || d >= 0x80 || d == '"' || d == '\\') break;
                ++j;
            }
            out.append(s.substr(i, j - i));
            i = j;
            continue;
        }
        switch (c) {
            case '"':
                out += "\\\"";
                ++i;
                continue;
            case '\\':
                out += "\\\\";
                ++i;
                continue;
            case '\n':
                out += "\\n";
                ++i;
                continue;
            case '\r':
                out += "\\r";
                ++i;
                continue;
            case '\t':
                out += "\\t";
                ++i;
                continue;
            case '\b':
                out += "\\b";
                ++i;
                continue;
            case '\f':
                out += "\\f";
                ++i;
                continue;
            default: break;
        }
        if (c < 0x20) {
            out += "\\u00";
            out += kHex[c >> 4];
            out += kHex[c & 0xF];
            ++i;
            continue;
        }
        size_t n = utf8SequenceLength(s, i);
        if (n == 0) {
            out += "\\ufffd";
            ++i;
        } else {
            out.append(s.substr(i, n));
            i += n;
        }
    }
    out += '"';
}

std::string quote(std::string_view s)
{
    std::string out;
    appendString(out, s);
    return out;
}

void Writer::separate()
{
    if (afterKey_) {
        afterKey_ = false;
        return;
    }
    if (!hasItem_.empty()) {
        if (hasItem_.back()) out_ += ',';
        hasItem_.back() = true;
    }
}

Writer& Writer::beginObject()
{
    separate();
    out_ += '{';
    hasItem_.push_back(false);
    return *this;
}

Writer& Writer::endObject()
{
    out_ += '}';
    if (!hasItem_.empty()) hasItem_.pop_back();
    return *this;
}

Writer& Writer::beginArray()
{
    separate();
    out_ += '[';
    hasItem_.push_back(false);
    return *this;
}

Writer& Writer::endArray()
{
    out_ += ']';
    if (!hasItem_.empty()) hasItem_.pop_back();
    return *this;
}

Writer& Writer::key(std::string_view k)
{
    separate();
    appendString(out_, k);
    out_ += ':';
    afterKey_ = true;
    return *this;
}

Writer& Writer::value(std::string_view s)
{
    separate();
    appendString(out_, s);
    return *this;
}

Writer& Writer::value(bool b)
{
    separate();
    out_ += b ? "true" : "false";
    return *this;
}

void Writer::appendInt(int64_t v)
{
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
}

void Writer::appendUint(uint64_t v)
{
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
}

Writer& Writer::value(long long v)
{
    separate();
    appendInt(static_cast<int64_t>(v));
    return *this;
}

Writer& Writer::value(unsigned long long v)
{
    separate();
    appendUint(static_cast<uint64_t>(v));
    return *this;
}

Writer& Writer::value(double d)
{
    separate();
    if (!std::isfinite(d)) {
        out_ += "null";  // JSON has no NaN or infinity
        return *this;
    }
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, d);
    out_.append(buf, r.ptr);
    return *this;
}

Writer& Writer::null()
{
    separate();
    out_ += "null";
    return *this;
}

Writer& Writer::raw(std::string_view json)
{
    separate();
    out_.append(json);
    return *this;
}

}  // namespace vmr::json
