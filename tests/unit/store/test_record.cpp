#include "store/record.h"

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <utility>
#include <vector>

using namespace vmr;
using namespace vmr::store;

namespace {

VmRecord fullRecord()
{
    VmRecord r;
    r.name = "web-1";
    r.id = "0a1b2c3d";
    r.backend = "chv";
    r.created = 1700000000;
    r.image = "debian-12";
    r.vcpus = 4;
    r.memoryMib = 4096;
    r.diskGib = 20;
    r.network = "tap";
    r.kernel = "/boot/vmlinuz";
    r.initrd = "/boot/initrd.img";
    r.cmdline = "console=ttyS0 root=/dev/vda1";
    r.accel = "kvm";
    r.firmware = "uefi";
    r.vnc = true;
    r.seed = "/var/lib/vmr/vms/web-1/seed.iso";
    r.state = "running";
    r.stateReason = "started by uid 1000";
    r.pid = 4242;
    r.pidStartTime = 123456789;
    r.sshPort = 10022;
    r.mac = "52:54:00:12:34:56";
    r.vncPort = 5901;
    r.accelInUse = "kvm";
    r.imageUrl = "https://example.org/debian-12.qcow2.zst";
    r.sshUser = "admin";
    r.hostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOaJ";
    r.provision = R"([{"type":"shell","inline":"echo hi"}])";
    r.vmfile = "/home/u/VMFile.kdl";
    r.vmfileSha256 = std::string(64, 'a');
    return r;
}

// The fields of a valid record as raw JSON values, in a fixed order.
using Fields = std::vector<std::pair<std::string, std::string>>;

Fields validFields()
{
    return {
        {"version", "1"},
        {"name", "\"web\""},
        {"id", "\"deadbeef\""},
        {"backend", "\"qemu\""},
        {"created", "1"},
        {"image", "\"debian\""},
        {"vcpus", "2"},
        {"memory_mib", "1024"},
        {"disk_gib", "null"},
        {"network", "\"user\""},
        {"kernel", "null"},
        {"initrd", "null"},
        {"cmdline", "null"},
        {"accel", "null"},
        {"firmware", "null"},
        {"vnc", "false"},
        {"seed", "null"},
        {"state", "\"stopped\""},
        {"state_reason", "null"},
        {"pid", "null"},
        {"pid_start_time", "null"},
        {"ssh_port", "null"},
        {"mac", "null"},
        {"vnc_port", "null"},
        {"accel_in_use", "null"},
        {"image_url", "null"},
        {"ssh_user", "null"},
        {"host_key", "null"},
        {"provision", "null"},
        {"vmfile", "null"},
        {"vmfile_sha256", "null"},
    };
}

std::string build(const Fields& fields)
{
    std::string out = "{";
    for (const auto& [k, v] : fields) {
        if (out.size() > 1) out += ',';
        out += '"' + k + "\":" + v;
    }
    return out + "}";
}

std::string with(const std::string& key, const std::string& value)
{
    Fields f = validFields();
    for (auto& [k, v] : f)
        if (k == key) v = value;
    return build(f);
}

std::string without(const std::string& key)
{
    Fields f = validFields();
    std::erase_if(f, [&](const auto& kv) { return kv.first == key; });
    return build(f);
}

std::string errorOf(const std::string& json)
{
    auto r = recordFromJson(json);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind() == ErrorKind::StoreCorrupt);
    return r.error().what();
}

}  // namespace

TEST_CASE("a full record round-trips", "[record]")
{
    VmRecord r = fullRecord();
    std::string text = toJson(r);
    CHECK_THAT(text, Catch::StartsWith("{\"version\":1,\"name\":\"web-1\","));
    CHECK_THAT(text, Catch::EndsWith("}\n"));
    CHECK(text.find('\n') == text.size() - 1);
    auto back = recordFromJson(text);
    INFO(text);
    REQUIRE(back.ok());
    CHECK(*back == r);
}

TEST_CASE("a minimal record round-trips with nulls", "[record]")
{
    auto r = recordFromJson(build(validFields()));
    REQUIRE(r.ok());
    CHECK(r->name == "web");
    CHECK(r->id == "deadbeef");
    CHECK(r->backend == "qemu");
    CHECK(r->vcpus == 2);
    CHECK_FALSE(r->diskGib.has_value());
    CHECK_FALSE(r->pid.has_value());
    CHECK_FALSE(r->pidStartTime.has_value());
    CHECK_FALSE(r->sshPort.has_value());
    CHECK_FALSE(r->vncPort.has_value());
    CHECK(r->kernel.empty());
    CHECK(r->mac.empty());
    CHECK(r->extra.empty());
    CHECK(toJson(*r) == build(validFields()) + "\n");
}

TEST_CASE("unknown fields from a newer vmrd are preserved", "[record]")
{
    Fields f = validFields();
    f.insert(f.begin() + 3, {"zeta_future", "{\"nested\":[1,2.5,\"x\\n\",null,true],\"e\":{}}"});
    f.emplace_back("alpha_future", "\"caf\\u00e9 \\\"q\\\"\"");
    f.emplace_back("number_future", "-12");
    auto r = recordFromJson(build(f));
    REQUIRE(r.ok());
    REQUIRE(r->extra.size() == 3);
    CHECK(r->extra.at("number_future") == "-12");

    std::string rewritten = toJson(*r);
    auto again = recordFromJson(rewritten);
    REQUIRE(again.ok());
    CHECK(again->extra == r->extra);
    CHECK(*again == *r);
    CHECK_THAT(rewritten,
               Catch::Contains("\"zeta_future\":{\"nested\":[1,2.5,\"x\\n\",null,true],\"e\":{}}"));
    CHECK_THAT(rewritten, Catch::Contains("\"alpha_future\":\"caf\xc3\xa9 \\\"q\\\"\""));

    // A known key in `extra` never shadows the real field.
    VmRecord edited = *r;
    edited.extra["vcpus"] = "99";
    auto reread = recordFromJson(toJson(edited));
    REQUIRE(reread.ok());
    CHECK(reread->vcpus == 2);
}

TEST_CASE("strings are escaped and survive the round trip", "[record]")
{
    VmRecord r = fullRecord();
    r.cmdline = "console=ttyS0 \"quoted\" back\\slash\nnew\tline \x01 caf\xc3\xa9 \xe2\x9c\x93";
    r.stateReason = "qemu said: {\"error\": \"boom\"}";
    r.image = "path/with/slashes";
    std::string text = toJson(r);
    CHECK(text.find('\n') == text.size() - 1);
    CHECK_THAT(text, Catch::Contains("\\u0001"));
    auto back = recordFromJson(text);
    REQUIRE(back.ok());
    CHECK(*back == r);
}

const std::set<std::string> kLaterKeys = {"firmware",  "vnc",          "seed",     "accel_in_use",
                                          "image_url", "ssh_user",     "host_key", "provision",
                                          "vmfile",    "vmfile_sha256"};

TEST_CASE("every missing field is an error naming it", "[record]")
{
    for (const auto& [key, value] : validFields()) {
        if (kLaterKeys.count(key) != 0) continue;
        INFO(key);
        CHECK(errorOf(without(key)) == "Field \"" + key + "\": is missing");
    }
}

TEST_CASE("fields added later may be missing and take their defaults", "[record]")
{
    Fields f;
    for (const auto& kv : validFields())
        if (kLaterKeys.count(kv.first) == 0) f.push_back(kv);
    auto r = recordFromJson(build(f));
    REQUIRE(r.ok());
    CHECK(r->firmware.empty());
    CHECK_FALSE(r->vnc);
    CHECK(r->seed.empty());
    CHECK(r->accelInUse.empty());
    // Written back, they are present.
    CHECK(toJson(*r) == build(validFields()) + "\n");
}

TEST_CASE("every wrong field is an error naming it", "[record]")
{
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"version", "\"1\""},
        {"name", "5"},
        {"vnc", "\"yes\""},
        {"accel_in_use", "\"hvf\""},
        {"firmware", "7"},
        {"provision", "{}"},
        {"host_key", "1"},
        {"name", "\"../etc\""},
        {"name", "\"\""},
        {"id", "\"DEADBEEF\""},
        {"id", "\"dead\""},
        {"id", "null"},
        {"backend", "\"xen\""},
        {"created", "-1"},
        {"created", "1.5"},
        {"image", "null"},
        {"image", "\"a\\u0000b\""},
        {"vcpus", "0"},
        {"vcpus", "1025"},
        {"vcpus", "\"2\""},
        {"memory_mib", "0"},
        {"memory_mib", "[]"},
        {"disk_gib", "0"},
        {"disk_gib", "\"10G\""},
        {"network", "\"bridge\""},
        {"kernel", "7"},
        {"initrd", "{}"},
        {"cmdline", "false"},
        {"accel", "\"hvf\""},
        {"state", "\"exploded\""},
        {"state", "null"},
        {"state_reason", "1"},
        {"pid", "0"},
        {"pid", "-5"},
        {"pid", "4294967296"},
        {"pid_start_time", "-1"},
        {"pid_start_time", "\"x\""},
        {"ssh_port", "0"},
        {"ssh_port", "65536"},
        {"mac", "\"52:54:00:12:34\""},
        {"mac", "\"52-54-00-12-34-56\""},
        {"mac", "\"zz:54:00:12:34:56\""},
        {"vnc_port", "70000"},
    };
    for (const auto& [key, value] : cases) {
        INFO(key << " = " << value);
        CHECK_THAT(errorOf(with(key, value)), Catch::StartsWith("Field \"" + key + "\": "));
    }
    CHECK(errorOf(with("vcpus", "\"2\"")) ==
          "Field \"vcpus\": expected an integer from 1 to 1024, got \"2\"");
    CHECK(errorOf(with("backend", "\"xen\"")) ==
          "Field \"backend\": expected one of \"qemu\",\"chv\", got \"xen\"");
}

TEST_CASE("records that are not JSON objects, or from a newer version, are errors", "[record]")
{
    CHECK_THAT(errorOf(""), Catch::StartsWith("Not valid JSON"));
    CHECK_THAT(errorOf("{\"version\":1,\"name\":\"web\""), Catch::StartsWith("Not valid JSON"));
    std::string full = build(validFields());
    CHECK_THAT(errorOf(full.substr(0, full.size() / 2)), Catch::StartsWith("Not valid JSON"));
    CHECK_THAT(errorOf("garbage"), Catch::StartsWith("Not valid JSON"));
    CHECK(errorOf("[1,2]") == "Expected a JSON object, got an array");
    CHECK(errorOf("null") == "Expected a JSON object, got null");
    CHECK_THAT(errorOf(with("version", "2")), Catch::StartsWith("Record version 2 is not supported"));
    CHECK(errorOf(build(validFields()).insert(1, "\"vcpus\":3,")) == "Field \"vcpus\": appears twice");
    CHECK(errorOf(build(validFields()).insert(1, "\"x\":1,\"x\":2,")) == "Field \"x\": appears twice");
}

TEST_CASE("states and ids", "[record]")
{
    for (auto s : {"preparing", "prepared", "starting", "running", "paused", "stopping", "stopped", "failed",
                   "destroyed"})
        CHECK(isValidVmState(s));
    CHECK_FALSE(isValidVmState("Running"));
    CHECK_FALSE(isValidVmState(""));

    std::set<std::string> ids;
    for (int i = 0; i < 64; ++i) {
        auto id = newVmId();
        REQUIRE(id.ok());
        REQUIRE(id->size() == 8);
        CHECK(id->find_first_not_of("0123456789abcdef") == std::string::npos);
        ids.insert(*id);
    }
    CHECK(ids.size() > 60);  // 64 draws from 2^32: a repeat would be a broken generator
}
