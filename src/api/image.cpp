// The image actions: image.pull, image.list, image.inspect, image.remove (docs/images.md).

#include "api/action.h"
#include "image/qemu_img.h"

namespace vmr::api {

namespace {

using reactor::Task;

// The metadata of <name>.json, with the path in front.
std::string entryJson(const image::ImageEntry& e)
{
    std::string meta = image::toJson(e);
    return "{\"path\":" + json::quote(e.path) + "," + meta.substr(1);
}

std::string writeEntry(const Services&, const image::ImageEntry& e)
{
    return entryJson(e);
}

Result<image::Cache::PullRequest> parsePull(const rpc::Params& p)
{
    VMR_TRY(p.allowOnly({"url", "name", "sha256"}));
    image::Cache::PullRequest req;
    VMR_TRY_ASSIGN(req.url, p.string("url"));
    VMR_TRY_ASSIGN(auto name, p.optString("name"));
    req.name = name.value_or("");
    VMR_TRY_ASSIGN(req.sha256, p.optString("sha256"));
    return req;
}

Task<Result<image::ImageEntry>> pull(Services& s, CallContext, image::Cache::PullRequest req)
{
    image::ProgressFn progress;
    if (s.publish) {
        progress = [publish = s.publish, url = json::quote(req.url),
                    name = json::quote(req.name)](const image::Progress& pr) {
            // Members only: the daemon's publish adds topic and time.
            std::string fields =
                "\"url\":" + url + ",\"name\":" + name + ",\"received\":" + std::to_string(pr.received) +
                ",\"total\":" + (pr.total ? std::to_string(*pr.total) : std::string("null")) +
                ",\"written\":" + std::to_string(pr.written);
            publish("image.progress", "", fields);
        };
    }
    co_return co_await s.cache.pull(std::move(req), std::move(progress), nullptr);
}

Result<std::vector<image::ImageEntry>> list(Services& s, const CallContext&, NoParams)
{
    return s.cache.list();
}

std::string writeList(const Services&, const std::vector<image::ImageEntry>& all)
{
    std::string out = "{\"images\":[";
    for (size_t i = 0; i < all.size(); ++i) {
        if (i > 0) out += ',';
        out += entryJson(all[i]);
    }
    return out + "]}";
}

// image.inspect {path} and image.remove {name}: one string each.
struct OneString {
    std::string value;
};

template <const char* Key>
Result<OneString> parseOne(const rpc::Params& p)
{
    VMR_TRY(p.allowOnly({Key}));
    VMR_TRY_ASSIGN(std::string v, p.string(Key));
    return OneString{std::move(v)};
}
constexpr char kPath[] = "path";
constexpr char kName[] = "name";

struct Inspected {
    std::string path;
    image::ImageInfo info;
};

Task<Result<Inspected>> inspect(Services& s, CallContext ctx, OneString p)
{
    std::string target = std::move(p.value);
    // A path is the caller's: qemu-img reads it with their rights. A cache image is vmrd's.
    std::optional<Credentials> as = ctx.peer.credentials();
    if (target.empty() || target.front() != '/') {
        as.reset();
        // A bare name is an image of the cache.
        auto e = s.cache.find(target);
        if (!e)
            co_return Error(ErrorKind::InvalidArgument,
                            "`" + target + "` is neither an absolute path nor an image in the cache",
                            "Give the absolute path of an image file, or a name from `vmrctl image list`");
        target = e->path;
    }
    VMR_CO_TRY_ASSIGN(image::ImageInfo info,
                      co_await image::inspect(s.cache.reactor(), target, std::move(as)));
    co_return Inspected{target, std::move(info)};
}

std::string writeInspected(const Services&, const Inspected& i)
{
    json::Writer w;
    w.beginObject()
        .field("path", i.path)
        .field("format", i.info.format)
        .field("virtual_size", static_cast<unsigned long long>(i.info.virtualSize));
    w.optionalField("actual_size", i.info.actualSize)
        .nullableField("backing_file", i.info.backingFilename)
        .nullableField("backing_format", i.info.backingFormat);
    w.field("dirty", i.info.dirty).endObject();
    return w.take();
}

Task<Result<image::ImageEntry>> remove(Services& s, CallContext, OneString p)
{
    VMR_CO_TRY_ASSIGN(image::ImageEntry e, s.cache.find(p.value));
    // Every overlay names its base image by path.
    std::vector<std::string> users;
    for (const store::VmRecord* rec : s.manager.list())
        if (rec->spec.image == e.path) users.push_back(rec->name());
    if (!users.empty()) {
        std::string names;
        for (const auto& v : users) names += (names.empty() ? "" : ", ") + v;
        co_return Error(ErrorKind::Busy,
                        "Image `" + p.value + "` is the base of VM" + (users.size() > 1 ? "s " : " ") + names,
                        "Destroy " + std::string(users.size() > 1 ? "those VMs" : "that VM") +
                            " first (`vmrctl destroy " + users.front() + "`)");
    }
    co_return s.cache.remove(p.value);
}

std::string writeRemoved(const Services&, const image::ImageEntry& e)
{
    json::Writer w;
    w.beginObject().field("removed", e.name).field("path", e.path).endObject();
    return w.take();
}

}  // namespace

void registerImageActions(rpc::Server& server, Services& s)
{
    add(server, s,
        Action<image::Cache::PullRequest, image::ImageEntry>{"image.pull", parsePull, pull, writeEntry,
                                                             true});
    add(server, s,
        SyncAction<NoParams, std::vector<image::ImageEntry>>{"image.list", parseNoParams, list, writeList});
    add(server, s, Action<OneString, Inspected>{"image.inspect", parseOne<kPath>, inspect, writeInspected});
    add(server, s,
        Action<OneString, image::ImageEntry>{"image.remove", parseOne<kName>, remove, writeRemoved, true});
}

}  // namespace vmr::api
