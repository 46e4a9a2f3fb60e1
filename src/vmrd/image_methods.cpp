#include "vmrd/image_methods.h"

#include "base/json.h"
#include "image/qemu_img.h"

#include <memory>
#include <utility>

namespace vmr::vmrd {

namespace {

using reactor::Task;

struct Context {
    image::Cache& cache;
    ImageHooks hooks;
};

void optUint(json::Writer& w, std::string_view key, const std::optional<uint64_t>& v)
{
    w.key(key);
    if (v)
        w.value(static_cast<unsigned long long>(*v));
    else
        w.null();
}

void optString(json::Writer& w, std::string_view key, const std::string& v)
{
    w.key(key);
    if (v.empty())
        w.null();
    else
        w.value(v);
}

Task<Result<std::string>> pull(std::shared_ptr<Context> ctx, rpc::Params p)
{
    auto allowed = p.allowOnly({"url", "name", "sha256"});
    if (!allowed) co_return std::move(allowed).error();
    image::Cache::PullRequest req;
    auto url = p.string("url");
    if (!url) co_return std::move(url).error();
    req.url = std::move(*url);
    auto name = p.optString("name");
    if (!name) co_return std::move(name).error();
    if (*name) req.name = std::move(**name);
    auto sha = p.optString("sha256");
    if (!sha) co_return std::move(sha).error();
    if (*sha) req.sha256 = std::move(**sha);

    std::string urlJson = json::quote(req.url);
    std::string nameJson = json::quote(req.name);
    image::ProgressFn progress;
    if (ctx->hooks.publish) {
        progress = [ctx, urlJson, nameJson](const image::Progress& pr) {
            // Members only: Daemon::publish adds topic and time.
            std::string fields = "\"url\":" + urlJson + ",\"name\":" + nameJson +
                                 ",\"received\":" + std::to_string(pr.received) + ",\"total\":" +
                                 (pr.total ? std::to_string(*pr.total) : std::string("null")) +
                                 ",\"written\":" + std::to_string(pr.written);
            ctx->hooks.publish("image.progress", fields);
        };
    }
    auto pulling = ctx->cache.pull(std::move(req), std::move(progress), nullptr);
    auto entry = co_await pulling;
    if (!entry) co_return std::move(entry).error();
    co_return imageJson(*entry);
}

Task<Result<std::string>> inspect(std::shared_ptr<Context> ctx, reactor::Reactor* r, rpc::Params p)
{
    auto allowed = p.allowOnly({"path"});
    if (!allowed) co_return std::move(allowed).error();
    auto path = p.string("path");
    if (!path) co_return std::move(path).error();
    std::string target = std::move(*path);
    if (target.empty() || target.front() != '/') {
        // A bare name is an image of the cache.
        auto e = ctx->cache.find(target);
        if (!e)
            co_return Error(ErrorKind::InvalidArgument,
                            "`" + target + "` is neither an absolute path nor an image in the cache",
                            "Give the absolute path of an image file, or a name from `vmrctl image list`");
        target = e->path;
    }
    auto inspecting = image::inspect(*r, target);
    auto info = co_await inspecting;
    if (!info) co_return std::move(info).error();
    json::Writer w;
    w.beginObject()
        .field("path", target)
        .field("format", info->format)
        .field("virtual_size", static_cast<unsigned long long>(info->virtualSize));
    optUint(w, "actual_size", info->actualSize);
    optString(w, "backing_file", info->backingFilename);
    optString(w, "backing_format", info->backingFormat);
    w.field("dirty", info->dirty).endObject();
    co_return w.take();
}

Result<std::string> remove(Context& ctx, const rpc::Params& p)
{
    VMR_TRY(p.allowOnly({"name"}));
    auto name = p.string("name");
    if (!name) return std::move(name).error();
    auto e = ctx.cache.find(*name);
    if (!e) return std::move(e).error();
    if (ctx.hooks.usedBy) {
        auto vms = ctx.hooks.usedBy(e->path);
        if (!vms.empty()) {
            std::string list;
            for (const auto& v : vms) list += (list.empty() ? "" : ", ") + v;
            return Error(ErrorKind::Busy,
                         "Image `" + *name + "` is the base of VM" + (vms.size() > 1 ? "s " : " ") + list,
                         "Destroy " + std::string(vms.size() > 1 ? "those VMs" : "that VM") +
                             " first (`vmrctl destroy " + vms.front() + "`)");
        }
    }
    auto removed = ctx.cache.remove(*name);
    if (!removed) return std::move(removed).error();
    json::Writer w;
    w.beginObject().field("removed", removed->name).field("path", removed->path).endObject();
    return w.take();
}

}  // namespace

std::string imageJson(const image::ImageEntry& e)
{
    // The metadata of <name>.json, with the path in front.
    std::string meta = image::toJson(e);
    return "{\"path\":" + json::quote(e.path) + "," + meta.substr(1);
}

void registerImageMethods(rpc::Server& server, image::Cache& cache, ImageHooks hooks)
{
    auto ctx = std::make_shared<Context>(Context{cache, std::move(hooks)});
    server.addMethod("image.pull",
                     rpc::Method{.async = [ctx](rpc::Peer, rpc::Params p) { return pull(ctx, std::move(p)); },
                                 .mutating = true});
    server.addMethod("image.list", rpc::Method{.sync = [ctx](const rpc::Call& call) -> Result<std::string> {
                         VMR_TRY(call.params.allowOnly({}));
                         auto all = ctx->cache.list();
                         if (!all) return std::move(all).error();
                         std::string out = "{\"images\":[";
                         for (size_t i = 0; i < all->size(); ++i) {
                             if (i > 0) out += ',';
                             out += imageJson((*all)[i]);
                         }
                         out += "]}";
                         return out;
                     }});
    reactor::Reactor* r = &cache.reactor();
    server.addMethod("image.inspect", rpc::Method{.async = [ctx, r](rpc::Peer, rpc::Params p) {
                         return inspect(ctx, r, std::move(p));
                     }});
    server.addMethod("image.remove",
                     rpc::Method{.sync = [ctx](const rpc::Call& call) { return remove(*ctx, call.params); },
                                 .mutating = true});
}

}  // namespace vmr::vmrd
