// fake-chv: a stand-in for cloud-hypervisor (v53 API), which is not packaged for Debian 12 and
// cannot run without KVM. It takes cloud-hypervisor's command line, serves the REST endpoints
// vmr uses over the API unix socket with the real server's status codes and bodies, keeps the
// real state machine, validates VmConfig against the OpenAPI schema of the fields it models,
// writes the event monitor stream and runs the serial port as a unix socket server. What it
// does and what it cannot check is in docs/chv.md ("The stand-in").
//
// Test controls, which the real binary does not have:
//   SIGUSR1                  the guest powers off (as `poweroff` typed on the serial console)
//   FAKE_CHV_FAULTS          comma-separated ENDPOINT=ACTION, ENDPOINT one of the API verbs
//                            (vm.boot...) or `start`; ACTION one of hang (never answer), die
//                            (exit 3 after reading the request), close (close without an
//                            answer), garbage (answer bytes that are not HTTP), status:NNN
//                            (answer NNN with an error chain), delay:MS (answer MS later).
//                            start=die exits at once; start=hang never opens the API socket.
//   FAKE_CHV_ACPI=ignore     the guest ignores the ACPI power button
//   FAKE_CHV_POWEROFF_MS     how long the guest takes to power off after the button (50)

#include "chv/http.h"

#include <simdjson.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace vmr::chv;
using Clock = std::chrono::steady_clock;
namespace dom = simdjson::dom;

void say(const std::string& msg)
{
    std::fprintf(stderr, "fake-chv: %s\n", msg.c_str());
}

[[noreturn]] void die(const std::string& msg, int code = 1)
{
    say(msg);
    std::exit(code);
}

// ---- Command line -----------------------------------------------------------------------

struct Options {
    std::string apiPath;
    int apiFd = -1;
    std::string eventPath;
    int eventFd = -1;
    bool noShutdown = false;
};

// "path=X", "fd=N" or a bare path, as cloud-hypervisor parses --api-socket / --event-monitor.
void parseSocketOption(const std::string& flag, const std::string& value, bool barePathOk, std::string& path,
                       int& fd)
{
    if (value.rfind("path=", 0) == 0) {
        path = value.substr(5);
    } else if (value.rfind("fd=", 0) == 0) {
        char* end = nullptr;
        long n = std::strtol(value.c_str() + 3, &end, 10);
        if (value.size() == 3 || *end != '\0' || n < 0 || n > 65535)
            die("error: " + flag + ": bad fd in " + value);
        fd = static_cast<int>(n);
    } else if (barePathOk && value.find('=') == std::string::npos && !value.empty()) {
        path = value;
    } else {
        die("error: " + flag + ": expected path=<path> or fd=<fd>, got '" + value + "'");
    }
    if (fd < 0 && path.empty()) die("error: " + flag + ": empty path");
}

Options parseArgs(int argc, char** argv)
{
    Options o;
    // Flags that describe a VM would create and boot it at once; vmr never passes them.
    static const std::set<std::string> vmFlags = {"--cpus",      "--memory", "--kernel", "--firmware",
                                                  "--cmdline",   "--disk",   "--net",    "--rng",
                                                  "--initramfs", "--payload"};
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) die("error: a value is required for '" + a + "' but none was supplied", 2);
            return argv[++i];
        };
        if (a == "--api-socket") {
            parseSocketOption(a, value(), true, o.apiPath, o.apiFd);
        } else if (a == "--event-monitor") {
            parseSocketOption(a, value(), false, o.eventPath, o.eventFd);
        } else if (a == "--no-shutdown") {
            o.noShutdown = true;
        } else if (a == "--serial" || a == "--console" || a == "--log-file") {
            // Without VM-describing flags these only set defaults for a later vm.create, whose
            // VmConfig carries serial and console itself.
            (void)value();
        } else if (a == "-v" || a == "-vv" || a == "-vvv") {
        } else if (a == "--version" || a == "-V") {
            std::printf("cloud-hypervisor v53.0 (fake-chv)\n");
            std::exit(0);
        } else if (vmFlags.count(a) != 0) {
            die("error: " + a + " is not implemented by fake-chv (vmr creates VMs through vm.create)", 2);
        } else {
            die("error: unexpected argument '" + a + "' found", 2);
        }
    }
    if (o.apiPath.empty() && o.apiFd < 0)
        die("error: --api-socket is required (fake-chv serves only the API)", 2);
    return o;
}

// ---- Faults -----------------------------------------------------------------------------

struct Fault {
    std::string action;  // hang | die | close | garbage | status | delay
    int number = 0;      // the status, or the delay in ms
};

std::map<std::string, Fault> parseFaults(const char* text)
{
    std::map<std::string, Fault> faults;
    if (text == nullptr) return faults;
    std::string s = text;
    size_t pos = 0;
    while (pos < s.size()) {
        size_t comma = s.find(',', pos);
        if (comma == std::string::npos) comma = s.size();
        std::string item = s.substr(pos, comma - pos);
        pos = comma + 1;
        if (item.empty()) continue;
        size_t eq = item.find('=');
        if (eq == std::string::npos) die("FAKE_CHV_FAULTS: '" + item + "' is not ENDPOINT=ACTION");
        Fault f;
        std::string action = item.substr(eq + 1);
        size_t colon = action.find(':');
        f.action = action.substr(0, colon);
        if (colon != std::string::npos) f.number = std::atoi(action.c_str() + colon + 1);
        static const std::set<std::string> known = {"hang", "die", "close", "garbage", "status", "delay"};
        if (known.count(f.action) == 0) die("FAKE_CHV_FAULTS: unknown action '" + f.action + "'");
        if (f.action == "status" && (f.number < 100 || f.number > 599))
            die("FAKE_CHV_FAULTS: status needs a code, as status:500");
        faults[item.substr(0, eq)] = f;
    }
    return faults;
}

// ---- VmConfig validation (the OpenAPI schema, for the fields fake-chv models) ----------------

enum class T { Bool, Int, UInt, String, Object, Array };

struct Field {
    T type;
    const char* schema = nullptr;  // Object: its schema; Array: the items' schema (or null: strings)
    std::vector<std::string> enumValues = {};
    int64_t minimum = INT64_MIN;
};

struct Schema {
    std::map<std::string, Field> fields;
    std::vector<std::string> required;
};

const std::map<std::string, Schema>& schemas()
{
    static const std::vector<std::string> consoleModes = {"Off", "Pty", "Tty", "File", "Socket", "Null"};
    static const std::map<std::string, Schema> s = {
        {"VmConfig",
         {{{"cpus", {T::Object, "CpusConfig"}},
           {"memory", {T::Object, "MemoryConfig"}},
           {"payload", {T::Object, "PayloadConfig"}},
           {"disks", {T::Array, "DiskConfig"}},
           {"net", {T::Array, "NetConfig"}},
           {"rng", {T::Object, "RngConfig"}},
           {"serial", {T::Object, "SerialConfig"}},
           {"console", {T::Object, "ConsoleConfig"}},
           {"iommu", {T::Bool}},
           {"watchdog", {T::Bool}},
           {"pvpanic", {T::Bool}},
           {"landlock_enable", {T::Bool}}},
          {"payload"}}},
        {"CpusConfig",
         {{{"boot_vcpus", {T::Int, nullptr, {}, 1}},
           {"max_vcpus", {T::Int, nullptr, {}, 1}},
           {"kvm_hyperv", {T::Bool}},
           {"max_phys_bits", {T::Int}},
           {"nested", {T::Bool}}},
          {"boot_vcpus", "max_vcpus"}}},
        {"MemoryConfig",
         {{{"size", {T::Int}},
           {"hotplug_size", {T::Int}},
           {"hotplugged_size", {T::Int}},
           {"mergeable", {T::Bool}},
           {"hotplug_method", {T::String}},
           {"shared", {T::Bool}},
           {"hugepages", {T::Bool}},
           {"hugepage_size", {T::Int}},
           {"prefault", {T::Bool}},
           {"reserve", {T::Bool}},
           {"thp", {T::Bool}}},
          {"size"}}},
        {"PayloadConfig",
         {{{"firmware", {T::String}},
           {"kernel", {T::String}},
           {"cmdline", {T::String}},
           {"initramfs", {T::String}},
           {"igvm", {T::String}},
           {"host_data", {T::String}}},
          {}}},
        {"DiskConfig",
         {{{"path", {T::String}},
           {"readonly", {T::Bool}},
           {"direct", {T::Bool}},
           {"iommu", {T::Bool}},
           {"num_queues", {T::Int}},
           {"queue_size", {T::Int}},
           {"vhost_user", {T::Bool}},
           {"vhost_socket", {T::String}},
           {"pci_segment", {T::Int}},
           {"id", {T::String}},
           {"serial", {T::String}},
           {"rate_limit_group", {T::String}},
           {"backing_files", {T::Bool}},
           {"sparse", {T::Bool}},
           {"image_type", {T::String, nullptr, {"FixedVhd", "Qcow2", "Raw", "Vhdx", "Unknown"}}},
           {"lock_granularity", {T::String, nullptr, {"ByteRange", "Full"}}}},
          {}}},
        {"NetConfig",
         {{{"tap", {T::String}},
           {"ip", {T::String}},
           {"mask", {T::String}},
           {"mac", {T::String}},
           {"host_mac", {T::String}},
           {"mtu", {T::Int}},
           {"iommu", {T::Bool}},
           {"num_queues", {T::Int}},
           {"queue_size", {T::Int}},
           {"vhost_user", {T::Bool}},
           {"vhost_socket", {T::String}},
           {"vhost_mode", {T::String, nullptr, {"Client", "Server"}}},
           {"id", {T::String}},
           {"pci_segment", {T::Int}},
           {"offload_tso", {T::Bool}},
           {"offload_ufo", {T::Bool}},
           {"offload_csum", {T::Bool}}},
          {}}},
        {"RngConfig", {{{"src", {T::String}}, {"iommu", {T::Bool}}, {"id", {T::String}}}, {"src"}}},
        {"SerialConfig",
         {{{"file", {T::String}}, {"socket", {T::String}}, {"mode", {T::String, nullptr, consoleModes}}},
          {"mode"}}},
        {"ConsoleConfig",
         {{{"file", {T::String}},
           {"socket", {T::String}},
           {"mode", {T::String, nullptr, consoleModes}},
           {"iommu", {T::Bool}},
           {"id", {T::String}},
           {"pci_segment", {T::Int}}},
          {"mode"}}},
    };
    return s;
}

// The first problem found, as serde or cloud-hypervisor's validation would name it; empty when
// the value fits.
std::string checkObject(dom::element el, const std::string& schemaName, const std::string& path);

std::string checkValue(dom::element el, const Field& f, const std::string& path)
{
    switch (f.type) {
        case T::Bool:
            if (!el.is_bool()) return path + ": invalid type, expected a boolean";
            return {};
        case T::Int:
        case T::UInt: {
            int64_t n = 0;
            if (el.get_int64().get(n)) return path + ": invalid type, expected an integer";
            if (n < f.minimum) return path + ": must be at least " + std::to_string(f.minimum);
            if (f.type == T::UInt && n < 0) return path + ": must not be negative";
            return {};
        }
        case T::String: {
            std::string_view s;
            if (el.get_string().get(s)) return path + ": invalid type, expected a string";
            if (!f.enumValues.empty()) {
                for (const auto& v : f.enumValues)
                    if (v == s) return {};
                return path + ": unknown variant `" + std::string(s) + "`";
            }
            return {};
        }
        case T::Object: return checkObject(el, f.schema, path);
        case T::Array: {
            dom::array arr;
            if (el.get_array().get(arr)) return path + ": invalid type, expected a sequence";
            size_t i = 0;
            for (auto item : arr) {
                std::string problem = checkObject(item, f.schema, path + "[" + std::to_string(i++) + "]");
                if (!problem.empty()) return problem;
            }
            return {};
        }
    }
    return {};
}

std::string checkObject(dom::element el, const std::string& schemaName, const std::string& path)
{
    dom::object obj;
    if (el.get_object().get(obj)) return path + ": invalid type, expected struct " + schemaName;
    const Schema& schema = schemas().at(schemaName);
    std::set<std::string> seen;
    for (auto [key, value] : obj) {
        std::string k(key);
        if (!seen.insert(k).second) return path + ": duplicate field `" + k + "`";
        auto it = schema.fields.find(k);
        if (it == schema.fields.end())
            return path + ": unknown field `" + k + "` (fake-chv models only the fields vmr sends)";
        std::string problem = checkValue(value, it->second, path + "." + k);
        if (!problem.empty()) return problem;
    }
    for (const auto& r : schema.required)
        if (seen.count(r) == 0) return path + ": missing field `" + r + "`";
    return {};
}

bool isMac(std::string_view mac)
{
    if (mac.size() != 17) return false;
    for (size_t i = 0; i < mac.size(); ++i) {
        if (i % 3 == 2 ? mac[i] != ':' : !std::isxdigit(static_cast<unsigned char>(mac[i]))) return false;
    }
    return true;
}

// A member's string, or "" when the member (or the object) is absent: never throws.
template <typename J>  // dom::element or simdjson_result<dom::element>
std::string str(const J& el, const char* key)
{
    std::string_view s;
    if (el[key].get_string().get(s)) return {};
    return std::string(s);
}

int64_t intOr(simdjson::simdjson_result<dom::element> el, int64_t fallback)
{
    int64_t n = 0;
    return el.get_int64().get(n) ? fallback : n;
}

bool boolOr(simdjson::simdjson_result<dom::element> el, bool fallback)
{
    bool b = false;
    return el.get_bool().get(b) ? fallback : b;
}

// cloud-hypervisor's own validation after deserialising (VmConfig::validate).
std::string validateConfig(dom::element cfg)
{
    dom::element payload = cfg["payload"];
    if (str(payload, "kernel").empty() && str(payload, "firmware").empty() && str(payload, "igvm").empty())
        return "payload: a kernel or a firmware is required";
    dom::element cpus;
    if (!cfg["cpus"].get(cpus)) {
        int64_t boot = intOr(cpus["boot_vcpus"], 0), max = intOr(cpus["max_vcpus"], 0);
        if (max < boot) return "cpus: max_vcpus is lower than boot_vcpus";
        if (max > 254) return "cpus: too many vCPUs (at most 254)";
    }
    dom::element mem;
    if (!cfg["memory"].get(mem)) {
        int64_t size = intOr(mem["size"], 0);
        if (size <= 0 || size % 4096 != 0) return "memory: size must be a positive multiple of 4096 bytes";
    }
    std::set<std::string> ids;
    for (const char* list : {"disks", "net"}) {
        dom::array arr;
        if (cfg[list].get_array().get(arr)) continue;
        for (auto dev : arr) {
            std::string id = str(dev, "id");
            if (!id.empty() && !ids.insert(id).second) return "identifier " + id + " is not unique";
            if (std::string(list) == "disks") {
                bool vhost = boolOr(dev["vhost_user"], false);
                if (!vhost && str(dev, "path").empty()) return "disks: a disk needs a path";
            } else {
                std::string mac = str(dev, "mac");
                if (!mac.empty() && !isMac(mac)) return "net: invalid MAC address " + mac;
                std::string hostMac = str(dev, "host_mac");
                if (!hostMac.empty() && !isMac(hostMac)) return "net: invalid MAC address " + hostMac;
            }
        }
    }
    dom::element serial;
    if (!cfg["serial"].get(serial)) {
        std::string mode = str(serial, "mode");
        if (mode == "Socket" && str(serial, "socket").empty())
            return "serial: Socket mode needs a socket path";
        if (mode == "File" && str(serial, "file").empty()) return "serial: File mode needs a file";
    }
    dom::element console;
    if (!cfg["console"].get(console)) {
        std::string mode = str(console, "mode");
        if (mode == "Socket") return "No socket option support for console device";
        if (mode == "File" && str(console, "file").empty()) return "console: File mode needs a file";
    }
    return {};
}

// ---- The VMM ----------------------------------------------------------------------------

enum class VmState { None, Created, Running, Paused };

struct Answer {
    int status = 0;
    std::string body;
};

Answer errorAnswer(int status, std::vector<std::string> chain)
{
    std::string body = "[";
    for (size_t i = 0; i < chain.size(); ++i) {
        if (i > 0) body += ",";
        body += "\"";
        for (char c : chain[i]) {
            if (c == '"' || c == '\\') body += '\\';
            if (static_cast<unsigned char>(c) < 0x20) continue;
            body += c;
        }
        body += "\"";
    }
    body += "]";
    return {status, body};
}

struct Conn {
    int fd = -1;
    http::Parser parser{http::Parser::Kind::Request};
    std::string out;
    bool closeWhenFlushed = false;
    bool hung = false;                     // a `hang` fault: read, never answer
    std::optional<Clock::time_point> due;  // a `delay` fault: `pending` goes out then
    std::string pending;
    bool exitWhenFlushed = false;  // vmm.shutdown
};

class Vmm {
public:
    explicit Vmm(Options o) : opts_(std::move(o)) {}
    int run();

private:
    void openEvents();
    void event(const std::string& source, const std::string& name);
    void openApi();
    void accept();
    void readConn(Conn& c);
    void writeConn(Conn& c);
    void handle(Conn& c, const http::Message& req);
    Answer dispatch(const std::string& endpoint, const std::string& method, const std::string& body);
    Answer create(const std::string& body);
    Answer boot();
    void tearDownVm();
    void guestPowerOff(const std::string& why);
    void serialAccept();
    void serialRead();
    void serialWrite(const std::string& bytes);
    void bootLines();
    std::string infoJson() const;
    [[noreturn]] void exitVmm(int code);

    Options opts_;
    std::map<std::string, Fault> faults_ = parseFaults(std::getenv("FAKE_CHV_FAULTS"));
    int listenFd_ = -1;
    int eventFd_ = -1;
    int signalFd_ = -1;
    std::vector<std::unique_ptr<Conn>> conns_;
    VmState state_ = VmState::None;
    std::string config_;  // the VmConfig as sent (minified)
    std::string serialPath_;
    int serialListen_ = -1;
    int serialClient_ = -1;
    std::string serialBacklog_;  // output while no client is connected (kept up to 1 MiB)
    std::string serialLine_;
    std::optional<Clock::time_point> powerOffAt_;
    bool powerButtonWhilePaused_ = false;
    Clock::time_point started_ = Clock::now();
};

void Vmm::openEvents()
{
    if (opts_.eventFd >= 0) {
        if (::fcntl(opts_.eventFd, F_GETFD) < 0)
            die("--event-monitor: fd " + std::to_string(opts_.eventFd) + " is not open");
        eventFd_ = opts_.eventFd;
    } else if (!opts_.eventPath.empty()) {
        eventFd_ = ::open(opts_.eventPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (eventFd_ < 0)
            die("--event-monitor: cannot open " + opts_.eventPath + ": " + std::strerror(errno));
    }
    if (eventFd_ >= 0) ::fcntl(eventFd_, F_SETFL, ::fcntl(eventFd_, F_GETFL) | O_NONBLOCK);
}

void Vmm::event(const std::string& source, const std::string& name)
{
    if (eventFd_ < 0) return;
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - started_).count();
    // Pretty-printed, as serde_json::to_string_pretty writes it: one object over many lines.
    std::string text = "{\n  \"timestamp\": {\n    \"secs\": " + std::to_string(ns / 1000000000) +
                       ",\n    \"nanos\": " + std::to_string(ns % 1000000000) + "\n  },\n  \"source\": \"" +
                       source + "\",\n  \"event\": \"" + name + "\",\n  \"properties\": null\n}\n";
    ssize_t n = ::write(eventFd_, text.data(), text.size());
    if (n != static_cast<ssize_t>(text.size())) say("event monitor: dropped " + source + "/" + name);
}

void Vmm::openApi()
{
    if (opts_.apiFd >= 0) {
        listenFd_ = opts_.apiFd;
    } else {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        if (opts_.apiPath.size() >= sizeof(addr.sun_path)) die("--api-socket: path too long");
        std::memcpy(addr.sun_path, opts_.apiPath.c_str(), opts_.apiPath.size() + 1);
        listenFd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (listenFd_ < 0 || ::bind(listenFd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 ||
            ::listen(listenFd_, 16) < 0)
            die("Error binding the API socket " + opts_.apiPath + ": " + std::strerror(errno));
    }
    ::fcntl(listenFd_, F_SETFL, ::fcntl(listenFd_, F_GETFL) | O_NONBLOCK);
}

void Vmm::exitVmm(int code)
{
    event("vmm", "shutdown");
    if (serialListen_ >= 0) ::unlink(serialPath_.c_str());
    if (!opts_.apiPath.empty()) ::unlink(opts_.apiPath.c_str());
    std::exit(code);
}

void Vmm::accept()
{
    for (;;) {
        int fd = ::accept4(listenFd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        auto c = std::make_unique<Conn>();
        c->fd = fd;
        conns_.push_back(std::move(c));
    }
}

void Vmm::readConn(Conn& c)
{
    char buf[16384];
    // SCM_RIGHTS fds (tap fds) are accepted and closed: fake-chv has no network.
    char control[CMSG_SPACE(sizeof(int) * 16)];
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(c.fd, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm != nullptr; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
            ::close(fd);
        }
    }
    if (n <= 0) {
        ::close(c.fd);
        c.fd = -1;
        return;
    }
    if (c.hung || c.closeWhenFlushed) return;
    auto done = c.parser.feed(std::string_view(buf, static_cast<size_t>(n)));
    if (!done) {
        // micro_http answers a request it cannot parse with 400 and closes.
        Answer a = errorAnswer(400, {"Error from API", "Malformed HTTP request: " + done.error().message()});
        c.out += http::encodeResponse(a.status, a.body);
        c.closeWhenFlushed = true;
        return;
    }
    // Keep-alive requests may come back to back in one read.
    while (*done && c.fd >= 0 && !c.hung) {
        handle(c, c.parser.take());
        if (c.fd < 0 || c.hung || c.closeWhenFlushed || c.exitWhenFlushed) return;
        done = c.parser.feed({});
        if (!done) return;
    }
}

void Vmm::writeConn(Conn& c)
{
    while (!c.out.empty()) {
        ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) return;
        if (n <= 0) {
            ::close(c.fd);
            c.fd = -1;
            return;
        }
        c.out.erase(0, static_cast<size_t>(n));
    }
    if (c.exitWhenFlushed) {
        ::close(c.fd);
        exitVmm(0);
    }
    if (c.closeWhenFlushed) {
        ::close(c.fd);
        c.fd = -1;
    }
}

void Vmm::handle(Conn& c, const http::Message& req)
{
    static const std::string prefix = "/api/v1/";
    std::string endpoint =
        req.target.rfind(prefix, 0) == 0 ? req.target.substr(prefix.size()) : std::string();
    bool keepAlive = req.versionMinor >= 1 && req.header("Connection").value_or("") != "close";
    c.closeWhenFlushed = !keepAlive;

    auto fault = faults_.find(endpoint);
    if (fault != faults_.end()) {
        const Fault& f = fault->second;
        say("injecting " + f.action + " for " + endpoint);
        if (f.action == "hang") {
            c.hung = true;
            return;
        }
        if (f.action == "die") {
            // Mid-request: the request is read, no answer will come.
            std::_Exit(3);
        }
        if (f.action == "close") {
            ::close(c.fd);
            c.fd = -1;
            return;
        }
        if (f.action == "garbage") {
            c.out += "SSH-2.0-this is not HTTP\r\n\r\n";
            c.closeWhenFlushed = true;
            return;
        }
        if (f.action == "status") {
            Answer a = errorAnswer(f.number, {"Error from API", "fake-chv: injected failure of " + endpoint});
            c.out += http::encodeResponse(a.status, a.body, keepAlive);
            return;
        }
    }

    Answer a = dispatch(endpoint, req.method, req.body);
    std::string bytes = http::encodeResponse(a.status, a.body, keepAlive);
    if (fault != faults_.end() && fault->second.action == "delay") {
        c.due = Clock::now() + std::chrono::milliseconds(fault->second.number);
        c.pending = std::move(bytes);
    } else {
        c.out += bytes;
    }
    if (endpoint == "vmm.shutdown" && req.method == "PUT" && a.status == 204) c.exitWhenFlushed = true;
}

Answer Vmm::dispatch(const std::string& endpoint, const std::string& method, const std::string& body)
{
    static const std::map<std::string, std::string> methods = {
        {"vmm.ping", "GET"},
        {"vmm.shutdown", "PUT"},
        {"vm.info", "GET"},
        {"vm.counters", "GET"},
        {"vm.create", "PUT"},
        {"vm.delete", "PUT"},
        {"vm.boot", "PUT"},
        {"vm.pause", "PUT"},
        {"vm.resume", "PUT"},
        {"vm.shutdown", "PUT"},
        {"vm.reboot", "PUT"},
        {"vm.power-button", "PUT"},
        {"vm.resize", "PUT"},
        {"vm.resize-disk", "PUT"},
        {"vm.resize-zone", "PUT"},
        {"vm.add-device", "PUT"},
        {"vm.remove-device", "PUT"},
        {"vm.add-disk", "PUT"},
        {"vm.add-fs", "PUT"},
        {"vm.add-generic-vhost-user", "PUT"},
        {"vm.add-pmem", "PUT"},
        {"vm.add-net", "PUT"},
        {"vm.add-vsock", "PUT"},
        {"vm.add-vdpa", "PUT"},
        {"vm.add-user-device", "PUT"},
        {"vm.snapshot", "PUT"},
        {"vm.coredump", "PUT"},
        {"vm.nmi", "PUT"},
        {"vm.restore", "PUT"},
        {"vm.receive-migration", "PUT"},
        {"vm.send-migration", "PUT"},
    };
    auto m = methods.find(endpoint);
    if (m == methods.end()) return {404, ""};
    if (method != m->second)
        return errorAnswer(400, {"Error from API", "Wrong HTTP method " + method + " for " + endpoint});

    const bool created = state_ != VmState::None;
    const bool booted = state_ == VmState::Running || state_ == VmState::Paused;
    auto notCreated = [] { return errorAnswer(404, {"Error from API", "VM is not created"}); };
    auto notRunning = [](const std::string& what) {
        return errorAnswer(500, {"Error from API", what, "VM is not running"});
    };

    if (endpoint == "vmm.ping") {
        std::string pid = std::to_string(::getpid());
        return {200, R"({"build_version":"v53.0-fake","version":"53.0.0","pid":)" + pid +
                         R"(,"features":["kvm"]})"};
    }
    if (endpoint == "vmm.shutdown") {
        if (booted) tearDownVm();
        return {204, ""};
    }
    if (endpoint == "vm.create") {
        if (created)
            return errorAnswer(500,
                               {"Error from API", "The VM could not be created", "VM is already created"});
        return create(body);
    }
    if (endpoint == "vm.info") {
        if (!created) return notCreated();
        return {200, infoJson()};
    }
    if (endpoint == "vm.delete") {
        if (booted) tearDownVm();
        if (created) event("vm", "deleted");
        state_ = VmState::None;
        config_.clear();
        return {204, ""};
    }
    if (endpoint == "vm.boot") {
        if (!created) return notCreated();
        if (booted)
            return errorAnswer(500, {"Error from API", "The VM could not boot", "VM is already booted"});
        return boot();
    }
    if (endpoint == "vm.counters") {
        if (!created) return notCreated();
        if (!booted) return notRunning("Error getting the counters");
        return {200, R"({"disk0":{"read_bytes":0,"write_bytes":0,"read_ops":0,"write_ops":0}})"};
    }
    if (endpoint == "vm.pause") {
        if (!created) return notCreated();
        if (state_ != VmState::Running) return notRunning("The VM could not be paused");
        event("vm", "pausing");
        state_ = VmState::Paused;
        event("vm", "paused");
        return {204, ""};
    }
    if (endpoint == "vm.resume") {
        if (!created) return notCreated();
        if (state_ != VmState::Paused)
            return errorAnswer(500, {"Error from API", "The VM could not be resumed", "VM is not paused"});
        event("vm", "resuming");
        state_ = VmState::Running;
        event("vm", "resumed");
        if (std::exchange(powerButtonWhilePaused_, false)) guestPowerOff("power button");
        return {204, ""};
    }
    if (endpoint == "vm.shutdown") {
        if (!created) return notCreated();
        if (!booted) return notRunning("The VM could not be shut down");
        tearDownVm();
        return {204, ""};
    }
    if (endpoint == "vm.reboot") {
        if (!created) return notCreated();
        if (state_ != VmState::Running) return notRunning("The VM could not be rebooted");
        event("vm", "rebooting");
        event("vm", "rebooted");
        bootLines();
        return {204, ""};
    }
    if (endpoint == "vm.power-button") {
        if (!created) return notCreated();
        if (!booted) return notRunning("The power button could not be triggered");
        const char* acpi = std::getenv("FAKE_CHV_ACPI");
        if (acpi != nullptr && std::string(acpi) == "ignore") return {204, ""};
        if (state_ == VmState::Paused) {
            powerButtonWhilePaused_ = true;  // a paused guest reacts once resumed
            return {204, ""};
        }
        const char* ms = std::getenv("FAKE_CHV_POWEROFF_MS");
        powerOffAt_ = Clock::now() + std::chrono::milliseconds(ms != nullptr ? std::atoi(ms) : 50);
        return {204, ""};
    }
    return errorAnswer(500, {"Error from API", endpoint + " is not implemented by fake-chv"});
}

Answer Vmm::create(const std::string& body)
{
    if (body.empty()) return errorAnswer(400, {"Error from API", "Missing VM configuration"});
    dom::parser parser;
    dom::element doc;
    if (auto err = parser.parse(body.data(), body.size()).get(doc))
        return errorAnswer(400, {"Error from API", "Error parsing JSON", simdjson::error_message(err)});
    std::string problem = checkObject(doc, "VmConfig", "VmConfig");
    if (problem.empty()) problem = validateConfig(doc);
    if (!problem.empty())
        return errorAnswer(
            400, {"Error from API", "The VM could not be created", "Invalid VM configuration", problem});
    config_ = simdjson::minify(doc);
    serialPath_ = str(doc["serial"], "mode") == "Socket" ? str(doc["serial"], "socket") : std::string();
    state_ = VmState::Created;
    return {204, ""};
}

Answer Vmm::boot()
{
    dom::parser parser;
    dom::element cfg = parser.parse(config_);
    auto cannotBoot = [](std::string why) {
        return errorAnswer(500, {"Error from API", "The VM could not boot", std::move(why)});
    };
    dom::element payload = cfg["payload"];
    for (const char* key : {"firmware", "kernel", "initramfs"}) {
        std::string path = str(payload, key);
        if (!path.empty() && ::access(path.c_str(), R_OK) != 0)
            return cannotBoot(std::string("Cannot open the ") + key + " " + path + ": " +
                              std::strerror(errno));
    }
    dom::array disks;
    if (!cfg["disks"].get_array().get(disks)) {
        for (auto d : disks) {
            std::string path = str(d, "path");
            bool readonly = boolOr(d["readonly"], false);
            if (!path.empty() && ::access(path.c_str(), readonly ? R_OK : R_OK | W_OK) != 0)
                return cannotBoot("Cannot open disk " + path + ": " + std::strerror(errno));
        }
    }
    dom::array nets;
    if (!cfg["net"].get_array().get(nets)) {
        for (auto n : nets) {
            std::string tap = str(n, "tap");
            struct stat st {};
            if (tap.empty() || ::stat(("/sys/class/net/" + tap).c_str(), &st) != 0)
                return cannotBoot("Error creating tap " + tap + ": fake-chv cannot create tap devices");
        }
    }
    if (!serialPath_.empty()) {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        if (serialPath_.size() >= sizeof(addr.sun_path)) return cannotBoot("Serial socket path too long");
        std::memcpy(addr.sun_path, serialPath_.c_str(), serialPath_.size() + 1);
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 ||
            ::listen(fd, 4) < 0) {
            std::string why = std::strerror(errno);
            if (fd >= 0) ::close(fd);
            return cannotBoot("Error creating the serial socket " + serialPath_ + ": " + why);
        }
        serialListen_ = fd;
    }
    event("vm", "booting");
    state_ = VmState::Running;
    event("vm", "booted");
    bootLines();
    return {204, ""};
}

void Vmm::bootLines()
{
    dom::parser parser;
    dom::element cfg = parser.parse(config_);
    std::string what = str(cfg["payload"], "kernel");
    what = what.empty() ? "firmware " + str(cfg["payload"], "firmware") : "kernel " + what;
    int64_t vcpus = intOr(cfg["cpus"]["boot_vcpus"], 1), bytes = intOr(cfg["memory"]["size"], 0);
    serialWrite("fake-chv: booting " + what + "\r\n");
    serialWrite("fake-chv: " + std::to_string(vcpus) + " vCPUs, " + std::to_string(bytes >> 20) + " MiB\r\n");
    serialWrite("fake-chv login: ");
}

void Vmm::tearDownVm()
{
    if (serialClient_ >= 0) ::close(serialClient_);
    if (serialListen_ >= 0) {
        ::close(serialListen_);
        ::unlink(serialPath_.c_str());
    }
    serialClient_ = serialListen_ = -1;
    serialBacklog_.clear();
    serialLine_.clear();
    powerOffAt_.reset();
    powerButtonWhilePaused_ = false;
    state_ = VmState::Created;  // the config is kept: vm.info says Created, vm.boot works again
    event("vm", "shutdown");
}

void Vmm::guestPowerOff(const std::string& why)
{
    if (state_ != VmState::Running) return;
    say("guest powers off (" + why + ")");
    tearDownVm();
    if (!opts_.noShutdown) exitVmm(0);
}

void Vmm::serialAccept()
{
    int fd = ::accept4(serialListen_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    // A new client replaces the previous one.
    if (serialClient_ >= 0) {
        ::shutdown(serialClient_, SHUT_RDWR);
        ::close(serialClient_);
    }
    serialClient_ = fd;
    std::string backlog = std::exchange(serialBacklog_, {});
    if (!backlog.empty()) serialWrite(backlog);
}

void Vmm::serialWrite(const std::string& bytes)
{
    if (serialClient_ >= 0) {
        ssize_t n = ::send(serialClient_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n == static_cast<ssize_t>(bytes.size())) return;
        if (n < 0 && errno != EAGAIN) {
            ::close(serialClient_);
            serialClient_ = -1;
            n = 0;
        }
        serialBacklog_ += bytes.substr(n > 0 ? static_cast<size_t>(n) : 0);
    } else {
        serialBacklog_ += bytes;
    }
    constexpr size_t kBacklog = 1024 * 1024;
    if (serialBacklog_.size() > kBacklog) serialBacklog_.erase(0, serialBacklog_.size() - kBacklog);
}

void Vmm::serialRead()
{
    char buf[4096];
    ssize_t n = ::recv(serialClient_, buf, sizeof buf, 0);
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
        ::close(serialClient_);
        serialClient_ = -1;
        return;
    }
    std::string in(buf, static_cast<size_t>(n));
    serialWrite(in);  // the guest's tty echoes
    for (char ch : in) {
        if (ch != '\r' && ch != '\n') {
            if (serialLine_.size() < 4096) serialLine_ += ch;
            continue;
        }
        std::string line = std::exchange(serialLine_, {});
        if (line == "poweroff") {
            guestPowerOff("poweroff on the console");
            return;
        }
        if (state_ == VmState::Running && !line.empty()) serialWrite("\r\nfake-chv login: ");
    }
}

std::string Vmm::infoJson() const
{
    static const char* names[] = {"Created", "Created", "Running", "Paused"};
    dom::parser parser;
    dom::element cfg = parser.parse(config_);
    int64_t size = intOr(cfg["memory"]["size"], 0);
    std::string out = "{\"config\":" + config_ + ",\"state\":\"" + names[static_cast<int>(state_)] + "\"";
    if (state_ == VmState::Running || state_ == VmState::Paused)
        out += ",\"memory_actual_size\":" + std::to_string(size) + ",\"device_tree\":{}";
    return out + "}";
}

int Vmm::run()
{
    ::signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    signalFd_ = ::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signalFd_ < 0) die(std::string("signalfd: ") + std::strerror(errno));

    auto start = faults_.find("start");
    if (start != faults_.end() && start->second.action == "die") die("injected failure at start", 1);
    if (start != faults_.end() && start->second.action == "hang") {
        for (;;) ::pause();
    }
    openEvents();
    event("vmm", "starting");
    openApi();

    for (;;) {
        std::vector<pollfd> pfds;
        pfds.push_back({listenFd_, POLLIN, 0});
        pfds.push_back({signalFd_, POLLIN, 0});
        pfds.push_back({serialListen_, POLLIN, 0});
        pfds.push_back({serialClient_, POLLIN, 0});
        for (auto& c : conns_)
            pfds.push_back({c->fd, static_cast<short>(POLLIN | (c->out.empty() ? 0 : POLLOUT)), 0});

        auto now = Clock::now();
        std::optional<Clock::time_point> next = powerOffAt_;
        for (auto& c : conns_)
            if (c->due && (!next || *c->due < *next)) next = c->due;
        int timeout = -1;
        if (next)
            timeout = static_cast<int>(std::max<int64_t>(
                0, std::chrono::duration_cast<std::chrono::milliseconds>(*next - now).count() + 1));
        if (::poll(pfds.data(), pfds.size(), timeout) < 0 && errno != EINTR) die("poll failed");

        now = Clock::now();
        if (powerOffAt_ && *powerOffAt_ <= now) {
            powerOffAt_.reset();
            guestPowerOff("ACPI power button");
        }
        for (auto& c : conns_) {
            if (c->due && *c->due <= now) {
                c->due.reset();
                c->out += std::exchange(c->pending, {});
            }
        }
        if (pfds[1].revents & POLLIN) {
            signalfd_siginfo si{};
            while (::read(signalFd_, &si, sizeof si) == sizeof si) guestPowerOff("SIGUSR1");
        }
        if (pfds[0].revents & POLLIN) accept();
        if (serialListen_ >= 0 && (pfds[2].revents & POLLIN)) serialAccept();
        if (serialClient_ >= 0 && pfds[3].fd == serialClient_ &&
            (pfds[3].revents & (POLLIN | POLLHUP | POLLERR)))
            serialRead();
        for (size_t i = 0; i < conns_.size() && 4 + i < pfds.size(); ++i) {
            Conn& c = *conns_[i];
            if (c.fd < 0 || pfds[4 + i].fd != c.fd) continue;
            short rev = pfds[4 + i].revents;
            if (rev & (POLLIN | POLLHUP | POLLERR)) readConn(c);
            if (c.fd >= 0 && !c.out.empty()) writeConn(c);
        }
        std::erase_if(conns_, [](const std::unique_ptr<Conn>& c) { return c->fd < 0; });
    }
}

}  // namespace

int main(int argc, char** argv)
{
    Vmm vmm(parseArgs(argc, argv));
    return vmm.run();
}
