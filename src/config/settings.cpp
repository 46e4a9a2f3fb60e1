#include "config/settings.h"

#include "base/files.h"
#include "base/json.h"
#include "base/suggest.h"

#include <toml++/toml.h>

#include <pwd.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <span>
#include <vector>

namespace vmr::config {

namespace {

// The longest socket path bind() accepts (sun_path holds a terminating NUL).
constexpr size_t kMaxSocketPath = sizeof(sockaddr_un{}.sun_path) - 1;
// vmrd.toml is a handful of lines; anything this big is not a config file.
constexpr size_t kMaxConfigBytes = 1 << 20;

constexpr std::string_view kSocketName = "vmrd.sock";

// ---- The key table: adding a setting is one line here (plus the field and a test). ----

enum class ValueKind {
    Path,       // absolute path
    String,     // non-empty string
    Choice,     // one of `choices`
    Integer,    // unsigned integer in [min, max]
    PortRange,  // "FIRST-LAST"
    Boolean,
};

struct KeySpec {
    std::string_view key;  // dotted: "limits.max_clients"
    ValueKind kind;
    std::string* (*str)(Settings&) = nullptr;
    uint64_t* (*num)(Settings&) = nullptr;
    PortRange* (*range)(Settings&) = nullptr;
    bool* (*flag)(Settings&) = nullptr;
    std::span<const std::string_view> choices = {};
    uint64_t min = 0;
    uint64_t max = 0;
    size_t maxLength = 4096;
};

constexpr std::array<std::string_view, 5> kLogLevels = {"error", "warn", "info", "debug", "trace"};
constexpr std::array<std::string_view, 3> kAccels = {"auto", "kvm", "tcg"};
constexpr std::array<std::string_view, 2> kMachines = {"q35", "none"};

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;

const std::array kKeys = {
    KeySpec{.key = "state_dir", .kind = ValueKind::Path, .str = [](Settings& s) { return &s.stateDir; }},
    KeySpec{.key = "runtime_dir", .kind = ValueKind::Path, .str = [](Settings& s) { return &s.runtimeDir; }},
    KeySpec{.key = "socket",
            .kind = ValueKind::Path,
            .str = [](Settings& s) { return &s.socket; },
            .maxLength = kMaxSocketPath},
    KeySpec{.key = "socket_group",
            .kind = ValueKind::String,
            .str = [](Settings& s) { return &s.socketGroup; },
            .maxLength = 256},
    KeySpec{.key = "readonly_group",
            .kind = ValueKind::String,
            .str = [](Settings& s) { return &s.readonlyGroup; },
            .maxLength = 256},
    KeySpec{.key = "hypervisor_user",
            .kind = ValueKind::String,
            .str = [](Settings& s) { return &s.hypervisorUser; },
            .maxLength = 256},
    KeySpec{.key = "log_level",
            .kind = ValueKind::Choice,
            .str = [](Settings& s) { return &s.logLevel; },
            .choices = kLogLevels},
    KeySpec{.key = "limits.max_request_bytes",
            .kind = ValueKind::Integer,
            .num = [](Settings& s) { return &s.limits.maxRequestBytes; },
            .min = 1 * kKiB,
            .max = 1 * kGiB},
    KeySpec{.key = "limits.max_client_backlog",
            .kind = ValueKind::Integer,
            .num = [](Settings& s) { return &s.limits.maxClientBacklog; },
            .min = 64 * kKiB,
            .max = 16 * kGiB},
    KeySpec{.key = "limits.max_clients",
            .kind = ValueKind::Integer,
            .num = [](Settings& s) { return &s.limits.maxClients; },
            .min = 1,
            .max = 1048576},
    KeySpec{
        .key = "qemu.binary", .kind = ValueKind::String, .str = [](Settings& s) { return &s.qemu.binary; }},
    KeySpec{.key = "qemu.accel",
            .kind = ValueKind::Choice,
            .str = [](Settings& s) { return &s.qemu.accel; },
            .choices = kAccels},
    KeySpec{.key = "qemu.sandbox",
            .kind = ValueKind::Boolean,
            .flag = [](Settings& s) { return &s.qemu.sandbox; }},
    KeySpec{.key = "qemu.machine",
            .kind = ValueKind::Choice,
            .str = [](Settings& s) { return &s.qemu.machine; },
            .choices = kMachines},
    KeySpec{.key = "images.fetch_program",
            .kind = ValueKind::String,
            .str = [](Settings& s) { return &s.images.fetchProgram; }},
    KeySpec{.key = "images.ca_file",
            .kind = ValueKind::Path,
            .str = [](Settings& s) { return &s.images.caFile; }},
    KeySpec{.key = "chv.binary", .kind = ValueKind::String, .str = [](Settings& s) { return &s.chv.binary; }},
    KeySpec{.key = "chv.require_kvm",
            .kind = ValueKind::Boolean,
            .flag = [](Settings& s) { return &s.chv.requireKvm; }},
    KeySpec{.key = "network.ssh_port_range",
            .kind = ValueKind::PortRange,
            .range = [](Settings& s) { return &s.network.sshPortRange; }},
    KeySpec{.key = "console.scrollback",
            .kind = ValueKind::Integer,
            .num = [](Settings& s) { return &s.console.scrollback; },
            .min = 4 * kKiB,
            .max = 1 * kGiB},
};

const KeySpec* findKey(std::string_view key)
{
    for (const auto& k : kKeys)
        if (k.key == key) return &k;
    return nullptr;
}

// Tables are the prefixes of dotted keys.
bool isTable(std::string_view name)
{
    for (const auto& k : kKeys) {
        auto dot = k.key.find('.');
        if (dot != std::string_view::npos && k.key.substr(0, dot) == name) return true;
    }
    return false;
}

// Candidates for "did you mean": every key and table name.
std::vector<std::string_view> allNames()
{
    std::vector<std::string_view> names;
    for (const auto& k : kKeys) {
        auto dot = k.key.find('.');
        if (dot != std::string_view::npos) {
            auto table = k.key.substr(0, dot);
            bool seen = false;
            for (auto n : names) seen = seen || n == table;
            if (!seen) names.push_back(table);
        }
        names.push_back(k.key);
    }
    return names;
}

std::string_view lastSegment(std::string_view key)
{
    auto dot = key.rfind('.');
    return dot == std::string_view::npos ? key : key.substr(dot + 1);
}

std::optional<std::string> suggestFor(std::string_view key)
{
    auto names = allNames();
    if (auto m = closestMatch(key, names)) return m;
    // The right key in the wrong table ("max_clients" at the top level).
    for (auto n : names)
        if (lastSegment(n) == lastSegment(key) && n != key) return std::string(n);
    // A typo in the key name within the wrong table, or in the last segment only.
    std::vector<std::string_view> leaves;
    for (auto n : names) leaves.push_back(lastSegment(n));
    if (auto m = closestMatch(lastSegment(key), leaves)) {
        for (auto n : names)
            if (lastSegment(n) == *m) return std::string(n);
    }
    return std::nullopt;
}

std::string_view typeName(toml::node_type t)
{
    switch (t) {
        case toml::node_type::table: return "a table";
        case toml::node_type::array: return "an array";
        case toml::node_type::string: return "a string";
        case toml::node_type::integer: return "an integer";
        case toml::node_type::floating_point: return "a float";
        case toml::node_type::boolean: return "a boolean";
        case toml::node_type::date: return "a date";
        case toml::node_type::time: return "a time";
        case toml::node_type::date_time: return "a date-time";
        case toml::node_type::none: break;
    }
    return "nothing";
}

std::string location(std::string_view file, const toml::source_position& pos)
{
    std::string out(file.empty() ? std::string_view("vmrd.toml") : file);
    if (pos.line != 0) {
        out += ':' + std::to_string(pos.line);
        out += ':' + std::to_string(pos.column);
    }
    return out;
}

Error keyError(std::string_view file, const toml::source_position& pos, std::string_view key,
               std::string_view problem, std::string hint = {})
{
    std::string msg = location(file, pos);
    msg += ": key ";
    msg += json::quote(key);
    msg += ": ";
    msg += problem;
    return Error(ErrorKind::Config, std::move(msg),
                 hint.empty() ? std::string("See docs/configuration.md for every key and its values")
                              : std::move(hint));
}

std::string joinChoices(std::span<const std::string_view> choices)
{
    std::string out;
    for (auto c : choices) {
        if (!out.empty()) out += ',';
        out += json::quote(c);
    }
    return out;
}

// "got "loud"" for strings, "got an integer" for other types.
std::string got(const toml::node& node)
{
    if (auto s = node.as_string()) return "got " + json::quote(s->get());
    if (auto i = node.as_integer()) return "got " + std::to_string(i->get());
    return "got " + std::string(typeName(node.type()));
}

std::optional<PortRange> parsePortRange(std::string_view text)
{
    auto dash = text.find('-');
    if (dash == std::string_view::npos) return std::nullopt;
    auto parsePort = [](std::string_view s) -> std::optional<uint16_t> {
        unsigned v = 0;
        auto r = std::from_chars(s.data(), s.data() + s.size(), v);
        if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size() || v < 1 || v > 65535)
            return std::nullopt;
        return static_cast<uint16_t>(v);
    };
    auto first = parsePort(text.substr(0, dash));
    auto last = parsePort(text.substr(dash + 1));
    if (!first || !last || *first > *last) return std::nullopt;
    return PortRange{*first, *last};
}

Result<void> applyKey(const KeySpec& spec, const toml::node& node, Settings& s, std::string_view file,
                      const toml::source_position& pos)
{
    const auto* str = node.as_string();
    switch (spec.kind) {
        case ValueKind::Path:
        case ValueKind::String: {
            if (!str) return keyError(file, pos, spec.key, "expected a string, " + got(node));
            const std::string& v = str->get();
            if (v.empty()) return keyError(file, pos, spec.key, "must not be empty");
            if (v.find('\0') != std::string::npos)
                return keyError(file, pos, spec.key, "must not contain a NUL character");
            if (spec.kind == ValueKind::Path && v.front() != '/')
                return keyError(file, pos, spec.key, "expected an absolute path, " + got(node));
            if (v.size() > spec.maxLength)
                return keyError(file, pos, spec.key,
                                "is " + std::to_string(v.size()) + " bytes long; the limit is " +
                                    std::to_string(spec.maxLength));
            *spec.str(s) = v;
            return success();
        }
        case ValueKind::Choice: {
            if (!str) return keyError(file, pos, spec.key, "expected a string, " + got(node));
            for (auto c : spec.choices) {
                if (c == str->get()) {
                    *spec.str(s) = str->get();
                    return success();
                }
            }
            return keyError(file, pos, spec.key,
                            "expected one of " + joinChoices(spec.choices) + ", " + got(node));
        }
        case ValueKind::Boolean: {
            const auto* b = node.as_boolean();
            if (!b) return keyError(file, pos, spec.key, "expected true or false, " + got(node));
            *spec.flag(s) = b->get();
            return success();
        }
        case ValueKind::Integer: {
            const auto* i = node.as_integer();
            std::string range = "from " + std::to_string(spec.min) + " to " + std::to_string(spec.max);
            if (!i) return keyError(file, pos, spec.key, "expected an integer " + range + ", " + got(node));
            int64_t v = i->get();
            if (v < 0 || static_cast<uint64_t>(v) < spec.min || static_cast<uint64_t>(v) > spec.max)
                return keyError(file, pos, spec.key, "expected an integer " + range + ", " + got(node));
            *spec.num(s) = static_cast<uint64_t>(v);
            return success();
        }
        case ValueKind::PortRange: {
            constexpr std::string_view kWant =
                "expected a port range \"FIRST-LAST\" with 1 <= FIRST <= LAST <= 65535, ";
            if (!str) return keyError(file, pos, spec.key, std::string(kWant) + got(node));
            auto r = parsePortRange(str->get());
            if (!r) return keyError(file, pos, spec.key, std::string(kWant) + got(node));
            *spec.range(s) = *r;
            return success();
        }
    }
    return Error(ErrorKind::Internal, "Unhandled setting kind");
}

toml::source_position positionOf(const toml::key& key, const toml::node& node)
{
    if (key.source().begin) return key.source().begin;
    return node.source().begin;
}

struct Walk {
    std::string_view file;
    Settings& settings;
    bool socketSet = false;
};

Result<void> applyTable(const toml::table& table, std::string_view prefix, Walk& w)
{
    for (const auto& [k, node] : table) {
        std::string full(prefix);
        if (!full.empty()) full += '.';
        full += k.str();
        auto pos = positionOf(k, node);
        if (const KeySpec* spec = findKey(full)) {
            VMR_TRY(applyKey(*spec, node, w.settings, w.file, pos));
            if (spec->key == "socket") w.socketSet = true;
            continue;
        }
        if (prefix.empty() && isTable(full)) {
            const auto* sub = node.as_table();
            if (!sub) return keyError(w.file, pos, full, "expected a table, " + got(node));
            VMR_TRY(applyTable(*sub, full, w));
            continue;
        }
        std::string what = node.is_table() ? "unknown table" : "unknown key";
        std::string hint;
        if (auto m = suggestFor(full)) {
            what += "; did you mean " + json::quote(*m) + "?";
            hint = "Did you mean " + json::quote(*m) + "? See docs/configuration.md for every key";
        }
        return keyError(w.file, pos, full, what, std::move(hint));
    }
    return success();
}

// Checks on values that were derived rather than written (so no line to point at).
Result<void> checkDerived(const Settings& s, std::string_view file)
{
    std::string where = file.empty() ? std::string() : std::string(file) + ": ";
    if (s.stateDir.empty())
        return Error(ErrorKind::Config, where + "Cannot tell where to keep state: HOME is not set",
                     "Set HOME or XDG_DATA_HOME, or state_dir in vmrd.toml");
    if (s.socket.size() > kMaxSocketPath)
        return Error(ErrorKind::Config,
                     where + "key \"socket\": the socket path " + json::quote(s.socket) + " is longer than " +
                         std::to_string(kMaxSocketPath) + " bytes",
                     "Set socket (or runtime_dir) in vmrd.toml to a shorter path");
    return success();
}

std::string envValue(const char* name)
{
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
}

bool isAbsolute(const std::string& p)
{
    return !p.empty() && p.front() == '/';
}

}  // namespace

std::string_view modeName(Mode m) noexcept
{
    return m == Mode::System ? "system" : "user";
}

Env Env::fromProcess()
{
    Env env;
    env.uid = ::geteuid();
    env.home = envValue("HOME");
    if (env.home.empty()) {
        long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
        std::vector<char> buf(size > 0 ? static_cast<size_t>(size) : 16384);
        passwd pw{};
        passwd* found = nullptr;
        if (::getpwuid_r(env.uid, &pw, buf.data(), buf.size(), &found) == 0 && found && found->pw_dir)
            env.home = found->pw_dir;
    }
    env.xdgConfigHome = envValue("XDG_CONFIG_HOME");
    env.xdgDataHome = envValue("XDG_DATA_HOME");
    env.xdgRuntimeDir = envValue("XDG_RUNTIME_DIR");
    return env;
}

Mode modeFor(const Env& env, bool forceUser)
{
    return env.uid == 0 && !forceUser ? Mode::System : Mode::User;
}

std::string defaultConfigPath(Mode mode, const Env& env)
{
    if (mode == Mode::System) return "/etc/vmr/vmrd.toml";
    if (isAbsolute(env.xdgConfigHome)) return env.xdgConfigHome + "/vmr/vmrd.toml";
    if (isAbsolute(env.home)) return env.home + "/.config/vmr/vmrd.toml";
    return {};
}

Settings defaultSettings(Mode mode, const Env& env)
{
    Settings s;
    s.mode = mode;
    if (mode == Mode::System) {
        s.stateDir = "/var/lib/vmr";
        s.runtimeDir = "/run/vmr";
    } else {
        if (isAbsolute(env.xdgDataHome))
            s.stateDir = env.xdgDataHome + "/vmr";
        else if (isAbsolute(env.home))
            s.stateDir = env.home + "/.local/share/vmr";
        if (isAbsolute(env.xdgRuntimeDir))
            s.runtimeDir = env.xdgRuntimeDir + "/vmr";
        else
            s.runtimeDir = "/tmp/vmr-" + std::to_string(env.uid);
    }
    s.socket = s.runtimeDir + "/" + std::string(kSocketName);
    return s;
}

std::string defaultSocketPath(Mode mode, const Env& env)
{
    return defaultSettings(mode, env).socket;
}

std::string readOnlySocketPath(const std::string& socket)
{
    auto slash = socket.rfind('/');
    return (slash == std::string::npos ? std::string() : socket.substr(0, slash + 1)) + "vmrd-ro.sock";
}

Result<Settings> parseSettings(std::string_view tomlText, std::string_view fileName, Mode mode,
                               const Env& env)
{
    Settings s = defaultSettings(mode, env);
    Walk walk{fileName, s};
    // toml++ is built with exceptions: this is the one place they are caught.
    try {
        toml::table root = toml::parse(tomlText, fileName);
        VMR_TRY(applyTable(root, "", walk));
    } catch (const toml::parse_error& e) {
        return Error(ErrorKind::Config,
                     location(fileName, e.source().begin) + ": " + std::string(e.description()),
                     "Fix the TOML syntax; see docs/configuration.md");
    } catch (const std::exception& e) {
        return Error(ErrorKind::Config, location(fileName, {}) + ": " + e.what());
    }
    if (!walk.socketSet) s.socket = s.runtimeDir + "/" + std::string(kSocketName);
    VMR_TRY(checkDerived(s, fileName));
    return s;
}

Result<Settings> loadSettings(Mode mode, std::optional<std::string> explicitPath, const Env& env)
{
    const bool isExplicit = explicitPath.has_value();
    std::string path = isExplicit ? *explicitPath : defaultConfigPath(mode, env);
    if (path.empty()) return parseSettings("", "", mode, env);

    auto text = readFile(path, kMaxConfigBytes);
    if (!text) {
        // readFile's errors, in the words of a config file: an errno from open, fstat or read,
        // or else a file too large or not a regular one.
        const Error& e = text.error();
        if (e.sysErrno() == ENOENT && !isExplicit) return parseSettings("", "", mode, env);
        if (e.kind() == ErrorKind::TooLarge)
            return Error(ErrorKind::Config, "Config file " + path + " is larger than 1 MiB");
        if (e.sysErrno() == 0)
            return Error(ErrorKind::Config, "Cannot read config file " + path + ": not a regular file");
        return Error(ErrorKind::Config, "Cannot read config file " + path,
                     isExplicit ? "Check the path given with --config" : "Fix or remove the file")
            .causedBy(Error::fromErrno(e.sysErrno(), {}));
    }
    auto s = parseSettings(*text, path, mode, env);
    if (!s) return s;
    s->configPath = path;
    return s;
}

}  // namespace vmr::config
