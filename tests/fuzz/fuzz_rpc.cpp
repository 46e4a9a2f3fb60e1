// Fuzz target for the JSON-RPC protocol code: framing, the server parser, the encoders, the
// client parser and typed params. Besides "no crash, no sanitizer report", it checks that
// what the parser accepts re-encodes to text that parses back to the same thing.

#include "base/error.h"
#include "rpc/framing.h"
#include "rpc/params.h"
#include "rpc/protocol.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace {

using namespace vmr;
using namespace vmr::rpc;

void check(bool ok)
{
    if (!ok) std::abort();
}

void exerciseParams(std::string_view json)
{
    auto params = Params::parse(json, true);
    if (!params) {
        check(params.error().kind() == ErrorKind::InvalidParams);
        return;
    }
    for (const auto& f : params->fields()) {
        (void)params->string(f.name);
        (void)params->optString(f.name);
        (void)params->optInt(f.name, -1000, 1000);
        (void)params->optInt(f.name, INT64_MIN, INT64_MAX);
        (void)params->optBool(f.name);
        auto raw = params->optRaw(f.name);
        check(raw.ok());
    }
    (void)params->allowOnly({"name", "wait", "timeout"});
}

void checkErrorRoundTrip(const Id& id, const Error& err)
{
    auto in = parseIncoming(encodeError(id, err));
    check(in.ok() && in->response && in->response->error);
    check(in->response->id == id);
    check(in->response->error->kind() == err.kind());
}

void exercise(Parser& parser, std::string_view line)
{
    auto msg = parser.parse(line);
    if (!msg) {
        check(msg.error().kind() == ErrorKind::ParseError);
        checkErrorRoundTrip(Id::null(), msg.error());
    } else {
        check(!msg->items.empty());
        for (const Item& item : msg->items) {
            check(item.request.has_value() != item.error.has_value());
            if (item.error) {
                check(item.id.present());
                checkErrorRoundTrip(item.id, *item.error);
                continue;
            }
            const Request& req = *item.request;
            check(parser.valid(req.id.json));
            if (!req.params.empty()) check(parser.valid(req.params));
            // Re-encode and parse again: the same request comes back.
            std::string again = encodeRequest(req.id, req.method, req.params);
            auto back = parser.parse(again);
            check(back.ok() && !back->batch && back->items.size() == 1 && back->items[0].request);
            const Request& r2 = *back->items[0].request;
            check(r2.id == req.id && r2.method == req.method && r2.params == req.params);
            exerciseParams(req.params);
            if (req.id.present()) {
                auto in = parseIncoming(encodeResult(req.id, req.params.empty() ? "null" : req.params));
                check(in.ok() && in->response && in->response->result);
                check(in->response->id == req.id);
                if (!req.params.empty()) check(*in->response->result == req.params);
            }
        }
    }
    auto in = parseIncoming(line);
    if (in) {
        if (in->response && in->response->error) checkErrorRoundTrip(in->response->id, *in->response->error);
        if (in->notification) {
            auto note = parseIncoming(encodeNotification(in->notification->method, in->notification->params));
            check(note.ok() && note->notification && note->notification->method == in->notification->method);
        }
    }
    (void)parser.split(line, true);
    exerciseParams(line);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    static Parser parser;
    std::string_view input(reinterpret_cast<const char*>(data), size);
    // The whole input as one line, then as a stream cut into lines by a small framer.
    if (std::memchr(input.data(), '\n', input.size()) == nullptr) exercise(parser, input);
    LineFramer framer(4096);
    size_t lines = 0;
    auto fed = framer.feed(input, [&](std::string_view line) {
        ++lines;
        check(line.find('\n') == std::string_view::npos && !line.empty() && line.size() <= 4096);
        exercise(parser, line);
    });
    if (!fed) check(fed.error().kind() == ErrorKind::TooLarge);
    return 0;
}
