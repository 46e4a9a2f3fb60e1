#include "provision/ssh/host_key.h"

#include <array>
#include <cstdint>

namespace vmr::provision {

namespace {

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// The key types libssh2 1.10 verifies, in the order vmr prefers them.
constexpr std::array<std::string_view, 5> kKnownTypes = {
    "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa",
};

bool knownType(std::string_view type)
{
    for (auto t : kKnownTypes)
        if (t == type) return true;
    return false;
}

std::string encode(std::string_view bytes, bool pad)
{
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        uint32_t v = static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])) << 16 |
                     static_cast<uint32_t>(static_cast<uint8_t>(bytes[i + 1])) << 8 |
                     static_cast<uint8_t>(bytes[i + 2]);
        for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
    }
    size_t rest = bytes.size() - i;
    if (rest > 0) {
        uint32_t v = static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])) << 16;
        if (rest == 2) v |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[i + 1])) << 8;
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        if (rest == 2) out += kAlphabet[(v >> 6) & 63];
        if (pad) out.append(rest == 1 ? 2 : 1, '=');
    }
    return out;
}

// Padded base64 whose padding is only at the end.
bool wellFormedBase64(std::string_view s)
{
    if (s.empty() || s.size() % 4 != 0) return false;
    size_t data = s.find_first_of('=');
    if (data == std::string_view::npos) data = s.size();
    if (s.size() - data > 2) return false;
    for (size_t i = 0; i < s.size(); ++i) {
        bool inAlphabet = kAlphabet.find(s[i]) != std::string_view::npos;
        if (i < data ? !inAlphabet : s[i] != '=') return false;
    }
    return true;
}

bool isSpace(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::string_view trim(std::string_view s)
{
    while (!s.empty() && isSpace(s.front())) s.remove_prefix(1);
    while (!s.empty() && isSpace(s.back())) s.remove_suffix(1);
    return s;
}

// The next white-space separated word of s (consumed).
std::string_view nextWord(std::string_view& s)
{
    size_t end = 0;
    while (end < s.size() && !isSpace(s[end])) ++end;
    std::string_view word = s.substr(0, end);
    s = trim(s.substr(end));
    return word;
}

Error badLine(std::string what)
{
    return Error(ErrorKind::InvalidArgument, "Bad SSH host key: " + what,
                 "Give the key as one OpenSSH public key line, e.g. the contents of "
                 "/etc/ssh/ssh_host_ed25519_key.pub: \"ssh-ed25519 AAAAC3Nza... [comment]\"");
}

}  // namespace

Result<SshHostKey> parseSshHostKey(std::string_view line)
{
    line = trim(line);
    if (line.empty()) return badLine("the line is empty");
    if (line.find('\n') != std::string_view::npos) return badLine("it spans several lines");
    SshHostKey key;
    key.type = std::string(nextWord(line));
    if (!knownType(key.type)) {
        return badLine("key type '" + key.type +
                       "' is not one vmr can verify (ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa)");
    }
    key.base64 = std::string(nextWord(line));
    if (key.base64.empty()) return badLine("the key data after '" + key.type + "' is missing");
    if (!wellFormedBase64(key.base64)) return badLine("the key data is not valid base64");
    key.comment = std::string(line);
    return key;
}

Result<SshHostKey> sshHostKeyFromBlob(std::string_view blob)
{
    if (blob.size() < 4) return Error(ErrorKind::ParseError, "The server's host key blob is truncated");
    uint32_t n = static_cast<uint32_t>(static_cast<uint8_t>(blob[0])) << 24 |
                 static_cast<uint32_t>(static_cast<uint8_t>(blob[1])) << 16 |
                 static_cast<uint32_t>(static_cast<uint8_t>(blob[2])) << 8 | static_cast<uint8_t>(blob[3]);
    if (n == 0 || n > blob.size() - 4 || n > 64)
        return Error(ErrorKind::ParseError, "The server's host key blob has a bad type field");
    SshHostKey key;
    key.type = std::string(blob.substr(4, n));
    key.base64 = encode(blob, true);
    return key;
}

std::string sshFingerprint(std::string_view sha256Digest)
{
    return "SHA256:" + encode(sha256Digest, false);
}

std::string hostKeyAlgorithmsFor(std::string_view type)
{
    if (type == "ssh-rsa") return "rsa-sha2-512,rsa-sha2-256,ssh-rsa";
    return std::string(type);
}

std::string hostKeyAlgorithmsAny()
{
    std::string out;
    for (auto t : kKnownTypes) {
        if (!out.empty()) out += ',';
        out += hostKeyAlgorithmsFor(t);
    }
    return out;
}

std::string keepSupported(std::string_view wanted, const std::vector<std::string>& supported)
{
    std::string out;
    while (!wanted.empty()) {
        auto comma = wanted.find(',');
        std::string_view name = wanted.substr(0, comma);
        wanted = comma == std::string_view::npos ? std::string_view() : wanted.substr(comma + 1);
        for (const auto& s : supported) {
            if (s != name) continue;
            if (!out.empty()) out += ',';
            out += name;
            break;
        }
    }
    return out;
}

}  // namespace vmr::provision
