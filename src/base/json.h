#pragma once

// A small streaming JSON writer. Output is always valid JSON text: strings are escaped
// per RFC 8259 and invalid UTF-8 is replaced by U+FFFD, so no caller input can break a
// line-delimited stream (a raw newline never appears inside a value).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmr::json {

// Append `s` as a quoted JSON string.
void appendString(std::string& out, std::string_view s);

// Append a quoted JSON string to a new std::string.
std::string quote(std::string_view s);

class Writer {
public:
    Writer() = default;
    explicit Writer(std::string prefix) : out_(std::move(prefix)) {}

    Writer& beginObject();
    Writer& endObject();
    Writer& beginArray();
    Writer& endArray();
    Writer& key(std::string_view k);

    Writer& value(std::string_view s);
    Writer& value(const char* s) { return value(std::string_view(s)); }
    Writer& value(const std::string& s) { return value(std::string_view(s)); }
    Writer& value(bool b);
    Writer& value(int v) { return value(static_cast<long long>(v)); }
    Writer& value(unsigned v) { return value(static_cast<unsigned long long>(v)); }
    Writer& value(long v) { return value(static_cast<long long>(v)); }
    Writer& value(unsigned long v) { return value(static_cast<unsigned long long>(v)); }
    Writer& value(long long v);
    Writer& value(unsigned long long v);
    Writer& value(double d);
    Writer& null();
    // Insert already-serialised JSON (trusted: produced by this writer or validated).
    Writer& raw(std::string_view json);

    // key + value in one call.
    template <typename T>
    Writer& field(std::string_view k, T&& v)
    {
        key(k);
        return value(std::forward<T>(v));
    }

    // key + the string, or null when it is empty.
    Writer& nullableField(std::string_view k, std::string_view v)
    {
        key(k);
        return v.empty() ? null() : value(v);
    }
    // key + the value, or null when there is none.
    template <typename T>
    Writer& optionalField(std::string_view k, const std::optional<T>& v)
    {
        key(k);
        return v ? value(*v) : null();
    }

    const std::string& str() const noexcept { return out_; }
    std::string take() noexcept { return std::move(out_); }

private:
    void separate();
    void appendInt(int64_t v);
    void appendUint(uint64_t v);

    std::string out_;
    std::vector<bool> hasItem_;  // per open container: has it an item already?
    bool afterKey_ = false;
};

}  // namespace vmr::json
