// vm.log's tailFile(): the last lines of the end of a file, read from its end.

#include "api/console.h"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>

using vmr::api::tailFile;

namespace {

struct TempFile {
    std::string path;
    explicit TempFile(const std::string& content)
    {
        char tmpl[] = "/tmp/vmr-tail-XXXXXX";
        int fd = ::mkstemp(tmpl);
        REQUIRE(fd >= 0);
        ::close(fd);
        path = tmpl;
        std::ofstream(path, std::ios::binary) << content;
    }
    ~TempFile() { ::unlink(path.c_str()); }
};

}  // namespace

TEST_CASE("tailFile returns the last lines, bounded by bytes", "[log]")
{
    TempFile f("one\ntwo\r\nthree\nfour\n");
    CHECK(*tailFile(f.path, 0, 1 << 20) == "one\ntwo\r\nthree\nfour\n");
    CHECK(*tailFile(f.path, 1, 1 << 20) == "four\n");
    CHECK(*tailFile(f.path, 2, 1 << 20) == "three\nfour\n");
    CHECK(*tailFile(f.path, 10, 1 << 20) == "one\ntwo\r\nthree\nfour\n");
    CHECK(*tailFile(f.path, 0, 5) == "four\n");     // only the last bytes are read
    CHECK(*tailFile(f.path, 3, 7) == "e\nfour\n");  // lines within those bytes

    TempFile partial("a\nb\nprompt# ");
    CHECK(*tailFile(partial.path, 1, 1 << 20) == "prompt# ");
    CHECK(*tailFile(partial.path, 2, 1 << 20) == "b\nprompt# ");

    CHECK(*tailFile("/nonexistent/console.log", 5, 100) == "");
    auto dir = tailFile("/", 5, 100);
    CHECK(!dir.ok());
}
