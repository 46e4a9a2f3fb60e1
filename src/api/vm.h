#pragma once

// The VM actions: vm.list, vm.status, vm.create, vm.start, vm.stop, vm.suspend, vm.resume,
// vm.destroy, vm.provision and template.list (docs/protocol.md).

#include "api/action.h"
#include "model/spec.h"

#include <optional>
#include <string>
#include <vector>

namespace vmr::api {

// vm.create: a spec (model/spec.h) plus what the call itself asks for.
struct CreateParams {
    std::optional<model::VmSpec> spec;  // empty with a template: decoded once it is applied
    std::string paramsJson;             // the request, for a template to go under
    std::string templateName;
    bool start = false;  // create and start in one call
};
Result<CreateParams> parseCreate(const rpc::Params& p);
reactor::Task<Result<store::VmRecord>> create(Services& s, CallContext ctx, CreateParams p);

// vm.create's params with a template applied: the template's params under the request's, a
// name made from the template's when the request gives none (T-1, T-2...).
Result<std::string> applyTemplate(const vm::Manager& m, const std::string& templatesDir,
                                  const std::string& templateName, const std::string& requestJson);

struct StopParams {
    std::string name;
    vm::StopOptions opts;
};
Result<StopParams> parseStop(const rpc::Params& p);

struct ProvisionParams {
    std::string name;
    std::optional<std::vector<model::ProvisionStep>> steps;  // none: the VM's own
};
Result<ProvisionParams> parseProvision(const rpc::Params& p);

// vm.status (and every call that answers with a VM): the spec, the runtime and where its files
// are, in one flat object. User-data is not shown (it may hold secrets).
std::string recordJson(const vm::Manager& m, const store::VmRecord& r);
// vm.list: {"vms":[{name, backend, state, vcpus, memory_mib, network, pid, ssh_port}, ...]}
std::string listJson(const vm::Manager& m);

}  // namespace vmr::api
