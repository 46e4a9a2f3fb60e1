#include "chv/http.h"

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace vmr::chv::http {

namespace {

bool iequals(std::string_view a, std::string_view b)
{
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

// RFC 9110 token characters (method and header names).
bool isToken(std::string_view s)
{
    if (s.empty()) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        if (std::isalnum(u)) return true;
        return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    });
}

std::string_view trimOws(std::string_view s)
{
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Printable text a peer may put in a reason phrase or a header value.
bool isFieldText(std::string_view s)
{
    return std::all_of(s.begin(), s.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u == '\t' || (u >= 0x20 && u != 0x7f);
    });
}

Error parseError(std::string message)
{
    return Error(ErrorKind::ParseError, "Malformed HTTP message: " + std::move(message));
}

// What a message shows of a peer's bytes in an error: printable, and short.
std::string shown(std::string_view s)
{
    std::string out;
    for (char c : s.substr(0, 64)) {
        auto u = static_cast<unsigned char>(c);
        out += (u >= 0x20 && u < 0x7f) ? c : '?';
    }
    if (s.size() > 64) out += "...";
    return "\"" + out + "\"";
}

Result<int> parseVersion(std::string_view v)
{
    if (v.size() != 8 || v.substr(0, 7) != "HTTP/1." || !std::isdigit(static_cast<unsigned char>(v[7])))
        return parseError("unsupported protocol version " + shown(v) + " (expected HTTP/1.x)");
    return v[7] - '0';
}

}  // namespace

std::optional<std::string_view> Message::header(std::string_view name) const
{
    for (const auto& h : headers)
        if (iequals(h.name, name)) return std::string_view(h.value);
    return std::nullopt;
}

Parser::Parser(Kind kind, Limits limits) : kind_(kind), limits_(limits) {}

Error Parser::fail(Error e)
{
    state_ = State::Failed;
    return e;
}

void Parser::compact()
{
    if (pos_ > 0 && (pos_ == buf_.size() || pos_ > 4096)) {
        buf_.erase(0, pos_);
        pos_ = 0;
    }
}

Result<bool> Parser::feed(std::string_view data)
{
    if (state_ == State::Failed) return Error(ErrorKind::Internal, "HTTP parser used after an error");
    if (state_ == State::Done) {
        buf_.append(data);
        return true;
    }
    buf_.append(data);
    auto done = parse();
    if (!done) return fail(std::move(done).error());
    compact();
    return done;
}

Result<bool> Parser::finish()
{
    if (state_ == State::Failed) return Error(ErrorKind::Internal, "HTTP parser used after an error");
    if (state_ == State::Done) return true;
    if (state_ == State::UntilEof) {
        state_ = State::Done;
        return true;
    }
    if (!started()) return false;
    return fail(parseError("the connection closed in the middle of a message"));
}

Message Parser::take()
{
    Message m = std::move(msg_);
    msg_ = {};
    headBytes_ = 0;
    remaining_ = 0;
    state_ = State::StartLine;
    compact();
    return m;
}

Result<std::optional<std::string_view>> Parser::line(size_t limit, std::string_view what)
{
    size_t nl = buf_.find('\n', pos_);
    if (nl == std::string::npos) {
        if (buf_.size() - pos_ > limit)
            return Error(ErrorKind::TooLarge,
                         "HTTP " + std::string(what) + " is longer than " + std::to_string(limit) + " bytes");
        return std::optional<std::string_view>();
    }
    size_t len = nl - pos_;
    if (len + 1 > limit)
        return Error(ErrorKind::TooLarge,
                     "HTTP " + std::string(what) + " is longer than " + std::to_string(limit) + " bytes");
    std::string_view l(buf_.data() + pos_, len);
    pos_ = nl + 1;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (l.find('\r') != std::string_view::npos) return parseError("a bare CR inside " + std::string(what));
    return std::optional<std::string_view>(l);
}

Result<bool> Parser::parse()
{
    for (;;) {
        switch (state_) {
            case State::StartLine:
            case State::Headers:
            case State::Trailers: {
                size_t before = pos_;
                size_t room = limits_.maxHeadBytes > headBytes_ ? limits_.maxHeadBytes - headBytes_ : 0;
                auto l = line(room, "header section");
                if (!l) return std::move(l).error();
                if (!*l) return false;
                headBytes_ += pos_ - before;
                if (state_ == State::StartLine) {
                    // RFC 9112 2.2: empty lines before a start line are ignored.
                    if ((*l)->empty()) continue;
                    VMR_TRY(startLine(**l));
                    state_ = State::Headers;
                } else if ((*l)->empty()) {
                    if (state_ == State::Trailers) {
                        state_ = State::Done;
                    } else {
                        VMR_TRY(endOfHead());
                    }
                } else if (state_ == State::Headers) {
                    VMR_TRY(headerLine(**l));
                } else {
                    // Trailer fields are read and dropped: nothing cloud-hypervisor sends uses them.
                    if ((*l)->find(':') == std::string_view::npos)
                        return parseError("a trailer line without ':'");
                }
                break;
            }
            case State::Body:
            case State::ChunkData: {
                size_t n = std::min(remaining_, buf_.size() - pos_);
                msg_.body.append(buf_, pos_, n);
                pos_ += n;
                remaining_ -= n;
                if (remaining_ > 0) return false;
                state_ = state_ == State::Body ? State::Done : State::ChunkEnd;
                break;
            }
            case State::UntilEof: {
                size_t n = buf_.size() - pos_;
                if (msg_.body.size() + n > limits_.maxBody)
                    return Error(ErrorKind::TooLarge,
                                 "HTTP body is larger than " + std::to_string(limits_.maxBody) + " bytes");
                msg_.body.append(buf_, pos_, n);
                pos_ += n;
                return false;
            }
            case State::ChunkSize: {
                auto l = line(limits_.maxChunkLine, "chunk-size line");
                if (!l) return std::move(l).error();
                if (!*l) return false;
                VMR_TRY(chunkSize(**l));
                break;
            }
            case State::ChunkEnd: {
                auto l = line(limits_.maxChunkLine, "chunk end");
                if (!l) return std::move(l).error();
                if (!*l) return false;
                if (!(*l)->empty()) return parseError("chunk data longer than its size");
                state_ = State::ChunkSize;
                break;
            }
            case State::Done: return true;
            case State::Failed: return Error(ErrorKind::Internal, "HTTP parser used after an error");
        }
    }
}

Result<void> Parser::startLine(std::string_view l)
{
    size_t sp1 = l.find(' ');
    if (sp1 == std::string_view::npos) return parseError("start line " + shown(l) + " has no space");
    if (kind_ == Kind::Response) {
        auto minor = parseVersion(l.substr(0, sp1));
        if (!minor) return std::move(minor).error();
        msg_.versionMinor = *minor;
        std::string_view rest = l.substr(sp1 + 1);
        std::string_view code = rest.substr(0, 3);
        if (code.size() != 3 || !std::all_of(code.begin(), code.end(), [](char c) {
                return std::isdigit(static_cast<unsigned char>(c));
            }))
            return parseError("status line " + shown(l) + " has no 3-digit status code");
        msg_.status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
        if (msg_.status < 100 || msg_.status > 599)
            return parseError("status code " + std::string(code) + " is out of range");
        rest.remove_prefix(3);
        if (!rest.empty() && rest.front() != ' ')
            return parseError("status line " + shown(l) + " is malformed");
        if (!rest.empty()) rest.remove_prefix(1);
        if (!isFieldText(rest)) return parseError("reason phrase has control characters");
        msg_.reason = std::string(rest);
        return success();
    }
    size_t sp2 = l.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || l.find(' ', sp2 + 1) != std::string_view::npos)
        return parseError("request line " + shown(l) + " is not METHOD TARGET VERSION");
    std::string_view method = l.substr(0, sp1);
    std::string_view target = l.substr(sp1 + 1, sp2 - sp1 - 1);
    if (!isToken(method)) return parseError("method " + shown(method) + " is not a token");
    if (target.empty() || !isFieldText(target) || target.find('\t') != std::string_view::npos)
        return parseError("request target " + shown(target) + " is malformed");
    auto minor = parseVersion(l.substr(sp2 + 1));
    if (!minor) return std::move(minor).error();
    msg_.versionMinor = *minor;
    msg_.method = std::string(method);
    msg_.target = std::string(target);
    return success();
}

Result<void> Parser::headerLine(std::string_view l)
{
    if (l.front() == ' ' || l.front() == '\t')
        return parseError("obsolete line folding in header section");  // RFC 9112 5.2: reject
    size_t colon = l.find(':');
    if (colon == std::string_view::npos) return parseError("header line " + shown(l) + " has no ':'");
    std::string_view name = l.substr(0, colon);
    if (!isToken(name)) return parseError("header name " + shown(name) + " is not a token");
    std::string_view value = trimOws(l.substr(colon + 1));
    if (!isFieldText(value)) return parseError("header " + std::string(name) + " has control characters");
    if (msg_.headers.size() >= limits_.maxHeaders)
        return Error(ErrorKind::TooLarge,
                     "HTTP message has more than " + std::to_string(limits_.maxHeaders) + " header lines");
    msg_.headers.push_back({std::string(name), std::string(value)});
    return success();
}

Result<void> Parser::endOfHead()
{
    std::optional<std::string_view> te;
    std::optional<uint64_t> length;
    for (const auto& h : msg_.headers) {
        if (iequals(h.name, "Transfer-Encoding")) {
            if (te) return parseError("Transfer-Encoding given twice");
            te = h.value;
        } else if (iequals(h.name, "Content-Length")) {
            uint64_t n = 0;
            const char* end = h.value.data() + h.value.size();
            auto [p, ec] = std::from_chars(h.value.data(), end, n);
            if (h.value.empty() || ec != std::errc() || p != end)
                return parseError("Content-Length " + shown(h.value) + " is not a number");
            if (length && *length != n) return parseError("two different Content-Length values");
            length = n;
        }
    }
    if (te && length) return parseError("both Transfer-Encoding and Content-Length");  // smuggling

    bool noBody = kind_ == Kind::Response && (msg_.status < 200 || msg_.status == 204 || msg_.status == 304);
    if (kind_ == Kind::Response && msg_.status >= 100 && msg_.status < 200) {
        // An interim response (100 Continue): the final one follows.
        msg_ = {};
        headBytes_ = 0;
        state_ = State::StartLine;
        return success();
    }
    if (noBody) {
        state_ = State::Done;
        return success();
    }
    if (te) {
        if (!iequals(*te, "chunked"))
            return Error(ErrorKind::Unsupported,
                         "HTTP Transfer-Encoding " + shown(*te) + " is not supported");
        state_ = State::ChunkSize;
        return success();
    }
    if (length) {
        if (*length > limits_.maxBody)
            return Error(ErrorKind::TooLarge, "HTTP body of " + std::to_string(*length) +
                                                  " bytes is larger than " + std::to_string(limits_.maxBody));
        remaining_ = static_cast<size_t>(*length);
        msg_.body.reserve(remaining_);
        state_ = remaining_ > 0 ? State::Body : State::Done;
        return success();
    }
    // A request without a length has no body; a response runs until the connection closes.
    state_ = kind_ == Kind::Request ? State::Done : State::UntilEof;
    return success();
}

Result<void> Parser::chunkSize(std::string_view l)
{
    std::string_view hex = l.substr(0, l.find(';'));
    hex = trimOws(hex);
    if (hex.empty() || hex.size() > 16) return parseError("chunk size " + shown(hex) + " is malformed");
    uint64_t n = 0;
    auto [p, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), n, 16);
    if (ec != std::errc() || p != hex.data() + hex.size())
        return parseError("chunk size " + shown(hex) + " is not hexadecimal");
    if (n == 0) {
        state_ = State::Trailers;
        return success();
    }
    if (n > limits_.maxBody || msg_.body.size() + n > limits_.maxBody)
        return Error(ErrorKind::TooLarge,
                     "HTTP body is larger than " + std::to_string(limits_.maxBody) + " bytes");
    remaining_ = static_cast<size_t>(n);
    state_ = State::ChunkData;
    return success();
}

Result<std::string> encodeRequest(std::string_view method, std::string_view target, std::string_view body)
{
    if (!isToken(method))
        return Error(ErrorKind::InvalidArgument, "HTTP method " + shown(method) + " is not a token");
    if (target.empty() || target.front() != '/' || !isFieldText(target) ||
        target.find_first_of(" \t") != std::string_view::npos)
        return Error(ErrorKind::InvalidArgument, "HTTP request target " + shown(target) + " is malformed",
                     "It must start with '/' and hold no spaces or control characters");
    std::string out;
    out.reserve(160 + target.size() + body.size());
    out.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
    out += "Host: localhost\r\nAccept: application/json\r\n";
    if (!body.empty()) out += "Content-Type: application/json\r\n";
    out += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
    out.append(body);
    return out;
}

std::string_view reasonPhrase(int status) noexcept
{
    switch (status) {
        case 200: return "OK";
        case 204: return "No Content";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 409: return "Conflict";
        case 429: return "Too Many Requests";
        case 500: return "Internal Server Error";
        case 503: return "Service Unavailable";
        default: return "Unknown";
    }
}

std::string encodeResponse(int status, std::string_view body, bool keepAlive)
{
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reasonPhrase(status)) + "\r\n";
    out += "Server: Cloud Hypervisor API\r\n";
    if (!keepAlive) out += "Connection: close\r\n";
    if (!body.empty()) out += "Content-Type: application/json\r\n";
    if (status != 204) out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    out += "\r\n";
    if (status != 204) out.append(body);
    return out;
}

std::vector<std::string> errorChain(std::string_view body)
{
    std::vector<std::string> chain;
    simdjson::dom::parser parser;
    simdjson::dom::array arr;
    if (!parser.parse(body.data(), body.size()).get(arr)) {
        bool allStrings = true;
        for (auto item : arr) {
            std::string_view s;
            if (item.get_string().get(s)) {
                allStrings = false;
                break;
            }
            chain.emplace_back(s);
        }
        if (allStrings) return chain;
        chain.clear();
    }
    std::string_view text = body;
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
    if (text.empty()) return chain;
    std::string entry;
    for (char c : text.substr(0, 512)) entry += (static_cast<unsigned char>(c) < 0x20) ? ' ' : c;
    chain.push_back(std::move(entry));
    return chain;
}

}  // namespace vmr::chv::http
