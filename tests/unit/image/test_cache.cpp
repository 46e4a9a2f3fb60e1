// The image cache against a loopback HTTP(S) server and the real vmr-fetch: after every case,
// plain, zstd, truncated, wrong checksum, slow and cancelled, 404, redirect, resumed, the
// cache folder holds exactly what it should. Runs once per reactor backend (VMR_REACTOR).

#include "http_server.h"
#include "image/cache.h"

#include <catch2/catch.hpp>
#include <zstd.h>

#include <openssl/evp.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace vmr;
using namespace vmr::image;
using vmr::image::test::HttpServer;
using vmr::reactor::Reactor;
using vmr::reactor::Task;

namespace {

std::string sha256(const std::string& data)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
        out += kDigits[md[i] >> 4];
        out += kDigits[md[i] & 15];
    }
    return out;
}

std::string randomBytes(size_t n, unsigned seed)
{
    std::mt19937 gen(seed);
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(gen() & 0xff);
    return s;
}

std::string zstdCompress(const std::string& data)
{
    std::string out(ZSTD_compressBound(data.size()), '\0');
    size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), 3);
    REQUIRE_FALSE(ZSTD_isError(n));
    out.resize(n);
    return out;
}

std::string readAll(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string fetchProgram()
{
    const char* p = std::getenv("VMR_FETCH");
    return p != nullptr ? p : "vmr-fetch";
}

struct Fixture {
    std::string dir;
    std::unique_ptr<Reactor> reactor;
    std::unique_ptr<Cache> cache;
    std::vector<Progress> progress;

    explicit Fixture(std::string caFile = {}, reactor::Duration readTimeout = 10s)
    {
        char tmpl[] = "/tmp/vmr-cache-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        dir = tmpl;
        auto r = Reactor::create();
        if (!r) FAIL("Reactor::create: " << r.error().what());
        reactor = std::move(*r);
        CacheConfig cfg;
        cfg.dir = dir + "/images";
        cfg.fetchProgram = fetchProgram();
        cfg.caFile = std::move(caFile);
        cfg.readTimeout = readTimeout;
        cfg.connectTimeout = 5s;
        cfg.progressInterval = 10ms;
        cache = std::make_unique<Cache>(*reactor, cfg);
        REQUIRE(cache->open());
    }
    ~Fixture()
    {
        cache.reset();
        if (reactor) (void)reactor->runFor(200ms);  // cancelled downloads finish their clean-up
        reactor.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }

    std::string images() const { return dir + "/images"; }

    Result<ImageEntry> pull(const std::string& url, const std::string& name = {},
                            std::optional<std::string> sha = std::nullopt)
    {
        Cache::PullRequest req;
        req.url = url;
        req.name = name;
        req.sha256 = std::move(sha);
        auto t = cache->pull(
            std::move(req), [this](const Progress& p) { progress.push_back(p); }, nullptr);
        t.start();
        REQUIRE(reactor->runUntil([&] { return t.done(); }, 60s));
        REQUIRE(reactor->runUntil([&] { return cache->idle(); }, 10s));
        return t.result();
    }

    std::vector<std::string> files() const
    {
        std::vector<std::string> out;
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(images(), ec))
            out.push_back(e.path().filename().string());
        std::sort(out.begin(), out.end());
        return out;
    }
};

using Names = std::vector<std::string>;

}  // namespace

TEST_CASE("a plain download becomes one entry with its metadata")
{
    HttpServer server;
    std::string data = randomBytes(300 * 1024, 1);
    server.addFile("disk.img", data);
    Fixture f;
    auto e = f.pull(server.url("files", "disk.img"));
    REQUIRE(e);
    CHECK(e->name == "disk.img");
    CHECK(e->path == f.images() + "/disk.img");
    CHECK(e->url == server.url("files", "disk.img"));
    CHECK(e->size == data.size());
    CHECK(e->sha256 == sha256(data));
    CHECK(e->downloadSha256 == e->sha256);
    CHECK(e->compression == "none");
    CHECK(e->format == "raw");
    CHECK(e->virtualSize == data.size());
    CHECK(f.files() == Names{"disk.img", "disk.img.json"});
    CHECK(readAll(e->path) == data);
    REQUIRE_FALSE(f.progress.empty());
    CHECK(f.progress.back().received == data.size());
    CHECK(f.progress.back().total == std::optional<uint64_t>(data.size()));

    auto meta = parseEntry(readAll(e->path + ".json"), "disk.img");
    REQUIRE(meta);
    meta->path = e->path;
    CHECK(*meta == *e);
    auto listed = f.cache->list();
    REQUIRE(listed);
    REQUIRE(listed->size() == 1);
    CHECK(listed->front() == *e);
}

TEST_CASE("the same URL is downloaded once, also by two callers at once")
{
    HttpServer server;
    std::string data = randomBytes(512 * 1024, 2);
    server.addFile("shared.img", data);
    Fixture f;
    std::string url = server.url("slow", "shared.img");
    Cache::PullRequest req;
    req.url = url;
    auto a = f.cache->pull(req, nullptr, nullptr);
    size_t bProgress = 0;
    auto b = f.cache->pull(
        req, [&](const Progress&) { ++bProgress; }, nullptr);
    a.start();
    b.start();
    REQUIRE(f.reactor->runUntil([&] { return a.done() && b.done(); }, 60s));
    auto ra = a.result();
    auto rb = b.result();
    REQUIRE(ra);
    REQUIRE(rb);
    CHECK(*ra == *rb);
    CHECK(bProgress > 0);
    CHECK(server.requests("/slow/shared.img") == 1);

    // Cached now: no request at all, and the name in a URL-keyed cache is the one it has.
    auto again = f.pull(url);
    REQUIRE(again);
    CHECK(*again == *ra);
    CHECK(server.requests("/slow/shared.img") == 1);
    auto renamed = f.pull(url, "other-name");
    REQUIRE_FALSE(renamed);
    CHECK_THAT(renamed.error().message(), Catch::Contains("already cached as `shared.img`"));
    CHECK(f.files() == Names{"shared.img", "shared.img.json"});
}

TEST_CASE("a zstd download is decompressed on the fly; its checksum is of the file as served")
{
    HttpServer server;
    std::string data = randomBytes(200 * 1024, 3) + std::string(300 * 1024, 'z');
    std::string packed = zstdCompress(data);
    server.addFile("disk.raw.zst", packed);
    server.addFile("cut.raw.zst", packed.substr(0, packed.size() - 100));
    server.addFile("fake.raw.zst", data);
    Fixture f;
    auto e = f.pull(server.url("files", "disk.raw.zst"), "", sha256(packed));
    REQUIRE(e);
    CHECK(e->name == "disk.raw");
    CHECK(e->compression == "zstd");
    CHECK(e->size == data.size());
    CHECK(e->sha256 == sha256(data));
    CHECK(e->downloadSha256 == sha256(packed));
    CHECK(readAll(e->path) == data);

    auto cut = f.pull(server.url("files", "cut.raw.zst"));
    REQUIRE_FALSE(cut);
    CHECK(cut.error().kind() == ErrorKind::DownloadFailed);
    CHECK_THAT(cut.error().message(), Catch::Contains("middle of a frame"));
    auto fake = f.pull(server.url("files", "fake.raw.zst"));
    REQUIRE_FALSE(fake);
    CHECK_THAT(fake.error().message(), Catch::Contains("Cannot decompress"));
    CHECK(f.files() == Names{"disk.raw", "disk.raw.json"});
}

TEST_CASE("a qcow2 image is recognised by qemu-img")
{
    char tmpl[] = "/tmp/vmr-qcow-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    std::string src = std::string(tmpl) + "/src.qcow2";
    {
        auto r = Reactor::create();
        REQUIRE(r);
        reactor::SpawnOptions opts;
        opts.argv = {"qemu-img", "create", "-q", "-f", "qcow2", src, "64M"};
        auto t = reactor::run(**r, std::move(opts), 30s);
        t.start();
        REQUIRE((*r)->runUntil([&] { return t.done(); }, 30s));
        auto res = t.result();
        if (!res) {
            std::filesystem::remove_all(tmpl);
            WARN("qemu-img is not installed: " << res.error().what());
            return;
        }
        REQUIRE(res->status.code == 0);
    }
    std::string data = readAll(src);
    std::filesystem::remove_all(tmpl);
    HttpServer server;
    server.addFile("base.qcow2", data);
    Fixture f;
    auto e = f.pull(server.url("redirect", "base.qcow2"));
    REQUIRE(e);
    CHECK(e->format == "qcow2");
    CHECK(e->virtualSize == 64u << 20);
    CHECK(e->url == server.url("redirect", "base.qcow2"));  // the URL asked for is the key
    CHECK(server.requests("/files/base.qcow2") == 1);
}

TEST_CASE("an expected checksum that does not match keeps nothing")
{
    HttpServer server;
    std::string data = randomBytes(100 * 1024, 4);
    server.addFile("a.img", data);
    Fixture f;
    auto wrong = f.pull(server.url("files", "a.img"), "", std::string(64, '0'));
    REQUIRE_FALSE(wrong);
    CHECK(wrong.error().kind() == ErrorKind::ChecksumMismatch);
    CHECK_THAT(wrong.error().message(), Catch::Contains(sha256(data)));
    CHECK(f.files().empty());

    auto bad = f.pull(server.url("files", "a.img"), "", "xyz");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().kind() == ErrorKind::InvalidArgument);

    // Upper case is the same checksum.
    std::string upper = sha256(data);
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](char c) { return static_cast<char>(::toupper(c)); });
    auto right = f.pull(server.url("files", "a.img"), "", upper);
    REQUIRE(right);
    // And once cached, another expected checksum is refused without touching the entry.
    auto other = f.pull(server.url("files", "a.img"), "", std::string(64, 'f'));
    REQUIRE_FALSE(other);
    CHECK(other.error().kind() == ErrorKind::ChecksumMismatch);
    CHECK(f.files() == Names{"a.img", "a.img.json"});
}

TEST_CASE("404, truncated and unreachable downloads leave nothing behind")
{
    HttpServer server;
    server.addFile("t.img", randomBytes(256 * 1024, 5));
    Fixture f;
    auto missing = f.pull(server.url("files", "nothere.img"));
    REQUIRE_FALSE(missing);
    CHECK(missing.error().kind() == ErrorKind::NotFound);
    CHECK_THAT(missing.error().message(), Catch::Contains("404"));

    auto cut = f.pull(server.url("truncated", "t.img"));
    REQUIRE_FALSE(cut);
    CHECK(cut.error().kind() == ErrorKind::DownloadFailed);
    CHECK(server.requests("/truncated/t.img") == 4);  // the first try and three resumed ones

    auto refused = f.pull("http://127.0.0.1:1/x.img");
    REQUIRE_FALSE(refused);
    CHECK(refused.error().kind() == ErrorKind::DownloadFailed);
    CHECK_THAT(refused.error().message(), Catch::Contains("Cannot connect"));
    CHECK(f.files().empty());
}

TEST_CASE("a dropped connection is resumed with Range, or restarted when the server ignores it")
{
    HttpServer server;
    std::string data = randomBytes(400 * 1024, 6);
    server.addFile("r.img", data);
    server.addFile("n.img", data);
    std::string packed = zstdCompress(data);
    server.addFile("z.img.zst", packed);
    Fixture f;
    auto resumed = f.pull(server.url("flaky", "r.img"));
    REQUIRE(resumed);
    CHECK(readAll(resumed->path) == data);
    CHECK(resumed->sha256 == sha256(data));
    CHECK(server.requests("/flaky/r.img") == 2);
    auto ranges = server.ranges();
    REQUIRE(ranges.size() == 1);
    CHECK(ranges[0] == "bytes=" + std::to_string(data.size() / 2) + "-");

    auto restarted = f.pull(server.url("norange", "n.img"));
    REQUIRE(restarted);
    CHECK(readAll(restarted->path) == data);
    CHECK(server.requests("/norange/n.img") == 2);

    auto zresumed = f.pull(server.url("flaky", "z.img.zst"), "", sha256(packed));
    REQUIRE(zresumed);
    CHECK(readAll(zresumed->path) == data);
    CHECK(f.files() == Names{"n.img", "n.img.json", "r.img", "r.img.json", "z.img", "z.img.json"});
}

TEST_CASE("cancelling the only caller stops the download and keeps nothing")
{
    HttpServer server;
    server.addFile("big.img", randomBytes(2 << 20, 7));
    Fixture f;
    reactor::CancelToken token;
    Cache::PullRequest req;
    req.url = server.url("slow", "big.img");
    bool sawProgress = false;
    auto t = f.cache->pull(
        req, [&](const Progress& p) { sawProgress = sawProgress || p.received > 0; }, &token);
    t.start();
    REQUIRE(f.reactor->runUntil([&] { return sawProgress; }, 20s));
    CHECK(f.files() == Names{"big.img.part"});
    token.cancel();
    REQUIRE(f.reactor->runUntil([&] { return t.done() && f.cache->idle(); }, 20s));
    auto r = t.result();
    REQUIRE_FALSE(r);
    CHECK(r.error().kind() == ErrorKind::Cancelled);
    CHECK(f.files().empty());
}

TEST_CASE("one caller cancelling does not stop a download another waits for")
{
    HttpServer server;
    std::string data = randomBytes(1 << 20, 8);
    server.addFile("s.img", data);
    Fixture f;
    reactor::CancelToken token;
    Cache::PullRequest req;
    req.url = server.url("slow", "s.img");
    bool started = false;
    auto a = f.cache->pull(
        req, [&](const Progress&) { started = true; }, &token);
    auto b = f.cache->pull(req, nullptr, nullptr);
    a.start();
    b.start();
    REQUIRE(f.reactor->runUntil([&] { return started; }, 20s));
    token.cancel();
    REQUIRE(f.reactor->runUntil([&] { return a.done() && b.done(); }, 60s));
    CHECK(a.result().error().kind() == ErrorKind::Cancelled);
    auto rb = b.result();
    REQUIRE(rb);
    CHECK(readAll(rb->path) == data);
}

TEST_CASE("names: taken, in use by a download, removed")
{
    HttpServer server;
    server.addFile("a.img", randomBytes(64 * 1024, 9));
    server.addFile("b.img", randomBytes(64 * 1024, 10));
    Fixture f;
    REQUIRE(f.pull(server.url("files", "a.img")));
    auto taken = f.pull(server.url("files", "b.img"), "a.img");
    REQUIRE_FALSE(taken);
    CHECK_THAT(taken.error().message(), Catch::Contains("already exists"));
    CHECK_THAT(taken.error().message(), Catch::Contains(server.url("files", "a.img")));

    auto bad = f.pull(server.url("files", "b.img"), "../b");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().kind() == ErrorKind::InvalidArgument);

    auto removed = f.cache->remove("a.img");
    REQUIRE(removed);
    CHECK(removed->url == server.url("files", "a.img"));
    CHECK(f.files().empty());
    auto gone = f.cache->remove("a.img");
    REQUIRE_FALSE(gone);
    CHECK(gone.error().kind() == ErrorKind::ImageNotFound);
    CHECK(f.cache->find("a.img").error().kind() == ErrorKind::ImageNotFound);
}

TEST_CASE("open() removes what an interrupted vmrd left, and nothing else")
{
    HttpServer server;
    server.addFile("keep.img", randomBytes(64 * 1024, 11));
    Fixture f;
    REQUIRE(f.pull(server.url("files", "keep.img")));
    std::ofstream(f.images() + "/half.img.part") << "partial";
    std::ofstream(f.images() + "/orphan.img.json") << "{}";
    std::ofstream(f.images() + "/mine.qcow2") << "a file someone put here";
    auto removed = f.cache->open();
    REQUIRE(removed);
    CHECK(removed->size() == 2);
    CHECK(f.files() == Names{"keep.img", "keep.img.json", "mine.qcow2"});
    auto listed = f.cache->list();
    REQUIRE(listed);
    REQUIRE(listed->size() == 1);
    CHECK(listed->front().name == "keep.img");
}

TEST_CASE("HTTPS: a trusted self-signed server works, an untrusted one keeps nothing")
{
    char tmpl[] = "/tmp/vmr-cert-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    auto cert = vmr::image::test::makeSelfSignedCert(tmpl);
    if (cert.certPath.empty()) {
        std::filesystem::remove_all(tmpl);
        WARN("openssl cannot make a test certificate: HTTPS not tested");
        return;
    }
    std::string data = randomBytes(128 * 1024, 12);
    {
        HttpServer server(&cert);
        server.addFile("tls.img", data);
        {
            Fixture untrusted;
            auto r = untrusted.pull(server.url("files", "tls.img"));
            REQUIRE_FALSE(r);
            CHECK(r.error().kind() == ErrorKind::DownloadFailed);
            CHECK_THAT(r.error().message(), Catch::Contains("not trusted"));
            CHECK(untrusted.files().empty());
        }
        Fixture trusted(cert.certPath);
        auto r = trusted.pull(server.url("files", "tls.img"));
        REQUIRE(r);
        CHECK(readAll(r->path) == data);
        CHECK(r->url.rfind("https://", 0) == 0);
    }
    std::filesystem::remove_all(tmpl);
}

TEST_CASE("a missing vmr-fetch is a ToolMissing error")
{
    char tmpl[] = "/tmp/vmr-cache-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    auto r = Reactor::create();
    REQUIRE(r);
    CacheConfig cfg;
    cfg.dir = std::string(tmpl) + "/images";
    cfg.fetchProgram = std::string(tmpl) + "/no-such-vmr-fetch";
    {
        Cache cache(**r, cfg);
        Cache::PullRequest req;
        req.url = "http://127.0.0.1:1/a.img";
        auto t = cache.pull(req, nullptr, nullptr);
        t.start();
        REQUIRE((*r)->runUntil([&] { return t.done() && cache.idle(); }, 10s));
        auto res = t.result();
        REQUIRE_FALSE(res);
        CHECK(res.error().kind() == ErrorKind::ToolMissing);
        CHECK_THAT(res.error().hint(), Catch::Contains("vmr-fetch"));
    }
    std::filesystem::remove_all(tmpl);
}

TEST_CASE("a write error (a full disk, here a file-size limit) leaves no .part behind")
{
    HttpServer server;
    server.addFile("big.img", randomBytes(1 << 20, 13));
    Fixture f;
    // vmr-fetch inherits the limit: its writes past 256 KiB fail with EFBIG, as they would with
    // ENOSPC on a full disk.
    rlimit saved{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
    auto oldHandler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit small = saved;
    small.rlim_cur = 256 * 1024;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    auto r = f.pull(server.url("files", "big.img"));
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &saved) == 0);
    std::signal(SIGXFSZ, oldHandler);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message(), Catch::Contains("Cannot write"));
    CHECK(f.files().empty());
}

TEST_CASE("vmr-fetch is looked for next to the program, else in PATH")
{
    // The test binary has no vmr-fetch beside it.
    CHECK(defaultFetchProgram() == "vmr-fetch");
}

TEST_CASE("cancelAll stops every download and keeps nothing")
{
    HttpServer server;
    server.addFile("one.img", randomBytes(1 << 20, 14));
    server.addFile("two.img", randomBytes(1 << 20, 15));
    Fixture f;
    Cache::PullRequest a, b;
    a.url = server.url("slow", "one.img");
    b.url = server.url("slow", "two.img");
    bool started = false;
    auto ta = f.cache->pull(
        a, [&](const Progress& p) { started = started || p.received > 0; }, nullptr);
    auto tb = f.cache->pull(b, nullptr, nullptr);
    ta.start();
    tb.start();
    REQUIRE(f.reactor->runUntil([&] { return started; }, 20s));
    f.cache->cancelAll();
    REQUIRE(f.reactor->runUntil([&] { return ta.done() && tb.done() && f.cache->idle(); }, 20s));
    CHECK(ta.result().error().kind() == ErrorKind::Cancelled);
    CHECK(tb.result().error().kind() == ErrorKind::Cancelled);
    CHECK(f.files().empty());
}

TEST_CASE("a server that stops sending fails the download after the read timeout and retries")
{
    HttpServer server;
    server.addFile("stuck.img", randomBytes(256 * 1024, 16));
    Fixture f({}, 1s);
    auto r = f.pull(server.url("stall", "stuck.img"));
    REQUIRE_FALSE(r);
    CHECK(r.error().kind() == ErrorKind::DownloadFailed);
    CHECK_THAT(r.error().message(), Catch::Contains("connection broke"));
    CHECK(server.requests("/stall/stuck.img") == 4);
    CHECK(f.files().empty());
}

TEST_CASE("vmr-fetch never overwrites a file and checks its arguments")
{
    auto r = Reactor::create();
    REQUIRE(r);
    char tmpl[] = "/tmp/vmr-fetchargs-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    std::string out = std::string(tmpl) + "/exists.img";
    std::ofstream(out) << "precious";
    auto runFetch = [&](std::vector<std::string> argv) {
        reactor::SpawnOptions opts;
        opts.argv = std::move(argv);
        auto t = reactor::run(**r, std::move(opts), 30s);
        t.start();
        REQUIRE((*r)->runUntil([&] { return t.done(); }, 30s));
        auto res = t.result();
        REQUIRE(res);
        return std::move(*res);
    };
    auto kept = runFetch({fetchProgram(), "--url", "http://127.0.0.1:1/a.img", "--output", out});
    CHECK(kept.status.code == 1);
    auto ev = parseFetchEvent(kept.out.substr(0, kept.out.find('\n')));
    REQUIRE(ev);
    CHECK(ev->type == FetchEvent::Type::Error);
    CHECK_THAT(ev->message, Catch::Contains("already exists"));
    CHECK(readAll(out) == "precious");

    auto noUrl = runFetch({fetchProgram(), "--output", std::string(tmpl) + "/x"});
    CHECK(noUrl.status.code == 2);
    CHECK_THAT(noUrl.err, Catch::Contains("--url is required"));
    auto badSha = runFetch(
        {fetchProgram(), "--url", "http://h/a", "--output", std::string(tmpl) + "/x", "--sha256", "12"});
    CHECK(badSha.status.code == 2);
    CHECK_THAT(badSha.err, Catch::Contains("64 hexadecimal digits"));
    auto badUrl = runFetch({fetchProgram(), "--url", "ftp://h/a", "--output", std::string(tmpl) + "/y"});
    CHECK(badUrl.status.code == 1);
    CHECK_THAT(badUrl.out, Catch::Contains("not an http"));
    CHECK_FALSE(std::filesystem::exists(std::string(tmpl) + "/y"));
    std::filesystem::remove_all(tmpl);
}
