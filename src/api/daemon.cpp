// The daemon's own actions: vmr.version, vmr.ping, vmr.methods and events.subscribe.

#include "api/action.h"

#include "config.h"

#include <simdjson.h>

#include <unistd.h>

#include <memory>
#include <set>

namespace vmr::api {

namespace {

using reactor::Task;

constexpr int kApiVersion = 1;

struct Subscription {
    std::set<std::string> topics;  // empty: all
    std::string vm;                // empty: every VM
};

Result<Subscription> parseSubscribe(const rpc::Params& p)
{
    VMR_TRY(p.allowOnly({"topics", "vm"}));
    Subscription sub;
    VMR_TRY_ASSIGN(auto raw, p.optRaw("topics"));
    if (raw) {
        Error bad(ErrorKind::InvalidParams, "Parameter `topics` must be an array of strings",
                  "For example: {\"topics\": [\"vm.state\"]}");
        simdjson::dom::parser parser;
        simdjson::dom::array arr;
        if (parser.parse(*raw).get(arr) != simdjson::SUCCESS) return bad;
        for (auto t : arr) {
            std::string_view s;
            if (t.get(s) != simdjson::SUCCESS) return bad;
            sub.topics.emplace(s);
        }
    }
    VMR_TRY_ASSIGN(auto vm, p.optString("vm"));
    sub.vm = vm.value_or("");
    return sub;
}

std::string writeVersion(const Services& s, const NoParams&)
{
    json::Writer w;
    w.beginObject()
        .field("version", VMR_VERSION)
        .field("api", kApiVersion)
        .field("reactor", s.reactorName)
        .field("mode", s.mode)
        .field("pid", static_cast<long long>(::getpid()))
        .field("state_dir", s.stateDir)
        .key("features")
        .beginArray();
    // What this vmrd can do, not merely what it was linked with.
    w.value("io_uring");
    if (VMR_HAVE_UV) w.value("libuv");
    if (VMR_HAVE_CHV) w.value("cloud-hypervisor");
    if (VMR_HAVE_SSH) w.value("ssh");
    if (VMR_HAVE_ISO) w.value("cloud-init");
    w.value("events");
    w.value("socket-activation");
    w.endArray().endObject();
    return w.take();
}

}  // namespace

void registerDaemonActions(rpc::Server& server, Services& s)
{
    add(server, s, SyncAction<NoParams, NoParams>{"vmr.version", parseNoParams, passThrough, writeVersion});
    add(server, s,
        SyncAction<NoParams, NoParams>{
            "vmr.ping", parseNoParams, passThrough,
            [](const Services&, const NoParams&) { return std::string("{\"pong\":true}"); }});
    rpc::Server* srv = &server;
    server.addMethod("vmr.methods", rpc::Method{.sync = [srv](const rpc::Call&) -> Result<std::string> {
                         json::Writer w;
                         w.beginObject().key("methods").beginArray();
                         for (const auto& name : srv->methodNames()) w.value(name);
                         w.endArray().endObject();
                         return w.take();
                     }});
    // The reply goes out first, then the connection is marked: no event comes before it.
    auto pending = std::make_shared<std::map<uint64_t, Subscription>>();
    server.addMethod("events.subscribe",
                     rpc::Method{.sync = [pending](const rpc::Call& call) -> Result<std::string> {
                                     VMR_TRY_ASSIGN(Subscription sub, parseSubscribe(call.params));
                                     (*pending)[call.peer.connection] = std::move(sub);
                                     return std::string("{\"subscribed\":true}");
                                 },
                                 .after =
                                     [pending](rpc::Server& srv2, uint64_t conn, const rpc::Params&) {
                                         auto it = pending->find(conn);
                                         if (it == pending->end()) return;
                                         srv2.subscribe(conn, std::move(it->second.topics),
                                                        std::move(it->second.vm));
                                         pending->erase(it);
                                     }});
}

}  // namespace vmr::api
