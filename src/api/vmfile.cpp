// The VMFile actions: vmfile.up, vmfile.down and vmfile.provision (docs/vmfile.md). vmrctl reads
// and checks the VMFile as the caller and sends the resolved specs; the VMs are brought up side
// by side (vm/vmfile.h) and what happens is streamed to the caller:
//   "vmfile.progress"  {vm, message}   ("creating", "created", "already running: skipped"...)
//   "image.progress"   {url, received, total}   (an image_url being downloaded)
//   "provision.step" / "provision.output"   (as vm.provision, with "vm")
// The reply is {"file", "vms": [{name, action, ok, error?}]}; when any VM failed, the call fails
// instead, with an error naming each VM that failed.

#include "vm/vmfile.h"

#include "api/action.h"
#include "api/vm.h"
#include "model/names.h"

#include <simdjson.h>

#include <set>

namespace vmr::api {

namespace {

using reactor::Task;

struct VmfileParams {
    std::string file;
    std::vector<model::VmSpec> specs;  // up, provision
    std::vector<std::string> names;    // down
    bool provision = true;             // up
    bool destroy = false;              // down
    bool force = false;                // down
};

Result<std::string> fileParam(const rpc::Params& p)
{
    VMR_TRY_ASSIGN(std::string file, p.string("file"));
    if (file.empty() || file.front() != '/')
        return Error(ErrorKind::InvalidParams,
                     "\"file\" must be the VMFile's absolute path, not \"" + file + "\"",
                     "vmrctl sends it; a script calling vmfile.* gives the absolute path of VMFile.kdl");
    return file;
}

// "vms": an array of vm.create params objects, one per VM, names unique, from `file`.
Result<std::vector<model::VmSpec>> specsParam(const rpc::Params& p, const std::string& file,
                                              const std::string& sha)
{
    VMR_TRY_ASSIGN(auto raw, p.optRaw("vms"));
    simdjson::dom::parser parser;
    simdjson::dom::array arr;
    if (!raw || parser.parse(*raw).get_array().get(arr) != simdjson::SUCCESS)
        return Error(ErrorKind::InvalidParams,
                     "\"vms\" must be an array of VM definitions (vm.create params)");
    std::vector<model::VmSpec> out;
    std::set<std::string, std::less<>> names;
    size_t index = 0;
    for (simdjson::dom::element el : arr) {
        std::string where = "\"vms\"[" + std::to_string(index++) + "]";
        auto spec = model::specFromJson(simdjson::to_string(el));
        if (spec) {
            if (auto whole = model::checkSpec(*spec, true); !whole) spec = std::move(whole).error();
        }
        if (!spec)
            return Error(spec.error().kind(), where + ": " + spec.error().message(), spec.error().hint());
        if (!spec->vmfile.empty() && spec->vmfile != file)
            return Error(ErrorKind::InvalidParams,
                         where + " says it comes from " + spec->vmfile + ", not from \"file\" " + file);
        spec->vmfile = file;
        if (spec->vmfileSha256.empty()) spec->vmfileSha256 = sha;
        if (!names.insert(spec->name).second)
            return Error(ErrorKind::InvalidParams, "VM \"" + spec->name + "\" is defined twice in \"vms\"");
        out.push_back(std::move(*spec));
    }
    if (out.empty())
        return Error(ErrorKind::InvalidParams, "\"vms\" is empty: there is no VM to act on",
                     "A VMFile defines at least one vm block; check `--name` against `vmrctl check`");
    return out;
}

Result<VmfileParams> parseUp(const rpc::Params& p)
{
    VMR_TRY(p.allowOnly({"file", "sha256", "vms", "provision"}));
    VmfileParams out;
    VMR_TRY_ASSIGN(out.file, fileParam(p));
    VMR_TRY_ASSIGN(std::string sha, p.string("sha256"));
    if (!model::isSha256Hex(sha))
        return Error(ErrorKind::InvalidParams, "\"sha256\" must be 64 hex digits, the VMFile's SHA-256");
    VMR_TRY_ASSIGN(auto provision, p.optBool("provision"));
    out.provision = provision.value_or(true);
    VMR_TRY_ASSIGN(out.specs, specsParam(p, out.file, sha));
    return out;
}

Result<VmfileParams> parseProvisionAll(const rpc::Params& p)
{
    VMR_TRY(p.allowOnly({"file", "sha256", "vms"}));
    VmfileParams out;
    VMR_TRY_ASSIGN(out.file, fileParam(p));
    VMR_TRY_ASSIGN(auto sha, p.optString("sha256"));
    VMR_TRY_ASSIGN(out.specs, specsParam(p, out.file, sha.value_or("")));
    return out;
}

Result<VmfileParams> parseDown(const rpc::Params& p)
{
    VMR_TRY(p.allowOnly({"file", "names", "destroy", "force"}));
    VmfileParams out;
    VMR_TRY_ASSIGN(out.file, fileParam(p));
    VMR_TRY_ASSIGN(auto destroy, p.optBool("destroy"));
    VMR_TRY_ASSIGN(auto force, p.optBool("force"));
    out.destroy = destroy.value_or(false);
    out.force = force.value_or(false);
    VMR_TRY_ASSIGN(auto raw, p.optRaw("names"));
    simdjson::dom::parser parser;
    simdjson::dom::array arr;
    if (!raw || parser.parse(*raw).get_array().get(arr) != simdjson::SUCCESS)
        return Error(ErrorKind::InvalidParams, "\"names\" must be an array of the VMFile's VM names");
    std::set<std::string, std::less<>> seen;
    for (simdjson::dom::element el : arr) {
        std::string_view n;
        if (el.get_string().get(n) != simdjson::SUCCESS)
            return Error(ErrorKind::InvalidParams, "\"names\" must hold VM names (strings)");
        VMR_TRY(model::validateVmName(n));
        if (seen.emplace(n).second) out.names.emplace_back(n);
    }
    if (out.names.empty())
        return Error(ErrorKind::InvalidParams, "\"names\" is empty: there is no VM to act on");
    return out;
}

vm::VmfileContext context(const CallContext& ctx, const std::string& file)
{
    vm::VmfileContext v;
    v.caller = ctx.peer.credentials();
    v.file = file;
    v.say = [ctx](std::string_view vmName, std::string_view message) {
        json::Writer w;
        w.beginObject().field("vm", vmName).field("message", message).endObject();
        ctx.notify("vmfile.progress", w.str());
    };
    v.provisionCallbacks = [ctx](const std::string& vmName) { return provisionRelay(ctx, vmName); };
    v.onImageProgress = [ctx](const std::string& url, const image::Progress& pr) {
        notifyImageProgress(ctx, url, pr);
    };
    return v;
}

struct Outcomes {
    std::string file;
    std::vector<vm::VmfileOutcome> vms;
};

Result<Outcomes> finish(const std::string& file, std::vector<vm::VmfileOutcome> outcomes)
{
    VMR_TRY(vm::combinedError(outcomes));
    return Outcomes{file, std::move(outcomes)};
}

Task<Result<Outcomes>> up(Services& s, CallContext ctx, VmfileParams p)
{
    auto out = co_await vm::vmfileUp(s.manager, context(ctx, p.file), std::move(p.specs), p.provision);
    co_return finish(p.file, std::move(out));
}

Task<Result<Outcomes>> down(Services& s, CallContext ctx, VmfileParams p)
{
    auto out =
        co_await vm::vmfileDown(s.manager, context(ctx, p.file), std::move(p.names), p.destroy, p.force);
    co_return finish(p.file, std::move(out));
}

Task<Result<Outcomes>> provisionAll(Services& s, CallContext ctx, VmfileParams p)
{
    auto out = co_await vm::vmfileProvision(s.manager, context(ctx, p.file), std::move(p.specs));
    co_return finish(p.file, std::move(out));
}

std::string writeOutcomes(const Services&, const Outcomes& o)
{
    json::Writer w;
    w.beginObject().field("file", o.file).key("vms").beginArray();
    for (const auto& v : o.vms) {
        w.beginObject().field("name", v.name).field("action", v.action.empty() ? "none" : v.action);
        w.field("ok", !v.error.has_value());
        w.endObject();
    }
    w.endArray().endObject();
    return w.take();
}

}  // namespace

void registerVmfileActions(rpc::Server& server, Services& s)
{
    add(server, s, Action<VmfileParams, Outcomes>{"vmfile.up", parseUp, up, writeOutcomes, true});
    add(server, s, Action<VmfileParams, Outcomes>{"vmfile.down", parseDown, down, writeOutcomes, true});
    add(server, s,
        Action<VmfileParams, Outcomes>{"vmfile.provision", parseProvisionAll, provisionAll, writeOutcomes,
                                       true});
}

}  // namespace vmr::api
