#include "vm/provisioning.h"

#include "base/json.h"
#include "provision/seed/cloud_config.h"
#include "provision/seed/ssh_key.h"

#include "config.h"
#if VMR_HAVE_ISO
#include "provision/seed/seed_iso.h"
#endif

#include <simdjson.h>

namespace vmr::vm {

bool seedSupported() noexcept
{
    return VMR_HAVE_ISO != 0;
}

Result<SeedResult> writeSeed(const SeedRequest& req)
{
    SeedResult out;
    out.user = req.user.empty() ? std::string(kDefaultSshUser) : req.user;
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

namespace {

Error stepError(size_t i, std::string what)
{
    return Error(ErrorKind::InvalidArgument, "Provisioning step " + std::to_string(i + 1) + ": " + what,
                 "A step is {\"type\":\"shell\",\"inline\":CMD}, {\"type\":\"shell\",\"script\":PATH} or "
                 "{\"type\":\"file\",\"source\":PATH,\"destination\":PATH}");
}

}  // namespace

Result<std::string> normalizeSteps(std::string_view stepsJson)
{
    simdjson::dom::parser parser;
    simdjson::padded_string padded(stepsJson);
    simdjson::dom::element root;
    if (parser.parse(padded).get(root) != simdjson::SUCCESS)
        return Error(ErrorKind::InvalidArgument, "Provisioning steps are not valid JSON");
    simdjson::dom::array steps;
    if (root.get_array().get(steps) != simdjson::SUCCESS)
        return Error(ErrorKind::InvalidArgument, "Provisioning steps must be a JSON array");
    json::Writer w;
    w.beginArray();
    size_t i = 0;
    for (simdjson::dom::element step : steps) {
        simdjson::dom::object obj;
        if (step.get_object().get(obj) != simdjson::SUCCESS) return stepError(i, "expected an object");
        auto str = [&](const char* key) -> std::optional<std::string> {
            std::string_view v;
            if (obj[key].get_string().get(v) != simdjson::SUCCESS) return std::nullopt;
            return std::string(v);
        };
        for (auto [key, value] : obj) {
            (void)value;
            if (key != "type" && key != "inline" && key != "script" && key != "source" &&
                key != "destination")
                return stepError(i, "unknown field \"" + std::string(key) + "\"");
        }
        auto type = str("type");
        if (!type) return stepError(i, "\"type\" must be \"shell\" or \"file\"");
        w.beginObject().field("type", *type);
        if (*type == "shell") {
            auto inl = str("inline");
            auto script = str("script");
            if (inl.has_value() == script.has_value())
                return stepError(i, "a shell step needs exactly one of \"inline\" and \"script\"");
            if (inl) {
                if (inl->empty()) return stepError(i, "\"inline\" is empty");
                w.field("inline", *inl);
            } else {
                if (script->empty() || script->front() != '/')
                    return stepError(i, "\"script\" must be an absolute path");
                w.field("script", *script);
            }
        } else if (*type == "file") {
            auto source = str("source");
            auto dest = str("destination");
            if (!source || source->empty() || source->front() != '/')
                return stepError(i, "\"source\" must be an absolute path");
            if (!dest || dest->empty()) return stepError(i, "\"destination\" is missing");
            w.field("source", *source).field("destination", *dest);
        } else {
            return stepError(i, "unknown type \"" + *type + "\" (expected \"shell\" or \"file\")");
        }
        w.endObject();
        ++i;
    }
    w.endArray();
    return w.take();
}

}  // namespace vmr::vm
