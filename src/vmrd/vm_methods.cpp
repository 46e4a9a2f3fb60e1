#include "vmrd/vm_methods.h"

#include "base/json.h"
#include "config/templates.h"
#include "store/names.h"

#include <simdjson.h>

namespace vmr::vmrd {

namespace {

using reactor::Task;

void writeListItem(json::Writer& w, const store::VmRecord& r)
{
    w.beginObject()
        .field("name", r.name)
        .field("backend", r.backend)
        .field("state", r.state)
        .field("vcpus", r.vcpus)
        .field("memory_mib", r.memoryMib)
        .field("network", r.network)
        .key("pid");
    if (r.pid)
        w.value(*r.pid);
    else
        w.null();
    w.key("ssh_port");
    if (r.sshPort)
        w.value(static_cast<unsigned>(*r.sshPort));
    else
        w.null();
    w.endObject();
}

// The record plus where the VM's files are: `vm.status`.
std::string statusJson(const vm::Manager& m, const store::VmRecord& r)
{
    std::string out = store::toJson(r);
    while (!out.empty() && (out.back() == '\n' || out.back() == '}')) out.pop_back();
    vm::Manager::Paths p = m.pathsOf(r);
    json::Writer w;
    w.beginObject();
    w.field("work_dir", p.workDir).field("overlay", p.overlay).key("seed");
    if (p.seed.empty())
        w.null();
    else
        w.value(p.seed);
    w.key("uefi_vars");
    if (p.uefiVars.empty())
        w.null();
    else
        w.value(p.uefiVars);
    w.field("console_log", p.runtime.consoleLog)
        .field("qemu_log", p.runtime.qemuLog)
        .field("qmp_socket", p.runtime.qmpSocket)
        .field("serial_socket", p.runtime.serialSocket);
    w.endObject();
    std::string extra = w.take();  // {"work_dir":...}
    return out + "," + extra.substr(1);
}

Error notFound(const std::string& name)
{
    return Error(ErrorKind::VmNotFound, "No VM named \"" + name + "\"", "Run `vmrctl list` to see VMs");
}

Result<std::string> nameParam(const rpc::Params& p)
{
    auto name = p.string("name");
    if (!name) return std::move(name).error();
    VMR_TRY(store::validateVmName(*name));
    return std::move(*name);
}

Task<Result<std::string>> lifecycle(vm::Manager& m, rpc::Params p, std::string op)
{
    auto allowed = op == "stop" ? p.allowOnly({"name", "timeout", "force"}) : p.allowOnly({"name"});
    if (!allowed) co_return std::move(allowed).error();
    auto name = nameParam(p);
    if (!name) co_return std::move(name).error();
    if (m.find(*name) == nullptr) co_return notFound(*name);
    Result<store::VmRecord> record = Error(ErrorKind::Internal, "No operation");
    if (op == "start") {
        record = co_await m.start(*name);
    } else if (op == "stop") {
        auto timeout = p.optInt("timeout", 0, 3600);
        if (!timeout) co_return std::move(timeout).error();
        auto force = p.optBool("force");
        if (!force) co_return std::move(force).error();
        reactor::Duration wait = std::chrono::seconds(timeout->value_or(30));
        record = co_await m.stop(*name, force->value_or(false), wait);
    } else if (op == "suspend") {
        record = co_await m.suspend(*name);
    } else if (op == "resume") {
        record = co_await m.resume(*name);
    } else if (op == "destroy") {
        auto done = co_await m.destroy(*name);
        if (!done) co_return std::move(done).error();
        co_return "{\"destroyed\":" + json::quote(*name) + "}";
    }
    if (!record) co_return std::move(record).error();
    co_return store::toJson(*record);
}

// Provisioning over SSH, output relayed to the caller as notifications.
Task<Result<std::string>> provisionVm(rpc::Server& server, vm::Manager& m, rpc::Peer peer, rpc::Params p)
{
    VMR_CO_TRY(p.allowOnly({"name", "steps"}));
    auto name = nameParam(p);
    if (!name) co_return std::move(name).error();
    auto steps = p.optRaw("steps");
    if (!steps) co_return std::move(steps).error();
    rpc::Server* srv = &server;
    uint64_t conn = peer.connection;
    std::string vm = *name;
    vm::Manager::ProvisionCallbacks cb;
    cb.onStep = [srv, conn, vm](size_t step, size_t total, std::string_view description) {
        json::Writer w;
        w.beginObject()
            .field("vm", vm)
            .field("step", step)
            .field("total", total)
            .field("description", description);
        w.endObject();
        srv->notify(conn, "provision.step", w.str());
    };
    cb.onOutput = [srv, conn, vm](size_t step, bool err, std::string_view data) {
        json::Writer w;
        w.beginObject()
            .field("vm", vm)
            .field("step", step)
            .field("stream", err ? "stderr" : "stdout")
            .field("data", data);
        w.endObject();
        srv->notify(conn, "provision.output", w.str());
    };
    auto ran = co_await m.provision(*name, steps->value_or(""), std::move(cb));
    if (!ran) co_return std::move(ran).error();
    json::Writer w;
    w.beginObject().field("name", *name).field("steps", *ran).endObject();
    co_return w.take();
}

}  // namespace

Result<CreateParams> parseCreateParams(const rpc::Params& p)
{
    VMR_TRY(p.allowOnly({"name",          "image",    "image_url", "image_sha256",
                         "vcpus",         "memory",   "disk",      "network",
                         "kernel",        "initrd",   "cmdline",   "accel",
                         "firmware",      "vnc",      "ssh_user",  "ssh_authorized_keys",
                         "user_data",     "hostname", "provision", "vmfile",
                         "vmfile_sha256", "backend"}));
    CreateParams out;
    vm::Manager::CreateSpec& spec = out.spec;
    auto name = nameParam(p);
    if (!name) return std::move(name).error();
    spec.name = std::move(*name);
    auto image = p.optString("image");
    if (!image) return std::move(image).error();
    auto url = p.optString("image_url");
    if (!url) return std::move(url).error();
    if (image->has_value() == url->has_value())
        return Error(ErrorKind::InvalidParams, "Give exactly one of \"image\" and \"image_url\"",
                     "`vmrctl create --image PATH` for a local image, `--image-url URL` to download one");
    if (*image) spec.image = std::move(**image);
    if (*url) out.imageUrl = std::move(**url);
    auto sha = p.optString("image_sha256");
    if (!sha) return std::move(sha).error();
    if (*sha && out.imageUrl.empty())
        return Error(ErrorKind::InvalidParams, "\"image_sha256\" goes with \"image_url\"",
                     "Leave it out for a local image");
    out.imageSha256 = std::move(*sha);
    auto vcpus = p.optInt("vcpus", 1, 256);
    if (!vcpus) return std::move(vcpus).error();
    if (*vcpus) spec.vcpus = static_cast<uint32_t>(**vcpus);
    auto memory = p.optInt("memory", 16, 1 << 22);
    if (!memory) return std::move(memory).error();
    if (*memory) spec.memoryMib = static_cast<uint64_t>(**memory);
    auto disk = p.optInt("disk", 1, 1 << 16);
    if (!disk) return std::move(disk).error();
    if (*disk) spec.diskGib = static_cast<uint64_t>(**disk);
    for (auto [key, field] : {std::pair<const char*, std::string*>{"network", &spec.network},
                              {"kernel", &spec.kernel},
                              {"initrd", &spec.initrd},
                              {"cmdline", &spec.cmdline},
                              {"accel", &spec.accel},
                              {"firmware", &spec.firmware},
                              {"ssh_user", &spec.sshUser},
                              {"hostname", &spec.hostname},
                              {"vmfile", &spec.vmfile},
                              {"vmfile_sha256", &spec.vmfileSha256},
                              {"backend", &spec.backend}}) {
        auto v = p.optString(key);
        if (!v) return std::move(v).error();
        if (*v) *field = std::move(**v);
    }
    auto vnc = p.optBool("vnc");
    if (!vnc) return std::move(vnc).error();
    spec.vnc = vnc->value_or(false);
    auto userData = p.optString("user_data");
    if (!userData) return std::move(userData).error();
    spec.userData = std::move(*userData);
    auto keys = p.optRaw("ssh_authorized_keys");
    if (!keys) return std::move(keys).error();
    if (*keys) {
        simdjson::dom::parser parser;
        simdjson::dom::array arr;
        if (parser.parse(**keys).get_array().get(arr) != simdjson::SUCCESS)
            return Error(ErrorKind::InvalidParams,
                         "\"ssh_authorized_keys\" must be an array of public key lines");
        for (simdjson::dom::element k : arr) {
            std::string_view line;
            if (k.get_string().get(line) != simdjson::SUCCESS || line.empty())
                return Error(ErrorKind::InvalidParams,
                             "\"ssh_authorized_keys\" must hold public key lines (\"ssh-ed25519 AAAA...\")");
            spec.authorizedKeys.emplace_back(line);
        }
    }
    auto steps = p.optRaw("provision");
    if (!steps) return std::move(steps).error();
    if (*steps) spec.provision = std::move(**steps);
    return out;
}

Result<rpc::Params> applyTemplate(const vm::Manager& m, const std::string& templatesDir, const rpc::Params& p)
{
    auto name = p.optString("template");
    if (!name) return std::move(name).error();
    if (!*name) return p;
    auto templ = config::loadTemplate(templatesDir, **name);
    if (!templ) return std::move(templ).error();
    json::Writer request;
    request.beginObject();
    bool named = false;
    for (const auto& f : p.fields()) {
        if (f.name == "template") continue;
        if (f.name == "name") named = true;
        request.key(f.name).raw(f.raw);
    }
    if (!named) {
        // virshle's workflow: the same command again and again gives one more VM each time.
        for (int i = 1;; ++i) {
            std::string candidate = **name + "-" + std::to_string(i);
            if (m.find(candidate) == nullptr && store::validateVmName(candidate)) {
                request.field("name", candidate);
                break;
            }
            if (i > 100000)
                return Error(ErrorKind::VmExists, "No free name for template \"" + **name + "\"",
                             "Give --name");
        }
    }
    request.endObject();
    auto merged = config::mergeParams(templ->paramsJson, request.str());
    if (!merged) return std::move(merged).error();
    return rpc::Params::parse(*merged);
}

Task<Result<store::VmRecord>> createVm(rpc::Server& server, vm::Manager& m, image::Cache& cache,
                                       rpc::Peer peer, CreateParams params)
{
    if (!params.imageUrl.empty()) {
        rpc::Server* srv = &server;
        uint64_t conn = peer.connection;
        std::string url = params.imageUrl;
        auto onProgress = [srv, conn, url](const image::Progress& pr) {
            json::Writer w;
            w.beginObject().field("url", url).field("received", pr.received).key("total");
            if (pr.total)
                w.value(*pr.total);
            else
                w.null();
            w.endObject();
            srv->notify(conn, "image.progress", w.str());
        };
        auto path = co_await cache.acquire(params.imageUrl, params.imageSha256, onProgress, nullptr);
        if (!path) co_return Unexpected(std::move(path).error());
        params.spec.image = *path;
        params.spec.imageUrl = params.imageUrl;
    }
    co_return co_await m.create(std::move(params.spec));
}

std::string vmListJson(const vm::Manager& manager)
{
    json::Writer w;
    w.beginObject().key("vms").beginArray();
    for (const store::VmRecord* r : manager.list()) writeListItem(w, *r);
    w.endArray().endObject();
    return w.take();
}

void registerVmMethods(rpc::Server& server, vm::Manager& manager, image::Cache& cache,
                       std::string templatesDir)
{
    vm::Manager* m = &manager;
    rpc::Server* srv = &server;
    image::Cache* c = &cache;
    server.addMethod("vm.list", rpc::Method{.sync = [m](const rpc::Call& call) -> Result<std::string> {
                         VMR_TRY(call.params.allowOnly({}));
                         return vmListJson(*m);
                     }});
    server.addMethod("vm.status", rpc::Method{.sync = [m](const rpc::Call& call) -> Result<std::string> {
                         VMR_TRY(call.params.allowOnly({"name"}));
                         auto name = nameParam(call.params);
                         if (!name) return std::move(name).error();
                         const store::VmRecord* r = m->find(*name);
                         if (r == nullptr) return notFound(*name);
                         return statusJson(*m, *r);
                     }});
    server.addMethod(
        "vm.create",
        rpc::Method{.async =
                        [m, srv, c, templatesDir](rpc::Peer peer, rpc::Params p) {
                            return [](rpc::Server* s, vm::Manager* mm, image::Cache* cc, std::string dir,
                                      rpc::Peer who, rpc::Params params) -> Task<Result<std::string>> {
                                auto applied = applyTemplate(*mm, dir, params);
                                if (!applied) co_return std::move(applied).error();
                                auto parsed = parseCreateParams(*applied);
                                if (!parsed) co_return std::move(parsed).error();
                                auto rec = co_await createVm(*s, *mm, *cc, who, std::move(*parsed));
                                if (!rec) co_return std::move(rec).error();
                                co_return store::toJson(*rec);
                            }(srv, m, c, templatesDir, peer, std::move(p));
                        },
                    .mutating = true});
    server.addMethod("template.list",
                     rpc::Method{.sync = [templatesDir](const rpc::Call& call) -> Result<std::string> {
                         VMR_TRY(call.params.allowOnly({}));
                         auto all = config::loadTemplates(templatesDir);
                         if (!all) return std::move(all).error();
                         json::Writer w;
                         w.beginObject().field("dir", templatesDir).key("templates").beginArray();
                         for (const auto& t : *all)
                             w.beginObject()
                                 .field("name", t.name)
                                 .field("path", t.path)
                                 .key("params")
                                 .raw(t.paramsJson)
                                 .endObject();
                         w.endArray().endObject();
                         return w.take();
                     }});
    server.addMethod("vm.provision", rpc::Method{.async =
                                                     [m, srv](rpc::Peer peer, rpc::Params p) {
                                                         return provisionVm(*srv, *m, peer, std::move(p));
                                                     },
                                                 .mutating = true});
    for (const char* op : {"start", "stop", "suspend", "resume", "destroy"}) {
        std::string name = op;
        server.addMethod(
            "vm." + name,
            rpc::Method{
                .async = [m, name](rpc::Peer, rpc::Params p) { return lifecycle(*m, std::move(p), name); },
                .mutating = true});
    }
}

}  // namespace vmr::vmrd
