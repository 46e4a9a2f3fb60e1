// The VM record: version 2 ({"version":2,"spec":{...},"runtime":{...}}) round-trips, every
// field is checked and a bad one is named, members from a newer vmrd are kept wherever they
// are, and version 1 (the old flat object) is still read and migrated.

#include "store/record.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

using namespace vmr;
using namespace vmr::store;
using model::Accel;
using model::AccelChoice;
using model::Backend;
using model::FirmwareKind;
using model::NetMode;
using model::ProvisionStep;
using model::VmState;

namespace {

const std::string kSha = std::string(64, 'a');

ProvisionStep shellStep(std::string inlineCommand, std::string script = {})
{
    ProvisionStep s;
    s.inlineCommand = std::move(inlineCommand);
    s.script = std::move(script);
    return s;
}

ProvisionStep fileStep(std::string source, std::string destination)
{
    ProvisionStep s;
    s.kind = ProvisionStep::Kind::File;
    s.source = std::move(source);
    s.destination = std::move(destination);
    return s;
}

// Every field set, none to its default. The codec checks fields one by one; whether they make
// sense together (user-data with keys, chv with a kernel and UEFI) is model::validate's job.
VmRecord fullRecord()
{
    VmRecord r;
    model::VmSpec& s = r.spec;
    s.name = "web-1";
    s.backend = Backend::Chv;
    s.image = "debian-12";
    s.imageUrl = "https://example.org/debian-12.qcow2.zst";
    s.imageSha256 = kSha;
    s.vcpus = 4;
    s.memoryMib = 4096;
    s.diskGib = 20;
    s.network = {NetMode::Tap, "br0"};
    s.kernel = "/boot/vmlinuz";
    s.initrd = "/boot/initrd.img";
    s.cmdline = "console=ttyS0 root=/dev/vda1";
    s.accel = AccelChoice::Kvm;
    s.firmware = {FirmwareKind::Uefi, ""};
    s.vnc = true;
    s.cloudInit.user = "admin";
    s.cloudInit.authorizedKeys = {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOaJ u@h",
                                  "ecdsa-sha2-nistp256 AAAAE2 x"};
    s.cloudInit.userData = "#cloud-config\nruncmd: [\"true\"]\n";
    s.cloudInit.hostname = "web-1.example.org";
    s.provision = {shellStep("echo hi"), shellStep("", "/home/u/setup.sh"),
                   fileStep("/home/u/app.conf", "/etc/app.conf")};
    s.vmfile = "/home/u/VMFile.kdl";
    s.vmfileSha256 = kSha;

    model::VmRuntime& rt = r.runtime;
    rt.id = "0a1b2c3d";
    rt.created = 1700000000;
    rt.mac = "52:54:00:12:34:56";
    rt.seed = "/var/lib/vmr/vms/web-1/seed.iso";
    rt.hostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOaJ";
    rt.ownerUid = 1000;
    rt.ownerGid = 1000;
    rt.state = VmState::Running;
    rt.stateReason = "started by uid 1000";
    rt.pid = 4242;
    rt.pidStartTime = 123456789;
    rt.sshPort = 10022;
    rt.vncPort = 5901;
    rt.accelInUse = Accel::Kvm;
    return r;
}

// The members of one JSON object as raw JSON values, in order.
using Members = std::vector<std::pair<std::string, std::string>>;

std::string object(const Members& members)
{
    std::string out = "{";
    for (const auto& [k, v] : members) {
        if (out.size() > 1) out += ',';
        out += '"' + k + "\":" + v;
    }
    return out + "}";
}

// Replace the member's value, or append it; nullopt removes it.
Members set(Members m, const std::string& key, const std::optional<std::string>& value)
{
    auto it = std::find_if(m.begin(), m.end(), [&](const auto& kv) { return kv.first == key; });
    if (!value) {
        if (it != m.end()) m.erase(it);
    } else if (it != m.end()) {
        it->second = *value;
    } else {
        m.emplace_back(key, *value);
    }
    return m;
}

// A valid spec and runtime, every member as toJson writes it (so a read and a write give the
// same text back).
Members validSpec()
{
    return {
        {"name", "\"web\""},
        {"backend", "\"qemu\""},
        {"image", "\"debian\""},
        {"image_url", "null"},
        {"image_sha256", "null"},
        {"vcpus", "2"},
        {"memory_mib", "1024"},
        {"disk_gib", "null"},
        {"network", "\"user\""},
        {"kernel", "null"},
        {"initrd", "null"},
        {"cmdline", "null"},
        {"accel", "null"},
        {"firmware", "\"bios\""},
        {"vnc", "false"},
        {"ssh_user", "null"},
        {"ssh_authorized_keys", "[]"},
        {"user_data", "null"},
        {"hostname", "null"},
        {"provision", "[]"},
        {"vmfile", "null"},
        {"vmfile_sha256", "null"},
    };
}

Members validRuntime()
{
    return {
        {"id", "\"deadbeef\""}, {"created", "1"},           {"mac", "null"},
        {"seed", "null"},       {"host_key", "null"},       {"owner_uid", "null"},
        {"owner_gid", "null"},  {"state", "\"stopped\""},   {"state_reason", "null"},
        {"pid", "null"},        {"pid_start_time", "null"}, {"ssh_port", "null"},
        {"vnc_port", "null"},   {"accel_in_use", "null"},
    };
}

Members validTop()
{
    return {{"version", "2"}, {"spec", object(validSpec())}, {"runtime", object(validRuntime())}};
}

enum class In { Top, Spec, Runtime };

// A valid record with one member changed (or removed: nullopt).
std::string recordWith(In where, const std::string& key, const std::optional<std::string>& value)
{
    switch (where) {
        case In::Top: return object(set(validTop(), key, value));
        case In::Spec: return object(set(validTop(), "spec", object(set(validSpec(), key, value))));
        case In::Runtime: return object(set(validTop(), "runtime", object(set(validRuntime(), key, value))));
    }
    return {};
}

std::string errorOf(const std::string& json)
{
    auto r = recordFromJson(json);
    INFO(json);
    // CHECK, not REQUIRE: every case of a table is tried, and each accepted one shows.
    CHECK_FALSE(r.ok());
    if (r.ok()) return "(accepted)";
    CHECK(r.error().kind() == ErrorKind::StoreCorrupt);
    return r.error().what();
}

// Version 1: one flat object, every key written (null for "not set"), as the old vmrd wrote it.
Members validV1()
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

// Keys version 1 gained after its first records were written: those records lack them.
const std::set<std::string> kV1LaterKeys = {"firmware",  "vnc",          "seed",     "accel_in_use",
                                            "image_url", "ssh_user",     "host_key", "provision",
                                            "vmfile",    "vmfile_sha256"};

// A version 1 record with every key set, as the old vmrd wrote fullRecord's equivalent.
Members fullV1()
{
    return {
        {"version", "1"},
        {"name", "\"web-1\""},
        {"id", "\"0a1b2c3d\""},
        {"backend", "\"chv\""},
        {"created", "1700000000"},
        {"image", "\"debian-12\""},
        {"vcpus", "4"},
        {"memory_mib", "4096"},
        {"disk_gib", "20"},
        {"network", "\"tap\""},
        {"kernel", "\"/boot/vmlinuz\""},
        {"initrd", "\"/boot/initrd.img\""},
        {"cmdline", "\"console=ttyS0 root=/dev/vda1\""},
        {"accel", "\"kvm\""},
        {"firmware", "\"uefi\""},
        {"vnc", "true"},
        {"seed", "\"/var/lib/vmr/vms/web-1/seed.iso\""},
        {"state", "\"running\""},
        {"state_reason", "\"started by uid 1000\""},
        {"pid", "4242"},
        {"pid_start_time", "123456789"},
        {"ssh_port", "10022"},
        {"mac", "\"52:54:00:12:34:56\""},
        {"vnc_port", "5901"},
        {"accel_in_use", "\"kvm\""},
        {"image_url", "\"https://example.org/debian-12.qcow2.zst\""},
        {"ssh_user", "\"admin\""},
        {"host_key", "\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOaJ\""},
        {"provision", R"([{"type":"shell","inline":"echo hi"},{"type":"shell","script":"/home/u/setup.sh"},)"
                      R"({"type":"file","source":"/home/u/app.conf","destination":"/etc/app.conf"}])"},
        {"vmfile", "\"/home/u/VMFile.kdl\""},
        {"vmfile_sha256", "\"" + kSha + "\""},
    };
}

}  // namespace

TEST_CASE("a full record round-trips", "[record]")
{
    VmRecord r = fullRecord();
    std::string text = toJson(r);
    INFO(text);
    CHECK_THAT(text, Catch::StartsWith("{\"version\":2,\"spec\":{\"name\":\"web-1\",\"backend\":\"chv\","));
    CHECK_THAT(text, Catch::Contains("},\"runtime\":{\"id\":\"0a1b2c3d\",\"created\":1700000000,"));
    CHECK_THAT(text, Catch::Contains("\"network\":{\"mode\":\"tap\",\"bridge\":\"br0\"}"));
    CHECK_THAT(text, Catch::EndsWith("}}\n"));
    CHECK(text.find('\n') == text.size() - 1);
    auto back = recordFromJson(text);
    REQUIRE(back.ok());
    CHECK(*back == r);
    CHECK(back->name() == "web-1");
    CHECK(toJson(*back) == text);
}

TEST_CASE("a valid record reads, and is written back as the same text", "[record]")
{
    const std::string text = object(validTop());
    auto r = recordFromJson(text);
    REQUIRE(r.ok());
    CHECK(r->name() == "web");
    CHECK(r->spec.backend == Backend::Qemu);
    CHECK(r->spec.image == "debian");
    CHECK(r->spec.vcpus == 2);
    CHECK_FALSE(r->spec.diskGib.has_value());
    CHECK(r->spec.kernel.empty());
    CHECK_FALSE(r->spec.accel.has_value());
    CHECK(r->spec.firmware.kind == FirmwareKind::Bios);
    CHECK(r->spec.provision.empty());
    CHECK(r->runtime.id == "deadbeef");
    CHECK(r->runtime.state == VmState::Stopped);
    CHECK_FALSE(r->runtime.pid.has_value());
    CHECK_FALSE(r->runtime.pidStartTime.has_value());
    CHECK_FALSE(r->runtime.sshPort.has_value());
    CHECK_FALSE(r->runtime.vncPort.has_value());
    CHECK_FALSE(r->runtime.accelInUse.has_value());
    CHECK(r->runtime.mac.empty());
    CHECK(r->extra.empty());
    CHECK(r->specExtra.empty());
    CHECK(r->runtimeExtra.empty());
    CHECK(toJson(*r) == text + "\n");
}

TEST_CASE("strings are escaped and survive the round trip", "[record]")
{
    VmRecord r = fullRecord();
    r.spec.cmdline = "console=ttyS0 \"quoted\" back\\slash\nnew\tline \x01 caf\xc3\xa9 \xe2\x9c\x93";
    r.spec.image = "/images/with space/caf\xc3\xa9.qcow2";
    r.spec.cloudInit.userData = "#cloud-config\nruncmd:\n  - [sh, -c, \"echo \\\"hi\\\" > /x\"]\n";
    r.runtime.stateReason = "qemu said: {\"error\": \"boom\"}";
    std::string text = toJson(r);
    CHECK(text.find('\n') == text.size() - 1);
    CHECK_THAT(text, Catch::Contains("\\u0001"));
    auto back = recordFromJson(text);
    REQUIRE(back.ok());
    CHECK(*back == r);
}

TEST_CASE("every required member that is missing is an error naming it", "[record]")
{
    CHECK(errorOf(recordWith(In::Top, "version", std::nullopt)) == "Field \"version\" is missing");
    CHECK(errorOf(recordWith(In::Top, "spec", std::nullopt)) == "Field \"spec\" is missing");
    CHECK(errorOf(recordWith(In::Top, "runtime", std::nullopt)) == "Field \"runtime\" is missing");
    CHECK(errorOf(recordWith(In::Spec, "name", std::nullopt)) == "Field \"name\" is missing");
    // In a spec, null counts as absent.
    CHECK(errorOf(recordWith(In::Spec, "name", "null")) == "Field \"name\" is missing");
    CHECK(errorOf(recordWith(In::Runtime, "id", std::nullopt)) == "Field \"id\" is missing");
    CHECK(errorOf(recordWith(In::Runtime, "state", std::nullopt)) == "Field \"state\" is missing");
}

TEST_CASE("every other member may be missing and takes its default", "[record]")
{
    // The valid members that are not their field's default; the others already are.
    const Members specDefaults = {{"image", "null"}, {"vcpus", "1"}};
    const Members runtimeDefaults = {{"created", "0"}};
    auto expected = [](Members valid, const Members& defaults, const std::string& key) {
        for (const auto& [k, v] : defaults)
            if (k == key) valid = set(valid, k, v);
        return valid;
    };
    for (const auto& [key, value] : validSpec()) {
        if (key == "name") continue;
        INFO("spec." << key);
        auto r = recordFromJson(recordWith(In::Spec, key, std::nullopt));
        REQUIRE(r.ok());
        CHECK(toJson(*r) ==
              object(set(validTop(), "spec", object(expected(validSpec(), specDefaults, key)))) + "\n");
        // Null reads as absent too.
        auto nulled = recordFromJson(recordWith(In::Spec, key, "null"));
        REQUIRE(nulled.ok());
        CHECK(*nulled == *r);
    }
    for (const auto& [key, value] : validRuntime()) {
        if (key == "id" || key == "state") continue;
        INFO("runtime." << key);
        auto r = recordFromJson(recordWith(In::Runtime, key, std::nullopt));
        REQUIRE(r.ok());
        CHECK(toJson(*r) ==
              object(set(validTop(), "runtime", object(expected(validRuntime(), runtimeDefaults, key)))) +
                  "\n");
    }
}

TEST_CASE("every wrong field is an error naming it", "[record]")
{
    struct Case {
        In where;
        std::string key;
        std::string value;
        std::string named;  // the member the message names, when not `key`
    };
    const std::vector<Case> cases = {
        {In::Top, "version", "\"2\"", ""},
        {In::Top, "version", "0", ""},
        {In::Top, "version", "-1", ""},
        {In::Top, "version", "2.0", ""},
        {In::Top, "spec", "[]", ""},
        {In::Top, "spec", "\"web\"", ""},
        {In::Top, "spec", "null", ""},
        {In::Top, "runtime", "null", ""},
        {In::Top, "runtime", "1", ""},

        {In::Spec, "name", "5", ""},
        {In::Spec, "name", "\"../etc\"", ""},
        {In::Spec, "name", "\"\"", ""},
        {In::Spec, "name", "\"a/b\"", ""},
        {In::Spec, "backend", "\"xen\"", ""},
        {In::Spec, "backend", "1", ""},
        {In::Spec, "image", "\"a\\u0000b\"", ""},
        {In::Spec, "image", "\"\"", ""},
        {In::Spec, "image", "\"path/with/slashes\"", ""},
        {In::Spec, "image", "7", ""},
        {In::Spec, "image_url", "\"ftp://example.org/x\"", ""},
        {In::Spec, "image_sha256", "\"abc\"", ""},
        {In::Spec, "vcpus", "0", ""},
        {In::Spec, "vcpus", "257", ""},
        {In::Spec, "vcpus", "-1", ""},
        {In::Spec, "vcpus", "\"2\"", ""},
        {In::Spec, "vcpus", "1.5", ""},
        {In::Spec, "vcpus", "18446744073709551615", ""},
        {In::Spec, "memory_mib", "0", ""},
        {In::Spec, "memory_mib", "15", ""},
        {In::Spec, "memory_mib", "4194305", ""},
        {In::Spec, "memory_mib", "[]", ""},
        {In::Spec, "disk_gib", "0", ""},
        {In::Spec, "disk_gib", "65537", ""},
        {In::Spec, "disk_gib", "\"10G\"", ""},
        {In::Spec, "network", "\"bridge\"", ""},
        {In::Spec, "network", "5", ""},
        {In::Spec, "network", R"({"mode":"tap","bridge":"a/b"})", "network.bridge"},
        {In::Spec, "network", R"({"mode":"wifi"})", "network.mode"},
        {In::Spec, "network", R"({"mode":"tap","colour":"red"})", "network.colour"},
        {In::Spec, "kernel", "7", ""},
        {In::Spec, "kernel", "\"vmlinuz\"", ""},
        {In::Spec, "initrd", "{}", ""},
        {In::Spec, "initrd", "\"initrd.img\"", ""},
        {In::Spec, "cmdline", "false", ""},
        {In::Spec, "cmdline", "\"\"", ""},
        {In::Spec, "accel", "\"hvf\"", ""},
        {In::Spec, "firmware", "7", ""},
        {In::Spec, "firmware", "\"efi\"", ""},
        {In::Spec, "vnc", "\"yes\"", ""},
        {In::Spec, "vnc", "1", ""},
        {In::Spec, "ssh_user", "\"root\"", ""},
        {In::Spec, "ssh_user", "\"Bad User\"", ""},
        {In::Spec, "ssh_user", "1", ""},
        {In::Spec, "ssh_authorized_keys", "\"ssh-ed25519 AAAA\"", ""},
        {In::Spec, "ssh_authorized_keys", "[5]", ""},
        {In::Spec, "ssh_authorized_keys", "[\"not a key\"]", ""},
        {In::Spec, "user_data", "5", ""},
        {In::Spec, "user_data", "\"a\\u0000b\"", ""},
        {In::Spec, "hostname", "\"-bad-\"", ""},
        {In::Spec, "provision", "{}", ""},
        {In::Spec, "provision", "[5]", "provision[0]"},
        {In::Spec, "provision", R"([{"type":"shell"}])", "provision[0]"},
        {In::Spec, "provision", R"([{"type":"shell","inline":"a","script":"/b"}])", "provision[0]"},
        {In::Spec, "provision", R"([{"type":"file","source":"/a"}])", "provision[0]"},
        {In::Spec, "provision", R"([{"type":"shell","inline":"a"},{"type":"copy"}])", "provision[1].type"},
        {In::Spec, "provision", R"([{"type":"shell","inline":"a","colour":1}])", "provision[0].colour"},
        {In::Spec, "provision", R"([{"type":"shell","script":"setup.sh"}])", "provision[0].script"},
        {In::Spec, "vmfile", "\"VMFile.kdl\"", ""},
        {In::Spec, "vmfile_sha256", "\"xyz\"", ""},

        {In::Runtime, "id", "\"DEADBEEF\"", ""},
        {In::Runtime, "id", "\"dead\"", ""},
        {In::Runtime, "id", "null", ""},
        {In::Runtime, "id", "5", ""},
        {In::Runtime, "created", "-1", ""},
        {In::Runtime, "created", "1.5", ""},
        {In::Runtime, "created", "\"now\"", ""},
        {In::Runtime, "mac", "\"52:54:00:12:34\"", ""},
        {In::Runtime, "mac", "\"52-54-00-12-34-56\"", ""},
        {In::Runtime, "mac", "\"zz:54:00:12:34:56\"", ""},
        {In::Runtime, "mac", "5", ""},
        {In::Runtime, "seed", "1", ""},
        {In::Runtime, "host_key", "1", ""},
        {In::Runtime, "owner_uid", "-1", ""},
        {In::Runtime, "owner_uid", "4294967295", ""},
        {In::Runtime, "owner_uid", "\"1000\"", ""},
        {In::Runtime, "owner_gid", "1.5", ""},
        {In::Runtime, "state", "\"exploded\"", ""},
        {In::Runtime, "state", "\"Running\"", ""},
        {In::Runtime, "state", "null", ""},
        {In::Runtime, "state_reason", "1", ""},
        {In::Runtime, "pid", "0", ""},
        {In::Runtime, "pid", "-5", ""},
        {In::Runtime, "pid", "4294967296", ""},
        {In::Runtime, "pid", "\"1\"", ""},
        {In::Runtime, "pid_start_time", "-1", ""},
        {In::Runtime, "pid_start_time", "\"x\"", ""},
        {In::Runtime, "ssh_port", "0", ""},
        {In::Runtime, "ssh_port", "65536", ""},
        {In::Runtime, "vnc_port", "70000", ""},
        {In::Runtime, "accel_in_use", "\"hvf\"", ""},
        {In::Runtime, "accel_in_use", "\"auto\"", ""},  // a choice, not an accelerator in use
    };
    for (const auto& c : cases) {
        std::string named = c.named.empty() ? c.key : c.named;
        INFO(c.key << " = " << c.value);
        CHECK_THAT(errorOf(recordWith(c.where, c.key, c.value)),
                   Catch::StartsWith("Field \"" + named + "\" "));
    }
    CHECK(errorOf(recordWith(In::Spec, "vcpus", "0")) ==
          "Field \"vcpus\" must be a whole number from 1 to 256, not 0");
    CHECK(errorOf(recordWith(In::Spec, "vcpus", "\"2\"")) == "Field \"vcpus\" must be an integer, not \"2\"");
    CHECK(errorOf(recordWith(In::Spec, "memory_mib", "15")) ==
          "Field \"memory_mib\" must be a whole number of MiB from 16 to 4194304, not 15");
    CHECK(errorOf(recordWith(In::Spec, "backend", "\"xen\"")) ==
          "Field \"backend\" must be \"qemu\" or \"chv\", not \"xen\"");
    CHECK(errorOf(recordWith(In::Runtime, "id", "\"dead\"")) ==
          "Field \"id\" must be 8 lowercase hex digits, not \"dead\"");
    CHECK(errorOf(recordWith(In::Top, "spec", "[]")) == "Field \"spec\" must be an object, not an array");
}

TEST_CASE("the limits are those of the field table", "[record]")
{
    auto ok = [](const std::string& key, uint64_t value) {
        return recordFromJson(recordWith(In::Spec, key, std::to_string(value))).ok();
    };
    CHECK(ok("vcpus", model::kMinVcpus));
    CHECK(ok("vcpus", model::kMaxVcpus));
    CHECK_FALSE(ok("vcpus", model::kMaxVcpus + 1));
    CHECK(ok("memory_mib", model::kMinMemoryMib));
    CHECK_FALSE(ok("memory_mib", model::kMinMemoryMib - 1));
    CHECK(ok("memory_mib", model::kMaxMemoryMib));
    CHECK_FALSE(ok("memory_mib", model::kMaxMemoryMib + 1));
    CHECK(ok("disk_gib", model::kMinDiskGib));
    CHECK(ok("disk_gib", model::kMaxDiskGib));
    CHECK_FALSE(ok("disk_gib", model::kMaxDiskGib + 1));

    auto runtimeOk = [](const std::string& key, const std::string& value) {
        return recordFromJson(recordWith(In::Runtime, key, value)).ok();
    };
    CHECK(runtimeOk("pid", "1"));
    CHECK(runtimeOk("pid", "2147483647"));
    CHECK_FALSE(runtimeOk("pid", "2147483648"));
    CHECK(runtimeOk("ssh_port", "65535"));
    CHECK(runtimeOk("pid_start_time", "0"));
    CHECK(runtimeOk("pid_start_time", "18446744073709551615"));
    CHECK(runtimeOk("mac", "\"52:54:00:AB:cd:EF\""));
}

TEST_CASE("records that are not JSON objects are errors", "[record]")
{
    CHECK_THAT(errorOf(""), Catch::StartsWith("The record is not valid JSON"));
    CHECK_THAT(errorOf("{\"version\":2,\"spec\":{"), Catch::StartsWith("The record is not valid JSON"));
    std::string full = object(validTop());
    CHECK_THAT(errorOf(full.substr(0, full.size() / 2)), Catch::StartsWith("The record is not valid JSON"));
    CHECK_THAT(errorOf("garbage"), Catch::StartsWith("The record is not valid JSON"));
    CHECK(errorOf("[1,2]") == "The record must be a JSON object, not an array");
    CHECK(errorOf("null") == "The record must be a JSON object, not null");
}

TEST_CASE("a member given twice is an error naming it", "[record]")
{
    std::string full = object(validTop());
    CHECK(errorOf(std::string(full).insert(1, "\"x\":1,\"x\":2,")) == "Field \"x\" appears twice");
    CHECK(errorOf(recordWith(In::Top, "spec",
                             object(set(validSpec(), "vcpus", "2")).insert(1, "\"vcpus\":3,"))) ==
          "Field \"vcpus\" appears twice");
}

// docs/state.md: a key given twice is invalid. A duplicate would otherwise be read one way here
// (the first "version", the last "pid") and perhaps another way by a person or another tool.
TEST_CASE("a record or runtime member given twice is an error naming it", "[record]")
{
    std::string full = object(validTop());
    CHECK(errorOf(std::string(full).insert(1, "\"version\":2,")) == "Field \"version\" appears twice");
    CHECK(errorOf(std::string(full).insert(1, "\"spec\":" + object(validSpec()) + ",")) ==
          "Field \"spec\" appears twice");
    CHECK(errorOf(std::string(full).insert(1, "\"runtime\":" + object(validRuntime()) + ",")) ==
          "Field \"runtime\" appears twice");
    CHECK(errorOf(recordWith(In::Top, "runtime", object(validRuntime()).insert(1, "\"pid\":7,"))) ==
          "Field \"pid\" appears twice");
    CHECK(errorOf(recordWith(In::Top, "runtime",
                             object(validRuntime()).insert(1, "\"future\":1,\"future\":2,"))) ==
          "Field \"future\" appears twice");
    // Version 1 refused every key given twice, the runtime's too.
    CHECK(errorOf(object(validV1()).insert(1, "\"pid\":7,")) == "Field \"pid\" appears twice");
}

TEST_CASE("a record from a newer vmrd's format is refused with a hint", "[record]")
{
    for (const char* version : {"3", "99"}) {
        INFO(version);
        auto r = recordFromJson(recordWith(In::Top, "version", version));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind() == ErrorKind::StoreCorrupt);
        CHECK_THAT(r.error().message(),
                   Catch::StartsWith(std::string("Record version ") + version + " is not supported"));
        CHECK_THAT(r.error().message(), Catch::Contains("reads versions 1 and 2"));
        CHECK_THAT(r.error().hint(), Catch::Contains("newer vmrd"));
    }
    // Whatever else a version 3 record holds, its version is what is reported.
    auto r = recordFromJson("{\"version\":3,\"everything\":\"different\"}");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error().message(), Catch::StartsWith("Record version 3 is not supported"));
    CHECK_THAT(r.error().hint(), Catch::Contains("newer vmrd"));
}

TEST_CASE("unknown members from a newer vmrd are kept and written back where they were", "[record]")
{
    Members top = validTop();
    top.insert(top.begin() + 1, {"zeta_future", "{\"nested\":[1,2.5,\"x\\n\",null,true],\"e\":{}}"});
    top.emplace_back("alpha_future", "\"caf\\u00e9 \\\"q\\\"\"");
    top.emplace_back("number_future", "-12");
    Members spec = validSpec();
    spec.insert(spec.begin() + 2, {"disk_bus_future", "\"virtio-scsi\""});
    spec.emplace_back("object_future", "{\"a\":[1,null]}");
    Members runtime = validRuntime();
    runtime.emplace_back("balloon_future", "512");
    top = set(set(top, "spec", object(spec)), "runtime", object(runtime));

    auto r = recordFromJson(object(top));
    REQUIRE(r.ok());
    REQUIRE(r->extra.size() == 3);
    CHECK(r->extra.at("number_future") == "-12");
    REQUIRE(r->specExtra.size() == 2);
    CHECK(r->specExtra.at("disk_bus_future") == "\"virtio-scsi\"");
    REQUIRE(r->runtimeExtra.size() == 1);
    CHECK(r->runtimeExtra.at("balloon_future") == "512");
    // The known fields read as without them.
    CHECK(r->spec == recordFromJson(object(validTop()))->spec);
    CHECK(r->runtime == recordFromJson(object(validTop()))->runtime);

    std::string rewritten = toJson(*r);
    INFO(rewritten);
    auto again = recordFromJson(rewritten);
    REQUIRE(again.ok());
    CHECK(*again == *r);
    CHECK_THAT(rewritten,
               Catch::Contains("\"zeta_future\":{\"nested\":[1,2.5,\"x\\n\",null,true],\"e\":{}}"));
    CHECK_THAT(rewritten, Catch::Contains("\"alpha_future\":\"caf\xc3\xa9 \\\"q\\\"\""));
    // Each where it was: spec members inside "spec", runtime members inside "runtime", the
    // others at the top, after both.
    size_t specAt = rewritten.find("\"spec\":{");
    size_t runtimeAt = rewritten.find("\"runtime\":{");
    size_t runtimeEnd = rewritten.find('}', rewritten.find("\"balloon_future\""));
    REQUIRE(specAt != std::string::npos);
    REQUIRE(runtimeAt != std::string::npos);
    for (const char* key : {"\"disk_bus_future\":\"virtio-scsi\"", "\"object_future\":{\"a\":[1,null]}"}) {
        INFO(key);
        size_t at = rewritten.find(key);
        CHECK(at > specAt);
        CHECK(at < runtimeAt);
    }
    CHECK(rewritten.find("\"balloon_future\":512") > runtimeAt);
    for (const char* key : {"\"zeta_future\"", "\"alpha_future\"", "\"number_future\""}) {
        INFO(key);
        CHECK(rewritten.find(key) > runtimeEnd);
    }

    // Unknown members never shadow the record's own: not at the top...
    VmRecord edited = *r;
    edited.extra["version"] = "1";
    edited.extra["spec"] = "{}";
    edited.extra["runtime"] = "null";
    edited.extra["vcpus"] = "99";  // at the top, vcpus is just another unknown member
    std::string editedText = toJson(edited);
    auto reread = recordFromJson(editedText);
    REQUIRE(reread.ok());
    CHECK(reread->spec == r->spec);
    CHECK(reread->runtime == r->runtime);
    CHECK(reread->spec.vcpus == 2);
    CHECK(reread->extra.count("version") == 0);
    CHECK(reread->extra.at("vcpus") == "99");
}

TEST_CASE("a version 1 record is read and migrated", "[record][v1]")
{
    auto r = recordFromJson(object(fullV1()));
    REQUIRE(r.ok());
    VmRecord expected;
    model::VmSpec& s = expected.spec;
    s.name = "web-1";
    s.backend = Backend::Chv;
    s.image = "debian-12";
    s.imageUrl = "https://example.org/debian-12.qcow2.zst";
    s.vcpus = 4;
    s.memoryMib = 4096;
    s.diskGib = 20;
    s.network = {NetMode::Tap, "br0"};  // version 1 had no bridge: the default one
    s.kernel = "/boot/vmlinuz";
    s.initrd = "/boot/initrd.img";
    s.cmdline = "console=ttyS0 root=/dev/vda1";
    s.accel = AccelChoice::Kvm;
    s.firmware = {FirmwareKind::Uefi, ""};
    s.vnc = true;
    s.cloudInit.user = "admin";
    s.provision = {shellStep("echo hi"), shellStep("", "/home/u/setup.sh"),
                   fileStep("/home/u/app.conf", "/etc/app.conf")};
    s.vmfile = "/home/u/VMFile.kdl";
    s.vmfileSha256 = kSha;
    model::VmRuntime& rt = expected.runtime;
    rt.id = "0a1b2c3d";
    rt.created = 1700000000;
    rt.mac = "52:54:00:12:34:56";
    rt.seed = "/var/lib/vmr/vms/web-1/seed.iso";
    rt.hostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOaJ";
    rt.state = VmState::Running;
    rt.stateReason = "started by uid 1000";
    rt.pid = 4242;
    rt.pidStartTime = 123456789;
    rt.sshPort = 10022;
    rt.vncPort = 5901;
    rt.accelInUse = Accel::Kvm;
    CHECK(r->spec == expected.spec);
    CHECK(r->runtime == expected.runtime);
    CHECK(*r == expected);

    // Written back as version 2, which reads as the same record.
    std::string text = toJson(*r);
    INFO(text);
    CHECK_THAT(text, Catch::StartsWith("{\"version\":2,\"spec\":{\"name\":\"web-1\","));
    CHECK_THAT(text, Catch::Contains("\"runtime\":{\"id\":\"0a1b2c3d\","));
    auto again = recordFromJson(text);
    REQUIRE(again.ok());
    CHECK(*again == expected);
}

TEST_CASE("a minimal version 1 record migrates to the valid version 2 record", "[record][v1]")
{
    auto r = recordFromJson(object(validV1()));
    REQUIRE(r.ok());
    // The same VM as validTop(), whose firmware null (QEMU's BIOS) is now "bios".
    CHECK(toJson(*r) == object(validTop()) + "\n");
    CHECK(*r == *recordFromJson(object(validTop())));
}

TEST_CASE("version 1 records without the keys added later take their defaults", "[record][v1]")
{
    Members old;
    for (const auto& kv : validV1())
        if (kV1LaterKeys.count(kv.first) == 0) old.push_back(kv);
    auto r = recordFromJson(object(old));
    REQUIRE(r.ok());
    CHECK(r->spec.firmware.kind == FirmwareKind::Bios);
    CHECK_FALSE(r->spec.vnc);
    CHECK(r->runtime.seed.empty());
    CHECK_FALSE(r->runtime.accelInUse.has_value());
    CHECK(r->spec.provision.empty());
    // Written back, they are present.
    CHECK(toJson(*r) == object(validTop()) + "\n");
}

TEST_CASE("version 1 firmware: null and \"\" were QEMU's BIOS", "[record][v1]")
{
    const std::vector<std::pair<std::string, model::Firmware>> cases = {
        {"null", {FirmwareKind::Bios, ""}},
        {"\"\"", {FirmwareKind::Bios, ""}},
        {"\"bios\"", {FirmwareKind::Bios, ""}},
        {"\"uefi\"", {FirmwareKind::Uefi, ""}},
        {"\"/usr/share/cloud-hypervisor/hypervisor-fw\"",
         {FirmwareKind::File, "/usr/share/cloud-hypervisor/hypervisor-fw"}},
    };
    for (const auto& [value, firmware] : cases) {
        INFO(value);
        auto r = recordFromJson(object(set(validV1(), "firmware", value)));
        REQUIRE(r.ok());
        CHECK(r->spec.firmware == firmware);
    }
    CHECK_THAT(errorOf(object(set(validV1(), "firmware", "\"efi\""))),
               Catch::StartsWith("Field \"firmware\" "));
}

TEST_CASE("a bad version 1 record is an error naming the field", "[record][v1]")
{
    CHECK(errorOf(object(set(validV1(), "vcpus", "0"))) ==
          "Field \"vcpus\" must be a whole number from 1 to 256, not 0");
    CHECK(errorOf(object(set(validV1(), "id", "\"DEADBEEF\""))) ==
          "Field \"id\" must be 8 lowercase hex digits, not \"DEADBEEF\"");
    CHECK(errorOf(object(set(validV1(), "name", std::nullopt))) == "Field \"name\" is missing");
    CHECK(errorOf(object(set(validV1(), "id", std::nullopt))) == "Field \"id\" is missing");
    CHECK(errorOf(object(set(validV1(), "state", std::nullopt))) == "Field \"state\" is missing");
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"name", "\"../etc\""},
        {"backend", "\"xen\""},
        {"memory_mib", "0"},
        {"network", "\"bridge\""},
        {"accel", "\"hvf\""},
        {"vnc", "\"yes\""},
        {"provision", "{}"},
        {"state", "\"exploded\""},
        {"pid", "0"},
        {"mac", "\"52-54-00-12-34-56\""},
        {"accel_in_use", "\"hvf\""},
        {"host_key", "1"},
        {"seed", "1"},
    };
    for (const auto& [key, value] : cases) {
        INFO(key << " = " << value);
        CHECK_THAT(errorOf(object(set(validV1(), key, value))), Catch::StartsWith("Field \"" + key + "\" "));
    }
    std::string v1 = object(validV1());
    CHECK(errorOf(std::string(v1).insert(1, "\"vcpus\":3,")) == "Field \"vcpus\" appears twice");
}

TEST_CASE("unknown keys of a version 1 record are kept and written back", "[record][v1]")
{
    Members v1 = validV1();
    v1.emplace_back("alpha_future", "{\"nested\":[1,\"x\"]}");
    v1.emplace_back("number_future", "-12");
    auto r = recordFromJson(object(v1));
    REQUIRE(r.ok());
    std::string rewritten = toJson(*r);
    INFO(rewritten);
    CHECK_THAT(rewritten, Catch::Contains("\"alpha_future\":{\"nested\":[1,\"x\"]}"));
    CHECK_THAT(rewritten, Catch::Contains("\"number_future\":-12"));
    auto again = recordFromJson(rewritten);
    REQUIRE(again.ok());
    CHECK(*again == *r);
}

TEST_CASE("states and ids", "[record]")
{
    for (auto s : {"preparing", "prepared", "starting", "running", "paused", "stopping", "stopped", "failed",
                   "destroyed"}) {
        INFO(s);
        auto state = model::parseWord<VmState>(s);
        REQUIRE(state.ok());
        CHECK(model::wordOf(*state) == s);
    }
    CHECK_FALSE(model::parseWord<VmState>("Running").ok());
    CHECK_FALSE(model::parseWord<VmState>("").ok());

    CHECK(model::isValidVmId("0a1b2c3d"));
    CHECK_FALSE(model::isValidVmId("0A1B2C3D"));
    CHECK_FALSE(model::isValidVmId("0a1b2c3"));
    std::set<std::string> ids;
    for (int i = 0; i < 64; ++i) {
        auto id = model::newVmId();
        REQUIRE(id.ok());
        REQUIRE(id->size() == 8);
        CHECK(id->find_first_not_of("0123456789abcdef") == std::string::npos);
        CHECK(model::isValidVmId(*id));
        ids.insert(*id);
    }
    CHECK(ids.size() > 60);  // 64 draws from 2^32: a repeat would be a broken generator
}
