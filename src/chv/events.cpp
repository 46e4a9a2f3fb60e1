#include "chv/events.h"

#include <simdjson.h>

namespace vmr::chv {

namespace {

Error eventError(std::string message)
{
    return Error(ErrorKind::ParseError, "Malformed cloud-hypervisor event: " + std::move(message));
}

bool isSpace(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

}  // namespace

Result<Event> parseEvent(std::string_view json)
{
    simdjson::dom::parser parser;
    simdjson::dom::object obj;
    if (auto err = parser.parse(json.data(), json.size()).get(obj))
        return eventError(std::string("not a JSON object (") + simdjson::error_message(err) + ")");
    Event ev;
    std::string_view s;
    if (obj["source"].get_string().get(s)) return eventError("\"source\" is missing or not a string");
    ev.source = std::string(s);
    if (obj["event"].get_string().get(s)) return eventError("\"event\" is missing or not a string");
    ev.event = std::string(s);
    simdjson::dom::object ts;
    if (!obj["timestamp"].get_object().get(ts)) {
        uint64_t secs = 0, nanos = 0;
        if (ts["secs"].get_uint64().get(secs) || ts["nanos"].get_uint64().get(nanos) || nanos >= 1000000000)
            return eventError("\"timestamp\" is not {\"secs\":N,\"nanos\":N}");
        ev.secs = secs;
        ev.nanos = static_cast<uint32_t>(nanos);
    }
    simdjson::dom::element props;
    if (obj["properties"].get(props)) {
        ev.propertiesJson = "null";
    } else {
        if (!props.is_null() && !props.is_object())
            return eventError("\"properties\" is neither null nor an object");
        ev.propertiesJson = simdjson::minify(props);
    }
    return ev;
}

Result<std::optional<Event>> EventStream::next()
{
    if (failed_) return *failed_;
    auto fail = [this](Error e) -> Result<std::optional<Event>> {
        failed_ = e;
        buf_.clear();
        return e;
    };
    // Whitespace between objects.
    if (scan_ == 0) {
        size_t start = 0;
        while (start < buf_.size() && isSpace(buf_[start])) ++start;
        buf_.erase(0, start);
        if (buf_.empty()) return std::optional<Event>();
        if (buf_[0] != '{') {
            std::string shown = buf_.substr(0, 32);
            for (char& c : shown)
                if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
            return fail(eventError("expected '{' but the stream has \"" + shown + "\""));
        }
    }
    for (; scan_ < buf_.size(); ++scan_) {
        if (scan_ >= maxObject_)
            return fail(Error(ErrorKind::TooLarge, "A cloud-hypervisor event is longer than " +
                                                       std::to_string(maxObject_) + " bytes"));
        char c = buf_[scan_];
        if (inString_) {
            if (escape_) {
                escape_ = false;
            } else if (c == '\\') {
                escape_ = true;
            } else if (c == '"') {
                inString_ = false;
            }
            continue;
        }
        if (c == '"') {
            inString_ = true;
        } else if (c == '{' || c == '[') {
            ++depth_;
        } else if (c == '}' || c == ']') {
            if (--depth_ == 0) {
                std::string object = buf_.substr(0, scan_ + 1);
                buf_.erase(0, scan_ + 1);
                scan_ = 0;
                auto ev = parseEvent(object);
                if (!ev) return fail(std::move(ev).error());
                return std::optional<Event>(std::move(*ev));
            }
        }
    }
    if (buf_.size() > maxObject_)
        return fail(Error(ErrorKind::TooLarge, "A cloud-hypervisor event is longer than " +
                                                   std::to_string(maxObject_) + " bytes"));
    return std::optional<Event>();
}

}  // namespace vmr::chv
