// write-seed: makes what vmrd makes for one VM, with the seed library, so that script
// tests can boot the test guest through a real seed ISO.
//
//   write-seed DIR --hostname NAME [--user NAME] [--port PORT] [--instance-id ID]
//
// DIR gets id_ed25519_generated(.pub) (the client key), ssh_host_ed25519_key(.pub) (the
// guest's host key, injected through ssh_keys), seed.iso, user-data and meta-data (copies
// of the seed's files, for debugging) and known_hosts ("[127.0.0.1]:PORT ..."). Keys that
// exist are reused. Prints "fingerprint SHA256:..." of the host key.

#include "base/files.h"
#include "provision/seed/cloud_config.h"
#include "provision/seed/seed_iso.h"
#include "provision/seed/ssh_key.h"

#include <cstdio>
#include <cstdlib>
#include <string>

using namespace vmr;
using namespace vmr::provision;

namespace {

int usage(const char* why)
{
    std::fprintf(stderr,
                 "write-seed: %s\nusage: write-seed DIR --hostname NAME [--user NAME] [--port PORT] "
                 "[--instance-id ID]\n",
                 why);
    return 2;
}

int fail(const Error& e)
{
    std::fprintf(stderr, "write-seed: %s\n", e.what().c_str());
    if (!e.hint().empty()) std::fprintf(stderr, "write-seed: hint: %s\n", e.hint().c_str());
    return 1;
}

}  // namespace

int main(int argc, char** argv)
{
    if (argc < 2) return usage("no DIR");
    std::string dir = argv[1];
    SeedSpec spec;
    long port = 22;
    for (int i = 2; i < argc; i += 2) {
        std::string opt = argv[i];
        if (i + 1 >= argc) return usage(("no value after " + opt).c_str());
        std::string val = argv[i + 1];
        if (opt == "--hostname") {
            spec.hostname = val;
        } else if (opt == "--user") {
            spec.user = val;
        } else if (opt == "--instance-id") {
            spec.instanceId = val;
        } else if (opt == "--port") {
            char* end = nullptr;
            port = std::strtol(val.c_str(), &end, 10);
            if (*end != '\0' || port < 1 || port > 65535) return usage("--port takes 1 to 65535");
        } else {
            return usage(("unknown option " + opt).c_str());
        }
    }
    if (spec.hostname.empty()) return usage("--hostname is required");
    if (spec.instanceId.empty()) spec.instanceId = makeInstanceId(spec.hostname);

    auto client = loadOrCreateKeyPair(dir + "/" + std::string(kClientKeyFile), "vmr@" + spec.hostname);
    if (!client) return fail(client.error());
    auto host = loadOrCreateKeyPair(dir + "/" + std::string(kHostKeyFile), "root@" + spec.hostname);
    if (!host) return fail(host.error());
    spec.authorizedKeys = {client->publicKeyLine()};
    spec.hostKey = HostKeyData{host->privateKeyFile(), host->publicKeyLine()};

    auto files = renderSeed(spec);
    if (!files) return fail(files.error());
    if (auto r = writeSeedIso(dir + "/" + std::string(kSeedIsoFile), *files); !r) return fail(r.error());
    if (auto r = vmr::writeFileAtomic(dir + "/user-data", files->userData, 0600); !r) return fail(r.error());
    if (auto r = vmr::writeFileAtomic(dir + "/meta-data", files->metaData, 0644); !r) return fail(r.error());
    std::string kh = knownHostsLine("127.0.0.1", static_cast<uint16_t>(port), host->publicKey()) + "\n";
    if (auto r = vmr::writeFileAtomic(dir + "/" + std::string(kKnownHostsFile), kh, 0644); !r)
        return fail(r.error());
    std::printf("fingerprint %s\n", host->fingerprint().c_str());
    return 0;
}
