#include "config/vmfile.h"

#include <catch2/catch.hpp>

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace vmr;
using namespace vmr::config;
namespace fs = std::filesystem;

namespace {

// Where the examples pretend to live, and whose home `~` is.
constexpr const char* kBase = "/work/project";
constexpr const char* kHome = "/home/ada";

const fs::path kData = VMR_VMFILE_DATA;

std::string readFile(const fs::path& p)
{
    std::ifstream in(p, std::ios::binary);
    REQUIRE(in);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<fs::path> casesIn(const fs::path& dir)
{
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().extension() == ".kdl" && e.path().string().find(".resolved.") == std::string::npos)
            out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

VmFileOptions options()
{
    VmFileOptions o;
    o.baseDir = kBase;
    o.home = kHome;
    return o;
}

VmFile parseCase(const fs::path& p)
{
    return parseVmFile(readFile(p), p.filename().string(), options());
}

VmFile parseOk(std::string_view text)
{
    auto f = parseVmFile(text, "VMFile.kdl", options());
    INFO(renderDiagnostics(f));
    REQUIRE(f.ok());
    return f;
}

// Golden files are written only when asked (VMR_UPDATE_EXPECTED=1), then reviewed by hand.
void compareOrUpdate(const fs::path& expectedPath, const std::string& got)
{
    if (const char* u = std::getenv("VMR_UPDATE_EXPECTED"); u && std::string(u) == "1") {
        std::ofstream(expectedPath, std::ios::binary) << got;
        return;
    }
    INFO("expected file: " << expectedPath.string());
    REQUIRE(fs::exists(expectedPath));
    CHECK(got == readFile(expectedPath));
}

class TempDir {
public:
    TempDir()
    {
        std::string tmpl = (fs::temp_directory_path() / "vmr-vmfile-test-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path_ = tmpl;
    }
    ~TempDir()
    {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    void write(const std::string& rel, const std::string& text) const
    {
        auto p = fs::path(path_) / rel;
        fs::create_directories(p.parent_path());
        std::ofstream(p) << text;
    }

private:
    std::string path_;
};

}  // namespace

TEST_CASE("every example VMFile parses and resolves as expected", "[vmfile]")
{
    auto cases = casesIn(kData / "valid");
    REQUIRE(cases.size() >= 9);
    for (const auto& p : cases) {
        INFO("case: " << p.filename().string());
        auto f = parseCase(p);
        INFO(renderDiagnostics(f));
        REQUIRE(f.ok());
        std::string resolved = renderDefinitions(f);
        fs::path expected = p;
        expected.replace_extension(".resolved.kdl");
        compareOrUpdate(expected, resolved);
        // The resolved form is itself a VMFile meaning the same.
        auto again = parseVmFile(resolved, "resolved", options());
        INFO(renderDiagnostics(again));
        REQUIRE(again.ok());
        REQUIRE(again.vms.size() == f.vms.size());
        for (size_t i = 0; i < f.vms.size(); ++i) {
            auto a = f.vms[i], b = again.vms[i];
            a.pos = b.pos = {};
            CHECK(a == b);
        }
    }
}

TEST_CASE("every invalid VMFile gives its exact messages and positions", "[vmfile]")
{
    auto cases = casesIn(kData / "invalid");
    REQUIRE(cases.size() >= 30);
    for (const auto& p : cases) {
        INFO("case: " << p.filename().string());
        auto f = parseCase(p);
        REQUIRE_FALSE(f.ok());
        CHECK(f.vms.empty());
        fs::path expected = p;
        expected.replace_extension(".err");
        compareOrUpdate(expected, renderDiagnostics(f));
    }
}

TEST_CASE("the full multi-VM example has every field resolved", "[vmfile]")
{
    auto f = parseCase(kData / "valid" / "full_example.kdl");
    REQUIRE(f.ok());
    REQUIRE(f.vms.size() == 2);
    const auto& a = f.vms[0];
    CHECK(a.name == "full-example");
    CHECK(a.image.empty());
    CHECK(a.imageUrl == "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img");
    CHECK(a.vcpus == 4);
    CHECK(a.memoryMib == 4096);
    CHECK(a.diskGib == 40);
    CHECK(a.network == "user");
    CHECK(a.bridge.empty());
    REQUIRE(a.cloudInit);
    CHECK(a.cloudInit->hostname == "full-example");
    CHECK(a.cloudInit->sshKey.empty());
    REQUIRE(a.ssh);
    CHECK(a.ssh->user == "ubuntu");
    CHECK(a.ssh->privateKey.empty());
    REQUIRE(a.provisioners.size() == 3);
    CHECK(a.provisioners[1].kind == Provisioner::Kind::File);
    CHECK(a.provisioners[1].source == "/work/project/config/motd");
    CHECK(a.provisioners[1].destination == "/tmp/motd");
    CHECK(a.backend == "qemu");
    CHECK(a.accel.empty());
    CHECK(a.pos == kdl::Position{6, 1});
    const auto& b = f.vms[1];
    CHECK(b.name == "database");
    CHECK(b.image == "/work/project/images/debian-12.qcow2");
    CHECK(b.network == "tap");
    CHECK(b.bridge == "br-db");
    CHECK(b.cloudInit->sshKey == "/home/ada/.ssh/id_ed25519.pub");
    CHECK(b.cloudInit->userData == "/work/project/cloud/db-user-data.yaml");
    CHECK(b.ssh->privateKey == "/home/ada/.ssh/id_ed25519");
    REQUIRE(b.provisioners.size() == 1);
    CHECK(b.provisioners[0].script == "/work/project/scripts/install-postgres.sh");
}

TEST_CASE("defaults follow vmctl", "[vmfile]")
{
    auto f = parseOk("vm \"a\" {\n  image \"x.qcow2\"\n  ssh {\n  }\n  cloud-init {\n  }\n}\n");
    const auto& vm = f.vms[0];
    CHECK(vm.vcpus == 1);
    CHECK(vm.memoryMib == 1024);
    CHECK_FALSE(vm.diskGib);
    CHECK(vm.network == "user");
    CHECK(vm.backend == "qemu");
    CHECK(vm.ssh->user == "vm");
    CHECK(vm.cloudInit->hostname == "a");
    CHECK(parseOk("vm a { image x; network tap }").vms[0].bridge == "br0");
    // No cloud-init block, no ssh block: nothing is made up.
    auto bare = parseOk("vm a { image x }");
    CHECK_FALSE(bare.vms[0].cloudInit);
    CHECK_FALSE(bare.vms[0].ssh);
}

TEST_CASE("every error in a file is reported at once, in order", "[vmfile]")
{
    auto f = parseVmFile("vm \"a\" {\n  vcpu 2\n  memory \"2G\"\n}\nvm \"a\" {\n  image \"x\"\n}\n",
                         "VMFile.kdl", options());
    REQUIRE(f.diagnostics.size() == 4);
    CHECK(f.diagnostics[0].line == 1);
    CHECK(f.diagnostics[0].message == "vm \"a\" has no image");
    CHECK(f.diagnostics[1].line == 2);
    CHECK(f.diagnostics[1].message == "Unknown field \"vcpu\" in vm \"a\"; did you mean \"vcpus\"?");
    CHECK(f.diagnostics[2].line == 3);
    CHECK(f.diagnostics[2].column == 10);
    CHECK(f.diagnostics[2].hint == "Memory is a number of MiB, as in vmctl: write memory 2048");
    CHECK(f.diagnostics[3].line == 5);
    CHECK(f.diagnostics[3].message == "VM name \"a\" is used twice (first on line 1)");
}

TEST_CASE("a diagnostic shows the line with a caret under the column", "[vmfile]")
{
    Diagnostic d;
    d.file = "VMFile.kdl";
    d.line = 12;
    d.column = 4;
    d.message = "Something is wrong";
    d.hint = "Fix it";
    d.sourceLine = "\t\tä x";
    CHECK(d.render() ==
          "VMFile.kdl:12:4: error: Something is wrong\n"
          " 12 | \t\tä x\n"
          "    | \t\t ^\n"
          "  hint: Fix it\n");
    Diagnostic whole;
    whole.file = "missing.kdl";
    whole.message = "Cannot read the VMFile: No such file or directory";
    CHECK(whole.render() == "missing.kdl: error: Cannot read the VMFile: No such file or directory\n");
}

TEST_CASE("~ needs a home folder", "[vmfile]")
{
    VmFileOptions o = options();
    o.home.clear();
    auto f = parseVmFile("vm a {\n  image \"~/x.qcow2\"\n}\n", "VMFile.kdl", o);
    REQUIRE(f.diagnostics.size() == 1);
    CHECK(f.diagnostics[0].message == "Cannot expand ~ in \"~/x.qcow2\": the home folder is not known");
    CHECK(f.diagnostics[0].column == 9);
    // `~user` is not expanded (as in vmctl): it is a relative path.
    CHECK(parseOk("vm a { image \"~bob/x\" }").vms[0].image == "/work/project/~bob/x");
}

TEST_CASE("JSON output of the resolved definition", "[vmfile]")
{
    auto f = parseOk(
        "vm web {\n  image \"d.qcow2\"\n  network tap\n  ssh { user u; }\n"
        "  provision shell { inline \"ls\"; }\n  provision file { source a; destination \"/b\"; }\n}\n");
    CHECK(
        renderJson(f) ==
        "{\"file\":\"VMFile.kdl\",\"valid\":true,\"vms\":[{\"name\":\"web\",\"image\":\"/work/project/"
        "d.qcow2\","
        "\"image_url\":null,\"image_sha256\":null,\"vcpus\":1,\"memory_mib\":1024,\"disk_gib\":null,"
        "\"network\":\"tap\",\"bridge\":\"br0\",\"backend\":\"qemu\",\"accel\":null,\"kernel\":null,"
        "\"initrd\":null,\"cmdline\":null,\"cloud_init\":null,\"ssh\":{\"user\":\"u\",\"private_key\":null},"
        "\"provisioners\":[{\"type\":\"shell\",\"inline\":\"ls\",\"script\":null},"
        "{\"type\":\"file\",\"source\":\"/work/project/a\",\"destination\":\"/b\"}]}]}\n");
    auto bad = parseVmFile("vm a {\n  vcpus 0\n}\n", "V.kdl", options());
    CHECK(
        renderJson(bad) ==
        "{\"file\":\"V.kdl\",\"valid\":false,\"errors\":[{\"file\":\"V.kdl\",\"line\":1,\"column\":1,"
        "\"message\":\"vm \\\"a\\\" has no image\",\"hint\":\"Add image \\\"disk.qcow2\\\" (a local file) or "
        "image-url \\\"https://...\\\" (downloaded)\"},{\"file\":\"V.kdl\",\"line\":2,\"column\":9,"
        "\"message\":\"\\\"vcpus\\\" expects a whole number from 1 to 1024, not 0\",\"hint\":\"Write it as: "
        "vcpus 2\"}]}\n");
}

TEST_CASE("checkVmFile reads the file and the files it names", "[vmfile]")
{
    TempDir dir;
    dir.write(
        "VMFile.kdl",
        "vm \"web\" {\n    image \"disk.qcow2\"\n    cloud-init {\n        user-data \"ud.yaml\"\n    }\n"
        "    provision \"shell\" {\n        script \"setup.sh\"\n    }\n}\n");
    dir.write("disk.qcow2", "not really qcow2");
    dir.write("ud.yaml", "#cloud-config\n");
    fs::create_directories(fs::path(dir.path()) / "setup.sh");  // a folder, not a script
    std::string file = dir.path() + "/VMFile.kdl";

    auto r = checkVmFile(file, kHome, false);
    CHECK(r.exitCode == 1);
    CHECK(r.out.empty());
    CHECK(r.err == file + ":7:16: error: The script " + dir.path() + "/setup.sh is not a regular file\n" +
                       " 7 |         script \"setup.sh\"\n" + "   |                ^\n" +
                       "  hint: Relative paths start from the VMFile's folder, " + dir.path() + "\n" +
                       "1 error in " + file + "\n");

    fs::remove(fs::path(dir.path()) / "setup.sh");
    dir.write("setup.sh", "#!/bin/sh\n");
    r = checkVmFile(file, kHome, false);
    CHECK(r.exitCode == 0);
    CHECK(r.err.empty());
    CHECK(r.out == "vm web {\n    image \"" + dir.path() + "/disk.qcow2\"\n    vcpus 1\n    memory 1024\n" +
                       "    network user\n    backend qemu\n    cloud-init {\n        hostname web\n" +
                       "        user-data \"" + dir.path() + "/ud.yaml\"\n    }\n    provision shell {\n" +
                       "        script \"" + dir.path() + "/setup.sh\"\n    }\n}\n");
    auto j = checkVmFile(file, kHome, true);
    CHECK(j.exitCode == 0);
    CHECK(j.out.find("\"valid\":true") != std::string::npos);

    fs::remove(fs::path(dir.path()) / "disk.qcow2");
    r = checkVmFile(file, kHome, false);
    CHECK(r.exitCode == 1);
    CHECK(r.err.find(":2:11: error: Cannot find the image " + dir.path() +
                     "/disk.qcow2: No such file or directory\n") != std::string::npos);

    auto missing = checkVmFile(dir.path() + "/nope.kdl", kHome, true);
    CHECK(missing.exitCode == 1);
    CHECK(missing.out.find("\"line\":0,\"column\":0,\"message\":\"Cannot read the VMFile: No such file or "
                           "directory\"") != std::string::npos);
}

TEST_CASE("a relative VMFile path resolves against the working directory", "[vmfile]")
{
    TempDir dir;
    dir.write("sub/VMFile.kdl", "vm a { image \"../img.qcow2\" }\n");
    auto f = loadVmFile(dir.path() + "/sub/./VMFile.kdl", kHome, false);
    REQUIRE(f.ok());
    CHECK(f.baseDir == dir.path() + "/sub");
    CHECK(f.vms[0].image == dir.path() + "/img.qcow2");
}
