#include "catch.h"
#include "provision/seed/ssh_key.h"
#include "tool.h"

#include <catch2/catch.hpp>

#include <sys/stat.h>

using namespace vmr;
using namespace vmr::provision;
using namespace vmr::test;

namespace {

std::string firstLine(const std::string& s)
{
    return s.substr(0, s.find('\n'));
}

}  // namespace

TEST_CASE("a generated key pair is what ssh-keygen reads back", "[ssh_key]")
{
    requireTool("ssh-keygen", "openssh-client");
    TempDir dir;
    std::string path = dir / "id_ed25519_generated";
    auto kp = Ed25519KeyPair::generate("vmr@web");
    REQUIRE(kp.ok());
    mode_t oldMask = ::umask(0);
    auto w = writeKeyPair(path, *kp);
    ::umask(oldMask);
    REQUIRE(w.ok());
    CHECK(modeOf(path) == 0600);
    CHECK(modeOf(path + ".pub") == 0644);
    CHECK(listDir(dir.path()) ==
          std::vector<std::string>{"id_ed25519_generated", "id_ed25519_generated.pub"});

    std::string priv = readFile(path);
    CHECK(priv.rfind("-----BEGIN OPENSSH PRIVATE KEY-----\n", 0) == 0);
    CHECK(priv.size() > 40);
    CHECK(priv.substr(priv.size() - 34) == "-----END OPENSSH PRIVATE KEY-----\n");
    CHECK(readFile(path + ".pub") == kp->publicKeyLine() + "\n");
    CHECK(kp->publicKeyLine().rfind("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", 0) == 0);
    CHECK(kp->publicKeyLine().substr(kp->publicKeyLine().size() - 8) == " vmr@web");

    // ssh-keygen -y derives the public key from our private file.
    auto y = runTool("ssh-keygen -y -f " + shq(path));
    INFO(y.output);
    REQUIRE(y.status == 0);
    CHECK(firstLine(y.output) == kp->publicKeyLine());

    // Same fingerprint as ssh-keygen -l, from the private file and from the .pub.
    for (const auto& f : {path, path + ".pub"}) {
        auto l = runTool("ssh-keygen -l -E sha256 -f " + shq(f));
        INFO(l.output);
        REQUIRE(l.status == 0);
        CHECK(firstLine(l.output) == "256 " + kp->fingerprint() + " vmr@web (ED25519)");
    }
    CHECK(kp->fingerprint().rfind("SHA256:", 0) == 0);
    CHECK(kp->fingerprint().size() == 7 + 43);

    auto back = readKeyPair(path);
    REQUIRE(back.ok());
    CHECK(back->rawPublic() == kp->rawPublic());
    CHECK(back->comment() == "vmr@web");
}

TEST_CASE("keys made by ssh-keygen are read, and encrypted or damaged ones are refused", "[ssh_key]")
{
    requireTool("ssh-keygen", "openssh-client");
    TempDir dir;
    std::string path = dir / "k";
    auto g = runTool("ssh-keygen -q -t ed25519 -N '' -C 'someone@host' -f " + shq(path));
    INFO(g.output);
    REQUIRE(g.status == 0);
    auto kp = Ed25519KeyPair::fromPrivateKeyFile(readFile(path));
    REQUIRE(kp.ok());
    CHECK(kp->publicKeyLine() == firstLine(readFile(path + ".pub")));
    CHECK(kp->comment() == "someone@host");
    // Written again by us, ssh-keygen still agrees.
    std::string again = dir / "again";
    REQUIRE(writeKeyPair(again, *kp).ok());
    auto y = runTool("ssh-keygen -y -f " + shq(again));
    CHECK(firstLine(y.output) == kp->publicKeyLine());

    std::string enc = dir / "enc";
    REQUIRE(runTool("ssh-keygen -q -t ed25519 -N 'secret phrase' -f " + shq(enc)).status == 0);
    auto e = Ed25519KeyPair::fromPrivateKeyFile(readFile(enc));
    REQUIRE(!e.ok());
    CHECK(e.error().kind() == ErrorKind::Unsupported);
    CHECK(e.error().hint().find("ssh-keygen -p") != std::string::npos);

    std::string rsa = dir / "rsa";
    REQUIRE(runTool("ssh-keygen -q -t rsa -b 1024 -N '' -f " + shq(rsa)).status == 0);
    auto r = Ed25519KeyPair::fromPrivateKeyFile(readFile(rsa));
    REQUIRE(!r.ok());
    CHECK(r.error().message().find("ssh-rsa") != std::string::npos);

    std::string text = readFile(path);
    CHECK(!Ed25519KeyPair::fromPrivateKeyFile("").ok());
    CHECK(!Ed25519KeyPair::fromPrivateKeyFile(text.substr(0, text.size() / 2)).ok());
    // Flip one base64 character inside the private section: the check numbers or the
    // key material no longer match.
    std::string damaged = text;
    size_t pos = damaged.size() - 60;
    damaged[pos] = damaged[pos] == 'A' ? 'B' : 'A';
    auto d = Ed25519KeyPair::fromPrivateKeyFile(damaged);
    CHECK(!d.ok());
}

TEST_CASE("the key files are protected and never replaced", "[ssh_key]")
{
    TempDir dir;
    std::string path = dir / "ssh_host_ed25519_key";
    bool created = false;
    auto first = loadOrCreateKeyPair(path, "root@web", &created);
    REQUIRE(first.ok());
    CHECK(created);
    auto second = loadOrCreateKeyPair(path, "root@other", &created);
    REQUIRE(second.ok());
    CHECK(!created);
    CHECK(second->publicKeyLine() == first->publicKeyLine());

    // A lost .pub comes back from the private key.
    REQUIRE(::unlink((path + ".pub").c_str()) == 0);
    REQUIRE(loadOrCreateKeyPair(path, "x", &created).ok());
    CHECK(!created);
    CHECK(readFile(path + ".pub") == first->publicKeyLine() + "\n");

    // A .pub of another key is reported, not overwritten.
    auto other = Ed25519KeyPair::generate("other");
    REQUIRE(other.ok());
    writeFile(path + ".pub", other->publicKeyLine() + "\n");
    auto mismatch = readKeyPair(path);
    REQUIRE(!mismatch.ok());
    CHECK(mismatch.error().kind() == ErrorKind::StoreCorrupt);
    CHECK(readFile(path + ".pub") == other->publicKeyLine() + "\n");

    // A private key others may read is refused, with the fix in the hint.
    REQUIRE(::chmod(path.c_str(), 0644) == 0);
    auto open = readKeyPair(path);
    REQUIRE(!open.ok());
    CHECK(open.error().kind() == ErrorKind::PermissionDenied);
    CHECK(open.error().hint() == "Run `chmod 600 " + path + "`");

    auto missing = readKeyPair(dir / "nothing");
    REQUIRE(!missing.ok());
    CHECK(missing.error().kind() == ErrorKind::NotFound);
}

TEST_CASE("public key lines are parsed and checked", "[ssh_key]")
{
    auto kp = Ed25519KeyPair::generate("a b  c");
    REQUIRE(kp.ok());
    auto p = parsePublicKey("  " + kp->publicKeyLine() + "\n");
    REQUIRE(p.ok());
    CHECK(p->type == "ssh-ed25519");
    CHECK(p->comment == "a b  c");
    CHECK(p->line() + " a b  c" == kp->publicKeyLine());
    CHECK(p->fingerprint() == kp->fingerprint());
    CHECK(p->blob == kp->publicKey().blob);

    auto noComment = parsePublicKey(kp->publicKey().line());
    REQUIRE(noComment.ok());
    CHECK(noComment->comment.empty());

    std::string b64 = p->line().substr(12);
    struct Bad {
        std::string line;
        std::string says;
    };
    for (const auto& bad : std::vector<Bad>{
             {"", "empty"},
             {"ssh-ed25519", "no key data"},
             {"ssh-foo " + b64, "Unknown SSH public key type \"ssh-foo\""},
             {"ssh-rsa " + b64, "does not hold a ssh-rsa key"},
             {"ssh-ed25519 " + b64.substr(0, 21), "not valid base64"},
             {"ssh-ed25519 " + b64 + "\nssh-ed25519 " + b64, "single line"},
             {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==", "damaged"},
         }) {
        auto r = parsePublicKey(bad.line);
        INFO(bad.line);
        REQUIRE(!r.ok());
        CHECK(r.error().kind() == ErrorKind::InvalidArgument);
        CHECK(r.error().message().find(bad.says) != std::string::npos);
        CHECK(!r.error().hint().empty());
    }
}

TEST_CASE("known_hosts lines pin the host key, as ssh-keygen -F finds them", "[ssh_key]")
{
    requireTool("ssh-keygen", "openssh-client");
    auto kp = Ed25519KeyPair::generate("root@web");
    REQUIRE(kp.ok());
    std::string line = knownHostsLine("127.0.0.1", 10022, kp->publicKey());
    CHECK(line == "[127.0.0.1]:10022 " + kp->publicKey().line());
    CHECK(knownHostsLine("10.0.0.5", 22, kp->publicKey()) == "10.0.0.5 " + kp->publicKey().line());

    TempDir dir;
    std::string kh = dir / "known_hosts";
    writeFile(kh, line + "\n");
    auto f = runTool("ssh-keygen -F '[127.0.0.1]:10022' -f " + shq(kh));
    INFO(f.output);
    CHECK(f.status == 0);
    CHECK(f.output.find(kp->publicKey().line()) != std::string::npos);
    CHECK(runTool("ssh-keygen -F '[127.0.0.1]:10023' -f " + shq(kh)).status != 0);
}

TEST_CASE("comments must be one line", "[ssh_key]")
{
    auto r = Ed25519KeyPair::generate("two\nlines");
    REQUIRE(!r.ok());
    CHECK(r.error().kind() == ErrorKind::InvalidArgument);
}
