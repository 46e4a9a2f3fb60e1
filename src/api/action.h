#pragma once

// The API layer (docs/architecture.md): one typed action per JSON-RPC method. An action is a
// params struct with a pure parse, a handler that takes the services and the call's context
// (who called, on which connection), and a writer for its typed result. Handlers are tested
// without a daemon; vmrd only registers them.

#include "base/json.h"
#include "base/result.h"
#include "console/registry.h"
#include "image/cache.h"
#include "reactor/reactor.h"
#include "rpc/params.h"
#include "rpc/server.h"
#include "vm/manager.h"

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace vmr::api {

// Who called, and how to reach them while the call runs.
struct CallContext {
    rpc::Peer peer;                 // SO_PEERCRED: pid, uid and gid of the caller
    rpc::Server* server = nullptr;  // for notifications to the caller; null in tests
    // A notification to the caller ("image.progress", "provision.output"...).
    void notify(std::string_view method, std::string_view paramsJson) const;
};

// What the handlers act on: borrowed, they outlive every call.
struct Services {
    vm::Manager& manager;
    image::Cache& cache;
    console::Registry& hubs;
    std::string templatesDir;
    // vmr.version's facts about the daemon.
    std::string mode;  // "system" | "user"
    std::string stateDir;
    std::string reactorName;
    // An event for subscribers: topic, VM (or empty), the event's own members ("\"k\":v,...").
    std::function<void(std::string_view topic, std::string_view vm, std::string_view fields)> publish;
};

// One verb: parse → run → write. A handler that never waits (vm.list, vmr.ping) is a
// SyncAction: it answers on the spot, without a coroutine.
template <typename P, typename R>
struct SyncAction {
    std::string_view method;
    Result<P> (*parse)(const rpc::Params&);
    Result<R> (*run)(Services&, const CallContext&, P);
    std::string (*write)(const Services&, const R&);
};

template <typename P, typename R>
struct Action {
    std::string_view method;
    Result<P> (*parse)(const rpc::Params&);
    reactor::Task<Result<R>> (*run)(Services&, CallContext, P);
    std::string (*write)(const Services&, const R&);
    bool mutating = false;  // logged with the caller's credentials
};

namespace detail {
template <typename P, typename R>
reactor::Task<Result<std::string>> invoke(Action<P, R> a, Services* s, CallContext ctx, rpc::Params params)
{
    VMR_CO_TRY_ASSIGN(P p, a.parse(params));
    VMR_CO_TRY_ASSIGN(R r, co_await a.run(*s, ctx, std::move(p)));
    co_return a.write(*s, r);
}
}  // namespace detail

template <typename P, typename R>
void add(rpc::Server& server, Services& s, Action<P, R> a)
{
    Services* sp = &s;
    rpc::Server* srv = &server;
    server.addMethod(std::string(a.method),
                     rpc::Method{.async =
                                     [a, sp, srv](rpc::Peer peer, rpc::Params p) {
                                         return detail::invoke(a, sp, CallContext{peer, srv}, std::move(p));
                                     },
                                 .mutating = a.mutating});
}

template <typename P, typename R>
void add(rpc::Server& server, Services& s, SyncAction<P, R> a)
{
    Services* sp = &s;
    rpc::Server* srv = &server;
    server.addMethod(std::string(a.method),
                     rpc::Method{.sync = [a, sp, srv](const rpc::Call& call) -> Result<std::string> {
                         VMR_TRY_ASSIGN(P p, a.parse(call.params));
                         VMR_TRY_ASSIGN(R r, a.run(*sp, CallContext{call.peer, srv}, std::move(p)));
                         return a.write(*sp, r);
                     }});
}

// Params of the methods that take none.
struct NoParams {};
Result<NoParams> parseNoParams(const rpc::Params& p);
// A handler with nothing to do (the writer does the work, as for vm.list).
Result<NoParams> passThrough(Services&, const CallContext&, NoParams p);

// Params of the methods that name one VM and nothing else.
struct NameParams {
    std::string name;
};
Result<NameParams> parseName(const rpc::Params& p);
// The `name` member, checked against the naming rule.
Result<std::string> nameOf(const rpc::Params& p);

// The notifications calls stream to their caller: "provision.step"/"provision.output" {vm, ...}
// and "image.progress" {url, received, total}.
vm::Manager::ProvisionCallbacks provisionRelay(const CallContext& ctx, const std::string& vm);
void notifyImageProgress(const CallContext& ctx, const std::string& url, const image::Progress& p);

// Every method of the API, registered on `server`.
void registerAll(rpc::Server& server, Services& s);
void registerVmActions(rpc::Server& server, Services& s);
void registerVmfileActions(rpc::Server& server, Services& s);
void registerConsoleActions(rpc::Server& server, Services& s);
void registerImageActions(rpc::Server& server, Services& s);
void registerDaemonActions(rpc::Server& server, Services& s);

}  // namespace vmr::api
