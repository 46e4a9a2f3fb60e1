// libFuzzer target for cloud-hypervisor's wire formats: the HTTP/1.1 parser (responses and
// requests, fed in two parts, with the default and with tiny limits), the error chain of a
// body, and the event-monitor stream. The unit suite replays tests/fuzz/corpus/http/ through it.

#include "chv/events.h"
#include "chv/http.h"
#include "chv/vm_config.h"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace {

using namespace vmr::chv;

void parseAll(http::Parser::Kind kind, std::string_view input, size_t cut, const http::Limits& limits)
{
    http::Parser p(kind, limits);
    std::string_view parts[2] = {input.substr(0, cut), input.substr(cut)};
    for (std::string_view part : parts) {
        auto r = p.feed(part);
        while (r && *r) {
            http::Message m = p.take();
            if (kind == http::Parser::Kind::Response && (m.status < 100 || m.status > 599)) __builtin_trap();
            if (m.body.size() > limits.maxBody) __builtin_trap();
            if (m.headers.size() > limits.maxHeaders) __builtin_trap();
            (void)http::errorChain(m.body);
            (void)parseVmInfo(m.body);
            (void)parsePing(m.body);
            r = p.feed({});
        }
        if (!r) return;
    }
    (void)p.finish();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    std::string_view input(reinterpret_cast<const char*>(data), size);
    // Split where the first byte says: the result must not depend on the framing of reads.
    size_t cut = size > 0 ? data[0] % (size + 1) : 0;
    http::Limits tiny;
    tiny.maxHeadBytes = 48;
    tiny.maxHeaders = 3;
    tiny.maxBody = 16;
    tiny.maxChunkLine = 8;
    for (auto kind : {http::Parser::Kind::Response, http::Parser::Kind::Request}) {
        parseAll(kind, input, cut, http::Limits{});
        parseAll(kind, input, cut, tiny);
    }

    // Whole or split, the event stream gives the same events.
    EventStream whole, split;
    whole.append(input);
    split.append(input.substr(0, cut));
    size_t wholeCount = 0, splitCount = 0;
    for (;;) {
        auto ev = whole.next();
        if (!ev || !*ev) break;
        ++wholeCount;
    }
    for (int round = 0; round < 2; ++round) {
        for (;;) {
            auto ev = split.next();
            if (!ev || !*ev) break;
            ++splitCount;
        }
        if (round == 0) split.append(input.substr(cut));
    }
    if (splitCount != wholeCount) __builtin_trap();
    return 0;
}
