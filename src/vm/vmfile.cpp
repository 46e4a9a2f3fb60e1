#include "vm/vmfile.h"

#include <memory>

namespace vmr::vm {

namespace {

using model::VmState;
using reactor::Task;

// A VMFile call waits this long for its VMs at most (an image download included); the VMs'
// own operations have their own, shorter deadlines.
constexpr auto kCallLimit = std::chrono::hours(24);
constexpr auto kStopTimeout = std::chrono::seconds(30);

// The per-VM tasks of one call run side by side; the last one to finish fulfils `done`.
struct Batch {
    std::vector<VmfileOutcome> outcomes;
    size_t left = 0;
    reactor::Completion<bool> done;
};

// A VMFile acts only on the VMs it created, never on a namesake made by hand or by another file.
Result<void> checkFromFile(const store::VmRecord& rec, const std::string& file, ErrorKind kind,
                           const std::string& hint)
{
    if (rec.spec.vmfile == file) return success();
    std::string origin =
        rec.spec.vmfile.empty() ? "was not created from a VMFile" : "comes from " + rec.spec.vmfile;
    return Error(kind, "A VM named \"" + rec.name() + "\" exists but " + origin + ", not from " + file, hint);
}

std::string_view stateWord(VmState s)
{
    return model::wordOf(s);
}

Task<Result<void>> provisionSteps(Manager& m, const VmfileContext& ctx, const model::VmSpec& spec)
{
    ctx.say(spec.name, "provisioning");
    VMR_CO_TRY_ASSIGN(size_t ran, co_await m.provision(spec.name, spec.provision,
                                                       ctx.provisionCallbacks(spec.name), ctx.caller));
    ctx.say(spec.name, "provisioned (" + std::to_string(ran) + (ran == 1 ? " step)" : " steps)"));
    co_return success();
}

Task<Result<void>> upOne(Manager& m, VmfileContext ctx, model::VmSpec spec, bool provision,
                         VmfileOutcome* out)
{
    const std::string name = spec.name;
    if (const store::VmRecord* rec = m.find(name)) {
        VMR_CO_TRY(checkFromFile(
            *rec, ctx.file, ErrorKind::VmExists,
            "Rename the VM in the VMFile, or remove the other one with `vmrctl destroy " + name + "`"));
        if (!spec.vmfileSha256.empty() && rec->spec.vmfileSha256 != spec.vmfileSha256)
            ctx.say(name, "the VMFile changed since this VM was created; `vmrctl reload` re-creates it");
        VmState state = rec->runtime.state;
        if (state == VmState::Running) {
            out->action = "skipped";
            ctx.say(name, "already running: skipped");
            co_return success();
        }
        if (state == VmState::Paused) {
            VMR_CO_TRY(co_await m.resume(name));
            out->action = "resumed";
            ctx.say(name, "was paused: resumed");
            co_return success();
        }
        ctx.say(name, "is " + std::string(stateWord(state)) + ": starting");
    } else {
        ctx.say(name, spec.imageUrl.empty() ? "creating" : "creating (image " + spec.imageUrl + ")");
        Manager::CreateOptions opts;
        opts.caller = ctx.caller;
        if (ctx.onImageProgress)
            opts.onImageProgress = [ctx, url = spec.imageUrl](const image::Progress& p) {
                ctx.onImageProgress(url, p);
            };
        VMR_CO_TRY(co_await m.create(spec, opts));
        out->action = "created";
        ctx.say(name, "created");
    }
    VMR_CO_TRY(co_await m.start(name));
    if (out->action.empty()) out->action = "started";
    ctx.say(name, "started");
    if (provision && !spec.provision.empty()) VMR_CO_TRY(co_await provisionSteps(m, ctx, spec));
    co_return success();
}

Task<Result<void>> downOne(Manager& m, VmfileContext ctx, std::string name, bool destroy, bool force,
                           VmfileOutcome* out)
{
    const store::VmRecord* rec = m.find(name);
    if (rec == nullptr) {
        out->action = "absent";
        ctx.say(name, "not created: nothing to do");
        co_return success();
    }
    VMR_CO_TRY(checkFromFile(
        *rec, ctx.file, ErrorKind::InvalidArgument,
        "Leaving it alone; act on it by name: `vmrctl stop " + name + "` or `vmrctl destroy " + name + "`"));
    if (destroy) {
        VMR_CO_TRY(co_await m.destroy(name));
        out->action = "destroyed";
        ctx.say(name, "destroyed");
        co_return success();
    }
    VmState state = rec->runtime.state;
    if (state != VmState::Running && state != VmState::Paused && state != VmState::Starting) {
        out->action = "skipped";
        ctx.say(name, "already " + std::string(stateWord(state)) + ": skipped");
        co_return success();
    }
    ctx.say(name, force ? "stopping (forced)" : "stopping");
    VMR_CO_TRY(co_await m.stop(name, StopOptions{force, kStopTimeout}));
    out->action = "stopped";
    ctx.say(name, "stopped");
    co_return success();
}

Task<Result<void>> provisionOne(Manager& m, VmfileContext ctx, model::VmSpec spec, VmfileOutcome* out)
{
    const std::string name = spec.name;
    const store::VmRecord* rec = m.find(name);
    if (rec == nullptr)
        co_return Error(ErrorKind::VmNotFound, "VM \"" + name + "\" is not created yet",
                        "Create, start and provision it with `vmrctl up`");
    VMR_CO_TRY(checkFromFile(*rec, ctx.file, ErrorKind::InvalidArgument,
                             "Give its steps by name instead: `vmrctl provision " + name + " --shell CMD`"));
    if (rec->runtime.state != VmState::Running)
        co_return Error(
            ErrorKind::VmBadState,
            "VM \"" + name + "\" is " + std::string(stateWord(rec->runtime.state)) + ", not running",
            "Start and provision it with `vmrctl up`");
    if (spec.provision.empty()) {
        out->action = "skipped";
        ctx.say(name, "no provisioners: skipped");
        co_return success();
    }
    VMR_CO_TRY(co_await provisionSteps(m, ctx, spec));
    out->action = "provisioned";
    co_return success();
}

Task<void> runSlot(std::shared_ptr<Batch> batch, size_t slot, VmfileContext ctx, Task<Result<void>> work)
{
    auto r = co_await work;
    VmfileOutcome& out = batch->outcomes[slot];
    if (!r) {
        out.error = std::move(r).error();
        ctx.say(out.name, "failed: " + out.error->what());
    }
    if (--batch->left == 0) batch->done.fulfil(true);
}

std::shared_ptr<Batch> newBatch(const std::vector<std::string>& names)
{
    auto batch = std::make_shared<Batch>();
    for (const auto& n : names) batch->outcomes.push_back(VmfileOutcome{n, {}, std::nullopt});
    return batch;
}

// Run every VM's task side by side; the outcomes, in the batch's order.
Task<std::vector<VmfileOutcome>> runAll(Manager& m, const VmfileContext& ctx, std::shared_ptr<Batch> batch,
                                        std::vector<Task<Result<void>>> work)
{
    batch->left = work.size();
    for (size_t i = 0; i < work.size(); ++i)
        reactor::spawnDetached(runSlot(batch, i, ctx, std::move(work[i])));
    if (batch->left > 0) {
        auto all = co_await reactor::awaitWithTimeout(m.reactor(), batch->done, kCallLimit);
        if (!all)
            for (auto& o : batch->outcomes)
                if (o.action.empty() && !o.error)
                    o.error = Error(ErrorKind::Timeout, "still busy after 24 hours");
    }
    co_return batch->outcomes;
}

}  // namespace

Task<std::vector<VmfileOutcome>> vmfileUp(Manager& m, VmfileContext ctx, std::vector<model::VmSpec> specs,
                                          bool provision)
{
    std::vector<std::string> names;
    for (const auto& s : specs) names.push_back(s.name);
    auto batch = newBatch(names);
    std::vector<Task<Result<void>>> work;
    for (size_t i = 0; i < specs.size(); ++i)
        work.push_back(upOne(m, ctx, std::move(specs[i]), provision, &batch->outcomes[i]));
    co_return co_await runAll(m, ctx, batch, std::move(work));
}

Task<std::vector<VmfileOutcome>> vmfileDown(Manager& m, VmfileContext ctx, std::vector<std::string> names,
                                            bool destroy, bool force)
{
    auto batch = newBatch(names);
    std::vector<Task<Result<void>>> work;
    for (size_t i = 0; i < names.size(); ++i)
        work.push_back(downOne(m, ctx, names[i], destroy, force, &batch->outcomes[i]));
    co_return co_await runAll(m, ctx, batch, std::move(work));
}

Task<std::vector<VmfileOutcome>> vmfileProvision(Manager& m, VmfileContext ctx,
                                                 std::vector<model::VmSpec> specs)
{
    std::vector<std::string> names;
    for (const auto& s : specs) names.push_back(s.name);
    auto batch = newBatch(names);
    std::vector<Task<Result<void>>> work;
    for (size_t i = 0; i < specs.size(); ++i)
        work.push_back(provisionOne(m, ctx, std::move(specs[i]), &batch->outcomes[i]));
    co_return co_await runAll(m, ctx, batch, std::move(work));
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

}  // namespace vmr::vm
