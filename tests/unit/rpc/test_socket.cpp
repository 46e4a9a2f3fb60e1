// The parser and the framer driven over a real socketpair(), with the input written in two
// pieces split at every byte boundary, and the replies read back by the client side.

#include "base/fd.h"
#include "base/json.h"
#include "rpc/framing.h"
#include "rpc/protocol.h"

#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

using namespace vmr;
using namespace vmr::rpc;

namespace {

struct Pair {
    UniqueFd client;
    UniqueFd server;
};

Pair makePair()
{
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) == 0);
    return Pair{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

void writeAll(int fd, std::string_view data)
{
    while (!data.empty()) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        REQUIRE(n > 0);
        data.remove_prefix(static_cast<size_t>(n));
    }
}

// Read what is available now (the socket is non-blocking) and feed it, in small reads so the
// framer also sees pieces that the writer did not make.
void drain(int fd, LineFramer& framer, const std::function<void(std::string_view)>& onLine)
{
    char buf[7];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            REQUIRE((errno == EAGAIN || errno == EWOULDBLOCK));
            return;
        }
        REQUIRE(n > 0);
        REQUIRE(framer.feed(std::string_view(buf, static_cast<size_t>(n)), onLine).ok());
    }
}

// A tiny server: answers each request with its method name, errors with encodeError,
// batches as arrays, notifications not at all.
std::string answer(Parser& parser, std::string_view line)
{
    auto msg = parser.parse(line);
    if (!msg) return encodeError(Id::null(), msg.error()) + "\n";
    std::vector<std::string> replies;
    for (const Item& it : msg->items) {
        if (!it.request) {
            replies.push_back(encodeError(it.id, *it.error));
        } else if (!it.request->notification()) {
            replies.push_back(encodeResult(it.request->id, json::quote(it.request->method)));
        }
    }
    if (replies.empty()) return {};
    if (!msg->batch) return replies.front() + "\n";
    std::string out = "[";
    for (size_t i = 0; i < replies.size(); ++i) out += (i ? "," : "") + replies[i];
    return out + "]\n";
}

}  // namespace

TEST_CASE("requests and replies over a socketpair, split at every byte", "[socket]")
{
    const std::string input =
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"vmr.ping\"}\n"
        "{\"jsonrpc\":\"2.0\",\"method\":\"note\"}\r\n"
        "\n"
        "[{\"jsonrpc\":\"2.0\",\"id\":\"b\\n1\",\"method\":\"vm.list\",\"params\":{\"all\":true}},{\"x\":1},"
        "{\"jsonrpc\":\"2.0\",\"method\":\"n2\"}]\n"
        "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"broken\"\n"
        "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"vm.start\",\"params\":{\"name\":\"w\\u00e9b\"}}\n";

    // What the client must see, in order: (id, result or error code).
    struct Seen {
        std::string id;
        std::string result;
        int code;
    };
    const std::vector<std::vector<Seen>> want = {
        {{"1", "\"vmr.ping\"", 0}},
        {{"\"b\\n1\"", "\"vm.list\"", 0}, {"null", "", -32600}},
        {{"null", "", -32700}},
        {{"3", "\"vm.start\"", 0}},
    };

    for (size_t split = 0; split <= input.size(); ++split) {
        INFO("split at " << split);
        Pair pair = makePair();
        Parser serverParser;
        LineFramer serverFramer;
        LineFramer clientFramer;
        std::vector<std::vector<Seen>> seen;

        auto onServerLine = [&](std::string_view line) {
            std::string reply = answer(serverParser, line);
            if (!reply.empty()) writeAll(pair.server.get(), reply);
        };
        auto onClientLine = [&](std::string_view line) {
            auto in = parseIncoming(line);
            REQUIRE(in.ok());
            std::vector<Seen> group;
            auto add = [&](const Response& r) {
                group.push_back(Seen{r.id.json, r.result.value_or(""), r.error ? r.code : 0});
            };
            if (in->response) add(*in->response);
            for (const auto& r : in->batch) add(r);
            seen.push_back(std::move(group));
        };

        writeAll(pair.client.get(), std::string_view(input).substr(0, split));
        drain(pair.server.get(), serverFramer, onServerLine);
        drain(pair.client.get(), clientFramer, onClientLine);
        writeAll(pair.client.get(), std::string_view(input).substr(split));
        drain(pair.server.get(), serverFramer, onServerLine);
        drain(pair.client.get(), clientFramer, onClientLine);

        REQUIRE(serverFramer.buffered() == 0);
        REQUIRE(clientFramer.buffered() == 0);
        REQUIRE(seen.size() == want.size());
        for (size_t i = 0; i < want.size(); ++i) {
            REQUIRE(seen[i].size() == want[i].size());
            for (size_t j = 0; j < want[i].size(); ++j) {
                CHECK(seen[i][j].id == want[i][j].id);
                CHECK(seen[i][j].result == want[i][j].result);
                CHECK(seen[i][j].code == want[i][j].code);
            }
        }
    }
}

TEST_CASE("an oversized line over a socket is refused before the newline", "[socket]")
{
    Pair pair = makePair();
    LineFramer framer(1000);
    std::string big(1500, 'x');
    size_t lines = 0;
    writeAll(pair.client.get(), big.substr(0, 600));
    char buf[4096];
    ssize_t n = ::recv(pair.server.get(), buf, sizeof buf, 0);
    REQUIRE(n == 600);
    REQUIRE(framer.feed(std::string_view(buf, 600), [&](std::string_view) { ++lines; }).ok());
    writeAll(pair.client.get(), big.substr(600));
    n = ::recv(pair.server.get(), buf, sizeof buf, 0);
    REQUIRE(n == 900);
    auto r = framer.feed(std::string_view(buf, 900), [&](std::string_view) { ++lines; });
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind() == ErrorKind::TooLarge);
    CHECK(lines == 0);
    // The reply the server sends before closing is one valid line for the client.
    auto in = parseIncoming(encodeError(Id::null(), r.error()));
    REQUIRE(in.ok());
    CHECK(in->response->error->kind() == ErrorKind::TooLarge);
}
