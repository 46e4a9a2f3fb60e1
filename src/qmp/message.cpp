#include "qmp/message.h"

#include "base/json.h"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace vmr::qmp {

namespace {

namespace dom = simdjson::dom;

// One parser per thread, reused: it keeps its buffers at the size of the largest message.
dom::parser& parser()
{
    thread_local dom::parser p;
    return p;
}

Error parseError(std::string message)
{
    return Error(ErrorKind::ParseError, std::move(message));
}

Result<dom::element> parseDocument(std::string_view json, std::string_view what)
{
    dom::element doc;
    if (auto err = parser().parse(json.data(), json.size()).get(doc)) {
        return parseError(std::string(what) + " is not valid JSON: " + simdjson::error_message(err));
    }
    return doc;
}

// A member of obj, or nullopt when absent.
std::optional<dom::element> member(dom::object obj, std::string_view key)
{
    dom::element v;
    if (obj.at_key(key).get(v)) return std::nullopt;
    return v;
}

// Member `key` read as a T and returned as an Out, or a Parse error saying that `path` should
// be `what`.
template <typename T, typename Out = T>
Result<Out> typedMember(dom::object obj, std::string_view key, std::string_view path, std::string_view what)
{
    auto v = member(obj, key);
    T value{};
    if (!v || v->get(value)) {
        return parseError("QMP " + std::string(path) + " is missing or not " + std::string(what));
    }
    return Out(value);
}

Result<dom::object> objectMember(dom::object obj, std::string_view key, std::string_view path)
{
    return typedMember<dom::object>(obj, key, path, "an object");
}

Result<std::string> stringMember(dom::object obj, std::string_view key, std::string_view path)
{
    return typedMember<std::string_view, std::string>(obj, key, path, "a string");
}

Result<int64_t> intMember(dom::object obj, std::string_view key, std::string_view path)
{
    return typedMember<int64_t>(obj, key, path, "an integer");
}

std::optional<std::string> idOf(dom::object obj)
{
    auto v = member(obj, "id");
    if (!v) return std::nullopt;
    return simdjson::minify(*v);
}

Result<Message> parseGreeting(dom::element body)
{
    dom::object qmp;
    if (body.get_object().get(qmp)) return parseError("QMP greeting: 'QMP' is not an object");
    auto version = objectMember(qmp, "version", "greeting 'QMP.version'");
    if (!version) return std::move(version).error();
    auto qemu = objectMember(*version, "qemu", "greeting 'QMP.version.qemu'");
    if (!qemu) return std::move(qemu).error();

    Greeting g;
    auto major = intMember(*qemu, "major", "greeting 'QMP.version.qemu.major'");
    if (!major) return std::move(major).error();
    auto minor = intMember(*qemu, "minor", "greeting 'QMP.version.qemu.minor'");
    if (!minor) return std::move(minor).error();
    auto micro = intMember(*qemu, "micro", "greeting 'QMP.version.qemu.micro'");
    if (!micro) return std::move(micro).error();
    auto package = stringMember(*version, "package", "greeting 'QMP.version.package'");
    if (!package) return std::move(package).error();
    g.version = Version{*major, *minor, *micro, std::move(*package)};

    auto caps = member(qmp, "capabilities");
    dom::array arr;
    if (!caps || caps->get_array().get(arr)) {
        return parseError("QMP greeting 'QMP.capabilities' is missing or not an array");
    }
    for (dom::element c : arr) {
        std::string_view s;
        if (c.get_string().get(s)) return parseError("QMP greeting 'QMP.capabilities' has a non-string item");
        g.capabilities.emplace_back(s);
    }
    return Message(std::move(g));
}

Result<Message> parseErrorReply(dom::object top, dom::element body)
{
    dom::object err;
    if (body.get_object().get(err)) return parseError("QMP error reply: 'error' is not an object");
    auto cls = stringMember(err, "class", "error reply 'error.class'");
    if (!cls) return std::move(cls).error();
    auto desc = stringMember(err, "desc", "error reply 'error.desc'");
    if (!desc) return std::move(desc).error();
    return Message(ErrorReply{std::move(*cls), std::move(*desc), idOf(top)});
}

Result<Message> parseEvent(dom::object top, dom::element name)
{
    Event ev;
    std::string_view n;
    if (name.get_string().get(n)) return parseError("QMP event: 'event' is not a string");
    if (n.empty()) return parseError("QMP event: 'event' is empty");
    ev.name = std::string(n);
    if (auto data = member(top, "data")) {
        if (!data->is_object()) return parseError("QMP event '" + ev.name + "': 'data' is not an object");
        ev.data = simdjson::minify(*data);
    }
    auto ts = objectMember(top, "timestamp", "event 'timestamp'");
    if (!ts) return std::move(ts).error();
    auto sec = intMember(*ts, "seconds", "event 'timestamp.seconds'");
    if (!sec) return std::move(sec).error();
    auto usec = intMember(*ts, "microseconds", "event 'timestamp.microseconds'");
    if (!usec) return std::move(usec).error();
    ev.timestamp = Timestamp{*sec, *usec};
    return Message(std::move(ev));
}

}  // namespace

Result<Message> parseMessage(std::string_view json)
{
    auto doc = parseDocument(json, "QMP message");
    if (!doc) return std::move(doc).error();
    dom::object top;
    if (doc->get_object().get(top)) return parseError("QMP message is not a JSON object");

    static constexpr std::array<std::string_view, 4> kKinds = {"QMP", "return", "error", "event"};
    std::optional<dom::element> found[kKinds.size()];
    std::string present;
    size_t count = 0;
    for (size_t i = 0; i < kKinds.size(); ++i) {
        found[i] = member(top, kKinds[i]);
        if (!found[i]) continue;
        if (count++ > 0) present += ", ";
        present.append(1, '\'').append(kKinds[i]).append(1, '\'');
    }
    if (count == 0) return parseError("QMP message has none of the keys 'QMP', 'return', 'error', 'event'");
    if (count > 1) return parseError("QMP message has more than one of the keys " + present);

    if (found[0]) return parseGreeting(*found[0]);
    if (found[1]) return Message(Return{simdjson::minify(*found[1]), idOf(top)});
    if (found[2]) return parseErrorReply(top, *found[2]);
    return parseEvent(top, *found[3]);
}

std::string encodeCommand(std::string_view execute, std::string_view argumentsJson, std::string_view idJson)
{
    std::string out;
    out.reserve(execute.size() + argumentsJson.size() + idJson.size() + 40);
    out += "{\"execute\":";
    json::appendString(out, execute);
    if (!argumentsJson.empty()) {
        out += ",\"arguments\":";
        out += argumentsJson;
    }
    if (!idJson.empty()) {
        out += ",\"id\":";
        out += idJson;
    }
    out += '}';
    return out;
}

Result<void> validateArguments(std::string_view argumentsJson)
{
    if (argumentsJson.empty()) return success();
    dom::element doc;
    if (auto err = parser().parse(argumentsJson.data(), argumentsJson.size()).get(doc)) {
        return Error(ErrorKind::InvalidArgument, std::string("QMP command arguments are not valid JSON: ") +
                                                     simdjson::error_message(err));
    }
    if (!doc.is_object())
        return Error(ErrorKind::InvalidArgument, "QMP command arguments are not a JSON object");
    return success();
}

ErrorKind errorKindForClass(std::string_view errorClass) noexcept
{
    if (errorClass == "CommandNotFound") return ErrorKind::Unsupported;
    if (errorClass == "KVMMissingCap") return ErrorKind::Unsupported;
    if (errorClass == "DeviceNotFound") return ErrorKind::NotFound;
    if (errorClass == "DeviceNotActive") return ErrorKind::VmBadState;
    // GenericError covers nearly everything QEMU refuses: bad arguments, a command that does not
    // fit the current state. vmr builds the arguments, so the caller's request is what is wrong.
    return ErrorKind::InvalidArgument;
}

bool isKnownEvent(std::string_view name) noexcept
{
    static constexpr std::string_view kKnown[] = {
        "SHUTDOWN",
        "POWERDOWN",
        "RESET",
        "STOP",
        "RESUME",
        "SUSPEND",
        "SUSPEND_DISK",
        "WAKEUP",
        "GUEST_PANICKED",
        "GUEST_CRASHLOADED",
        "GUEST_PVSHUTDOWN",
        "WATCHDOG",
        "DEVICE_DELETED",
        "DEVICE_UNPLUG_GUEST_ERROR",
        "BLOCK_IO_ERROR",
        "NIC_RX_FILTER_CHANGED",
        "VNC_CONNECTED",
        "VNC_INITIALIZED",
        "VNC_DISCONNECTED",
    };
    return std::find(std::begin(kKnown), std::end(kKnown), name) != std::end(kKnown);
}

void LineSplitter::append(std::string_view data)
{
    if (failed_ || data.empty()) return;
    // Drop consumed lines before growing, so the buffer holds at most one partial line plus data.
    if (pos_ > 0 && (pos_ == buf_.size() || pos_ >= buf_.size() / 2)) {
        buf_.erase(0, pos_);
        scan_ -= pos_;
        pos_ = 0;
    }
    buf_.append(data);
}

Result<std::optional<std::string_view>> LineSplitter::next()
{
    if (failed_) return Error(ErrorKind::TooLarge, "QMP line exceeds the size limit");
    for (;;) {
        auto nl = buf_.find('\n', scan_);
        if (nl == std::string::npos) {
            scan_ = buf_.size();
            if (buf_.size() - pos_ > maxLine_) {
                failed_ = true;
                return Error(ErrorKind::TooLarge,
                             "QMP line exceeds the size limit of " + std::to_string(maxLine_) + " bytes");
            }
            return std::optional<std::string_view>();
        }
        std::string_view line(buf_.data() + pos_, nl - pos_);
        pos_ = nl + 1;
        scan_ = pos_;
        if (line.size() > maxLine_) {
            failed_ = true;
            return Error(ErrorKind::TooLarge,
                         "QMP line exceeds the size limit of " + std::to_string(maxLine_) + " bytes");
        }
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
        return std::optional<std::string_view>(line);
    }
}

}  // namespace vmr::qmp
