// The one VM spec: every field and every limit, given through a VMFile and through vm.create's
// params, gets the same answer both ways (the same value, or the same problem).

#include "config/vmfile.h"
#include "model/spec.h"

#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <vector>

using namespace vmr;
using model::Field;
using model::FieldType;

namespace {

// One value of one field, as KDL and as JSON.
struct Sample {
    std::string kdl;
    std::string json;
};

// What one path answered: the spec, or the problem without the words that name the field.
struct Answer {
    std::optional<model::VmSpec> spec;
    std::string problem;
};

std::string strip(std::string msg, const std::vector<std::string>& prefixes)
{
    for (const auto& p : prefixes)
        if (msg.rfind(p, 0) == 0) return msg.substr(p.size());
    return msg;
}

Answer viaVmFile(const model::FieldInfo& f, const Sample& v)
{
    std::string kdl = std::string(f.kdl);
    std::string body;
    const std::string image = "image \"/images/base.qcow2\"\n    ";
    if (kdl == "network.bridge")
        body = image + "network \"tap\" { bridge " + v.kdl + " }";
    else if (kdl == "ssh.user")
        body = image + "ssh { user " + v.kdl + " }";
    else if (kdl == "cloud-init.hostname")
        body = image + "cloud-init { hostname " + v.kdl + " }";
    else if (kdl == "image")
        body = "image " + v.kdl;
    else
        body = "image \"/images/base.qcow2\"\n    " + kdl + " " + v.kdl;
    std::string text = "vm \"t\" {\n    " + body + "\n}\n";
    config::VmFileOptions opts;
    opts.baseDir = "/work";
    auto file = config::parseVmFile(text, "VMFile.kdl", opts);
    Answer a;
    if (file.ok()) {
        a.spec = file.vms.at(0).spec;
        return a;
    }
    std::string name = kdl.substr(kdl.rfind('.') + 1);
    a.problem = strip(file.diagnostics.at(0).message, {"vm \"t\": ", "\"" + name + "\" "});
    return a;
}

Answer viaParams(const model::FieldInfo& f, const Sample& v)
{
    std::string wire = std::string(f.wire);
    std::string json = "{\"name\":\"t\"";
    if (wire == "network.bridge")
        json += ",\"image\":\"/images/base.qcow2\",\"network\":{\"mode\":\"tap\",\"bridge\":" + v.json + "}";
    else if (wire == "image")
        json += ",\"image\":" + v.json;
    else
        json += ",\"image\":\"/images/base.qcow2\",\"" + wire + "\":" + v.json;
    json += "}";
    Answer a;
    auto spec = model::specFromJson(json);
    if (spec) {
        auto whole = model::checkSpec(*spec, true);
        if (whole) {
            a.spec = std::move(*spec);
            return a;
        }
        a.problem = whole.error().message();
        return a;
    }
    a.problem = strip(spec.error().message(), {"Parameter `" + wire + "` ", "Parameter `network.bridge` "});
    return a;
}

std::string q(const std::string& s)
{
    return "\"" + s + "\"";
}

// The values each field is tried with: its limits and a step past them, every word and a wrong
// one, well-formed and malformed text.
std::vector<Sample> samples(const model::FieldInfo& f)
{
    std::vector<Sample> out;
    auto both = [&out](const std::string& s) { out.push_back({s, s}); };
    switch (f.type) {
        case FieldType::Integer:
            for (uint64_t n : {f.min - 1, f.min, f.min + 1, f.max - 1, f.max, f.max + 1})
                both(std::to_string(n));
            both("-1");
            break;
        case FieldType::Boolean:
            out.push_back({"#true", "true"});
            out.push_back({"#false", "false"});
            break;
        case FieldType::Word:
            if (f.id == Field::Backend)
                for (auto w : model::wordNames<model::Backend>()) both(q(std::string(w)));
            if (f.id == Field::Network)
                for (auto w : model::wordNames<model::NetMode>()) both(q(std::string(w)));
            if (f.id == Field::Accel)
                for (auto w : model::wordNames<model::AccelChoice>()) both(q(std::string(w)));
            both(q("kvm2"));
            both(q(""));
            break;
        case FieldType::Path:
            both(q("/abs/file"));
            both(q("/"));
            break;
        case FieldType::Text:
        case FieldType::List:
            if (f.id == Field::ImageUrl)
                for (auto s : {"https://example.org/d.qcow2", "http://h/x", "oci://r/i:t", "ftp://h/x", ""})
                    both(q(s));
            if (f.id == Field::ImageSha256)
                for (auto s :
                     {std::string(64, 'a'), std::string(64, 'A'), std::string(63, 'a'), std::string("xyz")})
                    both(q(s));
            if (f.id == Field::Bridge)
                for (auto s : {"br0", "virbr-1", "a-very-long-bridge-name", "bad/name", ""}) both(q(s));
            if (f.id == Field::SshUser)
                for (auto s : {"vm", "_svc", "ubuntu-2", "root", "Bad", ""}) both(q(s));
            if (f.id == Field::Hostname)
                for (auto s : {"web", "web.example.org", "-bad", "a..b", ""}) both(q(s));
            if (f.id == Field::Cmdline)
                for (const std::string& s :
                     {std::string("console=ttyS0"), std::string(5000, 'x'), std::string()})
                    both(q(s));
            if (f.id == Field::Firmware)
                for (auto s : {"bios", "uefi", "/usr/share/OVMF.fd"}) both(q(s));
            break;
    }
    return out;
}

}  // namespace

TEST_CASE("every field and limit: the same answer from a VMFile and from vm.create's params", "[spec]")
{
    size_t fieldsTried = 0, cases = 0;
    for (const auto& f : model::fields()) {
        if (f.kdl.empty()) continue;
        ++fieldsTried;
        for (const auto& v : samples(f)) {
            ++cases;
            Answer file = viaVmFile(f, v);
            Answer params = viaParams(f, v);
            INFO("field " << f.wire << " value " << v.json);
            INFO("VMFile: " << (file.spec ? std::string("ok") : file.problem));
            INFO("params: " << (params.spec ? std::string("ok") : params.problem));
            REQUIRE(file.spec.has_value() == params.spec.has_value());
            if (file.spec) {
                CHECK(*file.spec == *params.spec);
            } else {
                CHECK(file.problem == params.problem);
            }
        }
    }
    // Every VMFile field but the ones that hold blocks of their own is in the table.
    CHECK(fieldsTried >= 16);
    CHECK(cases > 60);
}

TEST_CASE("the limits are those of the field table", "[spec]")
{
    CHECK(model::checkInteger(Field::Vcpus, model::kMaxVcpus).ok());
    CHECK_FALSE(model::checkInteger(Field::Vcpus, model::kMaxVcpus + 1).ok());
    CHECK(model::checkInteger(Field::Vcpus, 0).error().message() ==
          "must be a whole number from 1 to 256, not 0");
    CHECK(model::checkInteger(Field::MemoryMib, 8).error().message() ==
          "must be a whole number of MiB from 16 to 4194304, not 8");
    CHECK(model::fieldInfo(Field::MemoryMib).wire == "memory_mib");
    CHECK(model::fieldInfo(Field::MemoryMib).kdl == "memory");
}

TEST_CASE("a spec round-trips through its JSON", "[spec]")
{
    model::VmSpec s;
    s.name = "web";
    s.backend = model::Backend::Chv;
    s.image = "/img/a.qcow2";
    s.imageUrl = "https://example.org/a.qcow2";
    s.vcpus = 4;
    s.memoryMib = 2048;
    s.diskGib = 20;
    s.network = {model::NetMode::Tap, "br1"};
    s.kernel = "/boot/vmlinuz";
    s.cmdline = "console=ttyS0";
    s.accel = model::AccelChoice::Kvm;
    s.cloudInit.user = "ada";
    s.cloudInit.authorizedKeys = {"ssh-ed25519 AAAA ada@host"};
    s.cloudInit.hostname = "web";
    s.provision = {model::ProvisionStep{model::ProvisionStep::Kind::Shell, "uname -a", "", "", ""},
                   model::ProvisionStep{model::ProvisionStep::Kind::File, "", "", "/a", "/b"}};
    auto back = model::specFromJson(model::specToJson(s));
    REQUIRE(back);
    CHECK(*back == s);
}

TEST_CASE("what a spec cannot be as a whole", "[spec]")
{
    model::VmSpec s;
    s.name = "x";
    s.image = "/img";
    CHECK(model::checkSpec(s, true).ok());
    s.initrd = "/initrd";
    CHECK(model::checkSpec(s, true).error().message() == "An initrd needs a kernel");
    s.initrd.clear();
    s.backend = model::Backend::Chv;
    auto chv = model::checkSpec(s, true);
    CHECK(chv.error().kind() == ErrorKind::Unsupported);
    CHECK(chv.error().message() == "cloud-hypervisor has no user-mode networking");
    s.network.mode = model::NetMode::None;
    s.vcpus = 255;
    s.kernel = "/k";
    CHECK(model::checkSpec(s, true).error().message() == "cloud-hypervisor runs at most 254 vCPUs, not 255");
    model::VmSpec both;
    both.name = "y";
    both.image = "/img";
    both.imageUrl = "https://h/x";
    CHECK_FALSE(model::checkSpec(both, true).ok());
    CHECK(model::checkSpec(both, false).ok());  // a stored spec keeps the URL its image came from
}

TEST_CASE("unknown params are refused with a did-you-mean", "[spec]")
{
    auto r = model::specFromJson(R"({"name":"a","image":"/i","vcpu":2})");
    REQUIRE_FALSE(r);
    CHECK(r.error().message() == "Unknown parameter `vcpu`");
    CHECK(r.error().hint() == "Did you mean `vcpus`?");
}
