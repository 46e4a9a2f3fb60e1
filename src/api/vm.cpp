#include "api/vm.h"

#include "config/templates.h"
#include "model/names.h"

#include <array>

namespace vmr::api {

namespace {

using reactor::Task;

constexpr std::array<std::string_view, 2> kCreateOwn = {"template", "start"};

Result<model::VmSpec> decodeSpec(const std::string& json)
{
    model::ReadOptions opts;
    opts.alsoAllowed = kCreateOwn;
    return model::specFromJson(json, opts);
}

std::string writeRecord(const Services& s, const store::VmRecord& r)
{
    return recordJson(s.manager, r);
}

// The lifecycle verbs: a name in, the record out.
template <Task<Result<store::VmRecord>> (vm::Manager::*op)(std::string)>
Task<Result<store::VmRecord>> lifecycle(Services& s, CallContext, NameParams p)
{
    co_return co_await (s.manager.*op)(std::move(p.name));
}

Task<Result<store::VmRecord>> stop(Services& s, CallContext, StopParams p)
{
    co_return co_await s.manager.stop(std::move(p.name), p.opts);
}

Task<Result<std::string>> destroy(Services& s, CallContext, NameParams p)
{
    VMR_CO_TRY(co_await s.manager.destroy(p.name));
    co_return p.name;
}

Result<const store::VmRecord*> status(Services& s, const CallContext&, NameParams p)
{
    return s.manager.get(p.name);
}

Result<std::vector<config::Template>> templates(Services& s, const CallContext&, NoParams)
{
    return config::loadTemplates(s.templatesDir);
}

std::string writeTemplates(const Services& s, const std::vector<config::Template>& all)
{
    json::Writer w;
    w.beginObject().field("dir", s.templatesDir).key("templates").beginArray();
    for (const auto& t : all)
        w.beginObject()
            .field("name", t.name)
            .field("path", t.path)
            .key("params")
            .raw(t.paramsJson)
            .endObject();
    w.endArray().endObject();
    return w.take();
}

struct ProvisionResult {
    std::string name;
    size_t steps = 0;
};

Task<Result<ProvisionResult>> provision(Services& s, CallContext ctx, ProvisionParams p)
{
    VMR_CO_TRY_ASSIGN(size_t ran,
                      co_await s.manager.provision(p.name, std::move(p.steps), provisionRelay(ctx, p.name),
                                                   ctx.peer.credentials()));
    co_return ProvisionResult{p.name, ran};
}

}  // namespace

Result<StopParams> parseStop(const rpc::Params& p)
{
    VMR_TRY(p.allowOnly({"name", "timeout", "force"}));
    StopParams out;
    VMR_TRY_ASSIGN(out.name, nameOf(p));
    VMR_TRY_ASSIGN(auto timeout, p.optInt("timeout", 0, 3600));
    VMR_TRY_ASSIGN(auto force, p.optBool("force"));
    out.opts.force = force.value_or(false);
    out.opts.timeout = std::chrono::seconds(timeout.value_or(30));
    return out;
}

Result<ProvisionParams> parseProvision(const rpc::Params& p)
{
    VMR_TRY(p.allowOnly({"name", "steps"}));
    ProvisionParams out;
    VMR_TRY_ASSIGN(out.name, nameOf(p));
    VMR_TRY_ASSIGN(auto raw, p.optRaw("steps"));
    if (raw) {
        model::ReadOptions opts;
        opts.requireName = false;
        auto spec = model::specFromJson("{\"provision\":" + *raw + "}", opts);
        if (!spec) return std::move(spec).error();
        out.steps = std::move(spec->provision);
    }
    return out;
}

Result<CreateParams> parseCreate(const rpc::Params& p)
{
    CreateParams out;
    VMR_TRY_ASSIGN(auto templ, p.optString("template"));
    VMR_TRY_ASSIGN(auto start, p.optBool("start"));
    out.templateName = templ.value_or("");
    out.start = start.value_or(false);
    out.paramsJson = p.json();
    if (out.templateName.empty()) {
        VMR_TRY_ASSIGN(out.spec, decodeSpec(out.paramsJson));
    }
    return out;
}

Result<std::string> applyTemplate(const vm::Manager& m, const std::string& templatesDir,
                                  const std::string& templateName, const std::string& requestJson)
{
    VMR_TRY_ASSIGN(config::Template templ, config::loadTemplate(templatesDir, templateName));
    VMR_TRY_ASSIGN(auto request, rpc::Params::parse(requestJson));
    json::Writer w;
    w.beginObject();
    for (const auto& f : request.fields())
        if (f.name != "template") w.key(f.name).raw(f.raw);
    if (!request.has("name")) {
        // virshle's workflow: the same command again and again gives one more VM each time.
        for (int i = 1;; ++i) {
            std::string candidate = templateName + "-" + std::to_string(i);
            if (m.find(candidate) == nullptr && model::validateVmName(candidate)) {
                w.field("name", candidate);
                break;
            }
            if (i > 100000)
                return Error(ErrorKind::VmExists, "No free name for template \"" + templateName + "\"",
                             "Give --name");
        }
    }
    w.endObject();
    return config::mergeParams(templ.paramsJson, w.str());
}

Task<Result<store::VmRecord>> create(Services& s, CallContext ctx, CreateParams p)
{
    if (!p.spec) {
        VMR_CO_TRY_ASSIGN(std::string merged,
                          applyTemplate(s.manager, s.templatesDir, p.templateName, p.paramsJson));
        VMR_CO_TRY_ASSIGN(p.spec, decodeSpec(merged));
    }
    vm::Manager::CreateOptions opts;
    opts.caller = ctx.peer.credentials();
    std::string url = p.spec->imageUrl;
    opts.onImageProgress = [ctx, url](const image::Progress& pr) { notifyImageProgress(ctx, url, pr); };
    VMR_CO_TRY_ASSIGN(store::VmRecord rec, co_await s.manager.create(std::move(*p.spec), std::move(opts)));
    if (!p.start) co_return rec;
    auto started = co_await s.manager.start(rec.name());
    if (!started)
        co_return Error(started.error().kind(), "VM \"" + rec.name() + "\" was created but did not start",
                        started.error().hint())
            .causedBy(std::move(started).error());
    co_return std::move(*started);
}

std::string recordJson(const vm::Manager& m, const store::VmRecord& r)
{
    json::Writer w;
    w.beginObject();
    model::WriteOptions opts;
    opts.includeUserData = false;
    model::writeSpecFields(w, r.spec, opts);
    model::writeRuntimeFields(w, r.runtime);
    vm::Manager::Paths p = m.pathsOf(r);
    w.field("work_dir", p.workDir).field("overlay", p.overlay);
    w.nullableField("uefi_vars", p.uefiVars);
    w.field("console_log", p.runtime.consoleLog)
        .field("vmm_log", p.runtime.vmmLog)
        .field("control_socket", p.runtime.control)
        .field("serial_socket", p.runtime.serialSocket);
    w.endObject();
    return w.take();
}

std::string listJson(const vm::Manager& m)
{
    json::Writer w;
    w.beginObject().key("vms").beginArray();
    // Broken VMs (a folder without a loadable record) among the others, by name.
    const auto& broken = m.broken();
    auto b = broken.begin();
    auto brokenUpTo = [&](const std::string* name) {
        for (; b != broken.end() && (name == nullptr || b->first < *name); ++b)
            w.beginObject()
                .field("name", b->first)
                .field("state", "broken")
                .field("state_reason", b->second)
                .endObject();
    };
    for (const store::VmRecord* r : m.list()) {
        brokenUpTo(&r->name());
        w.beginObject()
            .field("name", r->name())
            .field("backend", model::wordOf(r->spec.backend))
            .field("state", model::wordOf(r->runtime.state))
            .field("vcpus", r->spec.vcpus)
            .field("memory_mib", static_cast<unsigned long long>(r->spec.memoryMib))
            .field("network", model::wordOf(r->spec.network.mode));
        w.optionalField("pid", r->runtime.pid).optionalField("ssh_port", r->runtime.sshPort);
        w.endObject();
    }
    brokenUpTo(nullptr);
    w.endArray().endObject();
    return w.take();
}

void registerVmActions(rpc::Server& server, Services& s)
{
    add(server, s,
        SyncAction<NoParams, NoParams>{
            "vm.list", parseNoParams, passThrough,
            [](const Services& sv, const NoParams&) { return listJson(sv.manager); }});
    add(server, s,
        SyncAction<NameParams, const store::VmRecord*>{
            "vm.status", parseName, status,
            [](const Services& sv, const store::VmRecord* const& r) { return recordJson(sv.manager, *r); }});
    add(server, s,
        Action<CreateParams, store::VmRecord>{"vm.create", parseCreate, create, writeRecord, true});
    add(server, s,
        Action<NameParams, store::VmRecord>{"vm.start", parseName, lifecycle<&vm::Manager::start>,
                                            writeRecord, true});
    add(server, s, Action<StopParams, store::VmRecord>{"vm.stop", parseStop, stop, writeRecord, true});
    add(server, s,
        Action<NameParams, store::VmRecord>{"vm.suspend", parseName, lifecycle<&vm::Manager::suspend>,
                                            writeRecord, true});
    add(server, s,
        Action<NameParams, store::VmRecord>{"vm.resume", parseName, lifecycle<&vm::Manager::resume>,
                                            writeRecord, true});
    add(server, s,
        Action<NameParams, std::string>{"vm.destroy", parseName, destroy,
                                        [](const Services&, const std::string& name) {
                                            return "{\"destroyed\":" + json::quote(name) + "}";
                                        },
                                        true});
    add(server, s,
        Action<ProvisionParams, ProvisionResult>{
            "vm.provision", parseProvision, provision,
            [](const Services&, const ProvisionResult& r) {
                json::Writer w;
                w.beginObject().field("name", r.name).field("steps", r.steps).endObject();
                return w.take();
            },
            true});
    add(server, s,
        SyncAction<NoParams, std::vector<config::Template>>{"template.list", parseNoParams, templates,
                                                            writeTemplates});
}

}  // namespace vmr::api
