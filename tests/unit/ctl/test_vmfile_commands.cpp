// vmrctl up/down/reload/provision: parsing, reading the VMFile as the caller, the params sent
// to vmrd, the output prefixed by VM name, and `status`'s vmfile_changed.

#include "catch.h"
#include "vmfile_commands.h"

#include <simdjson.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

using namespace vmr::ctl;
using vmr::test::TempDir;

namespace {

// Writes `text` to `name` in the folder, and returns the file's path.
std::string put(const TempDir& d, const std::string& name, const std::string& text)
{
    vmr::test::writeFile(d / name, text);
    return d / name;
}

const char* kTwoVms = R"(vm web {
    image "base.img"
    memory 256
    kernel "vmlinux"
    cmdline "console=ttyS0"
    cloud-init {
        ssh-key "keys/id.pub"
    }
    ssh {
        user "ada"
    }
    provision "shell" {
        inline "echo hi"
    }
    provision "file" {
        source "conf/a.conf"
        destination "/etc/a.conf"
    }
}
vm db {
    image-url "https://example.org/db.qcow2"
    vcpus 2
    disk 4
    network "none"
}
)";

// A folder with a valid two-VM VMFile and every file it names.
std::string twoVmProject(const TempDir& d)
{
    put(d, "base.img", "raw");
    put(d, "vmlinux", "kernel");
    put(d, "keys/id.pub", "# my key\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample ada@host\n");
    put(d, "user-data.yaml", "#cloud-config\nhostname: x\n");
    put(d, "conf/a.conf", "a=1\n");
    return put(d, "VMFile.kdl", kTwoVms);
}

simdjson::dom::element parse(simdjson::dom::parser& p, const std::string& json)
{
    simdjson::dom::element el;
    INFO(json);
    REQUIRE(p.parse(json).get(el) == simdjson::SUCCESS);
    return el;
}

std::string str(simdjson::dom::element el)
{
    std::string_view v;
    if (el.get_string().get(v) != simdjson::SUCCESS) return "<not a string>";
    return std::string(v);
}

}  // namespace

TEST_CASE("up, down, reload and provision parse their options", "[vmfile]")
{
    auto up = parseVmfileCommand({"up"});
    REQUIRE(up.ok());
    REQUIRE(up->has_value());
    CHECK((*up)->file == "VMFile.kdl");
    CHECK_FALSE((*up)->fileGiven);
    CHECK((*up)->names.empty());
    CHECK((*up)->provision);

    auto named = parseVmfileCommand(
        {"up", "--file", "x/V.kdl", "--name", "web", "--name=db", "--name", "web", "--no-provision"});
    REQUIRE(named.ok());
    CHECK((*named)->file == "x/V.kdl");
    CHECK((*named)->fileGiven);
    CHECK((*named)->names == std::vector<std::string>{"web", "db"});
    CHECK(!(*named)->provision);

    auto down = parseVmfileCommand({"down", "--destroy", "--force"});
    REQUIRE(down.ok());
    CHECK((*down)->destroy);
    CHECK((*down)->force);

    auto reload = parseVmfileCommand({"reload", "--file=V.kdl"});
    REQUIRE(reload.ok());
    CHECK((*reload)->command == "reload");
    CHECK((*reload)->file == "V.kdl");

    auto prov = parseVmfileCommand({"provision", "--name", "web"});
    REQUIRE(prov.ok());
    REQUIRE(prov->has_value());
    CHECK((*prov)->names == std::vector<std::string>{"web"});
}

TEST_CASE("provision with a VM name or steps of its own is the per-VM command", "[vmfile]")
{
    for (const std::vector<std::string>& args : {std::vector<std::string>{"provision", "web"},
                                                 {"provision", "--shell", "ls"},
                                                 {"provision", "--script", "s.sh"},
                                                 {"provision", "--file", "a.conf:/etc/a.conf"},
                                                 {"provision", "--file", "V.kdl", "web"}}) {
        auto r = parseVmfileCommand(args);
        REQUIRE(r.ok());
        CHECK(!r->has_value());
    }
}

TEST_CASE("bad usage of the VMFile commands is refused with the usage", "[vmfile]")
{
    struct Case {
        std::vector<std::string> args;
        std::string says;
    };
    for (const auto& c : {Case{{"up", "web"}, "unexpected argument `web`"},
                          Case{{"up", "--destroy"}, "unknown option `--destroy`"},
                          Case{{"down", "--no-provision"}, "unknown option `--no-provision`"},
                          Case{{"up", "--file"}, "--file needs a value"},
                          Case{{"up", "--name="}, "--name needs a non-empty value"},
                          Case{{"up", "--file", "a", "--file", "b"}, "--file given twice"},
                          Case{{"down", "--destroy=yes"}, "--destroy takes no value"},
                          Case{{"list"}, "not a VMFile command"}}) {
        auto r = parseVmfileCommand(c.args);
        INFO(c.args[0] << " " << c.says);
        REQUIRE(!r.ok());
        CHECK(r.error().kind() == vmr::ErrorKind::InvalidArgument);
        CHECK_THAT(r.error().message(), Catch::Contains(c.says));
    }
    auto r = parseVmfileCommand({"up", "--frobnicate"});
    REQUIRE(!r.ok());
    CHECK_THAT(r.error().message(), Catch::Contains("usage: vmrctl up [--file F]"));
}

TEST_CASE("sha256Hex is SHA-256 in lowercase hex", "[vmfile]")
{
    CHECK(sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("a VMFile is read as the caller, hashed and filtered by name", "[vmfile]")
{
    TempDir d;
    std::string file = twoVmProject(d);
    auto all = loadVmfile(file, "/home/ada", true, {});
    REQUIRE(all.ok());
    CHECK(all->path == file);
    CHECK(all->sha256 == sha256Hex(kTwoVms));
    REQUIRE(all->vms.size() == 2);
    CHECK(all->vms[0].spec.name == "web");
    CHECK(all->vms[0].spec.image == d.path() + "/base.img");  // relative to the VMFile's folder

    auto one = loadVmfile(file, "/home/ada", true, {"db"});
    REQUIRE(one.ok());
    REQUIRE(one->vms.size() == 1);
    CHECK(one->vms[0].spec.name == "db");

    auto unknown = loadVmfile(file, "/home/ada", true, {"cache"});
    REQUIRE(!unknown.ok());
    CHECK_THAT(unknown.error().message(), Catch::Contains("defines no VM named \"cache\""));
    CHECK(unknown.error().hint() == "Its VMs: web, db");
}

TEST_CASE("a relative --file is made absolute; a missing VMFile says where to look", "[vmfile]")
{
    TempDir d;
    twoVmProject(d);
    auto cwd = std::filesystem::current_path();
    std::filesystem::current_path(d.path());
    auto rel = loadVmfile("./sub/../VMFile.kdl", "", true, {});
    auto missing = loadVmfile("VMFile.kdl.nope", "", true, {});
    std::filesystem::remove(d.path() + "/VMFile.kdl");
    auto none = loadVmfile("VMFile.kdl", "", true, {});
    std::filesystem::current_path(cwd);
    REQUIRE(rel.ok());
    CHECK(rel->path == d.path() + "/VMFile.kdl");
    REQUIRE(!missing.ok());
    CHECK_THAT(missing.error().what(), Catch::Contains("Cannot read the VMFile VMFile.kdl.nope"));
    CHECK(missing.error().hint() == "Check the path given to --file");
    REQUIRE(!none.ok());
    CHECK_THAT(none.error().hint(), Catch::Contains("folder holding VMFile.kdl"));
}

TEST_CASE("an invalid VMFile is refused with every diagnostic; down does not need its files", "[vmfile]")
{
    TempDir d;
    std::string bad = put(d, "VMFile.kdl", "vm web {\n    image \"base.img\"\n    vcpu 2\n}\n");
    auto r = loadVmfile(bad, "", true, {});
    REQUIRE(!r.ok());
    CHECK_THAT(r.error().message(), Catch::Contains("VMFile.kdl:3:5: error: Unknown field \"vcpu\""));
    CHECK_THAT(r.error().message(), Catch::Contains("base.img"));  // the missing image, reported too
    CHECK_THAT(r.error().hint(), Catch::Contains("vmrctl check"));

    std::string gone = put(d, "V2.kdl", "vm web {\n    image \"base.img\"\n}\n");
    CHECK(!loadVmfile(gone, "", true, {}).ok());
    CHECK(loadVmfile(gone, "", false, {}).ok());
}

TEST_CASE("vm.create params carry the key line, the user-data and the steps", "[vmfile]")
{
    TempDir d;
    std::string file = twoVmProject(d);
    auto f = loadVmfile(file, "", true, {});
    REQUIRE(f.ok());
    auto web = createParamsJson(f->vms[0], f->path, f->sha256);
    REQUIRE(web.ok());
    simdjson::dom::parser p;
    auto w = parse(p, *web);
    // The whole spec, every member written: null (or empty) for what is not set.
    CHECK(str(w["name"]) == "web");
    CHECK(str(w["image"]) == d.path() + "/base.img");
    CHECK(w["image_url"].is_null());
    CHECK(uint64_t(w["memory_mib"]) == 256);
    CHECK(uint64_t(w["vcpus"]) == 1);
    CHECK(w["disk_gib"].is_null());
    CHECK(str(w["network"]) == "user");
    CHECK(str(w["kernel"]) == d.path() + "/vmlinux");
    CHECK(str(w["cmdline"]) == "console=ttyS0");
    CHECK(str(w["backend"]) == "qemu");
    CHECK(str(w["ssh_user"]) == "ada");
    CHECK(str(w["hostname"]) == "web");
    CHECK(simdjson::to_string(w["ssh_authorized_keys"]) ==
          R"(["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample ada@host"])");
    CHECK(w["user_data"].is_null());
    CHECK(simdjson::to_string(w["provision"]) ==
          R"([{"type":"shell","inline":"echo hi"},{"type":"file","source":")" + d.path() +
              R"(/conf/a.conf","destination":"/etc/a.conf"}])");
    CHECK(str(w["vmfile"]) == file);
    CHECK(str(w["vmfile_sha256"]) == f->sha256);
    // The files vmrctl read are not sent by name.
    for (const char* local : {"ssh_key_file", "user_data_file", "private_key"})
        CHECK(w[local].error() == simdjson::NO_SUCH_FIELD);

    auto db = createParamsJson(f->vms[1], f->path, f->sha256);
    REQUIRE(db.ok());
    simdjson::dom::parser p2;
    auto b = parse(p2, *db);
    CHECK(str(b["image_url"]) == "https://example.org/db.qcow2");
    CHECK(uint64_t(b["disk_gib"]) == 4);
    CHECK(uint64_t(b["vcpus"]) == 2);
    CHECK(str(b["network"]) == "none");
    for (const char* unset : {"image", "kernel", "ssh_user", "hostname", "user_data"}) {
        INFO(unset);
        CHECK(b[unset].is_null());
    }
    CHECK(simdjson::to_string(b["ssh_authorized_keys"]) == "[]");
    CHECK(simdjson::to_string(b["provision"]) == "[]");

    // A user-data file is read and sent as text.
    std::string raw = put(d, "raw.kdl",
                          "vm raw {\n    image \"base.img\"\n    cloud-init {\n"
                          "        user-data \"user-data.yaml\"\n    }\n}\n");
    auto r = loadVmfile(raw, "", true, {});
    REQUIRE(r.ok());
    auto rawParams = createParamsJson(r->vms[0], r->path, r->sha256);
    REQUIRE(rawParams.ok());
    simdjson::dom::parser p3;
    auto u = parse(p3, *rawParams);
    CHECK(str(u["user_data"]) == "#cloud-config\nhostname: x\n");
    CHECK(u["ssh_user"].is_null());
    CHECK(simdjson::to_string(u["ssh_authorized_keys"]) == "[]");
}

TEST_CASE("vm.create params are checked as vmrd checks them", "[vmfile]")
{
    TempDir d;
    twoVmProject(d);
    // Raw user-data together with a key: vmrd would refuse it, so it is not sent.
    vmr::config::VmDefinition both;
    both.spec.name = "both";
    both.spec.image = d.path() + "/base.img";
    both.sshKeyFile = d.path() + "/keys/id.pub";
    both.userDataFile = d.path() + "/user-data.yaml";
    auto r = createParamsJson(both, "", "");
    REQUIRE(!r.ok());
    CHECK(r.error().kind() == vmr::ErrorKind::InvalidParams);
    CHECK(r.error().message() == "VM \"both\": Raw user-data cannot be combined with SSH keys");
    CHECK_THAT(r.error().hint(), Catch::Contains("user-data"));
    both.sshKeyFile.clear();
    // A user is whom `vmrctl ssh` logs in as: the user-data creates it.
    both.spec.cloudInit.user = "ada";
    CHECK(createParamsJson(both, "", "").ok());
    both.spec.cloudInit.user.clear();
    CHECK(createParamsJson(both, "", "").ok());
}

TEST_CASE("a private key given as ssh-key is refused with the .pub to use", "[vmfile]")
{
    TempDir d;
    twoVmProject(d);
    put(d, "keys/id.pub", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----\n");
    auto f = loadVmfile(d.path() + "/VMFile.kdl", "", true, {"web"});
    REQUIRE(f.ok());
    auto r = createParamsJson(f->vms[0], f->path, f->sha256);
    REQUIRE(!r.ok());
    CHECK_THAT(r.error().message(), Catch::Contains("is a private key"));
    CHECK_THAT(r.error().hint(), Catch::Contains("id.pub.pub"));
    put(d, "keys/id.pub", "hello\n");
    r = createParamsJson(f->vms[0], f->path, f->sha256);
    REQUIRE(!r.ok());
    CHECK_THAT(r.error().message(), Catch::Contains("is not an OpenSSH public key"));
    // upParams reports it too, before anything is sent.
    CHECK(!upParams(*f, true).ok());
}

TEST_CASE("the params of vmfile.up, vmfile.down and vmfile.provision", "[vmfile]")
{
    TempDir d;
    std::string file = twoVmProject(d);
    auto f = loadVmfile(file, "", true, {});
    REQUIRE(f.ok());
    simdjson::dom::parser p;
    auto upJson = upParams(*f, false);
    REQUIRE(upJson.ok());
    auto u = parse(p, *upJson);
    CHECK(str(u["file"]) == file);
    CHECK(str(u["sha256"]) == f->sha256);
    CHECK(bool(u["provision"]) == false);
    CHECK(simdjson::dom::array(u["vms"]).size() == 2);
    CHECK(str(u["vms"].at(1)["name"]) == "db");

    simdjson::dom::parser p2;
    auto down = parse(p2, downParams(*f, true, false));
    CHECK(simdjson::to_string(down) ==
          R"({"file":")" + file + R"(","names":["web","db"],"destroy":true,"force":false})");

    simdjson::dom::parser p3;
    auto provJson = vmfileProvisionParams(*f);
    REQUIRE(provJson.ok());
    auto prov = parse(p3, *provJson);
    CHECK(prov["provision"].error() == simdjson::NO_SUCH_FIELD);
    CHECK(simdjson::dom::array(prov["vms"]).size() == 2);
}

TEST_CASE("ssh without a name takes the VMFile's only VM", "[vmfile]")
{
    TempDir d;
    std::string one = put(d, "one.kdl", "vm solo {\n    image \"/nonexistent.img\"\n}\n");
    auto sole = soleVmName(one, "");
    REQUIRE(sole.ok());
    CHECK(*sole == "solo");
    std::string two = twoVmProject(d);
    auto several = soleVmName(two, "");
    REQUIRE(!several.ok());
    CHECK_THAT(several.error().message(), Catch::Contains("defines 2 VMs (web, db)"));
    CHECK_THAT(several.error().hint(), Catch::Contains("vmrctl ssh web"));
    auto none = soleVmName(d.path() + "/missing.kdl", "");
    REQUIRE(!none.ok());
    CHECK_THAT(none.error().what(), Catch::Contains("Cannot read the VMFile"));
}

TEST_CASE("a VMFile found by itself is used only when it is the caller's or root's", "[vmfile]")
{
    TempDir d;
    std::string file = put(d, "VMFile.kdl", "vm solo {\n    image \"/nonexistent.img\"\n}\n");
    CHECK(checkFoundVmfile(file).ok());
    CHECK(checkFoundVmfile(d / "missing.kdl").ok());  // reading it reports that

    REQUIRE(::chmod(file.c_str(), 0666) == 0);
    auto open = checkFoundVmfile(file);
    REQUIRE_FALSE(open.ok());
    CHECK(open.error().kind() == vmr::ErrorKind::PermissionDenied);
    CHECK(open.error().message() == "Not using " + file + ", found in this folder: every user can write it");
    CHECK_THAT(open.error().hint(), Catch::Contains("--file " + file));
    REQUIRE(::chmod(file.c_str(), 0644) == 0);

    if (::geteuid() != 0) {
        WARN("not root: cannot give a VMFile to someone else");
        return;
    }
    REQUIRE(::chown(file.c_str(), 12345, 12345) == 0);
    auto theirs = checkFoundVmfile(file);
    REQUIRE_FALSE(theirs.ok());
    CHECK_THAT(theirs.error().message(), Catch::Contains("it belongs to uid 12345, not to you (uid 0)"));
    // `vmrctl ssh` without a name does not pick a VM from it either.
    auto sole = soleVmName(file, "");
    REQUIRE_FALSE(sole.ok());
    CHECK(sole.error().kind() == vmr::ErrorKind::PermissionDenied);
}

TEST_CASE("output is cut into lines and prefixed by VM name", "[vmfile]")
{
    PrefixedOutput out({"web", "db", "cache"});
    CHECK(out.prefix("db") == "db    | ");
    CHECK(out.feed("web", false, "hel") == "");
    CHECK(out.feed("db", false, "one\ntw") == "db    | one\n");
    CHECK(out.feed("web", false, "lo\r\nwor") == "web   | hello\n");
    CHECK(out.feed("web", true, "oops\n") == "web   | oops\n");
    CHECK(out.pending() == std::vector<std::pair<std::string, bool>>{{"db", false}, {"web", false}});
    CHECK(out.flush("web", false) == "web   | wor\n");
    CHECK(out.flush("web", false) == "");
    CHECK(out.flush("db", false) == "db    | tw\n");
    CHECK(out.pending().empty());
}

TEST_CASE("notifications of a vmfile call render as prefixed lines", "[vmfile]")
{
    VmfileDisplay d({"web", "db"}, {{"https://x/db.img", {"db"}}});
    auto note = [&](const char* method, const char* params) {
        return d.render(vmr::rpc::Notification{method, params});
    };
    CHECK(note("vmfile.progress", R"({"vm":"db","message":"creating"})") ==
          std::pair<std::string, std::string>{"db  | creating\n", ""});
    CHECK(note("provision.output", R"({"vm":"web","step":1,"stream":"stdout","data":"partial"})").first ==
          "");
    CHECK(note("provision.output", R"({"vm":"web","step":1,"stream":"stderr","data":"warn\n"})") ==
          std::pair<std::string, std::string>{"", "web | warn\n"});
    // The VM's pending output comes out before the next news about it.
    CHECK(note("provision.step", R"({"vm":"web","step":2,"total":2,"description":"upload a"})").first ==
          "web | partial\nweb | step 2/2: upload a\n");
    CHECK(note("image.progress", R"({"url":"https://x/db.img","received":0,"total":1000})").first ==
          "db  | image 0%  0 B / 1000 B\n");
    CHECK(note("image.progress", R"({"url":"https://x/db.img","received":50,"total":1000})").first == "");
    CHECK(note("image.progress", R"({"url":"https://x/db.img","received":100,"total":1000})").first ==
          "db  | image 10%  100 B / 1000 B\n");
    CHECK(note("image.progress", R"({"url":"https://x/db.img","received":1000,"total":1000})").first ==
          "db  | image 100%  1000 B / 1000 B\n");
    CHECK(note("event", R"({"topic":"vm.state"})") == std::pair<std::string, std::string>{});
    note("provision.output", R"({"vm":"db","step":1,"stream":"stdout","data":"tail"})");
    CHECK(d.finish() == std::pair<std::string, std::string>{"db  | tail\n", ""});
}

TEST_CASE("status says whether the VMFile changed since the VM was created", "[vmfile]")
{
    TempDir d;
    std::string file = put(d, "VMFile.kdl", "vm a {\n    image \"x\"\n}\n");
    std::string sha = sha256Hex("vm a {\n    image \"x\"\n}\n");
    std::string status = R"({"name":"a","vmfile":")" + file + R"(","vmfile_sha256":")" + sha + "\"}";
    CHECK(withVmfileChanged(status) == status.substr(0, status.size() - 1) + ",\"vmfile_changed\":false}");
    put(d, "VMFile.kdl", "vm a {\n    image \"y\"\n}\n");
    CHECK(withVmfileChanged(status) == status.substr(0, status.size() - 1) + ",\"vmfile_changed\":true}");
    std::filesystem::remove(file);
    CHECK(withVmfileChanged(status) == status.substr(0, status.size() - 1) + ",\"vmfile_changed\":null}");
    std::string byHand = R"({"name":"b","vmfile":null,"vmfile_sha256":null})";
    CHECK(withVmfileChanged(byHand) == byHand);
    CHECK(withVmfileChanged("not json") == "not json");
}
