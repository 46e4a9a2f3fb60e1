#include "provision/seed/ssh_key.h"

#include "base/files.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace vmr::provision {

namespace {

constexpr std::string_view kEd25519 = "ssh-ed25519";
constexpr std::string_view kPrivateBegin = "-----BEGIN OPENSSH PRIVATE KEY-----";
constexpr std::string_view kPrivateEnd = "-----END OPENSSH PRIVATE KEY-----";
constexpr std::string_view kAuthMagic{"openssh-key-v1\0", 15};
constexpr size_t kBase64Column = 70;  // ssh-keygen's line length in the private file

// Key types OpenSSH accepts in authorized_keys and known_hosts.
constexpr std::string_view kKnownTypes[] = {
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-dss",
};

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64(const uint8_t* p, size_t n, bool pad)
{
    std::string out;
    out.reserve((n + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
        for (int s = 18; s >= 0; s -= 6) out += kB64[(v >> s) & 63];
    }
    if (n - i == 1) {
        uint32_t v = uint32_t{p[i]} << 16;
        out += kB64[(v >> 18) & 63];
        out += kB64[(v >> 12) & 63];
        if (pad) out += "==";
    } else if (n - i == 2) {
        uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8);
        out += kB64[(v >> 18) & 63];
        out += kB64[(v >> 12) & 63];
        out += kB64[(v >> 6) & 63];
        if (pad) out += '=';
    }
    return out;
}

std::string base64(const std::vector<uint8_t>& v, bool pad = true)
{
    return base64(v.data(), v.size(), pad);
}

// Strict padded base64 (white space must have been removed); false when malformed.
bool unbase64(std::string_view in, std::vector<uint8_t>& out)
{
    out.clear();
    if (in.size() % 4 != 0) return false;
    uint32_t acc = 0;
    int bits = 0;
    size_t padding = 0;
    for (size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        int v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+')
            v = 62;
        else if (c == '/')
            v = 63;
        else if (c == '=' && i + 2 >= in.size()) {
            ++padding;
            v = 0;
        } else
            return false;
        if (padding > 0 && c != '=') return false;  // data after padding
        acc = (acc << 6) | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<uint8_t>((acc >> bits) & 0xFF));
        }
    }
    if (padding > 2) return false;
    out.resize(out.size() - padding);
    return true;
}

// SSH wire encoding (RFC 4251): uint32 big-endian, string = uint32 length + bytes.
void putU32(std::vector<uint8_t>& out, uint32_t v)
{
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

void putString(std::vector<uint8_t>& out, const void* p, size_t n)
{
    putU32(out, static_cast<uint32_t>(n));
    auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
}

void putString(std::vector<uint8_t>& out, std::string_view s)
{
    putString(out, s.data(), s.size());
}

class WireReader {
public:
    WireReader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
    explicit WireReader(const std::vector<uint8_t>& v) : WireReader(v.data(), v.size()) {}

    bool u32(uint32_t& v)
    {
        if (n_ - off_ < 4) return false;
        v = (uint32_t{p_[off_]} << 24) | (uint32_t{p_[off_ + 1]} << 16) | (uint32_t{p_[off_ + 2]} << 8) |
            p_[off_ + 3];
        off_ += 4;
        return true;
    }
    bool string(std::string_view& s)
    {
        uint32_t len;
        if (!u32(len) || n_ - off_ < len) return false;
        s = std::string_view(reinterpret_cast<const char*>(p_ + off_), len);
        off_ += len;
        return true;
    }
    size_t left() const { return n_ - off_; }
    const uint8_t* here() const { return p_ + off_; }

private:
    const uint8_t* p_;
    size_t n_;
    size_t off_ = 0;
};

std::string opensslError()
{
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return "no detail from libcrypto";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

Error cryptoError(std::string what)
{
    return Error(ErrorKind::Internal, std::move(what) + ": " + opensslError());
}

struct PkeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

Result<std::array<uint8_t, 32>> publicFromSeed(const std::array<uint8_t, 32>& seed)
{
    PkeyPtr k(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()));
    if (!k) return cryptoError("Cannot load an Ed25519 private key");
    std::array<uint8_t, 32> pub{};
    size_t len = pub.size();
    if (EVP_PKEY_get_raw_public_key(k.get(), pub.data(), &len) != 1 || len != pub.size())
        return cryptoError("Cannot derive an Ed25519 public key");
    return pub;
}

bool isOneLine(std::string_view s)
{
    for (unsigned char c : s)
        if (c < 0x20 || c == 0x7F) return false;
    return true;
}

Error badPrivateKey(std::string why)
{
    return Error(ErrorKind::ParseError, "Not a usable OpenSSH Ed25519 private key: " + std::move(why),
                 "Give an unencrypted key made by `ssh-keygen -t ed25519 -N ''`, or delete the file so that "
                 "vmr makes a new one");
}

std::vector<uint8_t> ed25519Blob(const std::array<uint8_t, 32>& pub)
{
    std::vector<uint8_t> blob;
    putString(blob, kEd25519);
    putString(blob, pub.data(), pub.size());
    return blob;
}

}  // namespace

// ---- PublicKey ---------------------------------------------------------------------

std::string PublicKey::line() const
{
    return type + " " + base64(blob);
}

std::string PublicKey::fingerprint() const
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(blob.data(), blob.size(), md, &len, EVP_sha256(), nullptr) != 1) {
        // SHA-256 of a buffer cannot fail short of a broken libcrypto.
        return "SHA256:?";
    }
    return "SHA256:" + base64(md, len, false);
}

Result<PublicKey> parsePublicKey(std::string_view line)
{
    auto trim = [](std::string_view s) {
        while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
        while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
            s.remove_suffix(1);
        return s;
    };
    line = trim(line);
    constexpr std::string_view kHint =
        "Give one line of a `.pub` file, such as \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA... user@host\"";
    if (line.empty())
        return Error(ErrorKind::InvalidArgument, "The SSH public key is empty", std::string(kHint));
    if (!isOneLine(line))
        return Error(ErrorKind::InvalidArgument, "The SSH public key is not a single line of text",
                     std::string(kHint));
    auto sp = line.find_first_of(" \t");
    if (sp == std::string_view::npos)
        return Error(ErrorKind::InvalidArgument, "The SSH public key has a type but no key data",
                     std::string(kHint));
    PublicKey key;
    key.type = std::string(line.substr(0, sp));
    bool known = false;
    for (auto t : kKnownTypes) known = known || t == key.type;
    if (!known)
        return Error(ErrorKind::InvalidArgument, "Unknown SSH public key type \"" + key.type + "\"",
                     "Use an ssh-ed25519, ecdsa-sha2-* or ssh-rsa key");
    std::string_view rest = trim(line.substr(sp));
    auto end = rest.find_first_of(" \t");
    std::string_view b64 = rest.substr(0, end);
    if (end != std::string_view::npos) key.comment = std::string(trim(rest.substr(end)));
    if (!unbase64(b64, key.blob))
        return Error(ErrorKind::InvalidArgument, "The key data of the SSH public key is not valid base64",
                     std::string(kHint));
    WireReader r(key.blob);
    std::string_view inner;
    if (!r.string(inner) || inner != key.type)
        return Error(
            ErrorKind::InvalidArgument,
            "The SSH public key's data does not hold a " + key.type + " key (the line may be cut short)",
            std::string(kHint));
    if (key.type == kEd25519) {
        std::string_view pub;
        if (!r.string(pub) || pub.size() != 32 || r.left() != 0)
            return Error(ErrorKind::InvalidArgument, "The ssh-ed25519 public key is damaged",
                         std::string(kHint));
    }
    return key;
}

// ---- Ed25519KeyPair ----------------------------------------------------------------

Ed25519KeyPair::~Ed25519KeyPair()
{
    OPENSSL_cleanse(seed_.data(), seed_.size());
}

Result<Ed25519KeyPair> Ed25519KeyPair::generate(std::string_view comment)
{
    if (!isOneLine(comment))
        return Error(ErrorKind::InvalidArgument, "An SSH key comment must be one line of printable text");
    PkeyPtr k(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    if (!k) return cryptoError("Cannot generate an Ed25519 key");
    Ed25519KeyPair kp;
    size_t len = kp.seed_.size();
    if (EVP_PKEY_get_raw_private_key(k.get(), kp.seed_.data(), &len) != 1 || len != kp.seed_.size())
        return cryptoError("Cannot read the new Ed25519 private key");
    len = kp.public_.size();
    if (EVP_PKEY_get_raw_public_key(k.get(), kp.public_.data(), &len) != 1 || len != kp.public_.size())
        return cryptoError("Cannot read the new Ed25519 public key");
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&kp.checkInt_), sizeof kp.checkInt_) != 1)
        return cryptoError("Cannot read random bytes");
    kp.comment_ = std::string(comment);
    return kp;
}

Result<Ed25519KeyPair> Ed25519KeyPair::fromPrivateKeyFile(std::string_view text)
{
    auto begin = text.find(kPrivateBegin);
    auto end = text.find(kPrivateEnd);
    if (begin == std::string_view::npos || end == std::string_view::npos || end < begin)
        return badPrivateKey("no \"" + std::string(kPrivateBegin) + "\" block");
    std::string b64;
    for (char c : text.substr(begin + kPrivateBegin.size(), end - begin - kPrivateBegin.size()))
        if (c != '\n' && c != '\r' && c != ' ' && c != '\t') b64 += c;
    std::vector<uint8_t> raw;
    if (!unbase64(b64, raw)) return badPrivateKey("the base64 text is damaged");
    if (raw.size() < kAuthMagic.size() ||
        std::string_view(reinterpret_cast<const char*>(raw.data()), kAuthMagic.size()) != kAuthMagic)
        return badPrivateKey("it does not start with \"openssh-key-v1\"");
    WireReader r(raw.data() + kAuthMagic.size(), raw.size() - kAuthMagic.size());
    std::string_view cipher, kdf, kdfOptions, pubBlob, priv;
    uint32_t count = 0;
    if (!r.string(cipher) || !r.string(kdf) || !r.string(kdfOptions) || !r.u32(count))
        return badPrivateKey("the header is cut short");
    if (cipher != "none" || kdf != "none")
        return Error(
            ErrorKind::Unsupported, "The OpenSSH private key is encrypted with a passphrase",
            "vmr needs an unencrypted key: remove the passphrase with `ssh-keygen -p -N '' -f FILE`");
    if (count != 1) return badPrivateKey("it holds " + std::to_string(count) + " keys, not one");
    if (!r.string(pubBlob) || !r.string(priv) || r.left() != 0)
        return badPrivateKey("the key sections are damaged");

    WireReader p(reinterpret_cast<const uint8_t*>(priv.data()), priv.size());
    uint32_t check1 = 0, check2 = 0;
    std::string_view type, pub, secret, comment;
    if (!p.u32(check1) || !p.u32(check2)) return badPrivateKey("the private section is cut short");
    if (check1 != check2) return badPrivateKey("its check numbers differ (damaged or encrypted)");
    if (!p.string(type)) return badPrivateKey("the private section is cut short");
    if (type != kEd25519) return badPrivateKey("it is a " + std::string(type) + " key, not ssh-ed25519");
    if (!p.string(pub) || !p.string(secret) || !p.string(comment))
        return badPrivateKey("the private section is cut short");
    if (pub.size() != 32 || secret.size() != 64 || secret.substr(32) != pub)
        return badPrivateKey("the Ed25519 key material has the wrong size or does not match");
    // Padding: 1, 2, 3, ... up to the cipher block size (8 for "none").
    if (p.left() >= 8) return badPrivateKey("the padding is damaged");
    for (size_t i = 0; i < p.left(); ++i)
        if (p.here()[i] != i + 1) return badPrivateKey("the padding is damaged");
    if (!isOneLine(comment)) return badPrivateKey("the comment is not one line of text");

    Ed25519KeyPair kp;
    std::copy(secret.begin(), secret.begin() + 32, kp.seed_.begin());
    std::copy(pub.begin(), pub.end(), kp.public_.begin());
    kp.comment_ = std::string(comment);
    kp.checkInt_ = check1;
    auto derived = publicFromSeed(kp.seed_);
    if (!derived) return std::move(derived).error();
    if (*derived != kp.public_) return badPrivateKey("its public half does not belong to its private half");
    auto blob = ed25519Blob(kp.public_);
    if (pubBlob.size() != blob.size() || std::memcmp(blob.data(), pubBlob.data(), blob.size()) != 0)
        return badPrivateKey("the public key section names another key");
    return kp;
}

std::string Ed25519KeyPair::privateKeyFile() const
{
    std::vector<uint8_t> priv;
    putU32(priv, checkInt_);
    putU32(priv, checkInt_);
    putString(priv, kEd25519);
    putString(priv, public_.data(), public_.size());
    putU32(priv, 64);
    priv.insert(priv.end(), seed_.begin(), seed_.end());
    priv.insert(priv.end(), public_.begin(), public_.end());
    putString(priv, comment_);
    for (uint8_t pad = 1; priv.size() % 8 != 0; ++pad) priv.push_back(pad);

    std::vector<uint8_t> raw(kAuthMagic.begin(), kAuthMagic.end());
    putString(raw, "none");
    putString(raw, "none");
    putString(raw, "");
    putU32(raw, 1);
    auto blob = ed25519Blob(public_);
    putString(raw, blob.data(), blob.size());
    putString(raw, priv.data(), priv.size());
    OPENSSL_cleanse(priv.data(), priv.size());

    std::string b64 = base64(raw);
    OPENSSL_cleanse(raw.data(), raw.size());
    std::string out(kPrivateBegin);
    out += '\n';
    for (size_t i = 0; i < b64.size(); i += kBase64Column) {
        out.append(b64, i, kBase64Column);
        out += '\n';
    }
    OPENSSL_cleanse(b64.data(), b64.size());
    out += kPrivateEnd;
    out += '\n';
    return out;
}

PublicKey Ed25519KeyPair::publicKey() const
{
    PublicKey k;
    k.type = std::string(kEd25519);
    k.blob = ed25519Blob(public_);
    k.comment = comment_;
    return k;
}

std::string Ed25519KeyPair::publicKeyLine() const
{
    std::string line = publicKey().line();
    if (!comment_.empty()) line += " " + comment_;
    return line;
}

// ---- files -------------------------------------------------------------------------

Result<void> writeKeyPair(const std::string& privatePath, const Ed25519KeyPair& key)
{
    std::string priv = key.privateKeyFile();
    auto r = vmr::writeFileAtomic(privatePath, priv, 0600);
    OPENSSL_cleanse(priv.data(), priv.size());
    VMR_TRY(r);
    return vmr::writeFileAtomic(privatePath + ".pub", key.publicKeyLine() + "\n", 0644);
}

Result<Ed25519KeyPair> readKeyPair(const std::string& privatePath)
{
    struct stat st {};
    if (::stat(privatePath.c_str(), &st) != 0) return Error::fromErrno(errno, "Cannot read " + privatePath);
    if ((st.st_mode & 077) != 0)
        return Error(ErrorKind::PermissionDenied,
                     "The private key " + privatePath + " is readable by other users",
                     "Run `chmod 600 " + privatePath + "`");
    auto text = vmr::readFile(privatePath, 64 << 10);
    if (!text)
        return Error(text.error().kind(), "Cannot read the private key " + privatePath)
            .causedBy(text.error());
    auto kp = Ed25519KeyPair::fromPrivateKeyFile(*text);
    OPENSSL_cleanse(text->data(), text->size());
    if (!kp)
        return Error(kp.error().kind(), "Cannot use " + privatePath, kp.error().hint()).causedBy(kp.error());

    std::string pubPath = privatePath + ".pub";
    auto pubText = vmr::readFile(pubPath, 64 << 10);
    if (pubText) {
        auto pub = parsePublicKey(*pubText);
        if (pub && pub->blob != kp->publicKey().blob)
            return Error(ErrorKind::StoreCorrupt, pubPath + " holds another key than " + privatePath,
                         "Delete " + pubPath + "; vmr writes it again from the private key");
    }
    return kp;
}

Result<Ed25519KeyPair> loadOrCreateKeyPair(const std::string& privatePath, std::string_view comment,
                                           bool* created)
{
    if (created) *created = false;
    struct stat st {};
    if (::lstat(privatePath.c_str(), &st) == 0) {
        auto kp = readKeyPair(privatePath);
        if (!kp) return kp;
        // Put back a missing or damaged .pub (readKeyPair refused one naming another key).
        std::string pubPath = privatePath + ".pub";
        auto pubText = vmr::readFile(pubPath, 64 << 10);
        if (!pubText || !parsePublicKey(*pubText).ok())
            VMR_TRY(vmr::writeFileAtomic(pubPath, kp->publicKeyLine() + "\n", 0644));
        return kp;
    }
    if (errno != ENOENT) return Error::fromErrno(errno, "Cannot look at " + privatePath);
    auto kp = Ed25519KeyPair::generate(comment);
    if (!kp) return kp;
    VMR_TRY(writeKeyPair(privatePath, *kp));
    if (created) *created = true;
    return kp;
}

std::string knownHostsLine(std::string_view host, uint16_t port, const PublicKey& key)
{
    std::string out;
    if (port == 22) {
        out = std::string(host);
    } else {
        out.append(1, '[').append(host).append("]:").append(std::to_string(port));
    }
    return out + " " + key.line();
}

}  // namespace vmr::provision
