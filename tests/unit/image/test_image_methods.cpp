// image.pull, image.list, image.inspect and image.remove through a real rpc::Server on a unix
// socket, with the real cache, vmr-fetch and a loopback HTTP server.

#include "../api/world.h"
#include "http_server.h"

#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>

using namespace std::chrono_literals;
using namespace vmr;
using vmr::image::test::HttpServer;

namespace {

struct Fixture {
    test::World world{[](image::CacheConfig& c) { c.progressInterval = 1ms; }};
    std::string dir = world.dir.path();
    reactor::Reactor* reactor = world.r.get();
    std::unique_ptr<rpc::Server> server;
    std::vector<std::string>& events = world.published;
    int fd = -1;
    std::string buf;
    int nextId = 1;

    Fixture()
    {
        std::string path = dir + "/s.sock";
        auto l = reactor::listenUnix(path, 0600);
        REQUIRE(l);
        server = std::make_unique<rpc::Server>(*reactor, std::move(*l), rpc::Limits{});
        api::registerImageActions(*server, *world.services);

        fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    }
    ~Fixture()
    {
        ::close(fd);
        server.reset();
        (void)reactor->runFor(100ms);
    }

    // A VM whose base is `image`: its record, loaded as at a vmrd start.
    void addVmUsing(const std::string& name, const std::string& image)
    {
        store::VmRecord rec;
        rec.spec.name = name;
        rec.spec.image = image;
        rec.spec.network.mode = model::NetMode::None;
        rec.runtime.id = "0000beef";
        rec.runtime.state = model::VmState::Prepared;
        REQUIRE(world.store->save(rec));
        REQUIRE(test::finish(*reactor, world.manager->adoptAll({rec})));
    }

    // Send one request and run the loop until its reply line arrives.
    std::string call(const std::string& method, const std::string& params)
    {
        std::string line = "{\"jsonrpc\":\"2.0\",\"id\":" + std::to_string(nextId++) + ",\"method\":\"" +
                           method + "\",\"params\":" + params + "}\n";
        REQUIRE(::send(fd, line.data(), line.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(line.size()));
        std::string reply;
        bool got = reactor->runUntil(
            [&] {
                if (!reply.empty()) return true;  // runUntil asks once more at the end
                char chunk[65536];
                ssize_t n;
                while ((n = ::recv(fd, chunk, sizeof chunk, 0)) > 0)
                    buf.append(chunk, static_cast<size_t>(n));
                size_t nl = buf.find('\n');
                if (nl == std::string::npos) return false;
                reply = buf.substr(0, nl);
                buf.erase(0, nl + 1);
                return true;
            },
            60s);
        REQUIRE(got);
        return reply;
    }
};

std::string randomBytes(size_t n)
{
    std::mt19937 gen(42);
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(gen() & 0xff);
    return s;
}

}  // namespace

TEST_CASE("image methods: pull with progress events, list, inspect, remove")
{
    HttpServer http;
    http.addFile("disk.img", randomBytes(256 * 1024));
    Fixture f;
    std::string url = http.url("files", "disk.img");

    auto pulled = f.call("image.pull", "{\"url\":\"" + url + "\",\"name\":\"d1\"}");
    CHECK_THAT(pulled, Catch::Contains("\"name\":\"d1\""));
    CHECK_THAT(pulled, Catch::Contains("\"format\":\"raw\""));
    CHECK_THAT(pulled, Catch::Contains("\"size\":262144"));
    REQUIRE_FALSE(f.events.empty());
    CHECK_THAT(f.events.back(), Catch::StartsWith("image.progress \"url\":\"" + url + "\""));
    CHECK_THAT(f.events.back(), Catch::Contains("\"received\":262144,\"total\":262144"));

    auto listed = f.call("image.list", "{}");
    CHECK_THAT(listed, Catch::Contains("{\"images\":[{\"path\":\"" + f.dir +
                                       "/state/images/d1\",\"version\":1,\"name\":\"d1\""));

    auto byName = f.call("image.inspect", "{\"path\":\"d1\"}");
    CHECK_THAT(byName, Catch::Contains("\"format\":\"raw\",\"virtual_size\":262144"));
    CHECK_THAT(byName, Catch::Contains("\"backing_file\":null"));
    auto byPath = f.call("image.inspect", "{\"path\":\"" + f.dir + "/state/images/d1\"}");
    CHECK_THAT(byPath, Catch::Contains("\"format\":\"raw\""));
    auto relative = f.call("image.inspect", "{\"path\":\"images/d1\"}");
    CHECK_THAT(relative, Catch::Contains("\"kind\":\"invalid_argument\""));
    CHECK_THAT(relative, Catch::Contains("absolute path"));

    f.addVmUsing("web", f.dir + "/state/images/d1");
    auto refused = f.call("image.remove", "{\"name\":\"d1\"}");
    CHECK_THAT(refused, Catch::Contains("\"kind\":\"busy\""));
    CHECK_THAT(refused, Catch::Contains("VM web"));
    CHECK(std::filesystem::exists(f.dir + "/state/images/d1"));

    REQUIRE(test::finish(*f.reactor, f.world.manager->destroy("web")));
    auto removed = f.call("image.remove", "{\"name\":\"d1\"}");
    CHECK_THAT(removed, Catch::Contains("\"result\":{\"removed\":\"d1\""));
    CHECK_THAT(f.call("image.list", "{}"), Catch::Contains("{\"images\":[]}"));
    auto again = f.call("image.remove", "{\"name\":\"d1\"}");
    CHECK_THAT(again, Catch::Contains("\"kind\":\"image.not_found\""));
}

TEST_CASE("image methods: bad params are refused with the parameter named")
{
    Fixture f;
    auto noUrl = f.call("image.pull", "{}");
    CHECK_THAT(noUrl, Catch::Contains("\"kind\":\"invalid_params\""));
    CHECK_THAT(noUrl, Catch::Contains("url"));
    auto typo = f.call("image.pull", "{\"url\":\"http://127.0.0.1:1/a.img\",\"nmae\":\"x\"}");
    CHECK_THAT(typo, Catch::Contains("nmae"));
    auto ftp = f.call("image.pull", "{\"url\":\"ftp://h/a.img\"}");
    CHECK_THAT(ftp, Catch::Contains("\"kind\":\"invalid_argument\""));
    auto sha = f.call("image.pull", "{\"url\":\"http://127.0.0.1:1/a.img\",\"sha256\":\"abc\"}");
    CHECK_THAT(sha, Catch::Contains("64 hexadecimal digits"));
    auto missing = f.call("image.pull", "{\"url\":\"http://127.0.0.1:1/a.img\"}");
    CHECK_THAT(missing, Catch::Contains("\"kind\":\"image.download_failed\""));
    CHECK(std::filesystem::is_empty(f.dir + "/state/images"));
}
