#include "image/fetch_codec.h"

#include "base/json.h"

#include <simdjson.h>

#include <charconv>

namespace vmr::image {

namespace {

constexpr std::string_view kUrlHint = "Give an http:// or https:// URL of a disk image";

Error badUrl(std::string_view url, std::string_view why)
{
    return Error(ErrorKind::InvalidArgument, "URL `" + std::string(url) + "` " + std::string(why),
                 std::string(kUrlHint));
}

bool startsWithNoCase(std::string_view s, std::string_view prefix)
{
    if (s.size() < prefix.size()) return false;
    for (size_t i = 0; i < prefix.size(); ++i) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (c != prefix[i]) return false;
    }
    return true;
}

bool endsWith(std::string_view s, std::string_view suffix)
{
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string_view eventName(FetchEvent::Type t)
{
    switch (t) {
        case FetchEvent::Type::Start: return "start";
        case FetchEvent::Type::Progress: return "progress";
        case FetchEvent::Type::Retry: return "retry";
        case FetchEvent::Type::Done: return "done";
        case FetchEvent::Type::Error: return "error";
    }
    return "error";
}

}  // namespace

Result<Url> parseUrl(std::string_view url)
{
    Url u;
    for (char c : url) {
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
            return Error(ErrorKind::InvalidArgument,
                         "URL `" + std::string(url) + "` contains a space or a control character",
                         "Percent-encode it (a space is %20)");
    }
    std::string_view rest;
    if (startsWithNoCase(url, "http://")) {
        u.scheme = "http";
        u.port = 80;
        rest = url.substr(7);
    } else if (startsWithNoCase(url, "https://")) {
        u.scheme = "https";
        u.port = 443;
        rest = url.substr(8);
    } else {
        return badUrl(url, "is not an http:// or https:// URL");
    }
    size_t end = rest.find_first_of("/?#");
    std::string_view authority = rest.substr(0, end);
    std::string_view tail = end == std::string_view::npos ? std::string_view() : rest.substr(end);
    if (authority.find('@') != std::string_view::npos)
        return Error(ErrorKind::InvalidArgument,
                     "URL `" + std::string(url) + "` has a user name or password, which vmr does not send",
                     "Use a URL without credentials");
    std::string_view host = authority;
    std::string_view port;
    if (!authority.empty() && authority.front() == '[') {
        size_t close = authority.find(']');
        if (close == std::string_view::npos) return badUrl(url, "has an IPv6 address without its closing ]");
        host = authority.substr(1, close - 1);
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return badUrl(url, "has text after its IPv6 address");
            port = after.substr(1);
        }
    } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        port = authority.substr(colon + 1);
    }
    if (host.empty()) return badUrl(url, "has no host");
    if (!port.empty()) {
        unsigned n = 0;
        auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
        if (ec != std::errc() || p != port.data() + port.size() || n == 0 || n > 65535)
            return badUrl(url, "has a bad port `" + std::string(port) + "` (1 to 65535)");
        u.port = static_cast<uint16_t>(n);
    }
    u.host = std::string(host);
    bool v6 = host.find(':') != std::string_view::npos;
    u.hostPort = (v6 ? "[" + u.host + "]" : u.host) + ":" + std::to_string(u.port);
    tail = tail.substr(0, tail.find('#'));  // a fragment is never sent
    u.path = tail.empty() || tail.front() != '/' ? "/" + std::string(tail) : std::string(tail);
    std::string_view pathOnly = std::string_view(u.path).substr(0, u.path.find('?'));
    u.fileName = std::string(pathOnly.substr(pathOnly.rfind('/') + 1));
    return u;
}

Result<Decompress> parseDecompress(std::string_view s)
{
    if (s == "auto") return Decompress::Auto;
    if (s == "zstd") return Decompress::Zstd;
    if (s == "none") return Decompress::None;
    return Error(ErrorKind::InvalidArgument, "Unknown decompression `" + std::string(s) + "`",
                 "Use auto, zstd or none");
}

bool wantsZstd(Decompress mode, const Url& url)
{
    if (mode != Decompress::Auto) return mode == Decompress::Zstd;
    return endsWith(url.fileName, ".zst") || endsWith(url.fileName, ".zstd");
}

Result<std::string> normalizeSha256(std::string_view hex)
{
    std::string out;
    out.reserve(hex.size());
    for (char c : hex) {
        if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            out.clear();
            break;
        }
        out += c;
    }
    if (out.size() != 64)
        return Error(ErrorKind::InvalidArgument,
                     "SHA-256 `" + std::string(hex) + "` is not 64 hexadecimal digits",
                     "Copy the checksum from the image's SHA256SUMS file");
    return out;
}

ErrorKind kindFromName(std::string_view name)
{
    for (size_t i = 0; i < static_cast<size_t>(ErrorKind::Count_); ++i) {
        auto k = static_cast<ErrorKind>(i);
        if (kindName(k) == name) return k;
    }
    return ErrorKind::Internal;
}

std::string encodeFetchEvent(const FetchEvent& e)
{
    json::Writer w;
    w.beginObject().field("event", eventName(e.type));
    auto total = [&] {
        w.key("total");
        if (e.total)
            w.value(static_cast<unsigned long long>(*e.total));
        else
            w.null();
    };
    switch (e.type) {
        case FetchEvent::Type::Start:
            w.field("url", e.url).field("offset", static_cast<unsigned long long>(e.offset));
            total();
            break;
        case FetchEvent::Type::Progress:
            w.field("received", static_cast<unsigned long long>(e.received));
            total();
            w.field("written", static_cast<unsigned long long>(e.written));
            break;
        case FetchEvent::Type::Retry:
            w.field("offset", static_cast<unsigned long long>(e.offset)).field("reason", e.reason);
            break;
        case FetchEvent::Type::Done:
            w.field("url", e.url)
                .field("size", static_cast<unsigned long long>(e.written))
                .field("received", static_cast<unsigned long long>(e.received))
                .field("sha256", e.sha256)
                .field("download_sha256", e.downloadSha256)
                .field("compression", e.compression);
            break;
        case FetchEvent::Type::Error:
            w.field("kind", kindName(e.errorKind)).field("message", e.message).field("hint", e.hint);
            break;
    }
    w.endObject();
    return w.take();
}

Result<FetchEvent> parseFetchEvent(std::string_view line)
{
    simdjson::dom::parser parser;
    simdjson::padded_string padded(line);
    simdjson::dom::object obj;
    if (parser.parse(padded).get(obj) != simdjson::SUCCESS)
        return Error(ErrorKind::ParseError, "vmr-fetch printed a line that is not a JSON object");
    auto bad = [](std::string_view field, std::string_view expected) {
        return Error(ErrorKind::ParseError, "vmr-fetch event: field \"" + std::string(field) +
                                                "\": expected " + std::string(expected));
    };
    auto str = [&](const char* field, std::string& out) -> Result<void> {
        std::string_view s;
        if (obj[field].get_string().get(s) != simdjson::SUCCESS) return bad(field, "a string");
        out = s;
        return success();
    };
    auto num = [&](const char* field, uint64_t& out) -> Result<void> {
        if (obj[field].get_uint64().get(out) != simdjson::SUCCESS)
            return bad(field, "a non-negative integer");
        return success();
    };
    auto optTotal = [&](FetchEvent& e) -> Result<void> {
        auto f = obj["total"];
        if (f.error() == simdjson::NO_SUCH_FIELD || f.is_null()) return success();
        uint64_t n = 0;
        if (f.get_uint64().get(n) != simdjson::SUCCESS) return bad("total", "a non-negative integer or null");
        e.total = n;
        return success();
    };

    FetchEvent e;
    std::string type;
    VMR_TRY(str("event", type));
    if (type == "start") {
        e.type = FetchEvent::Type::Start;
        VMR_TRY(str("url", e.url));
        VMR_TRY(num("offset", e.offset));
        VMR_TRY(optTotal(e));
        e.received = e.offset;
    } else if (type == "progress") {
        e.type = FetchEvent::Type::Progress;
        VMR_TRY(num("received", e.received));
        VMR_TRY(num("written", e.written));
        VMR_TRY(optTotal(e));
    } else if (type == "retry") {
        e.type = FetchEvent::Type::Retry;
        VMR_TRY(num("offset", e.offset));
        VMR_TRY(str("reason", e.reason));
    } else if (type == "done") {
        e.type = FetchEvent::Type::Done;
        VMR_TRY(str("url", e.url));
        VMR_TRY(num("size", e.written));
        VMR_TRY(num("received", e.received));
        VMR_TRY(str("sha256", e.sha256));
        VMR_TRY(str("download_sha256", e.downloadSha256));
        VMR_TRY(str("compression", e.compression));
    } else if (type == "error") {
        e.type = FetchEvent::Type::Error;
        std::string kind;
        VMR_TRY(str("kind", kind));
        e.errorKind = kindFromName(kind);
        VMR_TRY(str("message", e.message));
        VMR_TRY(str("hint", e.hint));
    } else {
        return bad("event", "start, progress, retry, done or error");
    }
    return e;
}

Result<void> LineSplitter::feed(std::string_view data, const std::function<void(std::string_view)>& onLine)
{
    while (!data.empty()) {
        size_t nl = data.find('\n');
        if (nl == std::string_view::npos) {
            buf_.append(data);
            break;
        }
        if (buf_.empty()) {
            onLine(data.substr(0, nl));
        } else {
            buf_.append(data.substr(0, nl));
            std::string line = std::move(buf_);
            buf_.clear();
            onLine(line);
        }
        data.remove_prefix(nl + 1);
    }
    if (buf_.size() > maxLine_)
        return Error(ErrorKind::TooLarge, "A line of more than " + std::to_string(maxLine_) + " bytes");
    return success();
}

}  // namespace vmr::image
