#include "base/files.h"
#include "catch.h"
#include "store/store.h"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <set>

using namespace vmr;
using namespace vmr::store;
using namespace vmr::test;

namespace {

config::Settings settingsIn(const TempDir& dir)
{
    config::Settings s;
    s.mode = config::Mode::User;
    s.stateDir = dir / "state";
    s.runtimeDir = dir / "run";
    s.socket = dir / "run/vmrd.sock";
    return s;
}

VmRecord record(const std::string& name)
{
    VmRecord r;
    r.spec.name = name;
    r.spec.image = "debian-12";
    r.spec.vcpus = 2;
    r.spec.memoryMib = 2048;
    r.runtime.id = "00c0ffee";
    r.runtime.created = 1700000000;
    r.runtime.state = model::VmState::Stopped;
    return r;
}

Store openStore(const TempDir& dir)
{
    auto s = Store::open(Layout(settingsIn(dir)));
    REQUIRE(s.ok());
    return std::move(s).value();
}

const Store::Problem* findProblem(const Store::ScanReport& report, const std::string& path)
{
    for (const auto& p : report.problems)
        if (p.path == path) return &p;
    return nullptr;
}

std::vector<std::string> corruptFiles(const std::string& dir)
{
    std::vector<std::string> out;
    for (const auto& n : listDir(dir))
        if (n.rfind("vm.json.corrupt-", 0) == 0) out.push_back(n);
    return out;
}

}  // namespace

TEST_CASE("save, load, exists and scan", "[store]")
{
    TempDir dir;
    Store store = openStore(dir);
    CHECK(std::filesystem::is_directory(dir / "state/vms"));
    CHECK(std::filesystem::is_directory(dir / "run/vms"));

    CHECK_FALSE(store.exists("web"));
    VmRecord web = record("web");
    REQUIRE(store.save(web).ok());
    CHECK(store.exists("web"));
    CHECK_FALSE(store.exists("../state"));
    CHECK(modeOf(dir / "state/vms/web") == 0700);
    CHECK(modeOf(dir / "state/vms/web/vm.json") == 0600);
    CHECK(listDir(dir / "state/vms/web") == std::vector<std::string>{"vm.json"});

    auto loaded = store.load("web");
    REQUIRE(loaded.ok());
    CHECK(*loaded == web);

    web.runtime.state = model::VmState::Running;
    web.runtime.pid = 77;
    REQUIRE(store.save(web).ok());
    CHECK(store.load("web")->runtime.state == model::VmState::Running);

    REQUIRE(store.save(record("db")).ok());
    auto report = store.scan();
    REQUIRE(report.ok());
    CHECK(report->problems.empty());
    REQUIRE(report->records.size() == 2);
    CHECK(report->records[0].name() == "db");
    CHECK(report->records[1] == web);
}

TEST_CASE("save refuses bad names and bad records", "[store]")
{
    TempDir dir;
    Store store = openStore(dir);
    auto r = store.save(record("../escape"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind() == ErrorKind::InvalidName);

    VmRecord bad = record("web");
    bad.spec.vcpus = 0;
    r = store.save(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind() == ErrorKind::InvalidArgument);
    CHECK_THAT(r.error().what(), Catch::Contains("Field \"vcpus\""));
    CHECK_FALSE(std::filesystem::exists(dir / "state/vms/web"));
    CHECK(listDir(dir / "state").size() == 2);  // images, vms
}

TEST_CASE("load reports missing and mismatched records", "[store]")
{
    TempDir dir;
    Store store = openStore(dir);
    auto r = store.load("ghost");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind() == ErrorKind::VmNotFound);
    CHECK(store.load("a/b").error().kind() == ErrorKind::InvalidName);

    REQUIRE(store.save(record("web")).ok());
    std::filesystem::rename(dir / "state/vms/web", dir / "state/vms/www");
    r = store.load("www");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind() == ErrorKind::StoreCorrupt);
}

TEST_CASE("remove deletes the VM folder and nothing outside it", "[store]")
{
    TempDir dir;
    Store store = openStore(dir);
    REQUIRE(store.save(record("web")).ok());
    writeFile(dir / "state/vms/web/console.log", "boot");
    writeFile(dir / "state/vms/web/sub/deeper/file", "x");
    writeFile(dir / "outside/precious", "keep me");
    std::filesystem::create_directory_symlink(dir / "outside", dir / "state/vms/web/link-to-outside");
    std::filesystem::create_symlink(dir / "outside/precious", dir / "state/vms/web/sub/file-link");

    REQUIRE(store.remove("web").ok());
    CHECK_FALSE(std::filesystem::exists(dir / "state/vms/web"));
    CHECK_FALSE(store.exists("web"));
    CHECK(test::readFile(dir / "outside/precious") == "keep me");

    auto again = store.remove("web");
    REQUIRE_FALSE(again.ok());
    CHECK(again.error().kind() == ErrorKind::VmNotFound);

    for (const char* name : {"..", ".", "", "../outside", "a/b"}) {
        INFO(name);
        auto r = store.remove(name);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind() == ErrorKind::InvalidName);
    }
    CHECK(std::filesystem::exists(dir / "state/vms"));

    // A VM folder that is a symlink is not followed.
    std::filesystem::create_directory_symlink(dir / "outside", dir / "state/vms/evil");
    auto r = store.remove("evil");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind() == ErrorKind::PermissionDenied);
    CHECK(test::readFile(dir / "outside/precious") == "keep me");
}

TEST_CASE("scan reports and keeps aside bad records, removes stray temp files", "[store]")
{
    TempDir dir;
    Store store = openStore(dir);
    const std::string vms = dir / "state/vms";
    REQUIRE(store.save(record("good")).ok());
    REQUIRE(store.save(record("also-good")).ok());
    std::string goodText = toJson(record("good"));
    writeFile(vms + "/good/.vm.json.tmp-0123456789abcdef", goodText.substr(0, 10));

    writeFile(vms + "/corrupt/vm.json", "{not json at all");
    writeFile(vms + "/truncated/vm.json", goodText.substr(0, goodText.size() / 2));
    writeFile(vms + "/empty/vm.json", "");
    VmRecord zeroCpus = record("zero");
    std::string zeroText = toJson(zeroCpus);
    zeroText.replace(zeroText.find("\"vcpus\":2"), 9, "\"vcpus\":0");
    writeFile(vms + "/zero/vm.json", zeroText);
    writeFile(vms + "/wrongname/vm.json", toJson(record("othername")));
    std::filesystem::create_directories(vms + "/novm");
    writeFile(vms + "/novm/console.log", "x");
    writeFile(vms + "/halfwritten/.vm.json.tmp-feedfacecafebeef", "{\"ver");
    writeFile(vms + "/stray-file", "x");
    std::filesystem::create_directories(vms + "/-bad name");

    auto report = store.scan();
    REQUIRE(report.ok());
    REQUIRE(report->records.size() == 2);
    CHECK(report->records[0].name() == "also-good");
    CHECK(report->records[1].name() == "good");

    for (const char* name : {"corrupt", "truncated", "empty", "zero", "wrongname"}) {
        INFO(name);
        const std::string vmDir = vms + "/" + name;
        const auto* p = findProblem(*report, vmDir + "/vm.json");
        REQUIRE(p != nullptr);
        CHECK_THAT(p->message, Catch::StartsWith("Bad record, moved aside: "));
        auto kept = corruptFiles(vmDir);
        REQUIRE(kept.size() == 1);
        CHECK(p->keptAs == vmDir + "/" + kept[0]);
        CHECK_FALSE(std::filesystem::exists(vmDir + "/vm.json"));
    }
    CHECK(test::readFile(vms + "/corrupt/" + corruptFiles(vms + "/corrupt").at(0)) == "{not json at all");
    CHECK(test::readFile(vms + "/truncated/" + corruptFiles(vms + "/truncated").at(0)) ==
          goodText.substr(0, goodText.size() / 2));
    CHECK_THAT(findProblem(*report, vms + "/zero/vm.json")->message, Catch::Contains("Field \"vcpus\""));
    CHECK_THAT(findProblem(*report, vms + "/wrongname/vm.json")->message,
               Catch::Contains("names VM \"othername\" but is in folder \"wrongname\""));

    const auto* temp = findProblem(*report, vms + "/good/.vm.json.tmp-0123456789abcdef");
    REQUIRE(temp != nullptr);
    CHECK_THAT(temp->message, Catch::Contains("Removed the temp file"));
    CHECK(listDir(vms + "/good") == std::vector<std::string>{"vm.json"});
    REQUIRE(findProblem(*report, vms + "/halfwritten/.vm.json.tmp-feedfacecafebeef") != nullptr);
    CHECK(listDir(vms + "/halfwritten").empty());
    REQUIRE(findProblem(*report, vms + "/halfwritten/vm.json") != nullptr);

    const auto* novm = findProblem(*report, vms + "/novm/vm.json");
    REQUIRE(novm != nullptr);
    CHECK_THAT(novm->message, Catch::Contains("no vm.json"));
    CHECK(novm->keptAs.empty());
    CHECK(test::readFile(vms + "/novm/console.log") == "x");

    // Every VM folder without a loadable record is broken, with the reason: its name stays taken
    // until it is removed.
    std::vector<std::string> broken;
    for (const auto& b : report->broken) broken.push_back(b.name + ": " + b.reason);
    REQUIRE(broken.size() == 7);
    CHECK_THAT(broken[0], Catch::StartsWith("corrupt: its record could not be read ("));
    CHECK_THAT(broken[0], Catch::Contains("), kept as " + vms + "/corrupt/vm.json.corrupt-"));
    CHECK_THAT(broken[2], Catch::StartsWith("halfwritten: its folder has no vm.json"));
    CHECK_THAT(broken[3], Catch::StartsWith("novm: its folder has no vm.json"));
    CHECK_THAT(broken[6], Catch::StartsWith("zero: its record could not be read (Field \"vcpus\""));

    REQUIRE(findProblem(*report, vms + "/stray-file") != nullptr);
    CHECK(test::readFile(vms + "/stray-file") == "x");
    REQUIRE(findProblem(*report, vms + "/-bad name") != nullptr);
    CHECK(std::filesystem::is_directory(vms + "/-bad name"));

    // A second scan finds the same good records, nothing new to move, and nothing lost.
    auto second = store.scan();
    REQUIRE(second.ok());
    CHECK(second->records == report->records);
    for (const auto& p : second->problems) CHECK(p.keptAs.empty());
    CHECK(corruptFiles(vms + "/corrupt").size() == 1);
}

TEST_CASE("every corrupt copy is kept, even within one second", "[store]")
{
    TempDir dir;
    Store store = openStore(dir);
    const std::string vmDir = dir / "state/vms/web";
    writeFile(vmDir + "/vm.json", "first");
    REQUIRE(store.scan().ok());
    writeFile(vmDir + "/vm.json", "second");
    REQUIRE(store.scan().ok());
    auto kept = corruptFiles(vmDir);
    REQUIRE(kept.size() == 2);
    std::set<std::string> contents;
    for (const auto& k : kept) contents.insert(test::readFile(vmDir + "/" + k));
    CHECK(contents == std::set<std::string>{"first", "second"});
}

TEST_CASE("corrupt names carry the UTC time", "[store]")
{
    CHECK(corruptName("vm.json", 0) == "vm.json.corrupt-19700101T000000Z");
    CHECK(corruptName("vm.json", 1700000000) == "vm.json.corrupt-20231114T221320Z");
}

TEST_CASE("a new VM appears whole or not at all: stage, commit, discard", "[store][crash]")
{
    TempDir dir;
    Store store = openStore(dir);
    const std::string vms = dir / "state/vms";
    VmRecord r = record("web");
    auto staging = store.stage(r);
    REQUIRE(staging.ok());
    CHECK(*staging == vms + "/.new-web-00c0ffee");
    CHECK(modeOf(*staging) == 0700);
    writeFile(*staging + "/overlay.qcow2", "disk");
    // Until the commit there is no VM "web", for anyone.
    CHECK_FALSE(store.exists("web"));
    auto before = store.scan();
    REQUIRE(before.ok());
    CHECK(before->records.empty());
    CHECK(before->broken.empty());
    // ... and the scan (a vmrd starting after a crash) rolled the staging folder back.
    CHECK_FALSE(std::filesystem::exists(*staging));
    REQUIRE(findProblem(*before, *staging) != nullptr);
    CHECK(findProblem(*before, *staging)->message == "Removed the folder of a create that did not finish");

    staging = store.stage(r);
    REQUIRE(staging.ok());
    writeFile(*staging + "/overlay.qcow2", "disk");
    REQUIRE(store.commit(r).ok());
    CHECK(listDir(vms) == std::vector<std::string>{"web"});
    CHECK(listDir(vms + "/web") == std::vector<std::string>{"overlay.qcow2", "vm.json"});
    CHECK(modeOf(vms + "/web/vm.json") == 0600);
    auto loaded = store.load("web");
    REQUIRE(loaded.ok());
    CHECK(*loaded == r);

    // A second VM of the same name is refused at the commit, and leaves the first alone.
    VmRecord twin = record("web");
    twin.runtime.id = "0badcafe";
    REQUIRE(store.stage(twin).ok());
    auto clash = store.commit(twin);
    REQUIRE_FALSE(clash.ok());
    CHECK(clash.error().kind() == ErrorKind::VmExists);
    store.discard(twin);
    CHECK(listDir(vms) == std::vector<std::string>{"web"});
    CHECK(store.load("web")->runtime.id == "00c0ffee");
}

TEST_CASE("remove frees the name first; a removal cut short is finished by the next scan", "[store][crash]")
{
    TempDir dir;
    Store store = openStore(dir);
    const std::string vms = dir / "state/vms";
    REQUIRE(store.save(record("web")).ok());
    REQUIRE(store.remove("web").ok());
    CHECK(listDir(vms).empty());

    // What a crash between the rename and the deletion leaves.
    writeFile(vms + "/.gone-web-0/overlay.qcow2", "disk");
    writeFile(vms + "/.gone-web-0/vm.json", toJson(record("web")));
    auto report = store.scan();
    REQUIRE(report.ok());
    CHECK(report->records.empty());
    CHECK(report->broken.empty());
    CHECK(listDir(vms).empty());
    REQUIRE(findProblem(*report, vms + "/.gone-web-0") != nullptr);
    CHECK(findProblem(*report, vms + "/.gone-web-0")->message == "Removed the rest of a destroyed VM");
}
