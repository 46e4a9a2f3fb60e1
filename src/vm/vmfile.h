#pragma once

// Bringing a VMFile's VMs up and down, side by side (docs/vmfile.md): vmrctl reads and checks
// the VMFile as the caller and sends the resolved specs; these functions act on the ones that
// came from that file, never on a namesake made by hand or by another file, and report what
// they do through the callbacks.

#include "base/result.h"
#include "model/spec.h"
#include "reactor/reactor.h"
#include "vm/manager.h"

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmr::vm {

// What happened to one VM of a VMFile call.
struct VmfileOutcome {
    std::string name;
    std::string action;  // created, started, resumed, skipped, provisioned, stopped, destroyed, ...
    std::optional<Error> error;
};

struct VmfileContext {
    std::string file;  // the VMFile's absolute path
    // Who asks: the specs' files (image, kernel, provisioning sources...) are opened as them.
    Credentials caller = Credentials::self();
    // "creating", "created", "already running: skipped"...
    std::function<void(std::string_view vm, std::string_view message)> say;
    // The provisioning output of one VM, and a download's progress.
    std::function<Manager::ProvisionCallbacks(const std::string& vm)> provisionCallbacks;
    std::function<void(const std::string& url, const image::Progress&)> onImageProgress;
};

// up: running → skipped; paused → resumed; present → started (and provisioned); absent →
// created, started and provisioned (`provision`: run the spec's steps after a start).
reactor::Task<std::vector<VmfileOutcome>> vmfileUp(Manager& m, VmfileContext ctx,
                                                   std::vector<model::VmSpec> specs, bool provision);
// down: stop each VM (or destroy it); absent → nothing to do.
reactor::Task<std::vector<VmfileOutcome>> vmfileDown(Manager& m, VmfileContext ctx,
                                                     std::vector<std::string> names, bool destroy,
                                                     bool force);
// provision: the specs' steps, on running VMs.
reactor::Task<std::vector<VmfileOutcome>> vmfileProvision(Manager& m, VmfileContext ctx,
                                                          std::vector<model::VmSpec> specs);

// Success when no VM failed; otherwise one error naming each failed VM with its message (the
// kind and hint of the first failure).
Result<void> combinedError(const std::vector<VmfileOutcome>& outcomes);

}  // namespace vmr::vm
