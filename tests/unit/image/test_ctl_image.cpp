// vmrctl's image commands: argument parsing, sizes, the progress meter, and a whole
// `image pull` against a real rpc::Server running the image methods in another thread.

#include "../api/world.h"
#include "base/json.h"
#include "http_server.h"
#include "image_commands.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

using namespace std::chrono_literals;
using namespace vmr;
using namespace vmr::ctl;

TEST_CASE("image pull takes a URL, --name and --sha256")
{
    auto inv = parseImageCommand({"image", "pull", "https://h/d.qcow2", "--name", "deb", "--sha256=ab"});
    REQUIRE(inv);
    CHECK(inv->method == "image.pull");
    CHECK(inv->url == "https://h/d.qcow2");
    CHECK(inv->params == R"({"url":"https://h/d.qcow2","name":"deb","sha256":"ab"})");

    for (std::vector<std::string> bad : std::vector<std::vector<std::string>>{
             {"image", "pull"},
             {"image", "pull", "u1", "u2"},
             {"image", "pull", "u", "--name"},
             {"image", "pull", "u", "--name=a", "--name=b"},
             {"image", "pull", "u", "--force"},
         }) {
        auto r = parseImageCommand(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().kind() == ErrorKind::InvalidArgument);
        CHECK_THAT(r.error().message(), Catch::StartsWith("image pull"));
    }
}

TEST_CASE("image list, inspect and rm")
{
    CHECK(parseImageCommand({"image", "list"})->method == "image.list");
    CHECK_FALSE(parseImageCommand({"image", "list", "x"}));
    auto byName = parseImageCommand({"image", "inspect", "no-such-local-file.img"});
    REQUIRE(byName);
    CHECK(byName->params == R"({"path":"no-such-local-file.img"})");
    auto byPath = parseImageCommand({"image", "inspect", "sub/../d.img"});
    REQUIRE(byPath);
    std::string cwd = std::filesystem::current_path().string();
    CHECK(byPath->params == "{\"path\":\"" + cwd + "/d.img\"}");
    auto rm = parseImageCommand({"image", "rm", "deb"});
    REQUIRE(rm);
    CHECK(rm->method == "image.remove");
    CHECK(rm->params == R"({"name":"deb"})");
    CHECK_FALSE(parseImageCommand({"image", "rm"}));
    CHECK_FALSE(parseImageCommand({"image"}));
    auto unknown = parseImageCommand({"image", "push", "x"});
    REQUIRE_FALSE(unknown);
    CHECK_THAT(unknown.error().message(), Catch::Contains("push"));
}

TEST_CASE("sizes and the progress meter")
{
    CHECK(formatBytes(0) == "0 B");
    CHECK(formatBytes(1023) == "1023 B");
    CHECK(formatBytes(1536) == "1.5 KiB");
    CHECK(formatBytes(uint64_t{3} << 30) == "3.0 GiB");

    auto t0 = ProgressMeter::Clock::now();
    ProgressMeter m(t0);
    m.update(0, uint64_t{100} << 20, t0);
    CHECK(m.line() == "  0%  0 B / 100.0 MiB");
    m.update(uint64_t{10} << 20, uint64_t{100} << 20, t0 + 1s);
    CHECK(m.rate() == Approx(10 << 20));
    CHECK(m.line() == " 10%  10.0 MiB / 100.0 MiB  10.0 MiB/s  ETA 0:09");
    CHECK(m.bar(10) == "[#---------]  10%  10.0 MiB / 100.0 MiB  10.0 MiB/s  ETA 0:09");

    ProgressMeter unknown(t0);
    unknown.update(2048, std::nullopt, t0 + 2s);
    CHECK(unknown.line() == "2.0 KiB  1.0 KiB/s");
    CHECK(unknown.bar(4) == "[----] 2.0 KiB  1.0 KiB/s");
}

namespace {

// vmrd's side in a thread of its own: a reactor, an rpc::Server with the image methods and an
// events.subscribe like the daemon's, publishing image.progress events to subscribers.
class ServerThread {
public:
    ServerThread(std::string dir, std::string socket) : dir_(std::move(dir)), socket_(std::move(socket))
    {
        thread_ = std::thread([this] { run(); });
        while (!ready_ && !failed_) std::this_thread::sleep_for(5ms);
    }
    ~ServerThread()
    {
        stop_ = true;
        thread_.join();
    }
    bool ok() const { return ready_; }
    const std::string& imagesDir() const { return imagesDir_; }

private:
    void run()
    {
        test::World world([](image::CacheConfig& c) { c.progressInterval = 1ms; });
        auto l = reactor::listenUnix(socket_, 0600);
        if (!l) {
            failed_ = true;
            return;
        }
        {
            rpc::Server server(*world.r, std::move(*l), rpc::Limits{});
            // Events go out as the daemon publishes them: {topic, members...}.
            world.services->publish = [&server](std::string_view topic, std::string_view,
                                                std::string_view fields) {
                std::string params = "{\"topic\":" + json::quote(topic) + "," + std::string(fields) + "}";
                server.publish(topic, "", params);
            };
            api::registerImageActions(server, *world.services);
            api::registerDaemonActions(server, *world.services);
            imagesDir_ = world.layout->imagesDir();
            ready_ = true;
            // Short turns: nothing on the loop wakes it when stop_ is set from the test's thread.
            while (!stop_) world.r->runUntil([this] { return stop_.load(); }, 50ms);
            server.shutdown();
            world.r->runUntil([&] { return world.cache->idle(); }, 10s);
        }
    }

    std::string dir_, socket_, imagesDir_;
    std::thread thread_;
    std::atomic<bool> ready_{false}, failed_{false}, stop_{false};
};

}  // namespace

TEST_CASE("vmrctl image pull shows progress as plain lines and prints the image")
{
    char tmpl[] = "/tmp/vmr-ctlimg-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    std::string dir = tmpl;
    vmr::image::test::HttpServer http;
    http.addFile("slow.img", std::string(1 << 20, 'x'));
    std::string out;
    std::string imagesDir;
    int code = -1;
    {
        ServerThread vmrd(dir, dir + "/s.sock");
        REQUIRE(vmrd.ok());
        imagesDir = vmrd.imagesDir();
        auto inv = parseImageCommand({"image", "pull", http.url("slow", "slow.img")});
        REQUIRE(inv);
        ImageIo io;
        io.connect = [&] { return Client::connect(dir + "/s.sock", 2s); };
        std::string errors;
        io.reportError = [&](const Error& e) {
            errors = e.what();
            return 1;
        };
        // stderr (the progress lines) and stdout (the result) into files.
        std::string errPath = dir + "/stderr", outPath = dir + "/stdout";
        std::fflush(stdout);
        std::fflush(stderr);
        int savedOut = ::dup(1), savedErr = ::dup(2);
        int o = ::open(outPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int e = ::open(errPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ::dup2(o, 1);
        ::dup2(e, 2);
        code = runImageCommand(*inv, io);
        std::fflush(stdout);
        std::fflush(stderr);
        ::dup2(savedOut, 1);
        ::dup2(savedErr, 2);
        for (int fd : {o, e, savedOut, savedErr}) ::close(fd);
        INFO(errors);
        std::ifstream so(outPath), se(errPath);
        out = std::string(std::istreambuf_iterator<char>(so), {});
        std::string err(std::istreambuf_iterator<char>(se), {});
        // 64 chunks 20 ms apart: at least one progress line, without terminal escapes.
        CHECK_THAT(err, Catch::Contains("  0%  0 B / 1.0 MiB"));
        CHECK_THAT(err, Catch::Contains("100%  1.0 MiB / 1.0 MiB"));
        CHECK(err.find('\x1b') == std::string::npos);
    }
    CHECK(code == 0);
    CHECK_THAT(out, Catch::StartsWith("slow.img: raw, 1.0 MiB (virtual 1.0 MiB), sha256 "));
    CHECK_THAT(out, Catch::Contains(imagesDir + "/slow.img\n"));
    std::filesystem::remove_all(dir);
}
