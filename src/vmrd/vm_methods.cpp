#include "vmrd/vm_methods.h"

#include "base/json.h"
#include "store/names.h"

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

Task<Result<std::string>> create(vm::Manager& m, rpc::Params p)
{
    auto allowed = p.allowOnly({"name", "image", "vcpus", "memory", "disk", "network", "kernel", "initrd",
                                "cmdline", "accel", "firmware", "vnc"});
    if (!allowed) co_return std::move(allowed).error();
    vm::Manager::CreateSpec spec;
    auto name = nameParam(p);
    if (!name) co_return std::move(name).error();
    spec.name = std::move(*name);
    auto image = p.string("image");
    if (!image) co_return std::move(image).error();
    spec.image = std::move(*image);
    auto vcpus = p.optInt("vcpus", 1, 256);
    if (!vcpus) co_return std::move(vcpus).error();
    if (*vcpus) spec.vcpus = static_cast<uint32_t>(**vcpus);
    auto memory = p.optInt("memory", 16, 1 << 22);
    if (!memory) co_return std::move(memory).error();
    if (*memory) spec.memoryMib = static_cast<uint64_t>(**memory);
    auto disk = p.optInt("disk", 1, 1 << 16);
    if (!disk) co_return std::move(disk).error();
    if (*disk) spec.diskGib = static_cast<uint64_t>(**disk);
    for (auto [key, field] : {std::pair<const char*, std::string*>{"network", &spec.network},
                              {"kernel", &spec.kernel},
                              {"initrd", &spec.initrd},
                              {"cmdline", &spec.cmdline},
                              {"accel", &spec.accel},
                              {"firmware", &spec.firmware}}) {
        auto v = p.optString(key);
        if (!v) co_return std::move(v).error();
        if (*v) *field = std::move(**v);
    }
    auto vnc = p.optBool("vnc");
    if (!vnc) co_return std::move(vnc).error();
    spec.vnc = vnc->value_or(false);
    auto record = co_await m.create(std::move(spec));
    if (!record) co_return std::move(record).error();
    co_return store::toJson(*record);
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

}  // namespace

std::string vmListJson(const vm::Manager& manager)
{
    json::Writer w;
    w.beginObject().key("vms").beginArray();
    for (const store::VmRecord* r : manager.list()) writeListItem(w, *r);
    w.endArray().endObject();
    return w.take();
}

void registerVmMethods(rpc::Server& server, vm::Manager& manager)
{
    vm::Manager* m = &manager;
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
    server.addMethod("vm.create",
                     rpc::Method{.async = [m](rpc::Peer, rpc::Params p) { return create(*m, std::move(p)); },
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
