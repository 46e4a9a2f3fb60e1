// Host keys as OpenSSH lines (pure): parsing, keys from a server's blob, fingerprints, the
// algorithms offered for a pinned type, and the order keys are tried in.

#include "provision/ssh/host_key.h"
#include "provision/ssh/session.h"

#include <catch2/catch.hpp>

using namespace vmr;
using namespace vmr::provision;

namespace {

// The wire blob of an ssh-ed25519 key with 32 bytes of `fill`.
std::string ed25519Blob(char fill)
{
    std::string blob("\0\0\0\x0bssh-ed25519\0\0\0\x20", 19);
    blob.append(32, fill);
    return blob;
}

}  // namespace

TEST_CASE("host key: a line from a server's blob parses back to the same key")
{
    auto key = sshHostKeyFromBlob(ed25519Blob('\x01'));
    REQUIRE(key);
    CHECK(key->type == "ssh-ed25519");
    CHECK(key->base64 == "AAAAC3NzaC1lZDI1NTE5AAAAIAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB");
    auto parsed = parseSshHostKey("  " + key->line() + " root@guest  \n");
    REQUIRE(parsed);
    CHECK(parsed->sameKey(*key));
    CHECK(parsed->comment == "root@guest");
    auto other = sshHostKeyFromBlob(ed25519Blob('\x02'));
    REQUIRE(other);
    CHECK_FALSE(other->sameKey(*key));
}

TEST_CASE("host key: bad lines name what is wrong")
{
    auto check = [](std::string_view line, std::string_view says) {
        INFO(line);
        auto k = parseSshHostKey(line);
        REQUIRE_FALSE(k);
        CHECK(k.error().kind() == ErrorKind::InvalidArgument);
        CHECK_THAT(k.error().message(), Catch::Contains(std::string(says)));
        CHECK_FALSE(k.error().hint().empty());
    };
    check("", "empty");
    check("ssh-dss AAAAB3NzaC1kc3MAAACBAP==", "ssh-dss");
    check("ssh-ed25519", "missing");
    check("ssh-ed25519 AAAA*AAA", "base64");
    check("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5A", "base64");
    check("ssh-ed25519 AA=A", "base64");
    check("ssh-ed25519 AAAA\nssh-rsa AAAA", "several lines");
}

TEST_CASE("host key: malformed blobs are refused")
{
    CHECK_FALSE(sshHostKeyFromBlob(""));
    CHECK_FALSE(sshHostKeyFromBlob(std::string("\0\0\0\x40ssh", 7)));
    CHECK_FALSE(sshHostKeyFromBlob(std::string("\0\0\0\0", 4)));
}

TEST_CASE("host key: fingerprints are unpadded base64 of the digest")
{
    CHECK(sshFingerprint(std::string(32, '\0')) == "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
}

TEST_CASE("host key: algorithms offered make the server present the pinned type")
{
    CHECK(hostKeyAlgorithmsFor("ssh-ed25519") == "ssh-ed25519");
    CHECK(hostKeyAlgorithmsFor("ssh-rsa") == "rsa-sha2-512,rsa-sha2-256,ssh-rsa");
    CHECK(hostKeyAlgorithmsAny().rfind("ssh-ed25519,", 0) == 0);
    CHECK_THAT(hostKeyAlgorithmsAny(), Catch::Contains("ecdsa-sha2-nistp256"));
    std::vector<std::string> supported = {"ecdsa-sha2-nistp256", "ssh-ed25519", "ssh-rsa", "ssh-dss"};
    CHECK(keepSupported("rsa-sha2-512,rsa-sha2-256,ssh-rsa", supported) == "ssh-rsa");
    CHECK(keepSupported("ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp521", supported) ==
          "ssh-ed25519,ecdsa-sha2-nistp256");
    CHECK(keepSupported("ecdsa-sha2-nistp521", supported).empty());
    CHECK(keepSupported("", supported).empty());
}

TEST_CASE("keys are tried in order: generated, --key, then the user's defaults")
{
    CHECK(defaultKeyFiles("/vms/a/id_ed25519_generated", "/k/mine", "/home/u") ==
          std::vector<std::string>{"/vms/a/id_ed25519_generated", "/k/mine", "/home/u/.ssh/id_ed25519",
                                   "/home/u/.ssh/id_ecdsa", "/home/u/.ssh/id_rsa"});
    CHECK(defaultKeyFiles("", "", "/root") ==
          std::vector<std::string>{"/root/.ssh/id_ed25519", "/root/.ssh/id_ecdsa", "/root/.ssh/id_rsa"});
    CHECK(defaultKeyFiles("/g", "", "").size() == 1);
}
