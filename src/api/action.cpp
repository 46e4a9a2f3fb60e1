#include "api/action.h"

#include "model/names.h"

namespace vmr::api {

void CallContext::notify(std::string_view method, std::string_view paramsJson) const
{
    if (server != nullptr) server->notify(peer.connection, method, paramsJson);
}

Result<NoParams> parseNoParams(const rpc::Params& p)
{
    VMR_TRY(p.allowOnly({}));
    return NoParams{};
}

Result<NoParams> passThrough(Services&, const CallContext&, NoParams p)
{
    return p;
}

Result<std::string> nameOf(const rpc::Params& p)
{
    VMR_TRY_ASSIGN(std::string name, p.string("name"));
    VMR_TRY(model::validateVmName(name));
    return name;
}

Result<NameParams> parseName(const rpc::Params& p)
{
    VMR_TRY(p.allowOnly({"name"}));
    VMR_TRY_ASSIGN(std::string name, nameOf(p));
    return NameParams{std::move(name)};
}

vm::Manager::ProvisionCallbacks provisionRelay(const CallContext& ctx, const std::string& vm)
{
    vm::Manager::ProvisionCallbacks cb;
    cb.onStep = [ctx, vm](size_t step, size_t total, std::string_view description) {
        json::Writer w;
        w.beginObject()
            .field("vm", vm)
            .field("step", step)
            .field("total", total)
            .field("description", description);
        ctx.notify("provision.step", w.endObject().str());
    };
    cb.onOutput = [ctx, vm](size_t step, bool err, std::string_view data) {
        json::Writer w;
        w.beginObject().field("vm", vm).field("step", step).field("stream", err ? "stderr" : "stdout");
        ctx.notify("provision.output", w.field("data", data).endObject().str());
    };
    return cb;
}

void notifyImageProgress(const CallContext& ctx, const std::string& url, const image::Progress& p)
{
    json::Writer w;
    w.beginObject()
        .field("url", url)
        .field("received", p.received)
        .optionalField("total", p.total)
        .endObject();
    ctx.notify("image.progress", w.str());
}

void registerAll(rpc::Server& server, Services& s)
{
    registerDaemonActions(server, s);
    registerVmActions(server, s);
    registerVmfileActions(server, s);
    registerConsoleActions(server, s);
    registerImageActions(server, s);
}

}  // namespace vmr::api
