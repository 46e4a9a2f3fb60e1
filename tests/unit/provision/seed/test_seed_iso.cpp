#include "catch.h"
#include "provision/seed/seed_iso.h"
#include "provision/seed/ssh_key.h"
#include "tool.h"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <sstream>

using namespace vmr;
using namespace vmr::provision;
using namespace vmr::test;

namespace {

SeedFiles sampleFiles(bool withNetwork)
{
    auto client = Ed25519KeyPair::generate("vmr@iso");
    auto host = Ed25519KeyPair::generate("root@iso");
    REQUIRE(client.ok());
    REQUIRE(host.ok());
    SeedSpec s;
    s.instanceId = makeInstanceId("deadbeef");
    s.hostname = "iso";
    s.authorizedKeys = {client->publicKeyLine()};
    s.hostKey = HostKeyData{host->privateKeyFile(), host->publicKeyLine()};
    if (withNetwork) s.network = NetworkSettings{"52:54:00:aa:bb:cc", "eth0", "", "", {}};
    auto f = renderSeed(s);
    REQUIRE(f.ok());
    return *f;
}

// isoinfo (genisoimage) reads the image as the guest's kernel does: -R for the Rock
// Ridge names, -J for the Joliet tree.
std::string extract(const std::string& iso, const std::string& view, const std::string& name)
{
    auto r = runTool("isoinfo " + view + " -i " + shq(iso) + " -x " + shq("/" + name));
    INFO(r.output);
    REQUIRE(r.status == 0);
    return r.output;
}

}  // namespace

TEST_CASE("the seed ISO is labelled cidata and holds the files under their own names", "[seed_iso]")
{
    requireTool("isoinfo", "genisoimage");
    TempDir dir;
    for (bool withNetwork : {false, true}) {
        SeedFiles files = sampleFiles(withNetwork);
        std::string iso = dir / "seed.iso";
        mode_t oldMask = ::umask(0);
        auto w = writeSeedIso(iso, files);
        ::umask(oldMask);
        REQUIRE(w.ok());
        CHECK(modeOf(iso) == 0600);
        CHECK(listDir(dir.path()) == std::vector<std::string>{"seed.iso"});

        auto d = runTool("isoinfo -d -i " + shq(iso));
        INFO(d.output);
        REQUIRE(d.status == 0);
        CHECK(d.output.find("Volume id: cidata\n") != std::string::npos);
        CHECK(d.output.find("Rock Ridge signatures version") != std::string::npos);
        CHECK(d.output.find("Joliet with UCS level") != std::string::npos);

        std::vector<std::string> names = {"meta-data", "user-data"};
        if (withNetwork) names.insert(names.begin() + 1, "network-config");
        for (const char* view : {"-R", "-J"}) {
            // isoinfo -l: one line per file, the name last
            auto l = runTool(std::string("isoinfo -l ") + view + " -i " + shq(iso));
            INFO(view);
            INFO(l.output);
            REQUIRE(l.status == 0);
            std::vector<std::string> got;
            std::istringstream lines(l.output);
            for (std::string line; std::getline(lines, line);) {
                if (line.empty() || line[0] != '-') continue;  // directory headers and entries
                auto sp = line.find_last_not_of(' ');
                auto start = line.find_last_of(' ', sp);
                got.push_back(line.substr(start + 1, sp - start));
            }
            std::sort(got.begin(), got.end());
            CHECK(got == names);
        }
        CHECK(extract(iso, "-R", "user-data") == files.userData);
        CHECK(extract(iso, "-R", "meta-data") == files.metaData);
        CHECK(extract(iso, "-J", "user-data") == files.userData);
        if (withNetwork) CHECK(extract(iso, "-R", "network-config") == *files.networkConfig);
    }
}

TEST_CASE("blkid sees the label cloud-init looks for", "[seed_iso]")
{
    requireTool("blkid", "util-linux");
    TempDir dir;
    std::string iso = dir / "seed.iso";
    REQUIRE(writeSeedIso(iso, sampleFiles(false)).ok());
    auto b = runTool("blkid -p -o export " + shq(iso));
    INFO(b.output);
    CHECK(b.output.find("LABEL=cidata\n") != std::string::npos);
    CHECK(b.output.find("TYPE=iso9660\n") != std::string::npos);
}

TEST_CASE("empty user-data and a large file go into the image intact", "[seed_iso]")
{
    requireTool("isoinfo", "genisoimage");
    TempDir dir;
    SeedFiles f;
    f.userData = "";
    f.metaData = "instance-id: big\n";
    f.networkConfig = std::string(300000, 'n') + "\n";
    std::string iso = dir / "seed.iso";
    REQUIRE(writeSeedIso(iso, f).ok());
    CHECK(extract(iso, "-R", "user-data").empty());
    CHECK(extract(iso, "-R", "network-config") == *f.networkConfig);
}

TEST_CASE("a seed that cannot be written leaves no file behind", "[seed_iso]")
{
    TempDir dir;
    auto r = writeSeedIso(dir / "missing/seed.iso", sampleFiles(false));
    REQUIRE(!r.ok());
    CHECK(r.error().message().find("Cannot write the seed ISO") != std::string::npos);
    CHECK(listDir(dir.path()).empty());

    // Replacing an existing seed is atomic: the old one stays until the new one is whole.
    std::string iso = dir / "seed.iso";
    writeFile(iso, "old");
    REQUIRE(writeSeedIso(iso, sampleFiles(false)).ok());
    CHECK(readFile(iso).size() > 32 * 1024);
    CHECK(listDir(dir.path()) == std::vector<std::string>{"seed.iso"});
}
