// The pure parts of the download path: URLs, checksums, vmr-fetch's events, line splitting,
// image names and the <name>.json metadata.

#include "image/cache.h"
#include "image/fetch.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace vmr;
using namespace vmr::image;

TEST_CASE("parseUrl splits http and https URLs")
{
    auto u = parseUrl("https://Example.org/images/debian-12.qcow2?x=1#frag");
    REQUIRE(u);
    CHECK(u->scheme == "https");
    CHECK(u->host == "Example.org");
    CHECK(u->port == 443);
    CHECK(u->hostPort == "Example.org:443");
    CHECK(u->path == "/images/debian-12.qcow2?x=1");
    CHECK(u->fileName == "debian-12.qcow2");

    auto p = parseUrl("HTTP://127.0.0.1:8080");
    REQUIRE(p);
    CHECK(p->scheme == "http");
    CHECK(p->port == 8080);
    CHECK(p->path == "/");
    CHECK(p->fileName.empty());

    auto v6 = parseUrl("http://[::1]:81/a.img.zst");
    REQUIRE(v6);
    CHECK(v6->host == "::1");
    CHECK(v6->hostPort == "[::1]:81");
    CHECK(v6->fileName == "a.img.zst");
}

TEST_CASE("parseUrl refuses what it cannot fetch, saying why")
{
    struct Case {
        const char* url;
        const char* says;
    };
    for (auto c : std::vector<Case>{{"ftp://x/a.img", "not an http"},
                                    {"/tmp/a.img", "not an http"},
                                    {"http:///a.img", "no host"},
                                    {"http://x:0/a", "bad port"},
                                    {"http://x:99999/a", "bad port"},
                                    {"http://x:8a/a", "bad port"},
                                    {"http://user:pw@x/a", "password"},
                                    {"http://x/a b.img", "space"},
                                    {"http://[::1/a", "closing ]"}}) {
        INFO(c.url);
        auto u = parseUrl(c.url);
        REQUIRE_FALSE(u);
        CHECK(u.error().kind() == ErrorKind::InvalidArgument);
        CHECK_THAT(u.error().message(), Catch::Contains(c.says));
        CHECK_FALSE(u.error().hint().empty());
    }
}

TEST_CASE("zstd is chosen by the URL's file name unless forced")
{
    auto zst = parseUrl("http://h/a.img.zst");
    auto zstd = parseUrl("http://h/a.img.zstd?v=2");
    auto raw = parseUrl("http://h/a.zst/b.img");
    REQUIRE((zst && zstd && raw));
    CHECK(wantsZstd(Decompress::Auto, *zst));
    CHECK(wantsZstd(Decompress::Auto, *zstd));
    CHECK_FALSE(wantsZstd(Decompress::Auto, *raw));
    CHECK_FALSE(wantsZstd(Decompress::None, *zst));
    CHECK(wantsZstd(Decompress::Zstd, *raw));
    CHECK(parseDecompress("zstd").value() == Decompress::Zstd);
    CHECK_FALSE(parseDecompress("gzip"));
}

TEST_CASE("normalizeSha256 lowercases 64 hex digits and refuses anything else")
{
    std::string upper(64, 'A');
    CHECK(normalizeSha256(upper).value() == std::string(64, 'a'));
    CHECK_FALSE(normalizeSha256(std::string(63, 'a')));
    CHECK_FALSE(normalizeSha256(std::string(65, 'a')));
    auto bad = normalizeSha256(std::string(63, 'a') + "g");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().kind() == ErrorKind::InvalidArgument);
}

TEST_CASE("fetch events survive a round trip through their JSON line")
{
    FetchEvent start;
    start.type = FetchEvent::Type::Start;
    start.url = "http://h/a";
    start.offset = 10;
    start.total = 100;
    auto s = parseFetchEvent(encodeFetchEvent(start));
    REQUIRE(s);
    CHECK(s->type == FetchEvent::Type::Start);
    CHECK(s->offset == 10);
    CHECK(s->received == 10);
    CHECK(s->total == std::optional<uint64_t>(100));

    FetchEvent prog;
    prog.type = FetchEvent::Type::Progress;
    prog.received = 5;
    prog.written = 7;
    auto p = parseFetchEvent(encodeFetchEvent(prog));
    REQUIRE(p);
    CHECK(p->received == 5);
    CHECK(p->written == 7);
    CHECK_FALSE(p->total);

    FetchEvent done;
    done.type = FetchEvent::Type::Done;
    done.url = "http://h/b";
    done.written = 3;
    done.received = 2;
    done.sha256 = std::string(64, 'a');
    done.downloadSha256 = std::string(64, 'b');
    done.compression = "zstd";
    auto d = parseFetchEvent(encodeFetchEvent(done));
    REQUIRE(d);
    CHECK(d->written == 3);
    CHECK(d->received == 2);
    CHECK(d->downloadSha256 == done.downloadSha256);
    CHECK(d->compression == "zstd");

    FetchEvent err;
    err.type = FetchEvent::Type::Error;
    err.errorKind = ErrorKind::ChecksumMismatch;
    err.message = "Bad \"sum\"\n";
    err.hint = "h";
    auto e = parseFetchEvent(encodeFetchEvent(err));
    REQUIRE(e);
    CHECK(e->errorKind == ErrorKind::ChecksumMismatch);
    CHECK(e->message == err.message);
    CHECK(encodeFetchEvent(err).find('\n') == std::string::npos);
}

TEST_CASE("parseFetchEvent names what is wrong")
{
    CHECK_FALSE(parseFetchEvent("not json"));
    auto unknown = parseFetchEvent(R"({"event":"explode"})");
    REQUIRE_FALSE(unknown);
    CHECK_THAT(unknown.error().message(), Catch::Contains("event"));
    auto missing = parseFetchEvent(R"({"event":"progress","received":1})");
    REQUIRE_FALSE(missing);
    CHECK_THAT(missing.error().message(), Catch::Contains("written"));
    auto negative = parseFetchEvent(R"({"event":"progress","received":-1,"written":0})");
    REQUIRE_FALSE(negative);
    CHECK_THAT(negative.error().message(), Catch::Contains("received"));
    CHECK(kindFromName("image.download_failed") == ErrorKind::DownloadFailed);
    CHECK(kindFromName("no.such.kind") == ErrorKind::Internal);
}

TEST_CASE("LineSplitter joins lines split across reads and refuses endless ones")
{
    LineSplitter s(16);
    std::vector<std::string> lines;
    auto collect = [&](std::string_view l) { lines.emplace_back(l); };
    REQUIRE(s.feed("ab", collect));
    REQUIRE(s.feed("c\nde\n\nf", collect));
    CHECK(lines == std::vector<std::string>{"abc", "de", ""});
    CHECK_FALSE(s.empty());
    REQUIRE(s.feed("\n", collect));
    CHECK(lines.back() == "f");
    CHECK(s.empty());
    auto over = s.feed(std::string(17, 'x'), collect);
    REQUIRE_FALSE(over);
    CHECK(over.error().kind() == ErrorKind::TooLarge);
}

TEST_CASE("image names follow the VM name rule and cannot look like cache files")
{
    CHECK(validateImageName("debian-12.qcow2"));
    for (const char* bad : {"", ".hidden", "-x", "a/b", "a b", "x.json", "x.part", "..", "é"}) {
        INFO(bad);
        auto r = validateImageName(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().kind() == ErrorKind::InvalidArgument);
        CHECK_FALSE(r.error().hint().empty());
    }
    CHECK_FALSE(validateImageName(std::string(64, 'a')));
    CHECK(validateImageName(std::string(63, 'a')));
}

TEST_CASE("nameFromUrl takes the file name without its zstd suffix")
{
    CHECK(nameFromUrl(parseUrl("http://h/x/debian.qcow2.zst").value()).value() == "debian.qcow2");
    CHECK(nameFromUrl(parseUrl("http://h/x/debian.raw.zstd?sig=1").value()).value() == "debian.raw");
    auto none = nameFromUrl(parseUrl("http://h/x/").value());
    REQUIRE_FALSE(none);
    CHECK_THAT(none.error().hint(), Catch::Contains("--name"));
    CHECK_FALSE(nameFromUrl(parseUrl("http://h/a%20b.img").value()));
}

TEST_CASE("image metadata survives a round trip and is checked on reading")
{
    ImageEntry e;
    e.name = "deb";
    e.url = "https://h/deb.qcow2";
    e.sha256 = std::string(64, '1');
    e.downloadSha256 = std::string(64, '2');
    e.compression = "none";
    e.format = "qcow2";
    e.size = 12345;
    e.virtualSize = 1 << 30;
    e.time = 1700000000;
    std::string text = toJson(e);
    auto back = parseEntry(text, "deb");
    REQUIRE(back);
    CHECK(*back == e);

    auto otherName = parseEntry(text, "other");
    REQUIRE_FALSE(otherName);
    CHECK_THAT(otherName.error().message(), Catch::Contains("name"));
    auto truncated = parseEntry(text.substr(0, text.size() / 2), "deb");
    REQUIRE_FALSE(truncated);
    CHECK(truncated.error().kind() == ErrorKind::StoreCorrupt);
    std::string noSize = text;
    noSize.replace(noSize.find("\"size\""), 6, "\"sise\"");
    auto missing = parseEntry(noSize, "deb");
    REQUIRE_FALSE(missing);
    CHECK_THAT(missing.error().message(), Catch::Contains("size"));
}
