// Manager::provision: the provisioning steps over SSH (docs/provisioning.md).

#include "vm/logger.h"
#include "vm/manager.h"
#include "vm/provisioning.h"

#include "config.h"

#include <fcntl.h>

#include <map>
#if VMR_HAVE_SSH
#include "provision/ssh/provisioner.h"
#include "provision/ssh/session.h"
#endif

namespace vmr::vm {

using reactor::Task;

#if VMR_HAVE_SSH
namespace {

std::vector<provision::ProvisionStep> toSshSteps(const std::vector<model::ProvisionStep>& steps)
{
    std::vector<provision::ProvisionStep> out;
    for (const auto& s : steps) {
        if (s.kind == model::ProvisionStep::Kind::File)
            out.push_back(provision::FileUpload{s.source, s.destination});
        else if (!s.inlineCommand.empty())
            out.push_back(provision::ShellInline{s.inlineCommand});
        else
            out.push_back(provision::ShellScript{s.script});
    }
    return out;
}

}  // namespace
#endif

Task<Result<size_t>> Manager::provision(std::string name,
                                        std::optional<std::vector<model::ProvisionStep>> given,
                                        ProvisionCallbacks cb, Credentials caller)
{
    VMR_CO_TRY_ASSIGN(std::shared_ptr<Entry> e, lookup(name));
#if VMR_HAVE_SSH
    const store::VmRecord& rec = e->record;
    if (e->driver->state() != VmState::Running)
        co_return Error(
            ErrorKind::VmBadState,
            "VM \"" + name + "\" is " + std::string(stateName(rec.runtime.state)) + ", not running",
            "Start it first: vmrctl start " + name);
    if (rec.spec.network.mode != model::NetMode::User || !rec.runtime.sshPort)
        co_return Error(ErrorKind::Unsupported,
                        "VM \"" + name + "\" has no SSH port on 127.0.0.1 (network " +
                            std::string(model::wordOf(rec.spec.network.mode)) + ")",
                        "Provisioning reaches the guest through the user network's SSH forward; create the "
                        "VM with --network user");
    auto steps = toSshSteps(given ? *given : rec.spec.provision);
    if (steps.empty()) co_return size_t{0};
    // Every script and file source is the caller's: opened now, with their rights (never
    // vmrd's), so that one they cannot read is refused before the guest is reached.
    auto opened = std::make_shared<std::multimap<std::string, UniqueFd>>();
    for (const auto& step : given ? *given : rec.spec.provision) {
        const std::string& local = step.kind == model::ProvisionStep::Kind::File ? step.source : step.script;
        if (local.empty()) continue;
        VMR_CO_TRY_ASSIGN(UniqueFd fd, openFileAs(caller, local, O_RDONLY, "provisioning file"));
        opened->emplace(local, std::move(fd));
    }

    const std::string dir = store_.layout().vmDir(name);
    provision::ConnectOptions opts;
    opts.host = "127.0.0.1";
    opts.port = *rec.runtime.sshPort;
    opts.user =
        rec.spec.cloudInit.user.empty() ? std::string(model::kDefaultSshUser) : rec.spec.cloudInit.user;
    opts.hostKey = rec.runtime.hostKey.empty() ? provision::HostKeyPolicy::firstUse()
                                               : provision::HostKeyPolicy::pin(rec.runtime.hostKey);
    opts.keyFiles = {dir + "/" + kClientKeyName};
    opts.timeout = provision::kProvisionConnectTimeout;
    VMR_CO_TRY_ASSIGN(auto session, co_await provision::Session::connect(reactor_, opts));
    if (e->removed) co_return Error(ErrorKind::VmNotFound, "VM \"" + name + "\" was destroyed meanwhile");
    if (e->record.runtime.hostKey.empty()) {
        // Raw user-data: the first key seen is the one pinned from now on.
        e->record.runtime.hostKey = session->hostKey().line();
        save(*e);
        lg().info("VM {}: pinned the guest's host key {}", name, session->hostKeyFingerprint());
    }
    provision::ProvisionOptions popts;
    popts.logPath = dir + "/" + kProvisionLog;
    popts.openLocal = [opened](const std::string& path) -> Result<UniqueFd> {
        auto it = opened->find(path);
        if (it == opened->end())
            return Error(ErrorKind::Internal, "The provisioning file " + path + " was not opened beforehand");
        UniqueFd fd = std::move(it->second);
        opened->erase(it);
        return fd;
    };
    popts.onStep = cb.onStep;
    if (cb.onOutput) {
        auto out = cb.onOutput;
        popts.onOutput = [out](size_t step, provision::OutputStream stream, std::string_view data) {
            out(step, stream == provision::OutputStream::Stderr, data);
        };
    }
    size_t total = steps.size();
    auto ran = co_await provision::runProvisioners(*session, std::move(steps), std::move(popts));
    (void)co_await session->disconnect();
    if (!ran) co_return Unexpected(std::move(ran).error());
    lg().info("VM {}: provisioned ({} steps)", name, total);
    co_return total;
#else
    (void)given;
    (void)cb;
    (void)caller;
    co_return Error(ErrorKind::Unsupported, "This vmrd was built without SSH support (libssh2)",
                    "Rebuild vmrd with libssh2 (Debian: apt-get install libssh2-1-dev)");
#endif
}

}  // namespace vmr::vm
