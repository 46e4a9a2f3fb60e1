#include "vmrd/vmfile_methods.h"

#include "base/json.h"
#include "reactor/await.h"
#include "store/names.h"
#include "vm/provisioning.h"
#include "vmrd/vm_methods.h"

#include <simdjson.h>

#include <memory>
#include <set>

namespace vmr::vmrd {

namespace {

using reactor::Task;

// A VMFile call waits this long for its VMs at most (an image download included); the VMs'
// own operations have their own, shorter deadlines.
constexpr auto kCallLimit = std::chrono::hours(24);
constexpr auto kStopTimeout = std::chrono::seconds(30);

// One `vm` block of the VMFile, as vmrctl sent it.
struct Definition {
    CreateParams create;
    std::string steps;  // normalised provisioning steps; empty: none
};

// Who called and what with: everything a per-VM task needs, by value or long-lived pointer.
struct Ctx {
    rpc::Server* server = nullptr;
    vm::Manager* manager = nullptr;
    image::Cache* cache = nullptr;
    rpc::Peer peer;
    std::string file;

    void say(std::string_view vm, std::string_view message) const
    {
        json::Writer w;
        w.beginObject().field("vm", vm).field("message", message).endObject();
        server->notify(peer.connection, "vmfile.progress", w.str());
    }
};

// The per-VM tasks of one call run side by side; the last one to finish fulfils `done`.
struct Batch {
    std::vector<VmfileOutcome> outcomes;
    size_t left = 0;
    reactor::Completion<bool> done;
};

bool isHex64(std::string_view s)
{
    if (s.size() != 64) return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

Result<std::string> fileParam(const rpc::Params& p)
{
    auto file = p.string("file");
    if (!file) return std::move(file).error();
    if (file->empty() || file->front() != '/')
        return Error(ErrorKind::InvalidParams,
                     "\"file\" must be the VMFile's absolute path, not \"" + *file + "\"",
                     "vmrctl sends it; a script calling vmfile.* gives the absolute path of VMFile.kdl");
    return std::move(*file);
}

// "vms": an array of vm.create params objects, one per VM, names unique.
Result<std::vector<Definition>> definitionsParam(const rpc::Params& p, const std::string& file,
                                                 const std::string& sha256)
{
    auto raw = p.optRaw("vms");
    if (!raw) return std::move(raw).error();
    simdjson::dom::parser parser;
    simdjson::dom::array arr;
    if (!*raw || parser.parse(**raw).get_array().get(arr) != simdjson::SUCCESS)
        return Error(ErrorKind::InvalidParams,
                     "\"vms\" must be an array of VM definitions (vm.create params)");
    std::vector<Definition> out;
    std::set<std::string, std::less<>> names;
    size_t index = 0;
    for (simdjson::dom::element el : arr) {
        std::string where = "\"vms\"[" + std::to_string(index++) + "]";
        if (!el.is_object())
            return Error(ErrorKind::InvalidParams, where + " must be an object of vm.create params");
        auto params = rpc::Params::parse(simdjson::to_string(el));
        if (!params)
            return Error(ErrorKind::InvalidParams, where + " cannot be read").causedBy(params.error());
        auto create = parseCreateParams(*params);
        if (!create)
            return Error(create.error().kind(), where + ": " + create.error().message(),
                         create.error().hint());
        vm::Manager::CreateSpec& spec = create->spec;
        if (!spec.vmfile.empty() && spec.vmfile != file)
            return Error(ErrorKind::InvalidParams,
                         where + " says it comes from " + spec.vmfile + ", not from \"file\" " + file);
        spec.vmfile = file;
        if (spec.vmfileSha256.empty()) spec.vmfileSha256 = sha256;
        if (!names.insert(spec.name).second)
            return Error(ErrorKind::InvalidParams, "VM \"" + spec.name + "\" is defined twice in \"vms\"");
        Definition d;
        if (!spec.provision.empty()) {
            auto steps = vm::normalizeSteps(spec.provision);
            if (!steps)
                return Error(steps.error().kind(), "VM \"" + spec.name + "\": " + steps.error().message(),
                             steps.error().hint());
            if (*steps != "[]") d.steps = *steps;
        }
        d.create = std::move(*create);
        out.push_back(std::move(d));
    }
    if (out.empty())
        return Error(ErrorKind::InvalidParams, "\"vms\" is empty: there is no VM to act on",
                     "A VMFile defines at least one vm block; check `--name` against `vmrctl check`");
    return out;
}

// A VMFile acts only on the VMs it created, never on a namesake made by hand or by another file.
Result<void> checkFromFile(const store::VmRecord& rec, const std::string& file, ErrorKind kind,
                           const std::string& hint)
{
    if (rec.vmfile == file) return success();
    std::string origin = rec.vmfile.empty() ? "was not created from a VMFile" : "comes from " + rec.vmfile;
    return Error(kind, "A VM named \"" + rec.name + "\" exists but " + origin + ", not from " + file, hint);
}

vm::Manager::ProvisionCallbacks provisionCallbacks(const Ctx& ctx, const std::string& vmName)
{
    rpc::Server* srv = ctx.server;
    uint64_t conn = ctx.peer.connection;
    vm::Manager::ProvisionCallbacks cb;
    cb.onStep = [srv, conn, vmName](size_t step, size_t total, std::string_view description) {
        json::Writer w;
        w.beginObject()
            .field("vm", vmName)
            .field("step", step)
            .field("total", total)
            .field("description", description);
        w.endObject();
        srv->notify(conn, "provision.step", w.str());
    };
    cb.onOutput = [srv, conn, vmName](size_t step, bool err, std::string_view data) {
        json::Writer w;
        w.beginObject()
            .field("vm", vmName)
            .field("step", step)
            .field("stream", err ? "stderr" : "stdout")
            .field("data", data);
        w.endObject();
        srv->notify(conn, "provision.output", w.str());
    };
    return cb;
}

Task<Result<void>> provisionSteps(Ctx ctx, std::string name, std::string steps)
{
    ctx.say(name, "provisioning");
    vm::Manager::ProvisionCallbacks cb = provisionCallbacks(ctx, name);
    auto ran = co_await ctx.manager->provision(name, steps, std::move(cb));
    if (!ran) co_return Unexpected(std::move(ran).error());
    ctx.say(name, "provisioned (" + std::to_string(*ran) + (*ran == 1 ? " step)" : " steps)"));
    co_return success();
}

// up for one VM: running → skipped; paused → resumed; present → started (and provisioned);
// absent → created, started and provisioned.
Task<Result<void>> upOne(Ctx ctx, Definition def, bool provision, VmfileOutcome* out)
{
    const std::string name = def.create.spec.name;
    const store::VmRecord* rec = ctx.manager->find(name);
    if (rec != nullptr) {
        VMR_CO_TRY(checkFromFile(
            *rec, ctx.file, ErrorKind::VmExists,
            "Rename the VM in the VMFile, or remove the other one with `vmrctl destroy " + name + "`"));
        if (!def.create.spec.vmfileSha256.empty() && rec->vmfileSha256 != def.create.spec.vmfileSha256)
            ctx.say(name, "the VMFile changed since this VM was created; `vmrctl reload` re-creates it");
        const std::string state = rec->state;
        if (state == "running") {
            out->action = "skipped";
            ctx.say(name, "already running: skipped");
            co_return success();
        }
        if (state == "paused") {
            auto resumed = co_await ctx.manager->resume(name);
            if (!resumed) co_return Unexpected(std::move(resumed).error());
            out->action = "resumed";
            ctx.say(name, "was paused: resumed");
            co_return success();
        }
        ctx.say(name, "is " + state + ": starting");
    } else {
        ctx.say(name,
                def.create.imageUrl.empty() ? "creating" : "creating (image " + def.create.imageUrl + ")");
        auto created =
            co_await createVm(*ctx.server, *ctx.manager, *ctx.cache, ctx.peer, std::move(def.create));
        if (!created) co_return Unexpected(std::move(created).error());
        out->action = "created";
        ctx.say(name, "created");
    }
    auto started = co_await ctx.manager->start(name);
    if (!started) co_return Unexpected(std::move(started).error());
    if (out->action.empty()) out->action = "started";
    ctx.say(name, "started");
    if (provision && !def.steps.empty()) {
        VMR_CO_TRY(co_await provisionSteps(ctx, name, def.steps));
    }
    co_return success();
}

// down for one VM: stop it (or destroy it); absent → nothing to do.
Task<Result<void>> downOne(Ctx ctx, std::string name, bool destroy, bool force, VmfileOutcome* out)
{
    const store::VmRecord* rec = ctx.manager->find(name);
    if (rec == nullptr) {
        out->action = "absent";
        ctx.say(name, "not created: nothing to do");
        co_return success();
    }
    VMR_CO_TRY(checkFromFile(
        *rec, ctx.file, ErrorKind::InvalidArgument,
        "Leaving it alone; act on it by name: `vmrctl stop " + name + "` or `vmrctl destroy " + name + "`"));
    if (destroy) {
        auto done = co_await ctx.manager->destroy(name);
        if (!done) co_return Unexpected(std::move(done).error());
        out->action = "destroyed";
        ctx.say(name, "destroyed");
        co_return success();
    }
    const std::string state = rec->state;
    if (state != "running" && state != "paused" && state != "starting") {
        out->action = "skipped";
        ctx.say(name, "already " + state + ": skipped");
        co_return success();
    }
    ctx.say(name, force ? "stopping (forced)" : "stopping");
    auto stopped = co_await ctx.manager->stop(name, force, kStopTimeout);
    if (!stopped) co_return Unexpected(std::move(stopped).error());
    out->action = "stopped";
    ctx.say(name, "stopped");
    co_return success();
}

// provision for one VM: its definition's steps, on a running VM.
Task<Result<void>> provisionOne(Ctx ctx, Definition def, VmfileOutcome* out)
{
    const std::string name = def.create.spec.name;
    const store::VmRecord* rec = ctx.manager->find(name);
    if (rec == nullptr)
        co_return Error(ErrorKind::VmNotFound, "VM \"" + name + "\" is not created yet",
                        "Create, start and provision it with `vmrctl up`");
    VMR_CO_TRY(checkFromFile(*rec, ctx.file, ErrorKind::InvalidArgument,
                             "Give its steps by name instead: `vmrctl provision " + name + " --shell CMD`"));
    if (rec->state != "running")
        co_return Error(ErrorKind::VmBadState, "VM \"" + name + "\" is " + rec->state + ", not running",
                        "Start and provision it with `vmrctl up`");
    if (def.steps.empty()) {
        out->action = "skipped";
        ctx.say(name, "no provisioners: skipped");
        co_return success();
    }
    VMR_CO_TRY(co_await provisionSteps(ctx, name, def.steps));
    out->action = "provisioned";
    co_return success();
}

Task<void> runSlot(std::shared_ptr<Batch> batch, size_t slot, Ctx ctx, Task<Result<void>> work)
{
    auto r = co_await work;
    VmfileOutcome& out = batch->outcomes[slot];
    if (!r) {
        out.error = std::move(r).error();
        ctx.say(out.name, "failed: " + out.error->what());
    }
    if (--batch->left == 0) batch->done.fulfil(true);
}

// Run every VM's task side by side; the outcomes, in the order of `batch->outcomes`.
Task<Result<std::string>> runAll(Ctx ctx, std::shared_ptr<Batch> batch, std::vector<Task<Result<void>>> work)
{
    batch->left = work.size();
    for (size_t i = 0; i < work.size(); ++i)
        reactor::spawnDetached(runSlot(batch, i, ctx, std::move(work[i])));
    auto all = co_await reactor::awaitWithTimeout(ctx.cache->reactor(), batch->done, kCallLimit);
    if (!all) {
        co_return Error(ErrorKind::Timeout, std::to_string(batch->left) + " VMs of " + ctx.file +
                                                " are still busy after 24 hours");
    }
    auto combined = combinedError(batch->outcomes);
    if (!combined) co_return Unexpected(std::move(combined).error());
    co_return outcomesJson(ctx.file, batch->outcomes);
}

std::shared_ptr<Batch> newBatch(const std::vector<std::string>& names)
{
    auto batch = std::make_shared<Batch>();
    for (const auto& n : names) {
        VmfileOutcome o;
        o.name = n;
        batch->outcomes.push_back(std::move(o));
    }
    return batch;
}

Task<Result<std::string>> up(Ctx ctx, rpc::Params p)
{
    VMR_CO_TRY(p.allowOnly({"file", "sha256", "vms", "provision"}));
    auto file = fileParam(p);
    if (!file) co_return std::move(file).error();
    ctx.file = *file;
    auto sha = p.string("sha256");
    if (!sha) co_return std::move(sha).error();
    if (!isHex64(*sha))
        co_return Error(ErrorKind::InvalidParams,
                        "\"sha256\" must be 64 lowercase hex digits, the VMFile's SHA-256");
    auto provision = p.optBool("provision");
    if (!provision) co_return std::move(provision).error();
    auto defs = definitionsParam(p, ctx.file, *sha);
    if (!defs) co_return std::move(defs).error();
    std::vector<std::string> names;
    for (const auto& d : *defs) names.push_back(d.create.spec.name);
    auto batch = newBatch(names);
    std::vector<Task<Result<void>>> work;
    for (size_t i = 0; i < defs->size(); ++i)
        work.push_back(upOne(ctx, std::move((*defs)[i]), provision->value_or(true), &batch->outcomes[i]));
    co_return co_await runAll(ctx, batch, std::move(work));
}

Task<Result<std::string>> down(Ctx ctx, rpc::Params p)
{
    VMR_CO_TRY(p.allowOnly({"file", "names", "destroy", "force"}));
    auto file = fileParam(p);
    if (!file) co_return std::move(file).error();
    ctx.file = *file;
    auto destroy = p.optBool("destroy");
    if (!destroy) co_return std::move(destroy).error();
    auto force = p.optBool("force");
    if (!force) co_return std::move(force).error();
    auto raw = p.optRaw("names");
    if (!raw) co_return std::move(raw).error();
    std::vector<std::string> names;
    std::set<std::string, std::less<>> seen;
    simdjson::dom::parser parser;
    simdjson::dom::array arr;
    if (!*raw || parser.parse(**raw).get_array().get(arr) != simdjson::SUCCESS)
        co_return Error(ErrorKind::InvalidParams, "\"names\" must be an array of the VMFile's VM names");
    for (simdjson::dom::element el : arr) {
        std::string_view n;
        if (el.get_string().get(n) != simdjson::SUCCESS)
            co_return Error(ErrorKind::InvalidParams, "\"names\" must hold VM names (strings)");
        std::string name(n);
        VMR_CO_TRY(store::validateVmName(name));
        if (seen.insert(name).second) names.push_back(std::move(name));
    }
    if (names.empty())
        co_return Error(ErrorKind::InvalidParams, "\"names\" is empty: there is no VM to act on");
    auto batch = newBatch(names);
    std::vector<Task<Result<void>>> work;
    for (size_t i = 0; i < names.size(); ++i)
        work.push_back(
            downOne(ctx, names[i], destroy->value_or(false), force->value_or(false), &batch->outcomes[i]));
    co_return co_await runAll(ctx, batch, std::move(work));
}

Task<Result<std::string>> provisionAll(Ctx ctx, rpc::Params p)
{
    VMR_CO_TRY(p.allowOnly({"file", "sha256", "vms"}));
    auto file = fileParam(p);
    if (!file) co_return std::move(file).error();
    ctx.file = *file;
    auto sha = p.optString("sha256");
    if (!sha) co_return std::move(sha).error();
    auto defs = definitionsParam(p, ctx.file, sha->value_or(""));
    if (!defs) co_return std::move(defs).error();
    std::vector<std::string> names;
    for (const auto& d : *defs) names.push_back(d.create.spec.name);
    auto batch = newBatch(names);
    std::vector<Task<Result<void>>> work;
    for (size_t i = 0; i < defs->size(); ++i)
        work.push_back(provisionOne(ctx, std::move((*defs)[i]), &batch->outcomes[i]));
    co_return co_await runAll(ctx, batch, std::move(work));
}

}  // namespace

std::string outcomesJson(const std::string& file, const std::vector<VmfileOutcome>& outcomes)
{
    json::Writer w;
    w.beginObject().field("file", file).key("vms").beginArray();
    for (const auto& o : outcomes) {
        w.beginObject().field("name", o.name).field("action", o.action.empty() ? "none" : o.action);
        w.field("ok", !o.error.has_value());
        if (o.error) {
            w.key("error").beginObject().field("kind", o.error->kindName()).field("message", o.error->what());
            if (!o.error->hint().empty()) w.field("hint", o.error->hint());
            w.endObject();
        }
        w.endObject();
    }
    w.endArray().endObject();
    return w.take();
}

Result<void> combinedError(const std::vector<VmfileOutcome>& outcomes)
{
    const Error* first = nullptr;
    size_t failed = 0;
    std::string detail;
    for (const auto& o : outcomes) {
        if (!o.error) continue;
        if (first == nullptr) first = &*o.error;
        ++failed;
        detail += (failed > 1 ? "; " : "") + o.name + ": " + o.error->what();
    }
    if (first == nullptr) return success();
    std::string message =
        failed == 1 && outcomes.size() == 1
            ? "VM " + detail
            : std::to_string(failed) + " of " + std::to_string(outcomes.size()) + " VMs failed: " + detail;
    return Error(first->kind(), message, first->hint());
}

void registerVmfileMethods(rpc::Server& server, vm::Manager& manager, image::Cache& cache)
{
    Ctx base;
    base.server = &server;
    base.manager = &manager;
    base.cache = &cache;
    server.addMethod("vmfile.up", rpc::Method{.async =
                                                  [base](rpc::Peer peer, rpc::Params p) {
                                                      Ctx ctx = base;
                                                      ctx.peer = peer;
                                                      return up(std::move(ctx), std::move(p));
                                                  },
                                              .mutating = true});
    server.addMethod("vmfile.down", rpc::Method{.async =
                                                    [base](rpc::Peer peer, rpc::Params p) {
                                                        Ctx ctx = base;
                                                        ctx.peer = peer;
                                                        return down(std::move(ctx), std::move(p));
                                                    },
                                                .mutating = true});
    server.addMethod("vmfile.provision", rpc::Method{.async =
                                                         [base](rpc::Peer peer, rpc::Params p) {
                                                             Ctx ctx = base;
                                                             ctx.peer = peer;
                                                             return provisionAll(std::move(ctx),
                                                                                 std::move(p));
                                                         },
                                                     .mutating = true});
}

}  // namespace vmr::vmrd
