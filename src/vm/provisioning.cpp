#include "vm/provisioning.h"

#include "base/json.h"
#include "provision/seed/cloud_config.h"
#include "provision/seed/ssh_key.h"

#include "config.h"
#if VMR_HAVE_ISO
#include "provision/seed/seed_iso.h"
#endif

namespace vmr::vm {

bool seedSupported() noexcept
{
    return VMR_HAVE_ISO != 0;
}

Result<SeedResult> writeSeed(const SeedRequest& req)
{
    SeedResult out;
    out.user = req.user.empty() ? std::string(model::kDefaultSshUser) : req.user;
    out.clientKey = req.vmDir + "/" + kClientKeyName;
    auto client = provision::loadOrCreateKeyPair(out.clientKey, "vmr@" + req.name);
    if (!client) return Unexpected(std::move(client).error());

    provision::SeedSpec spec;
    spec.instanceId = provision::makeInstanceId(req.id);
    spec.hostname = req.hostname.empty() ? provision::hostnameFor(req.name) : req.hostname;
    if (req.userData) {
        spec.user.clear();
        spec.rawUserData = *req.userData;
    } else {
        spec.user = out.user;
        spec.authorizedKeys = req.authorizedKeys;
        spec.authorizedKeys.push_back(client->publicKeyLine());
        auto host = provision::Ed25519KeyPair::generate("root@" + spec.hostname);
        if (!host) return Unexpected(std::move(host).error());
        spec.hostKey = provision::HostKeyData{host->privateKeyFile(), host->publicKeyLine()};
        out.hostKey = host->publicKey().line();
    }
    auto files = provision::renderSeed(spec);
    if (!files) return Unexpected(std::move(files).error());
#if VMR_HAVE_ISO
    out.seedPath = req.vmDir + "/" + std::string(provision::kSeedIsoFile);
    VMR_TRY(provision::writeSeedIso(out.seedPath, *files));
    return out;
#else
    return Error(ErrorKind::Unsupported,
                 "This vmrd was built without libisofs: it cannot make cloud-init seeds",
                 "Rebuild with libisofs (Debian: apt-get install libisofs-dev)");
#endif
}

}  // namespace vmr::vm
