#include "catch.h"
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
using vmr::test::TempDir;
using vmr::test::writeFile;
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
    const model::VmSpec& as = a.spec;
    CHECK(as.name == "full-example");
    CHECK(as.image.empty());
    CHECK(as.imageUrl == "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img");
    CHECK(as.vcpus == 4);
    CHECK(as.memoryMib == 4096);
    CHECK(as.diskGib == 40);
    CHECK(as.network.mode == model::NetMode::User);
    CHECK(as.network.bridge.empty());
    REQUIRE(a.hasCloudInit);
    CHECK(as.cloudInit.hostname == "full-example");
    CHECK(a.sshKeyFile.empty());
    REQUIRE(a.hasSsh);
    CHECK(as.cloudInit.user == "ubuntu");
    CHECK(a.privateKey.empty());
    REQUIRE(as.provision.size() == 3);
    CHECK(as.provision[1].kind == model::ProvisionStep::Kind::File);
    CHECK(as.provision[1].source == "/work/project/config/motd");
    CHECK(as.provision[1].destination == "/tmp/motd");
    CHECK(as.backend == model::Backend::Qemu);
    CHECK_FALSE(as.accel);
    CHECK(as.firmware == model::Firmware{});
    CHECK_FALSE(as.vnc);
    CHECK(a.pos == kdl::Position{6, 1});
    const auto& b = f.vms[1];
    const model::VmSpec& bs = b.spec;
    CHECK(bs.name == "database");
    CHECK(bs.image == "/work/project/images/debian-12.qcow2");
    CHECK(bs.network.mode == model::NetMode::Tap);
    CHECK(bs.network.bridge == "br-db");
    CHECK(b.sshKeyFile.empty());  // its user-data brings its own keys
    CHECK(b.userDataFile == "/work/project/cloud/db-user-data.yaml");
    CHECK(b.privateKey == "/home/ada/.ssh/id_ed25519");
    REQUIRE(bs.provision.size() == 1);
    CHECK(bs.provision[0].script == "/work/project/scripts/install-postgres.sh");
}

TEST_CASE("defaults follow vmctl", "[vmfile]")
{
    auto f = parseOk("vm \"a\" {\n  image \"x.qcow2\"\n  ssh {\n  }\n  cloud-init {\n  }\n}\n");
    const auto& vm = f.vms[0];
    CHECK(vm.spec.vcpus == 1);
    CHECK(vm.spec.memoryMib == 1024);
    CHECK_FALSE(vm.spec.diskGib);
    CHECK(vm.spec.network.mode == model::NetMode::User);
    CHECK(vm.spec.backend == model::Backend::Qemu);
    CHECK(vm.hasSsh);
    CHECK(vm.spec.cloudInit.user.empty());  // empty: the default user, "vm"
    CHECK(model::kDefaultSshUser == "vm");
    CHECK(vm.hasCloudInit);
    CHECK(vm.spec.cloudInit.hostname == "a");
    CHECK(parseOk("vm a { image x; network tap }").vms[0].spec.network.bridge == "br0");
    // No cloud-init block, no ssh block: nothing is made up.
    auto bare = parseOk("vm a { image x }");
    CHECK_FALSE(bare.vms[0].hasCloudInit);
    CHECK(bare.vms[0].spec.cloudInit.hostname.empty());
    CHECK_FALSE(bare.vms[0].hasSsh);
    CHECK(bare.vms[0].spec.cloudInit == model::CloudInit{});
}

TEST_CASE("every error in a file is reported at once, in order", "[vmfile]")
{
    auto f = parseVmFile("vm \"a\" {\n  vcpu 2\n  memory \"2G\"\n}\nvm \"a\" {\n  image \"x\"\n}\n",
                         "VMFile.kdl", options());
    INFO(renderDiagnostics(f));
    REQUIRE(f.diagnostics.size() == 4);
    CHECK(f.diagnostics[0].line == 1);
    CHECK(f.diagnostics[0].message == "vm \"a\": The VM has no image: give a local image or an image URL");
    CHECK(f.diagnostics[1].line == 2);
    CHECK(f.diagnostics[1].message == "Unknown field \"vcpu\" in vm \"a\"; did you mean \"vcpus\"?");
    CHECK(f.diagnostics[2].line == 3);
    CHECK(f.diagnostics[2].column == 10);
    CHECK(f.diagnostics[2].message ==
          "\"memory\" must be a whole number of MiB from 16 to 4194304, not the string \"2G\"");
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
    CHECK(parseOk("vm a { image \"~bob/x\" }").vms[0].spec.image == "/work/project/~bob/x");
}

TEST_CASE("JSON output of the resolved definition", "[vmfile]")
{
    auto f = parseOk(
        "vm web {\n  image \"d.qcow2\"\n  network tap\n  ssh { user u; }\n"
        "  provision shell { inline \"ls\"; }\n  provision file { source a; destination \"/b\"; }\n}\n");
    // The spec as vm.create takes it, and the files vmrctl reads as the caller.
    CHECK(
        renderJson(f) ==
        "{\"file\":\"VMFile.kdl\",\"valid\":true,\"vms\":[{\"name\":\"web\",\"backend\":\"qemu\","
        "\"image\":\"/work/project/d.qcow2\",\"image_url\":null,\"image_sha256\":null,\"vcpus\":1,"
        "\"memory_mib\":1024,\"disk_gib\":null,\"network\":{\"mode\":\"tap\",\"bridge\":\"br0\"},"
        "\"kernel\":null,\"initrd\":null,\"cmdline\":null,\"accel\":null,\"firmware\":\"bios\",\"vnc\":false,"
        "\"ssh_user\":\"u\",\"ssh_authorized_keys\":[],\"user_data\":null,\"hostname\":null,"
        "\"provision\":[{\"type\":\"shell\",\"inline\":\"ls\"},"
        "{\"type\":\"file\",\"source\":\"/work/project/a\",\"destination\":\"/b\"}],"
        "\"vmfile\":null,\"vmfile_sha256\":null,\"ssh_key_file\":null,\"user_data_file\":null,"
        "\"private_key\":null}]}\n");
    auto files = parseOk(
        "vm db {\n  image-url \"https://example.org/d.qcow2\"\n  disk 8\n  accel kvm\n"
        "  cloud-init { ssh-key \"k.pub\"; }\n  ssh { private-key \"~/.ssh/k\"; }\n}\n");
    CHECK(
        renderJson(files) ==
        "{\"file\":\"VMFile.kdl\",\"valid\":true,\"vms\":[{\"name\":\"db\",\"backend\":\"qemu\","
        "\"image\":null,\"image_url\":\"https://example.org/d.qcow2\",\"image_sha256\":null,\"vcpus\":1,"
        "\"memory_mib\":1024,\"disk_gib\":8,\"network\":\"user\",\"kernel\":null,\"initrd\":null,"
        "\"cmdline\":null,\"accel\":\"kvm\",\"firmware\":\"bios\",\"vnc\":false,\"ssh_user\":null,"
        "\"ssh_authorized_keys\":[],\"user_data\":null,\"hostname\":\"db\",\"provision\":[],\"vmfile\":null,"
        "\"vmfile_sha256\":null,\"ssh_key_file\":\"/work/project/k.pub\",\"user_data_file\":null,"
        "\"private_key\":\"/home/ada/.ssh/k\"}]}\n");
    auto bad = parseVmFile("vm a {\n  vcpus 0\n}\n", "V.kdl", options());
    CHECK(renderJson(bad) ==
          "{\"file\":\"V.kdl\",\"valid\":false,\"errors\":[{\"file\":\"V.kdl\",\"line\":1,\"column\":1,"
          "\"message\":\"vm \\\"a\\\": The VM has no image: give a local image or an image URL\","
          "\"hint\":\"Add image \\\"disk.qcow2\\\" (a local file) or image-url \\\"https://...\\\" "
          "(downloaded)\"},{\"file\":\"V.kdl\",\"line\":2,\"column\":9,"
          "\"message\":\"\\\"vcpus\\\" must be a whole number from 1 to 256, not 0\",\"hint\":\"Write it as: "
          "vcpus 2\"}]}\n");
}

TEST_CASE("checkVmFile reads the file and the files it names", "[vmfile]")
{
    TempDir dir;
    writeFile(
        dir / "VMFile.kdl",
        "vm \"web\" {\n    image \"disk.qcow2\"\n    cloud-init {\n        user-data \"ud.yaml\"\n    }\n"
        "    provision \"shell\" {\n        script \"setup.sh\"\n    }\n}\n");
    writeFile(dir / "disk.qcow2", "not really qcow2");
    writeFile(dir / "ud.yaml", "#cloud-config\n");
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
    writeFile(dir / "setup.sh", "#!/bin/sh\n");
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
    writeFile(dir / "sub/VMFile.kdl", "vm a { image \"../img.qcow2\" }\n");
    auto f = loadVmFile(dir.path() + "/sub/./VMFile.kdl", kHome, false);
    REQUIRE(f.ok());
    CHECK(f.baseDir == dir.path() + "/sub");
    CHECK(f.vms[0].spec.image == dir.path() + "/img.qcow2");
}

TEST_CASE("vmrctl check refuses what vmrd refuses, at the line of the field", "[vmfile]")
{
    TempDir dir;
    writeFile(dir / "disk.qcow2", "not really qcow2");
    writeFile(dir / "vmlinux", "not really a kernel");
    std::string file = dir / "VMFile.kdl";
    // `vmrctl check` on `text`: the exit code must be 1, and stderr is returned.
    auto refused = [&](const std::string& text) {
        writeFile(file, text);
        auto r = checkVmFile(file, kHome, false);
        CHECK(r.exitCode == 1);
        CHECK(r.out.empty());
        return r.err;
    };

    // Cross-field: what cloud-hypervisor cannot do, from model::validate.
    CHECK(refused("vm web {\n    image \"disk.qcow2\"\n    backend \"chv\"\n    kernel \"vmlinux\"\n"
                  "    network \"user\"\n}\n") ==
          file + ":5:5: error: vm \"web\": cloud-hypervisor has no user-mode networking\n" +
              " 5 |     network \"user\"\n" + "   |     ^\n" +
              "  hint: Use network \"none\" or \"tap\" with backend \"chv\", or backend \"qemu\"\n" +
              "1 error in " + file + "\n");
    CHECK(refused("vm web {\n    image \"disk.qcow2\"\n    backend \"chv\"\n    kernel \"vmlinux\"\n"
                  "    network \"none\"\n    vcpus 255\n    vnc #true\n}\n") ==
          file + ":6:5: error: vm \"web\": cloud-hypervisor runs at most 254 vCPUs, not 255\n" +
              " 6 |     vcpus 255\n" + "   |     ^\n" +
              "  hint: Give fewer vCPUs, or use backend \"qemu\"\n" + file +
              ":7:5: error: vm \"web\": cloud-hypervisor has no VNC server\n" + " 7 |     vnc #true\n" +
              "   |     ^\n" + "  hint: Use the serial console\n" + "2 errors in " + file + "\n");
    CHECK(refused("vm web {\n    image \"disk.qcow2\"\n    backend \"chv\"\n    network \"none\"\n"
                  "    firmware \"uefi\"\n}\n") ==
          file +
              ":5:5: error: vm \"web\": cloud-hypervisor boots a firmware file or a kernel, not \"uefi\"\n" +
              " 5 |     firmware \"uefi\"\n" + "   |     ^\n" +
              "  hint: Give the path of rust-hypervisor-firmware or a CLOUDHV OVMF build, or a kernel\n" +
              "1 error in " + file + "\n");

    // One value out of the model's limits: at the value.
    CHECK(refused("vm web {\n    image \"disk.qcow2\"\n    vcpus 300\n}\n") ==
          file + ":3:11: error: \"vcpus\" must be a whole number from 1 to 256, not 300\n" +
              " 3 |     vcpus 300\n" + "   |           ^\n" + "  hint: Write it as: vcpus 2\n" +
              "1 error in " + file + "\n");
    CHECK(refused("vm web {\n    image \"disk.qcow2\"\n    memory 8\n}\n") ==
          file + ":3:12: error: \"memory\" must be a whole number of MiB from 16 to 4194304, not 8\n" +
              " 3 |     memory 8\n" + "   |            ^\n" + "  hint: Write it as: memory 2048\n" +
              "1 error in " + file + "\n");
    CHECK(
        refused("vm web {\n    image \"disk.qcow2\"\n    disk 65537\n}\n")
            .starts_with(
                file + ":3:10: error: \"disk\" must be a whole number of GiB from 1 to 65536, not 65537\n"));

    // The limits themselves are accepted.
    writeFile(file, "vm web {\n    image \"disk.qcow2\"\n    vcpus 256\n    memory 16\n    disk 65536\n}\n");
    auto ok = checkVmFile(file, kHome, false);
    INFO(ok.err);
    CHECK(ok.exitCode == 0);
    writeFile(file,
              "vm web {\n    image \"disk.qcow2\"\n    backend \"chv\"\n    kernel \"vmlinux\"\n    network "
              "\"none\"\n"
              "    vcpus 254\n    memory 4194304\n}\n");
    ok = checkVmFile(file, kHome, false);
    INFO(ok.err);
    CHECK(ok.exitCode == 0);
}
