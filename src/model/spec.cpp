#include "model/spec.h"

#include "base/json.h"
#include "model/names.h"

#include <array>
#include <cctype>

namespace vmr::model {

namespace {

using T = FieldType;

constexpr std::array<FieldInfo, 23> kFields = {{
    {Field::Name, "name", "", T::Text, 0, 0, "", "The VM's name: [A-Za-z0-9][A-Za-z0-9._-]{0,62}"},
    {Field::Backend, "backend", "backend", T::Word, 0, 0, "",
     "The hypervisor: qemu or chv (cloud-hypervisor)"},
    {Field::Image, "image", "image", T::Path, 0, 0, "",
     "The base image: an absolute path, or the name of an image in the cache"},
    {Field::ImageUrl, "image_url", "image-url", T::Text, 0, 0, "",
     "Download the base image from this http(s):// or oci:// URL"},
    {Field::ImageSha256, "image_sha256", "image-sha256", T::Text, 0, 0, "",
     "The download's SHA-256, 64 hex digits"},
    {Field::Vcpus, "vcpus", "vcpus", T::Integer, kMinVcpus, kMaxVcpus, "", "Virtual CPUs"},
    {Field::MemoryMib, "memory_mib", "memory", T::Integer, kMinMemoryMib, kMaxMemoryMib, "MiB", "Memory"},
    {Field::DiskGib, "disk_gib", "disk", T::Integer, kMinDiskGib, kMaxDiskGib, "GiB",
     "The disk's size; default: the image's"},
    {Field::Network, "network", "network", T::Word, 0, 0, "", "The network mode: user, tap or none"},
    {Field::Bridge, "network.bridge", "network.bridge", T::Text, 0, 0, "",
     "tap: the host bridge the VM's tap device joins (default br0)"},
    {Field::Kernel, "kernel", "kernel", T::Path, 0, 0, "", "Direct kernel boot: the kernel"},
    {Field::Initrd, "initrd", "initrd", T::Path, 0, 0, "", "Direct kernel boot: the initrd"},
    {Field::Cmdline, "cmdline", "cmdline", T::Text, 0, 0, "", "Direct kernel boot: the kernel command line"},
    {Field::Accel, "accel", "accel", T::Word, 0, 0, "", "auto, kvm or tcg; default: vmrd.toml's qemu.accel"},
    {Field::Firmware, "firmware", "firmware", T::Text, 0, 0, "",
     "bios, uefi, or the path of a firmware file"},
    {Field::Vnc, "vnc", "vnc", T::Boolean, 0, 0, "", "A VNC server on 127.0.0.1"},
    {Field::SshUser, "ssh_user", "ssh.user", T::Text, 0, 0, "", "The guest login user cloud-init creates"},
    {Field::AuthorizedKeys, "ssh_authorized_keys", "", T::List, 0, kMaxAuthorizedKeys, "",
     "OpenSSH public key lines the user may log in with"},
    {Field::UserData, "user_data", "", T::Text, 0, kMaxUserDataBytes, "",
     "Raw cloud-init user-data, in place of the generated one"},
    {Field::Hostname, "hostname", "cloud-init.hostname", T::Text, 0, 0, "", "The guest's host name"},
    {Field::Provision, "provision", "", T::List, 0, kMaxProvisionSteps, "",
     "Provisioning steps run over SSH by vm.provision"},
    {Field::Vmfile, "vmfile", "", T::Path, 0, 0, "", "The VMFile this VM was created from"},
    {Field::VmfileSha256, "vmfile_sha256", "", T::Text, 0, 0, "", "That VMFile's SHA-256"},
}};

Error bad(std::string problem, std::string hint = {})
{
    return Error(ErrorKind::InvalidArgument, std::move(problem), std::move(hint));
}

std::string shown(std::string_view v)
{
    constexpr size_t kShown = 80;
    return v.size() > kShown ? json::quote(v.substr(0, kShown)) + "..." : json::quote(v);
}

Result<std::string> plainText(std::string_view v, size_t max)
{
    if (v.empty()) return bad("must not be empty");
    if (v.find('\0') != std::string_view::npos) return bad("must not contain a NUL character");
    if (v.size() > max) return bad("is longer than " + std::to_string(max) + " bytes");
    return std::string(v);
}

Result<std::string> absolutePath(std::string_view v)
{
    VMR_TRY(plainText(v, kMaxTextBytes));
    if (v.front() != '/') return bad("must be an absolute path, not " + shown(v), "Give the full path: /...");
    return std::string(v);
}

template <typename E>
Result<std::string> word(std::string_view v)
{
    auto w = parseWord<E>(v);
    if (!w) return bad("must be " + wordChoices<E>() + ", not " + shown(v), w.error().hint());
    return std::string(v);
}

Result<std::string> sha256(std::string_view v)
{
    if (!isSha256Hex(v))
        return bad("must be 64 hexadecimal digits, not " + shown(v), "Write what sha256sum prints");
    std::string out(v);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

}  // namespace

std::span<const FieldInfo> fields() noexcept
{
    return kFields;
}

const FieldInfo& fieldInfo(Field f) noexcept
{
    return kFields[static_cast<size_t>(f)];
}

Result<uint64_t> checkInteger(Field f, int64_t value)
{
    const FieldInfo& info = fieldInfo(f);
    if (value < 0 || static_cast<uint64_t>(value) < info.min || static_cast<uint64_t>(value) > info.max) {
        std::string unit = info.unit.empty() ? "" : " of " + std::string(info.unit);
        return bad("must be a whole number" + unit + " from " + std::to_string(info.min) + " to " +
                   std::to_string(info.max) + ", not " + std::to_string(value));
    }
    return static_cast<uint64_t>(value);
}

Result<std::string> checkText(Field f, std::string_view v)
{
    if (v.empty() && f != Field::Name) return bad("must not be empty");
    switch (f) {
        case Field::Name: {
            auto ok = validateVmName(v);
            if (!ok) return Error(ErrorKind::InvalidName, ok.error().message(), ok.error().hint());
            return std::string(v);
        }
        case Field::Backend: return word<Backend>(v);
        case Field::Network: return word<NetMode>(v);
        case Field::Accel: return word<AccelChoice>(v);
        case Field::Image:
            VMR_TRY(plainText(v, kMaxTextBytes));
            if (v.front() != '/' && (v.find('/') != std::string_view::npos || v == "." || v == ".."))
                return bad("must be an absolute path or the name of a cached image, not " + shown(v),
                           "Give the full path of the image file, or a name from `vmrctl image list`");
            return std::string(v);
        case Field::ImageUrl:
            VMR_TRY(plainText(v, kMaxTextBytes));
            if (!v.starts_with("https://") && !v.starts_with("http://") && !v.starts_with("oci://"))
                return bad("must start with https://, http:// or oci://, not " + shown(v),
                           "Use an https:// URL, or image \"PATH\" for a local file");
            return std::string(v);
        case Field::ImageSha256:
        case Field::VmfileSha256: return sha256(v);
        case Field::Bridge:
            if (!isValidInterfaceName(v))
                return bad("must be a Linux interface name, not " + shown(v),
                           "A Linux interface name is 1 to 15 characters without '/', ':' or spaces");
            return std::string(v);
        case Field::Kernel:
        case Field::Initrd:
        case Field::Vmfile: return absolutePath(v);
        case Field::Cmdline: return plainText(v, kMaxTextBytes);
        case Field::Firmware:
            if (v == "bios" || v == "uefi") return std::string(v);
            if (!v.empty() && v.front() != '/')
                return bad("must be \"bios\", \"uefi\" or the absolute path of a firmware file, not " +
                           shown(v));
            return absolutePath(v);
        case Field::SshUser:
            if (v == "root")
                return bad("must not be root: the generated cloud-config locks root's login",
                           "Use an ordinary user; it gets passwordless sudo");
            if (!isValidUserName(v))
                return bad("must be a login name ([a-z_][a-z0-9_-]{0,31}), not " + shown(v));
            return std::string(v);
        case Field::UserData:
            if (v.find('\0') != std::string_view::npos) return bad("must not contain a NUL character");
            if (v.size() > kMaxUserDataBytes) return bad("is larger than 1 MiB");
            return std::string(v);
        case Field::Hostname:
            if (!isValidHostname(v))
                return bad("must be a host name, not " + shown(v),
                           "A hostname is labels of letters, digits and inner '-', joined by '.'");
            return std::string(v);
        case Field::AuthorizedKeys: {
            VMR_TRY(plainText(v, kMaxTextBytes));
            if (v.find('\n') != std::string_view::npos || v.starts_with("-----BEGIN"))
                return bad("must hold public key lines, and this is not one",
                           "A public key is one line like \"ssh-ed25519 AAAA... comment\"");
            if (!v.starts_with("ssh-") && !v.starts_with("ecdsa-") && !v.starts_with("sk-"))
                return bad("must hold OpenSSH public key lines (\"ssh-ed25519 AAAA...\"), not " + shown(v));
            return std::string(v);
        }
        case Field::Vcpus:
        case Field::MemoryMib:
        case Field::DiskGib:
        case Field::Vnc:
        case Field::Provision: break;
    }
    return Error(ErrorKind::Internal, "Field " + std::string(fieldInfo(f).wire) + " is not text");
}

std::string_view firmwareWord(const Firmware& f)
{
    switch (f.kind) {
        case FirmwareKind::Bios: return "bios";
        case FirmwareKind::Uefi: return "uefi";
        case FirmwareKind::File: return f.file;
    }
    return "bios";
}

Result<Firmware> parseFirmware(std::string_view text)
{
    VMR_TRY(checkText(Field::Firmware, text));
    Firmware f;
    if (text == "uefi")
        f.kind = FirmwareKind::Uefi;
    else if (text != "bios")
        f = Firmware{FirmwareKind::File, std::string(text)};
    return f;
}

std::string ProvisionStep::describe() const
{
    if (kind == Kind::File) return "file: " + source + " -> " + destination;
    return inlineCommand.empty() ? "shell: " + script : "shell: " + inlineCommand;
}

std::vector<Problem> validate(const VmSpec& s, bool request)
{
    std::vector<Problem> out;
    auto problem = [&out](Field f, std::string message, std::string hint,
                          ErrorKind kind = ErrorKind::InvalidParams) {
        out.push_back(Problem{f, std::move(message), std::move(hint), kind});
    };
    if (request && s.image.empty() == s.imageUrl.empty())
        problem(Field::Image,
                s.image.empty() ? "The VM has no image: give a local image or an image URL"
                                : "The VM has both a local image and an image URL: keep one image source",
                "A local image is never written (the VM runs on an overlay); an image URL is downloaded into "
                "the cache");
    if (request && !s.imageSha256.empty() && s.imageUrl.empty())
        problem(Field::ImageSha256, "A SHA-256 checks a download: it goes with an image URL",
                "Leave it out for a local image");
    if (s.kernel.empty() && !s.initrd.empty())
        problem(Field::Initrd, "An initrd needs a kernel", "Give a kernel too, or leave the initrd out");
    if (s.kernel.empty() && !s.cmdline.empty())
        problem(Field::Cmdline, "A kernel command line needs a kernel",
                "Give a kernel too, or leave the command line out");
    if (s.network.mode != NetMode::Tap && !s.network.bridge.empty())
        problem(Field::Bridge,
                "A bridge applies to network \"tap\" only, not " + json::quote(wordOf(s.network.mode)),
                "Remove the bridge, or use network \"tap\"");
    // Raw user-data is passed through unchanged: vmr adds no key to it. The user then only says
    // whom `vmrctl ssh` and provisioning log in as.
    if (s.cloudInit.userData && !s.cloudInit.authorizedKeys.empty())
        problem(Field::AuthorizedKeys, "Raw user-data cannot be combined with SSH keys",
                "Put the keys in your user-data, or leave the user-data out");
    for (const auto& step : s.provision) {
        bool shell = step.kind == ProvisionStep::Kind::Shell;
        if (shell && step.inlineCommand.empty() == step.script.empty())
            problem(Field::Provision, "A shell step takes inline or script, exactly one",
                    "Split it into two steps, or give one of them");
        if (!shell && (step.source.empty() || step.destination.empty()))
            problem(Field::Provision, "A file step needs a source and a destination", "");
    }
    if (s.backend == Backend::Chv) {
        if (s.network.mode == NetMode::User)
            problem(Field::Network, "cloud-hypervisor has no user-mode networking",
                    "Use network \"none\" or \"tap\" with backend \"chv\", or backend \"qemu\"",
                    ErrorKind::Unsupported);
        if (s.firmware.kind != FirmwareKind::File && s.kernel.empty())
            problem(Field::Firmware,
                    "cloud-hypervisor boots a firmware file or a kernel, not " +
                        json::quote(firmwareWord(s.firmware)),
                    "Give the path of rust-hypervisor-firmware or a CLOUDHV OVMF build, or a kernel");
        if (s.firmware.kind == FirmwareKind::File && !s.kernel.empty())
            problem(Field::Firmware, "cloud-hypervisor boots a firmware or a kernel, not both",
                    "Leave one of them out");
        if (s.vcpus > kMaxChvVcpus)
            problem(Field::Vcpus,
                    "cloud-hypervisor runs at most " + std::to_string(kMaxChvVcpus) + " vCPUs, not " +
                        std::to_string(s.vcpus),
                    "Give fewer vCPUs, or use backend \"qemu\"");
        if (s.vnc)
            problem(Field::Vnc, "cloud-hypervisor has no VNC server", "Use the serial console",
                    ErrorKind::Unsupported);
    }
    return out;
}

Result<void> checkSpec(const VmSpec& spec, bool request)
{
    auto problems = validate(spec, request);
    if (problems.empty()) return success();
    const Problem& p = problems.front();
    return Error(p.kind, p.message, p.hint);
}

}  // namespace vmr::model
