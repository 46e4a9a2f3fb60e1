#pragma once

// The VM methods of the control socket: vm.create, vm.start, vm.stop, vm.suspend,
// vm.resume, vm.destroy, vm.list and vm.status, on top of vm::Manager.

#include "image/cache.h"
#include "rpc/server.h"
#include "store/record.h"
#include "vm/manager.h"

#include <string>

namespace vmr::vmrd {

// `cache` serves vm.create's image_url (downloads relayed as "image.progress" notifications).
// `templatesDir`: where vm.create's `template` and template.list look (config/templates.h).
void registerVmMethods(rpc::Server& server, vm::Manager& manager, image::Cache& cache,
                       std::string templatesDir);

// vm.create's params with a template applied: the template's params under the request's, a
// name made from the template's when the request gives none. The request unchanged without
// a `template`.
Result<rpc::Params> applyTemplate(const vm::Manager& m, const std::string& templatesDir,
                                  const rpc::Params& p);

// vm.create's params as a Manager::CreateSpec (the image_url, when given, still to fetch).
struct CreateParams {
    vm::Manager::CreateSpec spec;
    std::string imageUrl;
    std::optional<std::string> imageSha256;
};
Result<CreateParams> parseCreateParams(const rpc::Params& p);

// vm.create: fetch image_url through the cache when given (progress to `peer` as
// "image.progress" notifications), then Manager::create.
reactor::Task<Result<store::VmRecord>> createVm(rpc::Server& server, vm::Manager& m, image::Cache& cache,
                                                rpc::Peer peer, CreateParams params);

// {"vms":[{name, backend, state, vcpus, memory_mib, network, pid, ssh_port}, ...]}
std::string vmListJson(const vm::Manager& manager);

}  // namespace vmr::vmrd
