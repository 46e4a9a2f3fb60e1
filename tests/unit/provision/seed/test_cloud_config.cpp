#include "catch.h"
#include "provision/seed/cloud_config.h"
#include "provision/seed/ssh_key.h"
#include "tool.h"

#include <catch2/catch.hpp>

#include <functional>

using namespace vmr;
using namespace vmr::provision;
using namespace vmr::test;
using namespace std::string_literals;

namespace {

struct Keys {
    Ed25519KeyPair client;
    Ed25519KeyPair host;
};

Keys makeKeys()
{
    auto c = Ed25519KeyPair::generate("vmr@web-1");
    auto h = Ed25519KeyPair::generate("root@web-1");
    REQUIRE(c.ok());
    REQUIRE(h.ok());
    return Keys{std::move(*c), std::move(*h)};
}

SeedSpec fullSpec(const Keys& k)
{
    SeedSpec s;
    s.instanceId = makeInstanceId("0a1b2c3d");
    s.hostname = "web-1";
    s.authorizedKeys = {k.client.publicKeyLine()};
    s.hostKey = HostKeyData{k.host.privateKeyFile(), k.host.publicKeyLine()};
    return s;
}

// Loads `file` as YAML with python3 (the parser cloud-init itself uses) and runs the
// assertions in `check` against it, bound to `d`.
// sys.argv[2:] are `args`.
ToolRun pythonCheck(const std::string& file, const std::string& check,
                    const std::vector<std::string>& args = {})
{
    std::string cmd = "python3 -c " +
                      shq("import sys, yaml\nd = yaml.safe_load(open(sys.argv[1]))\n" + check) + " " +
                      shq(file);
    for (const auto& a : args) cmd += " " + shq(a);
    return runTool(cmd);
}

}  // namespace

TEST_CASE("generated user-data passes the real cloud-init schema validator", "[cloud_config]")
{
    requireTool("cloud-init", "cloud-init");
    Keys k = makeKeys();
    TempDir dir;
    for (bool withHostKey : {true, false}) {
        SeedSpec spec = fullSpec(k);
        if (!withHostKey) spec.hostKey.reset();
        spec.user = withHostKey ? "vm" : "ops_1";
        auto files = renderSeed(spec);
        REQUIRE(files.ok());
        std::string ud = dir / "user-data";
        writeFile(ud, files->userData);
        auto v = runTool("cloud-init schema -c " + shq(ud));
        INFO(files->userData);
        INFO(v.output);
        CHECK(v.status == 0);
        CHECK(v.output.find("Valid cloud-config") != std::string::npos);
    }

    // The validator does catch what we must never emit (so a pass above means something).
    std::string bad = dir / "bad";
    writeFile(bad, "#cloud-config\nusers:\n  - name: vm\n    no_such_key: 1\nssh_pwauth: 3\n");
    auto v = runTool("cloud-init schema -c " + shq(bad));
    CHECK(v.status != 0);
}

TEST_CASE("generated user-data has vmctl's shape", "[cloud_config]")
{
    requireTool("python3", "python3");
    Keys k = makeKeys();
    auto files = renderSeed(fullSpec(k));
    REQUIRE(files.ok());
    CHECK(files->userData.rfind("#cloud-config\n", 0) == 0);
    CHECK(!files->networkConfig);

    TempDir dir;
    std::string ud = dir / "user-data";
    writeFile(ud, files->userData);
    auto r = pythonCheck(ud, R"(
assert d["hostname"] == "web-1", d["hostname"]
assert d["disable_root"] is True
assert d["ssh_pwauth"] is False
u = d["users"]
assert len(u) == 1, u
assert u[0]["name"] == "vm"
assert u[0]["sudo"] == "ALL=(ALL) NOPASSWD:ALL"
assert u[0]["shell"] == "/bin/bash"
assert u[0]["lock_passwd"] is True
assert u[0]["ssh_authorized_keys"] == [sys.argv[2]], u[0]
assert d["ssh_keys"]["ed25519_private"] == sys.argv[3], repr(d["ssh_keys"]["ed25519_private"])
assert d["ssh_keys"]["ed25519_public"] == sys.argv[4]
assert set(d["ssh_keys"]) == {"ed25519_private", "ed25519_public"}
print("ok")
)",
                         {k.client.publicKeyLine(), k.host.privateKeyFile(), k.host.publicKeyLine()});
    INFO(files->userData);
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK(r.output == "ok\n");

    std::string md = dir / "meta-data";
    writeFile(md, files->metaData);
    auto m = pythonCheck(md, "assert d == {'instance-id': 'iid-0a1b2c3d', 'local-hostname': 'web-1'}, d\n");
    INFO(files->metaData);
    INFO(m.output);
    CHECK(m.status == 0);
}

TEST_CASE("raw user-data is passed through unchanged", "[cloud_config]")
{
    SeedSpec s;
    s.instanceId = "iid-raw";
    s.hostname = "raw";
    std::string raw = "#!/bin/sh\necho 'not even YAML' > /tmp/x\n\0binary\xff"s;
    s.rawUserData = raw;
    auto f = renderSeed(s);
    REQUIRE(f.ok());
    CHECK(f->userData == raw);
    CHECK(f->metaData == "instance-id: \"iid-raw\"\nlocal-hostname: \"raw\"\n");

    s.rawUserData = "";
    REQUIRE(renderSeed(s).ok());
    CHECK(renderSeed(s)->userData.empty());

    Keys k = makeKeys();
    s.authorizedKeys = {k.client.publicKeyLine()};
    auto both = renderSeed(s);
    REQUIRE(!both.ok());
    CHECK(both.error().message().find("Raw user-data cannot be combined") != std::string::npos);
    s.authorizedKeys.clear();
    s.hostKey = HostKeyData{k.host.privateKeyFile(), k.host.publicKeyLine()};
    CHECK(!renderSeed(s).ok());
}

TEST_CASE("bad seed input is refused with the field named", "[cloud_config]")
{
    Keys k = makeKeys();
    struct Case {
        std::string what;
        std::function<void(SeedSpec&)> change;
        std::string says;
    };
    std::vector<Case> cases = {
        {"empty hostname", [](SeedSpec& s) { s.hostname = ""; }, "hostname"},
        {"hostname with _", [](SeedSpec& s) { s.hostname = "web_1"; }, "hostname: \"web_1\""},
        {"hostname -x", [](SeedSpec& s) { s.hostname = "-x"; }, "starts or ends with '-'"},
        {"long hostname", [](SeedSpec& s) { s.hostname = std::string(64, 'a'); }, "1 to 63"},
        {"root user", [](SeedSpec& s) { s.user = "root"; }, "root cannot be the login user"},
        {"user Upper", [](SeedSpec& s) { s.user = "Vm"; }, "user: \"Vm\" is not a valid login name"},
        {"user 1x", [](SeedSpec& s) { s.user = "1x"; }, "not a valid login name"},
        {"no keys", [](SeedSpec& s) { s.authorizedKeys.clear(); }, "no public key was given for user \"vm\""},
        {"bad key", [](SeedSpec& s) { s.authorizedKeys = {"ssh-ed25519 !!!"}; }, "ssh_authorized_keys"},
        {"instance id", [](SeedSpec& s) { s.instanceId = "a b"; }, "instance-id"},
        {"no instance id", [](SeedSpec& s) { s.instanceId = ""; }, "instance-id"},
        {"host key halves", [&k](SeedSpec& s) { s.hostKey->publicKey = k.client.publicKeyLine(); },
         "not the private host key's"},
        {"host key private", [](SeedSpec& s) { s.hostKey->privateKey = "junk"; }, "ed25519_private"},
        {"mac",
         [](SeedSpec& s) {
             s.network = NetworkSettings{"52:54:00:12:34", "eth0", "", "", {}};
         },
         "is not a MAC address"},
        {"address",
         [](SeedSpec& s) {
             s.network = NetworkSettings{"52:54:00:12:34:56", "eth0", "10.0.0.5", "", {}};
         },
         "is not IPV4/PREFIX"},
        {"prefix",
         [](SeedSpec& s) {
             s.network = NetworkSettings{"52:54:00:12:34:56", "eth0", "10.0.0.5/33", "", {}};
         },
         "prefix length"},
        {"gateway without address",
         [](SeedSpec& s) {
             s.network = NetworkSettings{"52:54:00:12:34:56", "eth0", "", "10.0.0.1", {}};
         },
         "without an address"},
        {"name server",
         [](SeedSpec& s) {
             s.network = NetworkSettings{"52:54:00:12:34:56", "eth0", "10.0.0.5/24", "10.0.0.1", {"dns"}};
         },
         "\"dns\" is not an IPv4 address"},
        {"interface",
         [](SeedSpec& s) {
             s.network = NetworkSettings{"52:54:00:12:34:56", "eth 0", "", "", {}};
         },
         "interface name"},
    };
    for (const auto& c : cases) {
        SeedSpec s = fullSpec(k);
        c.change(s);
        auto r = renderSeed(s);
        INFO(c.what);
        REQUIRE(!r.ok());
        CHECK(r.error().kind() == ErrorKind::InvalidArgument);
        CHECK(r.error().message().find(c.says) != std::string::npos);
        CHECK(r.error().message().rfind("Bad cloud-init ", 0) == 0);
    }
}

TEST_CASE("hostnames from VM names and instance ids", "[cloud_config]")
{
    CHECK(hostnameFor("web_1") == "web-1");
    CHECK(hostnameFor("a.b.c") == "a-b-c");
    CHECK(hostnameFor("_x_") == "x");
    CHECK(hostnameFor("___") == "vm");
    CHECK(hostnameFor(std::string(62, 'a') + "_b") == std::string(62, 'a'));
    CHECK(validateHostname(hostnameFor(std::string(63, 'z') + "more")).ok());
    CHECK(makeInstanceId("0a1b2c3d") == "iid-0a1b2c3d");
    CHECK(validateUserName("vm").ok());
    CHECK(validateUserName("_svc-1").ok());
}

TEST_CASE("network-config version 2 is what cloud-init's own converter reads", "[cloud_config]")
{
    requireTool("cloud-init", "cloud-init");
    Keys k = makeKeys();
    TempDir dir;

    SeedSpec s = fullSpec(k);
    s.network =
        NetworkSettings{"52:54:00:12:34:56", "eth0", "10.0.0.5/24", "10.0.0.1", {"10.0.0.2", "9.9.9.9"}};
    auto f = renderSeed(s);
    REQUIRE(f.ok());
    REQUIRE(f->networkConfig);
    std::string nc = dir / "network-config";
    writeFile(nc, *f->networkConfig);
    std::string out = dir / "out";
    auto conv =
        runTool("cloud-init devel net-convert -p " + shq(nc) + " -k yaml -D debian -O eni -d " + shq(out));
    INFO(*f->networkConfig);
    INFO(conv.output);
    REQUIRE(conv.status == 0);
    std::string eni = readFile(out + "/etc/network/interfaces.d/50-cloud-init");
    INFO(eni);
    CHECK(eni.find("iface eth0 inet static") != std::string::npos);
    CHECK(eni.find("address 10.0.0.5/24") != std::string::npos);
    CHECK(eni.find("dns-nameservers 10.0.0.2 9.9.9.9") != std::string::npos);
    CHECK(eni.find("post-up route add default gw 10.0.0.1") != std::string::npos);
    CHECK(readFile(out + "/etc/udev/rules.d/70-persistent-net.rules").find("52:54:00:12:34:56") !=
          std::string::npos);

    s.network = NetworkSettings{"52:54:00:12:34:57", "ens3", "", "", {}};
    f = renderSeed(s);
    REQUIRE(f.ok());
    writeFile(nc, *f->networkConfig);
    std::string out2 = dir / "out2";
    conv =
        runTool("cloud-init devel net-convert -p " + shq(nc) + " -k yaml -D debian -O eni -d " + shq(out2));
    INFO(conv.output);
    REQUIRE(conv.status == 0);
    CHECK(readFile(out2 + "/etc/network/interfaces.d/50-cloud-init").find("iface ens3 inet dhcp") !=
          std::string::npos);
}
