#include "catch.h"
#include "config/settings.h"

#include <string>

using namespace vmr;
using vmr::test::TempDir;
using vmr::test::writeFile;
using namespace vmr::config;

namespace {

Env userEnv()
{
    Env env;
    env.home = "/home/ada";
    env.uid = 1000;
    return env;
}

Settings parseOk(std::string_view text, Mode mode = Mode::System, const Env& env = userEnv())
{
    auto s = parseSettings(text, "/etc/vmr/vmrd.toml", mode, env);
    INFO((s ? std::string() : s.error().what()));
    REQUIRE(s.ok());
    return *s;
}

std::string parseErr(std::string_view text, Mode mode = Mode::System)
{
    auto s = parseSettings(text, "/etc/vmr/vmrd.toml", mode, userEnv());
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().kind() == ErrorKind::Config);
    return s.error().message();
}

}  // namespace

TEST_CASE("system mode defaults", "[settings]")
{
    Settings s = defaultSettings(Mode::System, userEnv());
    CHECK(s.mode == Mode::System);
    CHECK(s.stateDir == "/var/lib/vmr");
    CHECK(s.runtimeDir == "/run/vmr");
    CHECK(s.socket == "/run/vmr/vmrd.sock");
    CHECK(s.socketGroup.empty());
    CHECK(s.logLevel == "info");
    CHECK(s.limits.maxRequestBytes == 1048576);
    CHECK(s.limits.maxClientBacklog == 8388608);
    CHECK(s.limits.maxClients == 4096);
    CHECK(s.qemu.binary == "qemu-system-x86_64");
    CHECK(s.qemu.accel == "auto");
    CHECK(s.qemu.machine == "q35");
    CHECK(s.chv.requireKvm);
    CHECK(s.chv.binary == "cloud-hypervisor");
    CHECK(s.network.sshPortRange == PortRange{10022, 10999});
    CHECK(s.console.scrollback == 1048576);
    CHECK(s.configPath.empty());
    CHECK(defaultConfigPath(Mode::System, userEnv()) == "/etc/vmr/vmrd.toml");
    CHECK(defaultSocketPath(Mode::System, userEnv()) == "/run/vmr/vmrd.sock");
}

TEST_CASE("user mode defaults follow XDG, with fallbacks", "[settings]")
{
    Env env = userEnv();
    SECTION("XDG variables unset: HOME and /tmp")
    {
        Settings s = defaultSettings(Mode::User, env);
        CHECK(s.stateDir == "/home/ada/.local/share/vmr");
        CHECK(s.runtimeDir == "/tmp/vmr-1000");
        CHECK(s.socket == "/tmp/vmr-1000/vmrd.sock");
        CHECK(defaultConfigPath(Mode::User, env) == "/home/ada/.config/vmr/vmrd.toml");
        CHECK(defaultSocketPath(Mode::User, env) == "/tmp/vmr-1000/vmrd.sock");
    }
    SECTION("XDG variables set")
    {
        env.xdgConfigHome = "/cfg";
        env.xdgDataHome = "/data";
        env.xdgRuntimeDir = "/run/user/1000";
        Settings s = defaultSettings(Mode::User, env);
        CHECK(s.stateDir == "/data/vmr");
        CHECK(s.runtimeDir == "/run/user/1000/vmr");
        CHECK(s.socket == "/run/user/1000/vmr/vmrd.sock");
        CHECK(defaultConfigPath(Mode::User, env) == "/cfg/vmr/vmrd.toml");
    }
    SECTION("relative XDG values are ignored")
    {
        env.xdgConfigHome = "cfg";
        env.xdgDataHome = "data";
        env.xdgRuntimeDir = "run";
        Settings s = defaultSettings(Mode::User, env);
        CHECK(s.stateDir == "/home/ada/.local/share/vmr");
        CHECK(s.runtimeDir == "/tmp/vmr-1000");
        CHECK(defaultConfigPath(Mode::User, env) == "/home/ada/.config/vmr/vmrd.toml");
    }
    SECTION("no HOME and no XDG_DATA_HOME is an error unless state_dir is set")
    {
        env.home.clear();
        auto s = parseSettings("", "", Mode::User, env);
        REQUIRE_FALSE(s.ok());
        CHECK(s.error().kind() == ErrorKind::Config);
        CHECK_THAT(s.error().message(), Catch::Contains("HOME is not set"));
        auto t = parseSettings("state_dir = \"/srv/vmr\"", "x.toml", Mode::User, env);
        REQUIRE(t.ok());
        CHECK(t->stateDir == "/srv/vmr");
    }
}

TEST_CASE("mode: root runs in system mode unless --user", "[settings]")
{
    Env root;
    root.uid = 0;
    CHECK(modeFor(root, false) == Mode::System);
    CHECK(modeFor(root, true) == Mode::User);
    CHECK(modeFor(userEnv(), false) == Mode::User);
    CHECK(modeFor(userEnv(), true) == Mode::User);
    CHECK(modeName(Mode::System) == "system");
    CHECK(modeName(Mode::User) == "user");
}

TEST_CASE("Env::fromProcess reads the real environment", "[settings]")
{
    Env env = Env::fromProcess();
    CHECK(env.uid == ::geteuid());
    CHECK_FALSE(env.home.empty());
}

TEST_CASE("every key is read", "[settings]")
{
    Settings s = parseOk(R"(
state_dir = "/srv/vmr/state"
runtime_dir = "/srv/vmr/run"
socket = "/srv/vmr/ctl.sock"
socket_group = "kvm"
log_level = "trace"
[limits]
max_request_bytes = 65536
max_client_backlog = 131072
max_clients = 17
[qemu]
binary = "/opt/qemu/bin/qemu-system-x86_64"
accel = "tcg"
machine = "none"
[images]
fetch_program = "/opt/vmr/vmr-fetch"
ca_file = "/etc/vmr/ca.pem"
[chv]
binary = "/opt/chv/cloud-hypervisor"
require_kvm = false
[network]
ssh_port_range = "2200-2299"
[console]
scrollback = 8192
)");
    CHECK(s.stateDir == "/srv/vmr/state");
    CHECK(s.runtimeDir == "/srv/vmr/run");
    CHECK(s.socket == "/srv/vmr/ctl.sock");
    CHECK(s.socketGroup == "kvm");
    CHECK(s.logLevel == "trace");
    CHECK(s.limits.maxRequestBytes == 65536);
    CHECK(s.limits.maxClientBacklog == 131072);
    CHECK(s.limits.maxClients == 17);
    CHECK(s.qemu.binary == "/opt/qemu/bin/qemu-system-x86_64");
    CHECK(s.qemu.accel == "tcg");
    CHECK(s.qemu.machine == "none");
    CHECK(s.chv.binary == "/opt/chv/cloud-hypervisor");
    CHECK(s.images.fetchProgram == "/opt/vmr/vmr-fetch");
    CHECK(s.images.caFile == "/etc/vmr/ca.pem");
    CHECK_FALSE(s.chv.requireKvm);
    CHECK(s.network.sshPortRange == PortRange{2200, 2299});
    CHECK(s.console.scrollback == 8192);
}

TEST_CASE("dotted keys and inline tables work like sections", "[settings]")
{
    Settings s = parseOk("limits.max_clients = 3\nqemu = { accel = \"kvm\" }\n");
    CHECK(s.limits.maxClients == 3);
    CHECK(s.qemu.accel == "kvm");
    CHECK(s.qemu.binary == "qemu-system-x86_64");
}

TEST_CASE("the socket follows runtime_dir unless set", "[settings]")
{
    CHECK(parseOk("runtime_dir = \"/r\"").socket == "/r/vmrd.sock");
    CHECK(parseOk("runtime_dir = \"/r\"", Mode::User).socket == "/r/vmrd.sock");
    CHECK(parseOk("runtime_dir = \"/r\"\nsocket = \"/s.sock\"").socket == "/s.sock");
    CHECK(parseOk("socket = \"/s.sock\"").runtimeDir == "/run/vmr");
}

TEST_CASE("a bad value names file, line, column and key", "[settings]")
{
    std::string text =
        "# vmrd\n\nstate_dir = \"/var/lib/vmr\"\n\n\n\nlog_level = \"loud\"\n[limits]\nmax_clients = 10\n";
    CHECK(parseErr(text) ==
          "/etc/vmr/vmrd.toml:7:1: key \"log_level\": expected one of "
          "\"error\",\"warn\",\"info\",\"debug\",\"trace\", got \"loud\"");
    CHECK(
        parseErr("[qemu]\n  accel = \"xen\"") ==
        "/etc/vmr/vmrd.toml:2:3: key \"qemu.accel\": expected one of \"auto\",\"kvm\",\"tcg\", got \"xen\"");
}

TEST_CASE("wrong types are errors", "[settings]")
{
    CHECK(parseErr("state_dir = 5") == "/etc/vmr/vmrd.toml:1:1: key \"state_dir\": expected a string, got 5");
    CHECK(parseErr("socket_group = true") ==
          "/etc/vmr/vmrd.toml:1:1: key \"socket_group\": expected a string, got a boolean");
    CHECK(parseErr("log_level = [\"info\"]") ==
          "/etc/vmr/vmrd.toml:1:1: key \"log_level\": expected a string, got an array");
    CHECK(parseErr("[limits]\nmax_clients = \"many\"") ==
          "/etc/vmr/vmrd.toml:2:1: key \"limits.max_clients\": expected an integer from 1 to 1048576, got "
          "\"many\"");
    CHECK(parseErr("[limits]\nmax_clients = 1.5") ==
          "/etc/vmr/vmrd.toml:2:1: key \"limits.max_clients\": expected an integer from 1 to 1048576, got a "
          "float");
    CHECK(parseErr("qemu = 3") == "/etc/vmr/vmrd.toml:1:1: key \"qemu\": expected a table, got 3");
    CHECK(parseErr("[[console]]\nscrollback = 4096") ==
          "/etc/vmr/vmrd.toml:1:3: key \"console\": expected a table, got an array");
    CHECK(parseErr("[qemu.binary]\n") ==
          "/etc/vmr/vmrd.toml:1:7: key \"qemu.binary\": expected a string, got a table");
    CHECK(parseErr("[network]\nssh_port_range = 10022") ==
          "/etc/vmr/vmrd.toml:2:1: key \"network.ssh_port_range\": expected a port range \"FIRST-LAST\" "
          "with 1 <= FIRST <= LAST <= 65535, got 10022");
}

TEST_CASE("values out of range are errors", "[settings]")
{
    CHECK_THAT(parseErr("[limits]\nmax_clients = 0"), Catch::Contains("got 0"));
    CHECK_THAT(parseErr("[limits]\nmax_clients = -4"), Catch::Contains("got -4"));
    CHECK_THAT(parseErr("[limits]\nmax_request_bytes = 1023"), Catch::Contains("from 1024 to 1073741824"));
    CHECK(parseOk("[limits]\nmax_request_bytes = 1024").limits.maxRequestBytes == 1024);
    CHECK_THAT(parseErr("[console]\nscrollback = 99999999999"), Catch::Contains("got 99999999999"));
    CHECK_THAT(parseErr("state_dir = \"var/lib/vmr\""),
               Catch::Contains("key \"state_dir\": expected an absolute path, got \"var/lib/vmr\""));
    CHECK_THAT(parseErr("state_dir = \"\""), Catch::Contains("key \"state_dir\": must not be empty"));
    CHECK_THAT(parseErr("qemu.binary = \"\""), Catch::Contains("key \"qemu.binary\": must not be empty"));
    CHECK_THAT(parseErr("state_dir = \"/a\\u0000b\""), Catch::Contains("NUL"));
    for (const char* bad :
         {"10999-10022", "0-10", "1-65536", "10022", "a-b", "10022-", "-10", " 1-2", "1-2-3"}) {
        INFO(bad);
        CHECK_THAT(parseErr(std::string("network.ssh_port_range = \"") + bad + "\""),
                   Catch::Contains("expected a port range"));
    }
    CHECK(parseOk("network.ssh_port_range = \"22-22\"").network.sshPortRange == PortRange{22, 22});
    CHECK(parseOk("network.ssh_port_range = \"1-65535\"").network.sshPortRange == PortRange{1, 65535});
}

TEST_CASE("a socket path must fit in sun_path", "[settings]")
{
    std::string longPath = "/" + std::string(120, 'a');
    CHECK_THAT(parseErr("socket = \"" + longPath + "\""),
               Catch::Contains("key \"socket\": is 121 bytes long"));
    CHECK_THAT(
        parseErr("runtime_dir = \"" + longPath + "\""),
        Catch::Contains("key \"socket\": the socket path") && Catch::Contains("longer than 107 bytes"));
}

TEST_CASE("unknown keys are errors with a suggestion", "[settings]")
{
    CHECK(parseErr("\nlog_levle = \"info\"") ==
          "/etc/vmr/vmrd.toml:2:1: key \"log_levle\": unknown key; did you mean \"log_level\"?");
    CHECK(parseErr("[limits]\nmax_clinets = 5") ==
          "/etc/vmr/vmrd.toml:2:1: key \"limits.max_clinets\": unknown key; did you mean "
          "\"limits.max_clients\"?");
    // Right key, wrong table.
    CHECK(parseErr("max_clients = 5") ==
          "/etc/vmr/vmrd.toml:1:1: key \"max_clients\": unknown key; did you mean \"limits.max_clients\"?");
    CHECK(
        parseErr("[qemu]\nscrollback = 4096") ==
        "/etc/vmr/vmrd.toml:2:1: key \"qemu.scrollback\": unknown key; did you mean \"console.scrollback\"?");
    CHECK(parseErr("[limit]\nmax_clients = 5") ==
          "/etc/vmr/vmrd.toml:1:2: key \"limit\": unknown table; did you mean \"limits\"?");
    CHECK(parseErr("colour = \"blue\"") == "/etc/vmr/vmrd.toml:1:1: key \"colour\": unknown key");
    auto s = parseSettings("log_levle = 1", "f.toml", Mode::System, userEnv());
    REQUIRE_FALSE(s.ok());
    CHECK_THAT(s.error().hint(), Catch::Contains("log_level"));
}

TEST_CASE("TOML syntax errors carry line and column", "[settings]")
{
    std::string msg = parseErr("log_level = \"info\"\nstate_dir = \n");
    CHECK_THAT(msg, Catch::StartsWith("/etc/vmr/vmrd.toml:2:"));
    msg = parseErr("log_level = \"info\"\nlog_level = \"warn\"\n");
    CHECK_THAT(msg, Catch::StartsWith("/etc/vmr/vmrd.toml:2:"));
}

TEST_CASE("loadSettings reads the default or the given file", "[settings]")
{
    TempDir dir;
    Env env = userEnv();
    env.home = dir.path();

    SECTION("a missing default file means defaults")
    {
        auto s = loadSettings(Mode::User, std::nullopt, env);
        REQUIRE(s.ok());
        CHECK(s->configPath.empty());
        CHECK(s->stateDir == dir.path() + "/.local/share/vmr");
    }
    SECTION("the default user file is under ~/.config, or XDG_CONFIG_HOME")
    {
        writeFile(dir / ".config/vmr/vmrd.toml", "log_level = \"debug\"\n");
        auto s = loadSettings(Mode::User, std::nullopt, env);
        REQUIRE(s.ok());
        CHECK(s->configPath == dir.path() + "/.config/vmr/vmrd.toml");
        CHECK(s->logLevel == "debug");

        env.xdgConfigHome = dir.path() + "/xdg";
        writeFile(dir / "xdg/vmr/vmrd.toml", "log_level = \"warn\"\n");
        s = loadSettings(Mode::User, std::nullopt, env);
        REQUIRE(s.ok());
        CHECK(s->configPath == dir.path() + "/xdg/vmr/vmrd.toml");
        CHECK(s->logLevel == "warn");
    }
    SECTION("an explicit file must exist")
    {
        std::string missing = dir.path() + "/nope.toml";
        auto s = loadSettings(Mode::User, missing, env);
        REQUIRE_FALSE(s.ok());
        CHECK(s.error().kind() == ErrorKind::Config);
        CHECK(s.error().what() == "Cannot read config file " + missing + ": No such file or directory");
        CHECK_THAT(s.error().hint(), Catch::Contains("--config"));
    }
    SECTION("an explicit file is read, and its errors name it")
    {
        writeFile(dir / "my.toml", "[qemu]\naccel = \"kvm\"\n");
        auto s = loadSettings(Mode::System, dir.path() + "/my.toml", env);
        REQUIRE(s.ok());
        CHECK(s->configPath == dir.path() + "/my.toml");
        CHECK(s->qemu.accel == "kvm");
        CHECK(s->stateDir == "/var/lib/vmr");

        writeFile(dir / "bad.toml", "[qemu]\naccel = \"kvmm\"\n");
        s = loadSettings(Mode::System, dir.path() + "/bad.toml", env);
        REQUIRE_FALSE(s.ok());
        CHECK_THAT(s.error().message(), Catch::StartsWith(dir.path() + "/bad.toml:2:1: key \"qemu.accel\""));
    }
    SECTION("a directory is not a config file")
    {
        auto s = loadSettings(Mode::User, dir.path(), env);
        REQUIRE_FALSE(s.ok());
        CHECK(s.error().kind() == ErrorKind::Config);
        CHECK_THAT(s.error().message(), Catch::Contains("not a regular file"));
    }
}
