#include "image_commands.h"

#include "base/json.h"
#include "output.h"

#include <simdjson.h>

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <thread>

namespace vmr::ctl {

namespace {

using namespace std::chrono_literals;

constexpr int kExitOk = 0;
constexpr int kExitUnreadable = 1;

Error usage(std::string message)
{
    return Error(ErrorKind::InvalidArgument, std::move(message));
}

// A local path as vmrd must see it: absolute. A bare word that is no file here stays a name
// (an image in vmrd's cache).
std::string pathOrName(const std::string& v)
{
    std::error_code ec;
    bool local = v.find('/') != std::string::npos || std::filesystem::exists(v, ec);
    return local ? std::filesystem::absolute(v, ec).lexically_normal().string() : v;
}

Result<ImageInvocation> parsePull(const std::vector<std::string>& args)
{
    ImageInvocation inv;
    std::string name, sha;
    for (size_t i = 2; i < args.size(); ++i) {
        const std::string& a = args[i];
        std::string* into = nullptr;
        std::string flag = a.substr(0, a.find('='));
        if (flag == "--name") into = &name;
        if (flag == "--sha256") into = &sha;
        if (into != nullptr) {
            if (!into->empty()) return usage("image pull: " + flag + " is given twice");
            if (a.size() > flag.size()) {
                *into = a.substr(flag.size() + 1);
            } else if (i + 1 < args.size()) {
                *into = args[++i];
            }
            if (into->empty()) return usage("image pull: " + flag + " needs a value");
        } else if (!a.empty() && a[0] == '-') {
            return usage("image pull: unknown option `" + a + "`");
        } else if (inv.url.empty()) {
            inv.url = a;
        } else {
            return usage("image pull: one URL at a time");
        }
    }
    if (inv.url.empty())
        return usage("image pull needs a URL: vmrctl image pull URL [--name NAME] [--sha256 HEX]");
    json::Writer w;
    w.beginObject().field("url", inv.url);
    if (!name.empty()) w.field("name", name);
    if (!sha.empty()) w.field("sha256", sha);
    w.endObject();
    inv.params = w.take();
    return inv;
}

std::string twoDigits(long long n)
{
    std::string digits = std::to_string(n);
    return n < 10 ? std::string(1, '0') + digits : digits;
}

std::string formatDuration(double seconds)
{
    auto s = static_cast<long long>(seconds + 0.5);
    if (s >= 3600) return std::to_string(s / 3600) + ":" + twoDigits(s / 60 % 60) + ":" + twoDigits(s % 60);
    return std::to_string(s / 60) + ":" + twoDigits(s % 60);
}

bool parse(simdjson::dom::parser& p, const std::string& json, simdjson::dom::object& obj)
{
    return p.parse(json).get(obj) == simdjson::SUCCESS;
}

std::string str(simdjson::dom::object obj, std::string_view key)
{
    std::string_view s;
    if (obj.at_key(key).get(s) != simdjson::SUCCESS || s.empty()) return "-";
    return std::string(s);
}

std::optional<uint64_t> num(simdjson::dom::object obj, std::string_view key)
{
    uint64_t n = 0;
    if (obj.at_key(key).get(n) != simdjson::SUCCESS) return std::nullopt;
    return n;
}

std::string bytes(simdjson::dom::object obj, std::string_view key)
{
    auto n = num(obj, key);
    return n ? formatBytes(*n) : "-";
}

int unreadable()
{
    std::fprintf(stderr, "vmrctl: vmrd sent a result this vmrctl cannot show; try --json\n");
    return kExitUnreadable;
}

// Shows a pull's progress on stderr: a bar redrawn in place on a terminal, else a line every
// few seconds.
class ProgressView {
public:
    explicit ProgressView(bool terminal) : terminal_(terminal), meter_(ProgressMeter::Clock::now()) {}

    void update(uint64_t received, std::optional<uint64_t> total)
    {
        auto now = ProgressMeter::Clock::now();
        meter_.update(received, total, now);
        if (terminal_) {
            std::fprintf(stderr, "\r%s\x1b[K", meter_.bar(30).c_str());
        } else if (now - lastLine_ >= 2s) {
            lastLine_ = now;
            std::fprintf(stderr, "%s\n", meter_.line().c_str());
            unprinted_ = false;
        } else {
            unprinted_ = true;
            return;
        }
        shown_ = true;
        std::fflush(stderr);
    }
    void finish()
    {
        if (terminal_ && shown_) std::fputs("\r\x1b[K", stderr);
        if (!terminal_ && unprinted_) std::fprintf(stderr, "%s\n", meter_.line().c_str());  // the last state
        std::fflush(stderr);
    }

private:
    bool terminal_;
    bool shown_ = false;
    bool unprinted_ = false;  // plain lines: the latest update was not printed
    ProgressMeter meter_;
    ProgressMeter::Clock::time_point lastLine_{};
};

int runPull(const ImageInvocation& inv, const ImageIo& io)
{
    // Progress comes as image.progress events, on a second connection that subscribes to them.
    bool terminal = ::isatty(STDERR_FILENO) != 0;
    std::optional<Client> watcher;
    if (terminal || !io.json) {
        auto w = io.connect();
        if (w && w->call("events.subscribe", R"({"topics":["image.progress"]})", 10s))
            watcher.emplace(std::move(*w));
    }
    auto client = io.connect();
    if (!client) return io.reportError(client.error());

    std::optional<Result<std::string>> result;
    std::atomic<bool> finished{false};
    std::thread caller([&] {
        result.emplace(client->call("image.pull", inv.params, std::chrono::hours(24)));
        finished = true;
    });
    ProgressView view(terminal);
    simdjson::dom::parser parser;
    // Until the reply came, and then the events already on their way (they come on another
    // connection, so they may arrive after the reply).
    bool draining = false;
    auto drainUntil = ProgressMeter::Clock::time_point::max();
    while (watcher && ProgressMeter::Clock::now() < drainUntil) {
        if (finished && !draining) {
            draining = true;
            drainUntil = ProgressMeter::Clock::now() + 1s;
        }
        auto n = watcher->nextNotification(draining ? 50ms : 200ms);
        if (!n) {
            if (n.error().kind() == ErrorKind::Timeout && !draining) continue;
            break;  // no more progress; the pull goes on
        }
        if (!*n) break;
        simdjson::dom::object ev;
        if ((*n)->method != "event" || !parse(parser, (*n)->params, ev)) continue;
        if (str(ev, "topic") != "image.progress" || str(ev, "url") != inv.url) continue;
        auto received = num(ev, "received");
        if (received) view.update(*received, num(ev, "total"));
    }
    caller.join();
    view.finish();
    if (!*result) return io.reportError(result->error());
    if (io.json) {
        std::printf("%s\n", (*result)->c_str());
        return kExitOk;
    }
    return printImagePulled(**result);
}

}  // namespace

Result<ImageInvocation> parseImageCommand(const std::vector<std::string>& args)
{
    if (args.size() < 2) return usage("image needs a command: pull, list, inspect or rm");
    const std::string& sub = args[1];
    if (sub == "pull") {
        auto inv = parsePull(args);
        if (!inv) return inv;
        inv->command = "pull";
        inv->method = "image.pull";
        return inv;
    }
    ImageInvocation inv;
    inv.command = sub;
    if (sub == "list" || sub == "ls") {
        if (args.size() != 2) return usage("image list takes no arguments");
        inv.command = "list";
        inv.method = "image.list";
        inv.params = "{}";
        return inv;
    }
    if (sub == "inspect") {
        if (args.size() != 3 || args[2].empty() || args[2][0] == '-')
            return usage("image inspect needs one image: vmrctl image inspect PATH|NAME");
        inv.method = "image.inspect";
        json::Writer w;
        w.beginObject().field("path", pathOrName(args[2])).endObject();
        inv.params = w.take();
        return inv;
    }
    if (sub == "rm" || sub == "remove") {
        if (args.size() != 3 || args[2].empty() || args[2][0] == '-')
            return usage("image rm needs one image name: vmrctl image rm NAME");
        inv.command = "rm";
        inv.method = "image.remove";
        json::Writer w;
        w.beginObject().field("name", args[2]).endObject();
        inv.params = w.take();
        return inv;
    }
    return usage("image: unknown command `" + sub + "` (pull, list, inspect or rm)");
}

std::string formatBytes(uint64_t n)
{
    static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    if (n < 1024) return std::to_string(n) + " B";
    double v = static_cast<double>(n);
    size_t u = 0;
    while (v >= 1024 && u + 1 < std::size(kUnits)) {
        v /= 1024;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
    return buf;
}

void ProgressMeter::update(uint64_t received, std::optional<uint64_t> total, Clock::time_point now)
{
    received_ = received;
    total_ = total;
    if (last_ == Clock::time_point{}) {
        last_ = start_;
        lastBytes_ = 0;
    }
    double dt = std::chrono::duration<double>(now - last_).count();
    if (dt < 0.5 || received < lastBytes_) return;  // too soon to tell, or restarted
    double sample = static_cast<double>(received - lastBytes_) / dt;
    rate_ = rate_ == 0 ? sample : 0.7 * rate_ + 0.3 * sample;
    last_ = now;
    lastBytes_ = received;
}

std::string ProgressMeter::line() const
{
    std::string out;
    if (total_ && *total_ > 0) {
        char pct[8];
        std::snprintf(pct, sizeof pct, "%3d%%",
                      static_cast<int>(std::min<uint64_t>(100, received_ * 100 / *total_)));
        out = std::string(pct) + "  " + formatBytes(received_) + " / " + formatBytes(*total_);
    } else {
        out = formatBytes(received_);
    }
    if (rate_ > 0) {
        out += "  " + formatBytes(static_cast<uint64_t>(rate_)) + "/s";
        if (total_ && *total_ >= received_)
            out += "  ETA " + formatDuration(static_cast<double>(*total_ - received_) / rate_);
    }
    return out;
}

std::string ProgressMeter::bar(size_t width) const
{
    size_t filled = 0;
    if (total_ && *total_ > 0)
        filled = static_cast<size_t>(std::min<uint64_t>(received_, *total_) * width / *total_);
    std::string bar(1, '[');
    bar.append(filled, '#').append(width - filled, '-').append("] ");
    return bar + line();
}

int printImageList(const std::string& resultJson)
{
    simdjson::dom::parser p;
    simdjson::dom::object obj;
    simdjson::dom::array images;
    if (!parse(p, resultJson, obj) || obj.at_key("images").get(images) != simdjson::SUCCESS)
        return unreadable();
    std::vector<std::vector<std::string>> rows = {{"NAME", "SIZE", "FORMAT", "PATH"}};
    for (simdjson::dom::element el : images) {
        simdjson::dom::object img;
        if (el.get(img) != simdjson::SUCCESS) return unreadable();
        rows.push_back({str(img, "name"), bytes(img, "size"), str(img, "format"), str(img, "path")});
    }
    std::fputs(formatTable(rows).c_str(), stdout);
    return kExitOk;
}

int printImageInspect(const std::string& resultJson)
{
    simdjson::dom::parser p;
    simdjson::dom::object obj;
    if (!parse(p, resultJson, obj)) return unreadable();
    auto vsize = num(obj, "virtual_size");
    bool dirty = false;
    if (obj.at_key("dirty").get(dirty) != simdjson::SUCCESS) dirty = false;
    std::vector<std::vector<std::string>> rows = {
        {"path:", str(obj, "path")},
        {"format:", str(obj, "format")},
        {"virtual size:", vsize ? formatBytes(*vsize) + " (" + std::to_string(*vsize) + " bytes)" : "-"},
        {"disk size:", bytes(obj, "actual_size")},
        {"backing file:", str(obj, "backing_file")},
        {"backing format:", str(obj, "backing_format")},
        {"dirty:", dirty ? "yes" : "no"},
    };
    std::fputs(formatTable(rows).c_str(), stdout);
    return kExitOk;
}

int printImagePulled(const std::string& resultJson)
{
    simdjson::dom::parser p;
    simdjson::dom::object obj;
    if (!parse(p, resultJson, obj)) return unreadable();
    std::printf("%s: %s, %s (virtual %s), sha256 %s\n%s\n", str(obj, "name").c_str(),
                str(obj, "format").c_str(), bytes(obj, "size").c_str(), bytes(obj, "virtual_size").c_str(),
                str(obj, "sha256").c_str(), str(obj, "path").c_str());
    return kExitOk;
}

int runImageCommand(const ImageInvocation& inv, const ImageIo& io)
{
    if (inv.command == "pull") return runPull(inv, io);
    auto client = io.connect();
    if (!client) return io.reportError(client.error());
    auto r = client->call(inv.method, inv.params, std::chrono::minutes(2));
    if (!r) return io.reportError(r.error());
    if (io.json) {
        std::printf("%s\n", r->c_str());
        return kExitOk;
    }
    if (inv.command == "list") return printImageList(*r);
    if (inv.command == "inspect") return printImageInspect(*r);
    simdjson::dom::parser p;
    simdjson::dom::object obj;
    if (!parse(p, *r, obj)) return unreadable();
    std::printf("Removed image %s (%s)\n", str(obj, "removed").c_str(), str(obj, "path").c_str());
    return kExitOk;
}

}  // namespace vmr::ctl
